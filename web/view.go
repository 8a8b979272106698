package web

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"caplab/lab"
	"caplab/lab/check"
	"caplab/lab/inventory"
)

// pageView is everything the page template needs.
type pageView struct {
	Presenter  bool // the request carries a valid token: controls are live
	Present    bool // presenter mode (large type, shortcuts, join box)
	BadToken   bool // /?token= carried a token that is not the lab's
	State      lab.State
	Map        mapView
	SKU        string
	JoinURL    string
	QR         string // data: URI of the join QR code
	Lessons    []LessonSummary
	HasLessons bool
	CanRun     bool // the lessons provider can run steps
}

// mapView is the map geometry: an equirectangular projection of the
// regions' coordinates, cropped to the regions with a margin.
type mapView struct {
	ViewBox    string
	Regions    []mapRegion
	Links      []mapLink
	Meridians  []gridLine
	Parallels  []gridLine
	MinX, MinY float64
	W, H       float64
}

type mapRegion struct {
	lab.RegionState
	X, Y  float64
	Index int // 1-based, for the presenter's number keys
}

// mapLink is one unordered pair of regions, drawn as two directed lanes.
type mapLink struct {
	A, B               string
	Fwd, Rev           lab.LinkState // A→B and B→A
	X1, Y1, X2, Y2     float64       // centre line
	FX1, FY1, FX2, FY2 float64       // A→B lane
	RX1, RY1, RX2, RY2 float64       // B→A lane
	LX, LY             float64       // label position
}

type gridLine struct {
	X1, Y1, X2, Y2 float64
	Label          string
	LX, LY         float64
}

// Projection: 1000 units for 360° of longitude, 500 for 180° of latitude.
func project(lat, lon float64) (x, y float64) {
	return (lon + 180) / 360 * 1000, (90 - lat) / 180 * 500
}

const regionRadius = 20

// minRegionGap is the least distance, in map units, between two regions on
// the map: closer regions (eu-west-1 and eu-central-1) are nudged apart so
// their labels stay readable. The map is a diagram, not a survey.
const minRegionGap = 150

// spread nudges points apart until no two are closer than gap, moving each
// pair symmetrically along the line between them. It is deterministic.
func spread(pts [][2]float64, gap float64) {
	for range 200 {
		moved := false
		for i := range pts {
			for j := i + 1; j < len(pts); j++ {
				dx, dy := pts[j][0]-pts[i][0], pts[j][1]-pts[i][1]
				d := math.Hypot(dx, dy)
				if d >= gap {
					continue
				}
				if d < 1e-9 {
					dx, dy, d = 1, 0, 1
				}
				push := (gap - d) / 2 * 1.01
				ux, uy := dx/d, dy/d
				pts[i][0] -= ux * push
				pts[i][1] -= uy * push
				pts[j][0] += ux * push
				pts[j][1] += uy * push
				moved = true
			}
		}
		if !moved {
			return
		}
	}
}

