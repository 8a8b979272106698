package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"

	qrcode "github.com/skip2/go-qrcode"
)

// handlePage serves the lab page. GET /?token=… with the lab's token sets
// the caplab_token cookie and redirects to the same URL without the token,
// so the token leaves the address bar and the browser history.
func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	badToken := false
	if q.Has("token") {
		tok := q.Get("token")
		if s.validToken(tok) {
			setTokenCookie(w, r, tok)
			q.Del("token")
			target := "/"
			if len(q) > 0 {
				target += "?" + q.Encode()
			}
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		badToken = true
	}
	if s.session != nil {
		s.setViewerCookie(w, r) // for one vote per poll (viewer.go)
	}
	st := s.lab.State()
	v := pageView{
		Presenter:  s.authenticate(r) != authNone,
		Present:    s.opts.Present || q.Get("present") == "1",
		BadToken:   badToken,
		State:      st,
		Map:        buildMap(st),
		SKU:        s.opts.DefaultSKU,
		JoinURL:    s.opts.JoinURL,
		QR:         s.qr,
		HasLessons: s.opts.Lessons != nil,
	}
	if sku := q.Get("sku"); sku != "" && checkSKU(sku) == nil {
		v.SKU = sku
	}
	if s.opts.Lessons != nil {
		v.Lessons = s.opts.Lessons.List()
		_, v.CanRun = s.opts.Lessons.(LessonRunner)
	}
	var buf bytes.Buffer
	if err := page(v).Render(r.Context(), &buf); err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	_, _ = w.Write(buf.Bytes())
}

