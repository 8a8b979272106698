package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"caplab/lab"
	"caplab/lab/load"
)

// frameLoad is the WebSocket frame of the load: {"type":"load","load":Status}
// once a second while a load runs (Status.Latest holds that second's
// samples) and at every change of its state. It is sticky: a viewer who
// connects later gets the newest one at once. It belongs to the load
// panel: a viewer that said which panels it shows gets it only while it
// shows the load panel (and the newest one when it opens it).
const frameLoad = "load"

// loadFeed ties the server to the lab's load controller: the routes of
// API.md's "Load", and a goroutine that forwards the controller's frames
// to the hub.
type loadFeed struct {
	ctl   *load.Controller
	own   bool // created by New: closed by Close
	unsub func()
	done  chan struct{}
	once  sync.Once
}

// startLoad sets up s.load from Options.Load, or a controller of its own
// when the lab is a *lab.Lab; without either the load routes answer 503.
func (s *Server) startLoad() {
	f := &loadFeed{ctl: s.opts.Load, done: make(chan struct{})}
	if f.ctl == nil {
		if l, ok := s.lab.(*lab.Lab); ok {
			f.ctl, f.own = load.NewController(load.LabTarget{Lab: l}), true
		}
	}
	s.load = f
	if lc, ok := s.opts.Lessons.(*LessonCatalog); ok && f.ctl != nil {
		lc.mu.Lock()
		lc.load = f.ctl // lesson steps run from the page drive the same load the panel shows
		lc.mu.Unlock()
	}
	if f.ctl == nil {
		close(f.done)
		return
	}
	frames, unsub := f.ctl.Subscribe()
	f.unsub = unsub
	go func() {
		defer close(f.done)
		for st := range frames {
			b, err := json.Marshal(struct {
				Type string       `json:"type"`
				Load *load.Status `json:"load"`
			}{frameLoad, &st})
			if err != nil {
				s.log.Error("web: encode load frame", "err", err)
				continue
			}
			s.hub.sendMsg(outMsg{viewer: b, sticky: frameLoad, panel: panelLoad})
		}
	}()
}

// closeLoad stops forwarding frames (and closes the controller if it is
// the server's own, which aborts a running load).
func (s *Server) closeLoad() {
	f := s.load
	f.once.Do(func() {
		if f.ctl == nil {
			return
		}
		if f.own {
			f.ctl.Close()
		}
		f.unsub()
		<-f.done
	})
}

func (s *Server) loadRoutes(mux *http.ServeMux, m func(string, http.HandlerFunc)) {
	mux.HandleFunc("GET /api/load", s.handleLoadStatus)
	m("POST /api/load", s.handleLoadStart)
	m("DELETE /api/load", s.handleLoadStop)
}

func (s *Server) loadController(w http.ResponseWriter) *load.Controller {
	if s.load.ctl == nil {
		writeError(w, http.StatusServiceUnavailable, "This lab has no load generator.")
	}
	return s.load.ctl
}

// handleLoadStatus answers the load's config, status and kept samples.
func (s *Server) handleLoadStatus(w http.ResponseWriter, r *http.Request) {
	ctl := s.loadController(w)
	if ctl == nil {
		return
	}
	writeJSON(w, http.StatusOK, ctl.Status(r.URL.Query().Get("samples") != "0"))
}

// handleLoadStart starts a load: 400 naming the bad field, 409 if one runs.
func (s *Server) handleLoadStart(w http.ResponseWriter, r *http.Request) {
	ctl := s.loadController(w)
	if ctl == nil {
		return
	}
	var cfg load.Config
	if err := decode(w, r, &cfg); err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := ctl.Start(cfg)
	switch {
	case errors.Is(err, load.ErrBadConfig):
		writeError(w, http.StatusBadRequest, "%s", sentence(err.Error()))
	case errors.Is(err, load.ErrRunning):
		writeError(w, http.StatusConflict, "%s", sentence(err.Error()))
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "%s", sentence(err.Error()))
	default:
		writeJSON(w, http.StatusOK, st)
	}
}

// handleLoadStop stops the load and answers its final status (after the
// operations in flight have answered and the checker has run).
func (s *Server) handleLoadStop(w http.ResponseWriter, r *http.Request) {
	ctl := s.loadController(w)
	if ctl == nil {
		return
	}
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ctl.Stop())
}
