package web

import (
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// Frame types pushed over /ws. Every frame is one JSON object with "type".
const (
	frameState     = "state"     // {"type":"state","state":State}; at connect also the State's own fields (connectFrame)
	frameOperation = "operation" // {"type":"operation","operation":Operation,"outcome":Outcome}
	frameFault     = "fault"     // {"type":"fault","fault":Fault}
	frameReset     = "reset"     // {"type":"reset"}
	frameFragment  = "fragment"  // {"type":"fragment","id":"<element id>","html":"…"}
	frameLesson    = "lesson"    // {"type":"lesson","lesson":lessonView} (no "lesson" when none is open)
	framePoll      = "poll"      // {"type":"poll","poll":pollView} (no "poll" when none is open)
	frameResync    = "resync"    // {"type":"resync","missed":N}: the hub lost N lab events; read the history again
)

// frame is the JSON of one WebSocket message.
type frame struct {
	Type      string               `json:"type"`
	State     *lab.State           `json:"state,omitempty"`
	Operation *inventory.Operation `json:"operation,omitempty"`
	Outcome   *inventory.Outcome   `json:"outcome,omitempty"`
	Said      *lab.Words           `json:"said,omitempty"` // operation: the outcome in words (lab.Say), as the history gives it
	Fault     *inventory.Fault     `json:"fault,omitempty"`
	ID        string               `json:"id,omitempty"`
	HTML      string               `json:"html,omitempty"`
	Lesson    *lessonView          `json:"lesson,omitempty"`
	Poll      *pollView            `json:"poll,omitempty"`
	FirstOpID int                  `json:"firstOpId,omitempty"` // reset: the first operation after it
	Missed    int64                `json:"missed,omitempty"`    // resync: how many lab events the hub lost
}

// outMsg is one encoded frame for every viewer: presenter is what
// presenters get instead (nil: the same as viewer). A sticky message is
// also kept, under its key, and sent to every viewer who connects later, so
// that a new page shows the open lesson and poll at once. A message with
// a panel goes only to viewers that show that panel, or never said which
// panels they show (see client.panels).
type outMsg struct {
	viewer    []byte
	presenter []byte
	sticky    string
	panel     string
	vw, pw    *wire // prepared by the hub
}

// prepare wraps the bytes for the wire, once for every viewer.
func (m *outMsg) prepare() {
	if m.vw == nil {
		m.vw = newWire(m.viewer)
	}
	if m.pw == nil && m.presenter != nil {
		m.pw = newWire(m.presenter)
	}
}

// wireFor returns what c gets.
func (m *outMsg) wireFor(c *client) *wire {
	if c.presenter && m.pw != nil {
		return m.pw
	}
	return m.vw
}

// fragment is server-rendered HTML for the element with id ID. Panel, when
// set, names the dock panel that shows it (panelChecker): viewers that
// say they do not show it are spared it.
type fragment struct {
	ID    string
	HTML  string
	Panel string
}

// Panels a viewer can say it shows (client.panels): the dock tabs whose
// frames are costly during a load.
const (
	panelChecker = "checker" // the counters fragment
	panelLoad    = "load"    // load frames
)

// knownPanels are the panels a viewer may name.
var knownPanels = []string{panelChecker, panelLoad}

// hubConfig configures a hub; zero fields take defaults.
type hubConfig struct {
	Logger *slog.Logger
	// Interval is the least time between two state frames to a viewer
	// (default 50 ms: at most 20 state frames a second) when the State
	// changed in shape: a role, a term, a link, a breaker, a crash.
	Interval time.Duration
	// SummaryInterval is the least time between two state frames when
	// only running totals changed (counters, link traffic, log indexes;
	// sameShape): default 250 ms, 4 a second. During a load these are all
	// that changes, many times a second.
	SummaryInterval time.Duration
	// SendBuffer is how many frames may wait for one viewer before the hub
	// drops that viewer (default 256).
	SendBuffer int
	// Fragments renders the HTML fragments that accompany each state
	// frame; nil sends none.
	Fragments func(lab.State) []fragment
	// MaxViewers bounds the viewers connected at once (default 5,000):
	// each costs two goroutines and a send buffer.
	MaxViewers int
}

// hub owns the set of WebSocket viewers. One goroutine (run) owns the
// client set; everything else talks to it through channels. It reads lab
// events from its input channel and fans them out:
//
//   - state changes are coalesced: the hub keeps only the newest State and
//     sends it at most once per Interval — once per SummaryInterval when
//     only running totals changed — with the fragments rendered from it,
//     as a delta to viewers that asked for deltas;
//   - operation, fault and reset events are queued to every viewer in order;
//   - a viewer whose send buffer is full is dropped, never waited for.
type hub struct {
	cfg        hubConfig
	events     <-chan lab.Event
	register   chan *client
	unregister chan *client
	broadcast  chan outMsg
	panels     chan panelChange
	count      chan chan int
	viewers    atomic.Int64 // len of run's client set, published for the upgrade's cap check
	stop       chan struct{}
	done       chan struct{}
	stopOnce   sync.Once
}

// panelChange is a viewer saying which panels it shows now.
type panelChange struct {
	c      *client
	panels map[string]bool
}

func newHub(events <-chan lab.Event, cfg hubConfig) *hub {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 50 * time.Millisecond
	}
	if cfg.SummaryInterval <= 0 {
		cfg.SummaryInterval = max(cfg.Interval, 250*time.Millisecond)
	}
	if cfg.SendBuffer <= 0 {
		cfg.SendBuffer = 256
	}
	if cfg.MaxViewers <= 0 {
		cfg.MaxViewers = 5000
	}
	return &hub{
		cfg:        cfg,
		events:     events,
		register:   make(chan *client),
		unregister: make(chan *client),
		broadcast:  make(chan outMsg),
		panels:     make(chan panelChange),
		count:      make(chan chan int),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
}

// close stops the hub and disconnects every viewer; it waits until run has
// returned. Safe to call more than once, and before run was started only if
// run is started afterwards.
func (h *hub) close() {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
}

// join registers c; false when the hub has stopped.
func (h *hub) join(c *client) bool {
	select {
	case h.register <- c:
		return true
	case <-h.done:
		return false
	}
}

// leave unregisters c; it never blocks once the hub has stopped.
func (h *hub) leave(c *client) {
	select {
	case h.unregister <- c:
	case <-h.done:
	}
}

// showPanels records which panels c shows now; frames of a panel it just
// opened (the newest load frame, the counters) follow at once.
func (h *hub) showPanels(c *client, panels map[string]bool) {
	select {
	case h.panels <- panelChange{c, panels}:
	case <-h.done:
	}
}

// send queues one encoded frame to every viewer (used for fragments that do
// not come from the lab's event stream, such as the checker's verdict).
func (h *hub) send(f frame) {
	b, err := json.Marshal(f)
	if err != nil {
		h.cfg.Logger.Error("web: encode frame", "type", f.Type, "err", err)
		return
	}
	h.sendMsg(outMsg{viewer: b})
}

// sendMsg queues m to every viewer, in order with every other queued frame
// (never coalesced); it returns at once when the hub has stopped.
func (h *hub) sendMsg(m outMsg) {
	m.prepare() // in the caller's goroutine, not the hub's
	select {
	case h.broadcast <- m:
	case <-h.done:
	}
}

// clients reports how many viewers are connected (for tests and logs).
func (h *hub) clients() int {
	ch := make(chan int, 1)
	select {
	case h.count <- ch:
		return <-ch
	case <-h.done:
		return 0
	}
}

func (h *hub) run() {
	defer close(h.done)
	clients := map[*client]struct{}{}
	events := h.events
	sticky := map[string]outMsg{} // newest sticky message per key
	var stickyOrder []string      // keys in the order first seen
	var (
		latest    *lab.State // newest State seen
		timer     *time.Timer
		timerC    <-chan time.Time
		armedFor  time.Time // when timerC fires
		lastFlush time.Time
	)
	flow := newStateFlow(h.cfg, h.cfg.Logger)
	drop := func(c *client) {
		if _, ok := clients[c]; ok {
			delete(clients, c)
			close(c.send)
			h.viewers.Store(int64(len(clients)))
		}
	}
	deliver := func(c *client, msgs ...*outMsg) {
		for _, m := range msgs {
			if !c.shows(m.panel) {
				continue
			}
			select {
			case c.send <- m.wireFor(c):
			default:
				h.cfg.Logger.Info("web: dropping a viewer that does not keep up", "remote", c.remote)
				drop(c)
				return
			}
		}
	}
	fanout := func(m *outMsg) {
		for c := range clients {
			deliver(c, m)
		}
	}
	flush := func() {
		lastFlush = time.Now()
		for c := range clients {
			if _, still := clients[c]; still {
				deliver(c, flow.framesFor(c, latest)...)
			}
		}
		flow.sent(latest)
	}
	// schedule flushes latest now, or arms the timer for when it is due.
	schedule := func() {
		if latest == nil || flow.isSent(latest) {
			return
		}
		at := lastFlush.Add(flow.gap(latest))
		if now := time.Now(); !at.After(now) {
			flush()
			return
		}
		if timerC != nil && !at.Before(armedFor) {
			return // armed for then or sooner
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(at))
		} else {
			timer.Reset(time.Until(at))
		}
		timerC, armedFor = timer.C, at
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		for c := range clients {
			drop(c)
		}
	}()

	for {
		select {
		case <-h.stop:
			return

		case c := <-h.register:
			clients[c] = struct{}{}
			h.viewers.Store(int64(len(clients)))
			st := c.initial
			if latest != nil && (st == nil || latest.Version >= st.Version) {
				st = latest
			}
			if st != nil {
				deliver(c, flow.connectFrames(c, st)...)
			}
			for _, k := range stickyOrder {
				if _, ok := clients[c]; ok {
					m := sticky[k]
					deliver(c, &m)
				}
			}

		case c := <-h.unregister:
			drop(c)

		case p := <-h.panels:
			if _, ok := clients[p.c]; !ok {
				continue
			}
			var opened []string
			for _, name := range knownPanels {
				if p.panels[name] && !p.c.shows(name) {
					opened = append(opened, name)
				}
			}
			p.c.panels = p.panels
			for _, name := range opened { // what the panel shows now
				for _, k := range stickyOrder {
					if m := sticky[k]; m.panel == name {
						deliver(p.c, &m)
					}
				}
				deliver(p.c, flow.lastFragments(name)...)
			}

		case ch := <-h.count:
			ch <- len(clients)

		case m := <-h.broadcast:
			if m.sticky != "" {
				if _, ok := sticky[m.sticky]; !ok {
					stickyOrder = append(stickyOrder, m.sticky)
				}
				sticky[m.sticky] = m
			}
			fanout(&m)

		case ev, ok := <-events:
			if !ok {
				events = nil // the lab stopped; keep serving viewers until close
				continue
			}
			if ev.State != nil && ev.State != latest && (latest == nil || ev.State.Version >= latest.Version) {
				latest = ev.State
			}
			if ev.Missed > 0 {
				// The lab had no room for events the hub should have
				// fanned out (a busy machine): viewers' outcomes and
				// timelines lack them, so they read the history again.
				h.cfg.Logger.Info("web: the hub fell behind the lab; viewers resync", "missed", ev.Missed)
				if b, err := json.Marshal(frame{Type: frameResync, Missed: ev.Missed}); err == nil {
					fanout(&outMsg{vw: newWire(b)})
				}
			}
			if f, ok := eventFrame(ev); ok {
				if b, err := json.Marshal(f); err == nil {
					fanout(&outMsg{vw: newWire(b)})
				} else {
					h.cfg.Logger.Error("web: encode frame", "type", f.Type, "err", err)
				}
			}
			schedule()

		case <-timerC:
			timerC = nil
			schedule()
		}
	}
}

// connectFrame is the first message a viewer gets: a state frame whose top
// level is also the State itself, so that a script reading API.md's "State
// at connect" can decode the first message as a State.
type connectFrame struct {
	lab.State
	Type   string     `json:"type"`
	Nested *lab.State `json:"state"`
}

// eventFrame is the queued (not coalesced) frame an event carries, if any.
func eventFrame(ev lab.Event) (frame, bool) {
	switch ev.Type {
	case lab.EventOperation:
		if ev.Operation == nil && ev.Outcome == nil {
			return frame{}, false
		}
		f := frame{Type: frameOperation, Operation: ev.Operation, Outcome: ev.Outcome}
		if ev.Operation != nil {
			w := lab.Say(*ev.Operation)
			f.Said = &w
		}
		return f, true
	case lab.EventFault:
		if ev.Fault == nil {
			return frame{}, false
		}
		return frame{Type: frameFault, Fault: ev.Fault, Said: &lab.Words{Text: lab.SayFault(*ev.Fault)}}, true
	case lab.EventReset:
		return frame{Type: frameReset, FirstOpID: ev.FirstOpID}, true
	}
	return frame{}, false
}
