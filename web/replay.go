package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"caplab/lab"
	"caplab/lab/history"
	"caplab/lab/inventory"
)

// Scrub back and replay (a-class issue): any moment since the last reset,
// shown again from what the lab recorded (lab.MomentAt, lab.ReplayOf),
// and the class replay a presenter starts for every page. Nothing here
// runs while nobody asks: a moment is rebuilt per request.

// frameReplay tells every page that the class replay started or stopped:
// {"type":"replay","replay":classReplay|null}. Sticky, so a page that
// connects during one follows it (it reads GET /api/replay for where the
// replay is).
const frameReplay = "replay"

// momentView is GET /api/state?at=T: the State as it was at T (its
// fields, as GET /api/state's), "at", each shop's last answer with its
// words, and the replay window ("replay": from, to, recordedUntil,
// asRecorded).
type momentView struct {
	lab.Moment
	Shops []saidOperation `json:"shops"`
}

// replayStepView is one step of GET /api/replay/steps: a fault with its
// sentence and the network it left, or a shop's answer with its words.
type replayStepView struct {
	At        time.Time      `json:"at"`
	Fault     *saidFault     `json:"fault,omitempty"`
	State     *lab.State     `json:"state,omitempty"`
	Operation *saidOperation `json:"operation,omitempty"`
	Caption   string         `json:"caption"`
}

// replayView is GET /api/replay/steps: where the stretch starts (a
// moment) and what happened in it, in time order.
type replayView struct {
	lab.Replay
	Start momentView       `json:"start"`
	Steps []replayStepView `json:"steps"`
}