func buildMap(st lab.State) mapView {
	var mv mapView
	if len(st.Regions) == 0 {
		mv.ViewBox = "0 0 1000 500"
		mv.W, mv.H = 1000, 500
		return mv
	}
	pts := make([][2]float64, len(st.Regions))
	for i, r := range st.Regions {
		pts[i][0], pts[i][1] = project(r.Lat, r.Lon)
	}
	spread(pts, minRegionGap)
	pos := map[string][2]float64{}
	minX, maxX := math.Inf(1), math.Inf(-1)
	minY, maxY := math.Inf(1), math.Inf(-1)
	for i, r := range st.Regions {
		x, y := pts[i][0], pts[i][1]
		pos[r.Name] = pts[i]
		mv.Regions = append(mv.Regions, mapRegion{RegionState: r, X: x, Y: y, Index: i + 1})
		minX, maxX = math.Min(minX, x), math.Max(maxX, x)
		minY, maxY = math.Min(minY, y), math.Max(maxY, y)
	}
	// Margins leave room for the labels around each region; keep a wide,
	// readable aspect.
	x0, x1 := math.Max(0, minX-100), math.Min(1000, maxX+100)
	y0, y1 := math.Max(0, minY-60), math.Min(500, maxY+100)
	if w := x1 - x0; w < 2.2*(y1-y0) {
		pad := (2.2*(y1-y0) - w) / 2
		x0, x1 = math.Max(0, x0-pad), math.Min(1000, x1+pad)
	}
	mv.MinX, mv.MinY, mv.W, mv.H = x0, y0, x1-x0, y1-y0
	mv.ViewBox = fmt.Sprintf("%s %s %s %s", num(x0), num(y0), num(x1-x0), num(y1-y0))

	for lon := -180.0; lon <= 180; lon += 15 {
		x, _ := project(0, lon)
		if x < x0 || x > x1 {
			continue
		}
		mv.Meridians = append(mv.Meridians, gridLine{X1: x, Y1: y0, X2: x, Y2: y1, Label: degrees(lon, "E", "W"), LX: x + 2, LY: y1 - 4})
	}
	for lat := -90.0; lat <= 90; lat += 15 {
		_, y := project(lat, 0)
		if y < y0 || y > y1 {
			continue
		}
		mv.Parallels = append(mv.Parallels, gridLine{X1: x0, Y1: y, X2: x1, Y2: y, Label: degrees(lat, "N", "S"), LX: x0 + 3, LY: y - 3})
	}

	links := map[[2]string]lab.LinkState{}
	for _, l := range st.Links {
		links[[2]string{l.From, l.To}] = l
	}
	for i, a := range st.Regions {
		for _, b := range st.Regions[i+1:] {
			pa, pb := pos[a.Name], pos[b.Name]
			ml := mapLink{A: a.Name, B: b.Name, X1: pa[0], Y1: pa[1], X2: pb[0], Y2: pb[1]}
			ml.Fwd = linkOr(links, a.Name, b.Name)
			ml.Rev = linkOr(links, b.Name, a.Name)
			dx, dy := pb[0]-pa[0], pb[1]-pa[1]
			d := math.Hypot(dx, dy)
			if d == 0 {
				d = 1
			}
			ux, uy := dx/d, dy/d
			nx, ny := -uy*4, ux*4 // lanes 4 units either side
			sh := float64(regionRadius + 4)
			ml.FX1, ml.FY1 = pa[0]+ux*sh+nx, pa[1]+uy*sh+ny
			ml.FX2, ml.FY2 = pb[0]-ux*sh+nx, pb[1]-uy*sh+ny
			ml.RX1, ml.RY1 = pb[0]-ux*sh-nx, pb[1]-uy*sh-ny
			ml.RX2, ml.RY2 = pa[0]+ux*sh-nx, pa[1]+uy*sh-ny
			mv.Links = append(mv.Links, ml)
		}
	}
	placeLinkLabels(&mv)
	return mv
}

// Link labels ("76 ms", "✂ cut", "✂ one way") are boxes of about
// linkLabelW × linkLabelH map units centred on their point; the traffic
// line ("120 msg/s") sits under the label.
const (
	linkLabelW = 62
	linkLabelH = 30 // the label and the traffic line under it
	labelGap   = 5
)

