package web

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"

	"github.com/gorilla/websocket"
)

// WebSocket timing and limits (gorilla/websocket examples/chat).
const (
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = 20 * time.Second
	maxClientFrame = 4 << 10 // the browser sends only keep-alives
)

// client is one WebSocket viewer. The hub owns send: it queues frames and
// closes send to disconnect the viewer; the writer goroutine drains it.
type client struct {
	conn    *websocket.Conn
	send    chan *wire
	initial *lab.State
	remote  string
	// presenter is set when the upgrade request carried the lab token:
	// such a viewer gets the presenter's version of role-specific frames
	// (the live poll tally).
	presenter bool
	// delta: the viewer asked for delta frames (/ws?delta=1).
	delta bool
	// panels are the dock panels the viewer shows (?panels=, then
	// {"type":"panels"} messages); nil until it says, which means every
	// frame. Set before join, then owned by the hub's run goroutine.
	panels map[string]bool
	// base is the State the viewer holds (the last state or delta frame
	// it was sent); owned by the hub's run goroutine.
	base *lab.State
}

// shows reports whether frames of panel go to c.
func (c *client) shows(panel string) bool {
	return panel == "" || c.panels == nil || c.panels[panel]
}

// streamOptions reads /ws's query: delta=1 (or 0) and panels=a,b (names
// from knownPanels; empty: none of them).
func streamOptions(q url.Values) (delta bool, panels map[string]bool, err error) {
	switch v := q.Get("delta"); v {
	case "", "0", "false":
	case "1", "true":
		delta = true
	default:
		return false, nil, badRequest("delta must be 1 or 0, not %s.", inventory.Echo(v))
	}
	if !q.Has("panels") {
		return delta, nil, nil
	}
	panels = map[string]bool{}
	for _, name := range strings.Split(q.Get("panels"), ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if !slices.Contains(knownPanels, name) {
			return false, nil, badRequest("panels names the dock panels a viewer shows (%s), not %s.", strings.Join(knownPanels, ", "), inventory.Echo(name))
		}
		panels[name] = true
	}
	return delta, panels, nil
}

// clientMessage is what a viewer may send besides keep-alives.
type clientMessage struct {
	Type string   `json:"type"` // "panels"
	Show []string `json:"show"`
}

// wsHandler upgrades GET /ws and attaches the connection to the hub.
type wsHandler struct {
	hub      *hub
	snapshot func() lab.State
	log      *slog.Logger
	upgrader websocket.Upgrader
	// presenter reports whether an upgrade request carries the lab token;
	// nil treats everyone as a viewer.
	presenter func(*http.Request) bool
	// header, when set, gives the extra header of the upgrade's answer
	// (the viewer cookie).
	header func(*http.Request) http.Header
}

// newWSHandler serves /ws for h. snapshot gives the State a viewer sees at
// connect (the hub sends a newer one if it has it).
func newWSHandler(h *hub, snapshot func() lab.State, log *slog.Logger) *wsHandler {
	return &wsHandler{
		hub:      h,
		snapshot: snapshot,
		log:      log,
		upgrader: websocket.Upgrader{
			ReadBufferSize:  1024,
			WriteBufferSize: 8192,
			// permessage-deflate, when the viewer offers it (browsers do):
			// each frame is deflated once for every viewer (wire).
			EnableCompression: true,
			CheckOrigin:       sameOriginUpgrade,
			Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
				msg := "This address is the lab's live stream; open it with a WebSocket client (" + reason.Error() + ")."
				if status == http.StatusForbidden {
					msg = "The live stream only serves pages from this lab's own address, not " + r.Header.Get("Origin") + "."
				}
				writeError(w, status, "%s", msg)
			},
		},
	}
}

// sameOriginUpgrade allows an upgrade without Origin (non-browser clients)
// or with an Origin whose host is the request's Host.
func sameOriginUpgrade(r *http.Request) bool {
	o := r.Header.Get("Origin")
	return o == "" || originMatchesHost(o, r.Host)
}

func (wh *wsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n := wh.hub.viewers.Load(); n >= int64(wh.hub.cfg.MaxViewers) {
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusServiceUnavailable, "This lab already has %d viewers, its limit; try again later.", n)
		return
	}
	delta, panels, err := streamOptions(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	var initial *lab.State
	if wh.snapshot != nil {
		st := wh.snapshot()
		initial = &st
	}
	var hdr http.Header
	if wh.header != nil {
		hdr = wh.header(r)
	}
	conn, err := wh.upgrader.Upgrade(w, r, hdr)
	if err != nil {
		return // the upgrader has answered
	}
	c := &client{
		conn:    conn,
		send:    make(chan *wire, wh.hub.cfg.SendBuffer),
		initial: initial,
		remote:  r.RemoteAddr,
		delta:   delta,
		panels:  panels,
	}
	if wh.presenter != nil {
		c.presenter = wh.presenter(r)
	}
	if !wh.hub.join(c) {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "the lab is shutting down"), time.Now().Add(writeWait))
		_ = conn.Close()
		return
	}
	go c.writePump()
	go c.readPump(wh.hub)
}

// readPump is the connection's only reader. The browser sends keep-alives
// and, now and then, which panels it shows ({"type":"panels","show":
// ["load"]}; unknown names are ignored); anything larger than
// maxClientFrame ends the connection.
func (c *client) readPump(h *hub) {
	defer func() {
		h.leave(c)
		_ = c.conn.Close()
	}()
	c.conn.SetReadLimit(maxClientFrame)
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	for {
		kind, msg, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
		var m clientMessage
		if kind == websocket.TextMessage && json.Unmarshal(msg, &m) == nil && m.Type == "panels" {
			show := map[string]bool{}
			for _, name := range m.Show {
				if slices.Contains(knownPanels, name) {
					show[name] = true
				}
			}
			h.showPanels(c, show)
		}
	}
}

// writePump is the connection's only writer: frames from the hub, and a
// ping every pingPeriod. It closes the connection when the hub closes send
// or a write fails, which ends readPump too.
func (c *client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		_ = c.conn.Close()
	}()
	for {
		select {
		case msg, ok := <-c.send:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				_ = c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "disconnected by the lab"))
				return
			}
			if msg.pm == nil {
				err := c.conn.WriteMessage(websocket.TextMessage, msg.data)
				if err != nil {
					return
				}
				continue
			}
			c.conn.EnableWriteCompression(len(msg.data) >= compressMin) // when negotiated
			if err := c.conn.WritePreparedMessage(msg.pm); err != nil {
				return
			}
		case <-ticker.C:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}