// qrDataURI renders u as a PNG QR code data: URI; "" if it cannot.
func qrDataURI(u string, log *slog.Logger) string {
	png, err := qrcode.Encode(u, qrcode.Medium, 320)
	if err != nil {
		log.Warn("web: cannot draw the join QR code", "url", u, "err", err)
		return ""
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
}

// stateFragments are the fragments that go with every state frame.
func stateFragments(st lab.State) []fragment {
	var buf bytes.Buffer
	if err := countersPanel(st).Render(context.Background(), &buf); err != nil {
		return nil
	}
	return []fragment{{ID: "counters", HTML: buf.String(), Panel: panelChecker}}
}

// renderVerdict runs the checker on every store for sku and renders the
// one-line verdicts (id "verdict") and the whole verdict (id
// "verdict-full").
func renderVerdict(l Lab, sku string) (line, full string) {
	rows := make([]verdictRow, 0, len(inventory.Stores))
	for _, st := range inventory.Stores {
		res, err := l.Check(st, sku)
		row := verdictRow{Store: st, Result: res, Unplaced: unplacedOp(l, res)}
		if err != nil {
			row.Err = sentence(err.Error())
		}
		if st == inventory.Geo && res.Indeterminate > 0 {
			row.Stranded, row.StrandedUnavailable = strandedRefusals(l, sku)
		}
		rows = append(rows, row)
	}
	var a, b bytes.Buffer
	if verdictPanel(sku, rows).Render(context.Background(), &a) != nil || verdictFullPanel(sku, rows).Render(context.Background(), &b) != nil {
		return "", ""
	}
	return a.String(), b.String()
}

// strandedRefusals counts the geo store's buys of sku refused as stranded
// (their own allocation empty, the rest out of reach: nothing moved), and
// those of them answered unavailable.
func strandedRefusals(l Lab, sku string) (all, unavailable int) {
	for _, op := range l.History(sku).Operations {
		if op.Store == inventory.Geo && op.Op == inventory.OpBuy && lab.Say(op).Tag == "Stranded" {
			all++
			if op.Outcome == inventory.Unavailable {
				unavailable++
			}
		}
	}
	return all, unavailable
}

// handleVerdictFragment answers the one-line verdicts for ?sku= as a
// fragment frame, {"type":"fragment","id":"verdict","html":"…"}; with
// &full=1 the whole verdict, {"type":"fragment","id":"verdict-full",…}
// (page extension).
func (s *Server) handleVerdictFragment(w http.ResponseWriter, r *http.Request) {
	sku := r.URL.Query().Get("sku")
	if err := checkSKU(sku); err != nil {
		s.fail(w, r, err)
		return
	}
	line, full := renderVerdict(s.lab, sku)
	if r.URL.Query().Get("full") == "1" {
		writeJSON(w, http.StatusOK, frame{Type: frameFragment, ID: "verdict-full", HTML: full})
		return
	}
	writeJSON(w, http.StatusOK, frame{Type: frameFragment, ID: "verdict", HTML: line})
}

// verdictWorker re-runs the checker after operations (debounced) and pushes
// the verdict panel for the SKU last operated on to every viewer. It does
// not check while no viewer is connected, and waits verdictDutyCycle times
// as long as the last check took before the next one.
type verdictWorker struct {
	lab      Lab
	events   <-chan lab.Event
	hub      *hub
	log      *slog.Logger
	debounce time.Duration
	stop     chan struct{}
	done     chan struct{}
}

// verdictDutyCycle: after a check that took d, the next waits until d ×
// verdictDutyCycle has passed since it began (at most a fifth of a core).
const verdictDutyCycle = 5

func newVerdictWorker(l Lab, events <-chan lab.Event, h *hub, log *slog.Logger) *verdictWorker {
	return &verdictWorker{lab: l, events: events, hub: h, log: log, debounce: 400 * time.Millisecond,
		stop: make(chan struct{}), done: make(chan struct{})}
}

// close stops the worker and waits for it; call once.
func (vw *verdictWorker) close() {
	close(vw.stop)
	<-vw.done
}

func (vw *verdictWorker) run() {
	defer close(vw.done)
	var (
		sku       string
		timer     *time.Timer
		timerC    <-chan time.Time
		notBefore time.Time // no check before this (verdictDutyCycle)
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	events := vw.events
	for {
		select {
		case <-vw.stop:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			switch {
			case ev.Type == lab.EventOperation && ev.Operation != nil:
				sku = ev.Operation.SKU
			case ev.Type == lab.EventOperation && ev.Outcome != nil:
				sku = ev.Outcome.SKU
			case ev.Type == lab.EventReset && sku != "":
			default:
				continue
			}
			if timerC == nil {
				if timer == nil {
					timer = time.NewTimer(vw.debounce)
				} else {
					timer.Reset(vw.debounce)
				}
				timerC = timer.C
			}
		case <-timerC:
			timerC = nil
			if sku == "" || !time.Now().After(notBefore) {
				if sku != "" { // too soon after the last check: come back then
					timer.Reset(time.Until(notBefore))
					timerC = timer.C
				}
				continue
			}
			if vw.hub.clients() == 0 {
				// Nobody to push to: a viewer who connects asks GET
				// /ui/verdict itself (app.js), so the checker, whose work
				// grows with the history, does not run for no one.
				continue
			}
			t0 := time.Now()
			line, full := renderVerdict(vw.lab, sku)
			// The check reads the SKU's whole history: however long that
			// grows, it takes at most a fifth of a core.
			notBefore = time.Now().Add(verdictDutyCycle * time.Since(t0))
			select {
			case <-vw.stop:
				return
			default:
			}
			vw.hub.send(frame{Type: frameFragment, ID: "verdict", HTML: line})
			vw.hub.send(frame{Type: frameFragment, ID: "verdict-full", HTML: full})
		}
	}
}

// --- lessons (page extension routes, documented in doc.go)

func (s *Server) handleLessons(w http.ResponseWriter, r *http.Request) {
	list := []LessonSummary{}
	if s.opts.Lessons != nil {
		list = append(list, s.opts.Lessons.List()...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"lessons": list})
}

func (s *Server) handleLesson(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if s.opts.Lessons == nil {
		writeError(w, http.StatusNotFound, "No lessons are loaded in this lab.")
		return
	}
	l, ok := s.opts.Lessons.Lesson(id)
	if lc, isCat := s.opts.Lessons.(*LessonCatalog); isCat && s.authenticate(r) == authNone {
		l, ok = lc.viewerLesson(id) // no spoilers for viewers
	}
	if !ok {
		writeError(w, http.StatusNotFound, "There is no lesson %s; GET /api/lessons lists them.", inventory.Echo(id))
		return
	}
	if l.StepList == nil {
		l.StepList = []LessonStep{}
	}
	writeJSON(w, http.StatusOK, l)
}

// joinURLWithoutToken strips any token from u, so a join link never leaks it.
func joinURLWithoutToken(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	if q.Has("token") {
		q.Del("token")
		p.RawQuery = q.Encode()
	}
	return p.String()
}

// zoneRole is a zone's mark on the map: its member's role, or crashed.
func zoneRole(z lab.ZoneState) string {
	if !z.Up {
		return "crashed"
	}
	return z.Role
}