// placeLinkLabels puts each link's label beside its line — off the lanes,
// clear of every region's labels, every other link's line and the labels
// placed before it — trying the midpoint first, then points along the link,
// on either side. A label with no clear spot keeps the midpoint.
func placeLinkLabels(mv *mapView) {
	var placed [][4]float64 // boxes: x0, y0, x1, y1
	for i := range mv.Links {
		l := &mv.Links[i]
		dx, dy := l.X2-l.X1, l.Y2-l.Y1
		d := math.Hypot(dx, dy)
		if d == 0 {
			d = 1
		}
		ux, uy := dx/d, dy/d
		nx, ny := -uy, ux
		if ny > 0 || (ny == 0 && nx < 0) { // prefer the side above the line
			nx, ny = -nx, -ny
		}
		off := math.Abs(nx)*linkLabelW/2 + math.Abs(ny)*linkLabelH/2 + 4 + labelGap
		best := false
		for _, f := range []float64{0.5, 0.42, 0.58, 0.34, 0.66, 0.26, 0.74} {
			for _, side := range []float64{1, -1} {
				x, y := l.X1+dx*f+nx*off*side, l.Y1+dy*f+ny*off*side
				box := [4]float64{x - linkLabelW/2, y - linkLabelH/2, x + linkLabelW/2, y + linkLabelH/2}
				if onRegionLabels(x, y, mv.Regions) || boxHitsLinks(box, mv.Links, i) || boxHitsBoxes(box, placed) {
					continue
				}
				l.LX, l.LY, best = x, y, true
				placed = append(placed, box)
				break
			}
			if best {
				break
			}
		}
		if !best {
			l.LX, l.LY = l.X1+dx/2+nx*off, l.Y1+dy/2+ny*off
		}
	}
}

// boxHitsLinks reports whether box crosses any link's line but skip's.
func boxHitsLinks(box [4]float64, links []mapLink, skip int) bool {
	for j, o := range links {
		if j != skip && segmentHitsBox(o.X1, o.Y1, o.X2, o.Y2, box) {
			return true
		}
	}
	return false
}

func boxHitsBoxes(box [4]float64, boxes [][4]float64) bool {
	for _, b := range boxes {
		if box[0] < b[2] && box[2] > b[0] && box[1] < b[3] && box[3] > b[1] {
			return true
		}
	}
	return false
}

// segmentHitsBox reports whether the segment (x1,y1)-(x2,y2) passes
// through box, by sampling (the map is a diagram; 1-unit steps suffice).
func segmentHitsBox(x1, y1, x2, y2 float64, box [4]float64) bool {
	n := int(math.Hypot(x2-x1, y2-y1)) + 1
	for k := 0; k <= n; k++ {
		f := float64(k) / float64(n)
		x, y := x1+(x2-x1)*f, y1+(y2-y1)*f
		if x > box[0] && x < box[2] && y > box[1] && y < box[3] {
			return true
		}
	}
	return false
}

// onRegionLabels reports whether a link label centred at (x, y) (a round
// trip or "✂ cut" and, below it, the traffic) would cover a region's
// circle and role above it, or its city and name below.
func onRegionLabels(x, y float64, regions []mapRegion) bool {
	const labelHalfW, labelUp, labelDown = linkLabelW / 2, linkLabelH / 2, linkLabelH / 2
	overlaps := func(r mapRegion, halfW, top, bottom float64) bool {
		return math.Abs(x-r.X) < labelHalfW+halfW && y+labelDown > r.Y+top && y-labelUp < r.Y+bottom
	}
	for _, r := range regions {
		// the role above the circle, the circle, the city and name below
		if overlaps(r, 60, -50, 28) || overlaps(r, 62, 26, 64) {
			return true
		}
	}
	return false
}

func linkOr(links map[[2]string]lab.LinkState, from, to string) lab.LinkState {
	if l, ok := links[[2]string{from, to}]; ok {
		return l
	}
	return lab.LinkState{From: from, To: to, State: "up"}
}

func degrees(v float64, pos, neg string) string {
	switch {
	case v > 0:
		return fmt.Sprintf("%g°%s", v, pos)
	case v < 0:
		return fmt.Sprintf("%g°%s", -v, neg)
	}
	return "0°"
}

