package web

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"caplab/lab"
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
	send    chan []byte
	initial *lab.State
	remote  string
	// presenter is set when the upgrade request carried the lab token:
	// such a viewer gets the presenter's version of role-specific frames
	// (the live poll tally).
	presenter bool
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
			CheckOrigin:     sameOriginUpgrade,
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
		send:    make(chan []byte, wh.hub.cfg.SendBuffer),
		initial: initial,
		remote:  r.RemoteAddr,
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

// readPump is the connection's only reader. The browser sends nothing but
// keep-alives; anything larger than maxClientFrame ends the connection.
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
		if _, _, err := c.conn.ReadMessage(); err != nil {
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
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
			if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
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
