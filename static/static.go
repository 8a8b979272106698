// Package static holds the browser side of caplab: the stylesheet, the small
// JavaScript client and the icon, embedded into the binary so that `go run .`
// serves the whole page without a build step. Everything here is the
// project's own code; nothing is copied from third parties or loaded from a
// CDN.
//
// Serve FS under /static/, e.g. with
//
//	http.StripPrefix("/static/", http.FileServerFS(static.FS))
package static

import "embed"

// FS holds app.css, app.js (the page), lessons.js (its lesson panel) and
// the SVG icons.
//
//go:embed *.css *.js *.svg
var FS embed.FS
