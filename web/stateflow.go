package web

import (
	"encoding/json"
	"log/slog"
	"reflect"
	"time"

	"github.com/gorilla/websocket"

	"caplab/lab"
)

// frameDelta is the state frame of a viewer that asked for deltas
// (/ws?delta=1), after the first: {"type":"delta","base":B,"version":V,
// "delta":{…}} turns the State whose version is B — the last this viewer
// got — into the State of version V (delta.go says how). Viewers that did
// not ask get every State whole, as before.
const frameDelta = "delta"

type deltaFrame struct {
	Type    string `json:"type"`
	Base    int64  `json:"base"`
	Version int64  `json:"version"`
	Delta   any    `json:"delta"`
}

// compressMin is the smallest frame worth compressing for a viewer that
// negotiated permessage-deflate: below it deflate's header eats the gain.
const compressMin = 512

// wire is one frame ready for the wire: its bytes, and a prepared message
// that deflates them once for every viewer that negotiated compression
// (gorilla/websocket's PreparedMessage) instead of once per viewer.
type wire struct {
	data []byte
	pm   *websocket.PreparedMessage
}

func newWire(b []byte) *wire {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil { // only for a bad message type
		return &wire{data: b}
	}
	return &wire{data: b, pm: pm}
}

// stateFlow encodes the hub's state frames — the whole State, a delta for
// viewers that asked, the fragments rendered from it — once per flush for
// every viewer, and remembers what the last flush sent: its State (each
// viewer's delta starts from the State it holds, client.base), that
// State's shape (is the next change only running totals?) and its
// fragments (for a viewer that opens a panel later). Only the hub's run
// goroutine uses it.
type stateFlow struct {
	cfg hubConfig
	log *slog.Logger

	last      *lab.State // the State of the last flush
	lastShape lab.State
	lastTree  any       // jsonTree(last); nil until a delta needs it
	lastFrags []*outMsg // the last flush's fragments

	// The flush being built, for the State cur.
	cur       *lab.State
	curShape  *lab.State
	full      *outMsg
	delta     *outMsg // the delta frame; nil for no change
	deltaDone bool    // computeDelta ran for cur
	deltaOK   bool    // a delta can stand for cur (else send it whole)
	curTree   any
	frags     []*outMsg
	rendered  bool
}

func newStateFlow(cfg hubConfig, log *slog.Logger) *stateFlow {
	return &stateFlow{cfg: cfg, log: log}
}

// isSent reports whether st is what the last flush sent.
func (f *stateFlow) isSent(st *lab.State) bool { return st == f.last }

// gap is the least time between the last flush and one that sends st:
// Interval for a change of shape, SummaryInterval for running totals.
func (f *stateFlow) gap(st *lab.State) time.Duration {
	if f.last == nil {
		return f.cfg.Interval
	}
	f.begin(st)
	if f.curShape == nil {
		sh := shapeOf(*st)
		f.curShape = &sh
	}
	if sameShapes(f.lastShape, *f.curShape) {
		return f.cfg.SummaryInterval
	}
	return f.cfg.Interval
}

// begin starts building the flush of st (a no-op if it is under way).
func (f *stateFlow) begin(st *lab.State) {
	if f.cur == st {
		return
	}
	*f = stateFlow{cfg: f.cfg, log: f.log, last: f.last, lastShape: f.lastShape, lastTree: f.lastTree, lastFrags: f.lastFrags, cur: st}
}

// framesFor returns what c gets for st — its state or delta frame, then
// the fragments — and notes that c now holds st.
func (f *stateFlow) framesFor(c *client, st *lab.State) []*outMsg {
	f.begin(st)
	var out []*outMsg
	if head := f.head(c); head != nil {
		out = append(out, head)
	}
	c.base = st
	return append(out, f.fragments()...)
}

// head is c's state frame: a delta from the State c holds when c asked
// for deltas and holds the last flush's State, else the whole State; nil
// when a delta viewer's State did not change at all.
func (f *stateFlow) head(c *client) *outMsg {
	if c.delta && f.last != nil && c.base == f.last {
		if !f.deltaDone {
			f.computeDelta()
		}
		if f.deltaOK {
			return f.delta // nil when nothing changed
		}
	}
	if f.full == nil {
		f.full = f.encode(frame{Type: frameState, State: f.cur})
	}
	return f.full
}

// computeDelta encodes the delta from the last flush's State to cur, once
// per flush; deltaOK false means send the whole State.
func (f *stateFlow) computeDelta() {
	f.deltaDone, f.deltaOK = true, true
	if f.lastTree == nil {
		t, err := jsonTree(f.last)
		if err != nil {
			f.deltaOK = false
			return
		}
		f.lastTree = t
	}
	t, err := jsonTree(f.cur)
	if err != nil {
		f.deltaOK = false
		return
	}
	f.curTree = t
	d, changed, ok := diffJSON(f.lastTree, t)
	if !ok {
		f.deltaOK = false
		return
	}
	if changed {
		f.delta = f.encode(deltaFrame{Type: frameDelta, Base: f.last.Version, Version: f.cur.Version, Delta: d})
		if f.delta == nil {
			f.deltaOK = false
		}
	}
}

// fragments renders cur's fragments once per flush.
func (f *stateFlow) fragments() []*outMsg {
	if !f.rendered {
		f.rendered = true
		f.frags = f.render(*f.cur)
	}
	return f.frags
}

func (f *stateFlow) render(st lab.State) []*outMsg {
	if f.cfg.Fragments == nil {
		return nil
	}
	var out []*outMsg
	for _, fr := range f.cfg.Fragments(st) {
		if m := f.encode(frame{Type: frameFragment, ID: fr.ID, HTML: fr.HTML}); m != nil {
			m.panel = fr.Panel
			out = append(out, m)
		}
	}
	return out
}

// sent records that st went out to every viewer.
func (f *stateFlow) sent(st *lab.State) {
	f.begin(st)
	if f.curShape == nil {
		sh := shapeOf(*st)
		f.curShape = &sh
	}
	f.fragments()
	f.last, f.lastShape, f.lastTree, f.lastFrags = st, *f.curShape, f.curTree, f.frags
	f.cur = nil // the next flush starts afresh
}

// connectFrames is what a viewer gets at connect: the State whole (a
// connectFrame) and its fragments; c then holds st.
func (f *stateFlow) connectFrames(c *client, st *lab.State) []*outMsg {
	c.base = st
	out := []*outMsg{f.encode(connectFrame{State: *st, Type: frameState, Nested: st})}
	if st == f.last {
		out = append(out, f.lastFrags...)
	} else {
		out = append(out, f.render(*st)...)
	}
	if out[0] == nil {
		out = out[1:]
	}
	return out
}

// lastFragments are the last flush's fragments of one panel.
func (f *stateFlow) lastFragments(panel string) []*outMsg {
	var out []*outMsg
	for _, m := range f.lastFrags {
		if m.panel == panel {
			out = append(out, m)
		}
	}
	return out
}

func (f *stateFlow) encode(v any) *outMsg {
	b, err := json.Marshal(v)
	if err != nil {
		f.log.Error("web: encode state frame", "err", err)
		return nil
	}
	return &outMsg{vw: newWire(b)}
}

// sameShapes compares two shapes (shapeOf).
func sameShapes(a, b lab.State) bool { return reflect.DeepEqual(a, b) }
