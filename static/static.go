// Package static holds the browser side of caplab: the stylesheet, the small
// JavaScript client and the icon, embedded into the binary so that `go run .`
// serves the whole page without a build step. Everything here is the
// project's own code, except uPlot (vendor/uplot/, pinned, with its
// LICENSE; README.md there gives version and checksums) for the load
// panel's plots; nothing is loaded from a CDN.
//
// Serve FS under /static/, e.g. with
//
//	http.StripPrefix("/static/", http.FileServerFS(static.FS))
package static

import "embed"

// FS holds app.css, app.js (the page), geo.js (its geo allocation bars),
// lessons.js (its lesson panel), load.css, load.js, recording.js, time.js,
// the SVG icons and vendor/.
//
//go:embed *.css *.js *.svg vendor
var FS embed.FS