// num formats a coordinate for SVG.
func num(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

func linkID(a, b string) string { return "link-" + a + "--" + b }

// linkLabel is the text beside a link: its round trip, or what is cut.
func linkLabel(l mapLink) string {
	switch {
	case l.Fwd.State == "cut" && l.Rev.State == "cut":
		return "✂ cut"
	case l.Fwd.State == "cut" || l.Rev.State == "cut":
		return "✂ one way"
	}
	return rtt(l.Fwd.RTTMs)
}

// linkDetail says what a link's label shortens: which way is cut.
func linkDetail(l mapLink) string {
	switch {
	case l.Fwd.State == "cut" && l.Rev.State == "cut":
		return "cut both ways"
	case l.Fwd.State == "cut":
		return l.A + " → " + l.B + " cut, " + l.B + " → " + l.A + " up"
	case l.Rev.State == "cut":
		return l.B + " → " + l.A + " cut, " + l.A + " → " + l.B + " up"
	}
	return "up, round trip " + rtt(l.Fwd.RTTMs)
}

func rtt(ms float64) string { return strconv.FormatFloat(math.Round(ms), 'f', 0, 64) + " ms" }

func linkState(l mapLink) string {
	switch {
	case l.Fwd.State == "cut" && l.Rev.State == "cut":
		return "cut"
	case l.Fwd.State == "cut" || l.Rev.State == "cut":
		return "oneway"
	}
	return "up"
}

func linkAria(l mapLink) string {
	return fmt.Sprintf("Link %s to %s: %s. Enter cuts or heals both ways; Shift+Enter for one-way cuts and latency.", l.A, l.B, linkDetail(l))
}

// roleWord is what the map says under a region.
func roleWord(r lab.RegionState) string {
	if !r.Up {
		return "crashed"
	}
	if r.Consensus.Role == "" {
		return "offline"
	}
	return r.Consensus.Role
}

func breakerWord(r lab.RegionState, st inventory.Store) string {
	if b := r.Breakers[st]; b != "" {
		return b
	}
	return "closed"
}

// storeShort is a store's CAP side: CP, AP, or its name for a store the
// page does not know yet.
func storeShort(st inventory.Store) string {
	switch st {
	case inventory.Consensus:
		return "CP"
	case inventory.Replicated:
		return "AP"
	}
	return strings.ToUpper(string(st))
}

// storeTitle is a store's name for people: "Consensus".
func storeTitle(st inventory.Store) string {
	s := string(st)
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// storeList is the stores in display order, comma-separated, for app.js.
func storeList() string {
	out := make([]string, len(inventory.Stores))
	for i, s := range inventory.Stores {
		out[i] = string(s)
	}
	return strings.Join(out, ",")
}

// regionTip names a region and its state, for its tooltip and screen readers.
func regionTip(r lab.RegionState) string {
	s := r.City + " (" + r.Name + "): " + roleWord(r)
	if r.Up {
		s += ", term " + itoa(r.Consensus.Term)
	}
	return s + ", breakers CP " + breakerWord(r, inventory.Consensus) + ", AP " + breakerWord(r, inventory.Replicated) + ". Enter opens: make leader, isolate, restart, crash."
}

func itoa[T ~int | ~int64 | ~uint64](v T) string { return fmt.Sprint(v) }

// quorumSentence explains W and R for N replicas.
func quorumSentence(q inventory.QuorumState) string {
	if q.N == 0 {
		return ""
	}
	if q.W+q.R > q.N {
		return fmt.Sprintf("W + R = %d > N = %d: every read overlaps the latest acknowledged write, so reads are not stale — but a region cut off from enough replicas must refuse.", q.W+q.R, q.N)
	}
	return fmt.Sprintf("W + R = %d ≤ N = %d: fast and always available, but a read can miss the latest write and two regions can sell the same unit.", q.W+q.R, q.N)
}

// counterKind is one row of the counters table.
type counterKind struct {
	Key, Label, Icon, Help string
}

// outcomeKinds are the counters the page knows, in display order.
var outcomeKinds = []counterKind{
	{"ok", "ok", "✓", "done (buys, reads and stock writes)"},
	{"soldOut", "sold out", "∅", "not enough stock; nothing changed"},
	{"unavailable", "unavailable", "⊘", "no quorum or too slow; a buy may still have applied"},
	{"failFast", "fail fast", "⚡", "circuit breaker open; nothing was sent"},
	{"conflict", "conflict", "↺", "optimistic-lock retries exhausted"},
	{"overloaded", "overloaded", "⏳", "the region's gateway was full; nothing was sent"},
	{"oversold", "oversold", "‼", "units sold that did not exist"},
	{"staleReads", "stale reads", "≠", "reads that missed an acknowledged write"},
}

// counterMap is a store's counters by JSON name, so that a counter the lab
// adds (an outcome kind) shows without a change here.
func counterMap(c lab.StoreCounter) map[string]int {
	out := map[string]int{}
	b, err := json.Marshal(c)
	if err != nil {
		return out
	}
	var raw map[string]any
	if json.Unmarshal(b, &raw) != nil {
		return out
	}
	for k, v := range raw {
		if f, ok := v.(float64); ok {
			out[k] = int(f)
		}
	}
	return out
}

// counterKinds are the known kinds, then any other counter the lab
// reports, in name order.
func counterKinds(st lab.State) []counterKind {
	kinds := slices.Clone(outcomeKinds)
	seen := map[string]bool{}
	for _, k := range kinds {
		seen[k.Key] = true
	}
	var extra []string
	for _, c := range st.Counters {
		for k := range counterMap(c) {
			if !seen[k] {
				seen[k] = true
				extra = append(extra, k)
			}
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		kinds = append(kinds, counterKind{Key: k, Label: k, Icon: "•", Help: k})
	}
	return kinds
}

func counterValue(c lab.StoreCounter, key string) int {
	return counterMap(c)[key]
}

// countersFor returns the counters of every store in display order, zero
// for a store the lab did not report.
func countersFor(st lab.State) []lab.StoreCounter {
	out := make([]lab.StoreCounter, len(inventory.Stores))
	for i, s := range inventory.Stores {
		out[i] = lab.StoreCounter{Store: s}
		for _, c := range st.Counters {
			if c.Store == s {
				out[i] = c
			}
		}
	}
	return out
}

// badCounter marks counters that mean something went wrong for a customer.
func badCounter(key string, v int) bool {
	return v > 0 && (key == "oversold" || key == "staleReads")
}

// verdictRow is one store's verdict in the verdict panel.
type verdictRow struct {
	Store  inventory.Store
	Result check.Result
	Err    string
	// Stranded counts the geo store's stranded refusals: definite (nothing
	// moved), so not "maybe applied"; StrandedUnavailable those of them the
	// checker counts as indeterminate (answered unavailable).
	Stranded, StrandedUnavailable int
	// Unplaced: the answer a failed check could not place, when it holds
	// no counterexample (the anomaly card shows it; anomaly.go).
	Unplaced *inventory.Operation
}

func visualURL(st inventory.Store, sku string) string {
	return "/api/check/visual?store=" + string(st) + "&sku=" + sku
}

func roleName(presenter bool) string {
	if presenter {
		return "presenter"
	}
	return "viewer"
}

func boolAttr(b bool) string { return strconv.FormatBool(b) }

// roleText is the line above a region: a crown and "leader", or its role.
func roleText(r lab.RegionState) string {
	w := roleWord(r)
	switch w {
	case "leader":
		return "♛ leader"
	case "crashed":
		return "✕ crashed"
	}
	return w
}

func verdictClass(row verdictRow) string {
	switch {
	case row.Err != "" || row.Result.Operations == 0:
		return "v-unknown"
	case row.Result.Linearizable && row.Result.Oversold == 0:
		return "v-pass"
	}
	return "v-fail"
}

// geoAllocUnread is the title of a geo cell's allocation box before the
// page has read the allocations (static/geo.js puts it back after a reset).
const geoAllocUnread = "This region's allocation of the geo store: not read yet."