// classReplay is the replay a presenter plays for every page (POST
// /api/replay): the stretch [from, to] played at speed× from startedAt.
// ElapsedMs is how far it has played when the answer was written.
type classReplay struct {
	ID        int       `json:"id"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Speed     float64   `json:"speed"`
	StartedAt time.Time `json:"startedAt"`
	ElapsedMs float64   `json:"elapsedMs"`
}

// Replay bounds: speeds a presenter may ask for, and the longest stretch.
const (
	minReplaySpeed     = 0.25
	maxReplaySpeed     = 16.0
	defaultReplaySpeed = 4.0
	defaultReplaySpan  = 2 * time.Minute
)

// replays holds the class replay (at most one).
type replays struct {
	mu   sync.Mutex
	cur  *classReplay
	next int
}

// current is the class replay still playing at now, or nil; one that
// starts before since (the History's start: a reset came after it) is
// over.
func (rs *replays) current(now, since time.Time) *classReplay {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.cur == nil || rs.cur.From.Before(since) {
		return nil
	}
	c := *rs.cur
	c.ElapsedMs = float64(now.Sub(c.StartedAt).Microseconds()) / 1000
	if length := float64(c.To.Sub(c.From).Milliseconds()) / c.Speed; c.ElapsedMs > length {
		return nil // played to its end
	}
	return &c
}

// noSKU is a SKU no operation has (no valid SKU holds a space).
const noSKU = " "

// window is the History without its operations: when it started and its
// faults. It reads every operation's SKU and copies none.
func (s *Server) window() history.View { return s.lab.History(noSKU) }

// parseTime reads one of the replay's times: RFC 3339, fractions allowed.
func parseTime(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
	if err != nil {
		return time.Time{}, badRequest("%s must be a time in RFC 3339, fractions allowed (e.g. %s), got %s.",
			name, time.Now().UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano), inventory.Echo(v))
	}
	return t, nil
}

// windowErr is the 400 for a time outside what can be replayed, naming
// the window.
func windowErr(name string, err error) error {
	return badRequest("%s: %s", name, strings.TrimPrefix(err.Error(), inventory.ErrBadInput.Error()+": "))
}

// handleStateAt answers GET /api/state?at=T.
func (s *Server) handleStateAt(w http.ResponseWriter, r *http.Request) {
	at, err := parseTime("at", r.URL.Query().Get("at"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	live, h, now := s.lab.State(), s.lab.History(""), time.Now()
	m, err := lab.MomentAt(live, h, at, now)
	if err != nil {
		s.fail(w, r, windowErr("at", err))
		return
	}
	writeJSON(w, http.StatusOK, moment(m))
}

// moment is m with each shop's words.
func moment(m lab.Moment) momentView {
	v := momentView{Moment: m, Shops: make([]saidOperation, len(m.Shops))}
	for i, o := range m.Shops {
		v.Shops[i] = said(o)
	}
	return v
}

// said is a recorded operation with its words, its message and who
// answered only in them (as GET /api/history sends it).
func said(o inventory.Operation) saidOperation {
	w := lab.Say(o)
	o.Message, o.AnsweredBy = "", nil
	return saidOperation{o, w}
}

// caption is a replay's line for an operation: who did what, and the
// words the shop showed (lab.Say).
func caption(o inventory.Operation, w lab.Words) string {
	what := "buys"
	if o.Op == inventory.OpRead {
		what = "reads"
	}
	line := lab.CityName(o.Region) + " " + what + " on the " + string(o.Store) + " store → " + w.Tag
	if w.Why != "" {
		line += ": " + strings.TrimSuffix(w.Why, ".")
	}
	return line + "."
}

// handleReplaySteps answers GET /api/replay/steps?from=T&to=T2 (to
// defaults to now): the moment at from, then every fault and shop answer
// up to to, each with its sentence.
func (s *Server) handleReplaySteps(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err := parseTime("from", q.Get("from"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	live, h, now := s.lab.State(), s.lab.History(""), time.Now()
	to := now
	if v := q.Get("to"); v != "" {
		if to, err = parseTime("to", v); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	rep, err := lab.ReplayOf(live, h, from, to, now)
	if err != nil {
		s.fail(w, r, windowErr("from and to", err))
		return
	}
	v := replayView{Replay: rep, Start: moment(rep.Start), Steps: make([]replayStepView, len(rep.Steps))}
	for i, st := range rep.Steps {
		sv := replayStepView{At: st.At, State: st.State}
		switch {
		case st.Fault != nil:
			f := *st.Fault
			f.Net = nil // its network is State
			text := lab.SayFault(f)
			sv.Fault, sv.Caption = &saidFault{f, lab.Words{Text: text}}, text
		case st.Operation != nil:
			o := said(*st.Operation)
			sv.Operation, sv.Caption = &o, caption(*st.Operation, o.Said)
		}
		v.Steps[i] = sv
	}
	writeJSON(w, http.StatusOK, v)
}

// handleReplay answers GET /api/replay: the class replay playing now (or
// null), and the window a page can scrub: {"from": the last reset, "to":
// now}.
func (s *Server) handleReplay(w http.ResponseWriter, r *http.Request) {
	h, now := s.window(), time.Now()
	writeJSON(w, http.StatusOK, map[string]any{
		"replay": s.replays.current(now, h.StartedAt),
		"window": map[string]time.Time{"from": h.StartedAt, "to": now},
	})
}

// handleReplayStart answers POST /api/replay {"from":T,"to":T2,"seconds":S,
// "speed":X} (token): every page plays [from, to] at speed×. Without from,
// the last seconds (default 120) before to (default now), from the last
// reset at the earliest; speed defaults to 4, within 0.25..16.
func (s *Server) handleReplayStart(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From    *string  `json:"from"`
		To      *string  `json:"to"`
		Seconds *float64 `json:"seconds"`
		Speed   *float64 `json:"speed"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	now := time.Now()
	h := s.window()
	to := now
	var err error
	if req.To != nil {
		if to, err = parseTime("to", *req.To); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	speed := float64(defaultReplaySpeed)
	if req.Speed != nil {
		speed = *req.Speed
		if !(speed >= minReplaySpeed && speed <= maxReplaySpeed) {
			s.fail(w, r, badRequest("speed must be from %g to %g (times real time), got %g.", minReplaySpeed, maxReplaySpeed, speed))
			return
		}
	}
	var from time.Time
	switch {
	case req.From != nil && req.Seconds != nil:
		s.fail(w, r, badRequest("Give either from or seconds, not both."))
		return
	case req.From != nil:
		if from, err = parseTime("from", *req.From); err != nil {
			s.fail(w, r, err)
			return
		}
	default:
		span := defaultReplaySpan
		if req.Seconds != nil {
			if !(*req.Seconds > 0 && *req.Seconds <= 24*3600) {
				s.fail(w, r, badRequest("seconds must be more than 0 and at most 86400, got %g.", *req.Seconds))
				return
			}
			span = time.Duration(*req.Seconds * float64(time.Second))
		}
		from = to.Add(-span)
		if from.Before(h.StartedAt) {
			from = h.StartedAt // what there is since the last reset
		}
	}
	for _, c := range []struct {
		name string
		t    time.Time
	}{{"from", from}, {"to", to}} {
		if err := lab.CheckReplayTime(h, c.t, now); err != nil {
			s.fail(w, r, windowErr(c.name, err))
			return
		}
	}
	if to.Before(from) {
		s.fail(w, r, badRequest("to (%s) is before from (%s).", to.UTC().Format(time.RFC3339Nano), from.UTC().Format(time.RFC3339Nano)))
		return
	}
	s.replays.mu.Lock()
	s.replays.next++
	c := &classReplay{ID: s.replays.next, From: from, To: to, Speed: speed, StartedAt: now}
	s.replays.cur = c
	s.sendReplay(c)
	s.replays.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"replay": c})
}

// handleReplayStop answers DELETE /api/replay (token): every page goes
// back to live.
func (s *Server) handleReplayStop(w http.ResponseWriter, r *http.Request) {
	if err := decode(w, r, &struct{}{}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.replays.mu.Lock()
	s.replays.cur = nil
	s.sendReplay(nil)
	s.replays.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"replay": nil})
}

// sendReplay tells every page (sticky: also those that connect later).
// Hold replays.mu, so frames leave in the order of the changes.
func (s *Server) sendReplay(c *classReplay) {
	b, err := json.Marshal(struct {
		Type   string       `json:"type"`
		Replay *classReplay `json:"replay"`
	}{frameReplay, c})
	if err != nil {
		s.log.Error("web: encode replay frame", "err", fmt.Sprint(err))
		return
	}
	s.hub.sendMsg(outMsg{viewer: b, sticky: frameReplay})
}
