package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"caplab/lab/inventory"
	"caplab/lessons"
)

// Class tools (issue "a class, not a toolbox"): what an instructor needs
// for a class beyond the lab itself — a printable handout per lesson, one
// reset between groups, the network's speed, and the page's glossary.

// handout is a lesson as its printable page shows it.
type handout struct {
	Title, Summary, Regions string
	Minutes                 int
	Answers                 bool // the instructor's copy
	Steps                   []handoutStep
	Key                     []string
}

type handoutStep struct {
	Title      string
	PoseHTML   string // trusted: goldmark without raw HTML
	RevealHTML string // the prose answering the step's question (instructor's copy)
	Questions  []handoutQuestion
}

type handoutQuestion struct {
	Question string
	Options  []handoutOption
}

type handoutOption struct {
	Label  string
	Answer bool
}

// handoutOf lays out lesson l on paper; answers adds what only an
// instructor may read: the answering prose and the key.
func handoutOf(l *lessons.Lesson, answers bool) handout {
	h := handout{Title: l.Title, Summary: l.Summary, Regions: strings.Join(l.Regions, ", "), Minutes: l.Minutes(), Answers: answers}
	n := 0
	for i, st := range l.Steps {
		pose := st.Pose.HTML
		if i == 0 {
			pose = l.Intro.HTML + pose
		}
		hs := handoutStep{Title: st.Title, PoseHTML: pose}
		if answers {
			hs.RevealHTML = st.Reveal.HTML
		}
		for _, p := range st.Polls {
			q := handoutQuestion{Question: p.Question}
			for _, o := range p.Options {
				q.Options = append(q.Options, handoutOption{Label: lessons.OptionLabel(o), Answer: o == p.Answer})
			}
			hs.Questions = append(hs.Questions, q)
			n++
			if answers {
				h.Key = append(h.Key, fmt.Sprintf("Step %d, %q — %s", i+1, p.Question, lessons.OptionLabel(p.Answer)))
			}
		}
		h.Steps = append(h.Steps, hs)
	}
	return h
}

// handleHandout answers GET /api/lessons/{id}/handout: the lesson as a
// printable HTML page — its story and questions; the answering prose and
// the answer key only with the token.
func (s *Server) handleHandout(w http.ResponseWriter, r *http.Request) {
	src, ok := s.opts.Lessons.(LessonSource)
	if !ok {
		writeError(w, http.StatusNotFound, "No lessons are loaded in this lab.")
		return
	}
	id := r.PathValue("id")
	l, ok := src.Source(id)
	if !ok {
		writeError(w, http.StatusNotFound, "There is no lesson %s; GET /api/lessons lists them.", inventory.Echo(id))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	if err := handoutPage(handoutOf(l, s.authenticate(r) != authNone)).Render(r.Context(), w); err != nil {
		s.log.Warn("web: render handout", "lesson", id, "err", err)
	}
}

// handleGroupReset answers POST /api/class/reset: the next group starts
// afresh — the lab reset (stores, links, clocks, history, recording; a
// load stops), the open lesson back at its first step with no votes and
// no runs. The lesson stays open.
func (s *Server) handleGroupReset(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.session != nil && s.session.isRunning() {
		s.fail(w, r, conflict("A lesson step is running; wait for it to finish, then start the next group."))
		return
	}
	if s.load != nil && s.load.ctl != nil {
		s.load.ctl.Stop()
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	if err := s.lab.Reset(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.session != nil {
		s.session.restart()
	}
	s.answerState(w, r, nil)
}

// handleSpeed answers PUT /api/network/speed {"factor":0.5}: every link's
// delay that share of the lab's start (0 < factor ≤ 1).
func (s *Server) handleSpeed(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Factor *float64 `json:"factor"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Factor == nil {
		s.fail(w, r, fmt.Errorf("%w: \"factor\" is required: a number more than 0 and at most 1 (1 = the delays the lab started with)", inventory.ErrBadInput))
		return
	}
	if err := s.lab.Faults().SetSpeed(*req.Factor); err != nil {
		s.fail(w, r, fmt.Errorf("%w: %v", inventory.ErrBadInput, err))
		return
	}
	s.answerState(w, r, nil)
}

type speedOption struct{ Value, Label string }

// speedOptions are the page's choices of speed.
func speedOptions() []speedOption {
	return []speedOption{
		{"1", "as the lab started (×1)"},
		{"0.5", "twice as fast (×½)"},
		{"0.25", "four times as fast (×¼)"},
		{"0.1", "ten times as fast (×⅒)"},
	}
}

// lessonOption is a lesson in the picker: its title, steps and minutes.
func lessonOption(l LessonSummary) string {
	s := l.Title + " (" + strconv.Itoa(l.Steps) + " steps"
	if l.Minutes > 0 {
		s += " · ~" + strconv.Itoa(l.Minutes) + " min"
	}
	return s + ")"
}

// glossaryTerm is one entry of Help's glossary.
type glossaryTerm struct{ ID, Term, Means string }

// glossaryTerms are the words the page shows, each said once in plain
// words (TestGlossaryCoversThePage checks the page's words are here).
var glossaryTerms = []glossaryTerm{
	{"leader", "leader ♛", "The consensus group's member that orders every write. Only one leads at a time; it needs a majority to commit."},
	{"follower", "follower", "A member that copies the leader's log and answers its heartbeats."},
	{"candidate", "candidate", "A member that heard no leader for a while and asks the others to vote for it."},
	{"pre-candidate", "pre-candidate", "A member that wonders whether it could win an election before it starts one (Raft's pre-vote): a region cut off sits here, and does not disturb the others."},
	{"term", "term", "Raft's election counter: each election starts a new term."},
	{"majority", "majority, quorum", "More than half of the members (2 of 3). A write counts once a majority has it, so any two majorities overlap in at least one member."},
	{"cp", "CP (consensus)", "Consistent under a partition: the side without a majority refuses rather than risk a wrong answer."},
	{"ap", "AP (replicated)", "Available under a partition: every side keeps answering, and the copies may disagree."},
	{"geo", "GEO (geo-partitioned)", "Each region owns an allocation of the stock in its own small Raft group: local sales stay fast and correct, but units can get stuck in a region cut off."},
	{"wrn", "N, W, R (e.g. W=1 R=1)", "N copies; a write waits for W of them to acknowledge, a read asks R of them. W=1 R=1 is fastest and always open; W + R > N makes every read see the latest write."},
	{"linearizable", "linearizable", "The history could have happened on one shelf serving one shopper at a time, in real-time order. The checker tests exactly this."},
	{"stale", "stale read", "A read that missed a write that had already finished."},
	{"lost", "lost update", "A write that overwrote another it never saw: a sale disappears."},
	{"oversold", "oversold", "Units sold beyond the stock: two shoppers got the same last unit."},
	{"unavailable", "refused (unavailable)", "The store could not be sure, so it said no. It may still apply later if the write got through."},
	{"failfast", "fail fast, breaker open", "After several failures a region's circuit breaker opens and refuses at once, without waiting for a timeout."},
	{"overloaded", "too busy (overloaded)", "The region's gateway had as many requests in flight as it takes; this one was not sent."},
	{"shed", "shed", "Arrivals the load held back because the machine had no room left; sent to no store."},
	{"conflict", "gave up (conflict)", "Optimistic locking: the stock changed under the buy each time it tried, so it stopped."},
	{"stranded", "stranded", "Units that exist but sit in a region nobody can reach now."},
	{"allocation", "allocation, borrowing", "A region's share of a product in the geo store; a region that runs out borrows units from another, across the ocean."},
	{"zone", "zone", "One of a region's three data centres, 1–2 ms apart; the geo store's regional group has a member in each."},
	{"p99", "p50, p99", "Latency percentiles: 99 % of buys answered faster than the p99."},
	{"slo", "SLO", "The service-level objective: here p99 under 150 ms. Missing it means too many slow answers."},
	{"zipf", "Zipf", "A few products are far more popular than the rest, as in a real shop."},
	{"openloop", "open loop", "Shoppers keep arriving whether or not the store answers, so a stall shows up in the latency instead of hiding."},
	{"doorbuster", "doorbuster", "The one product everyone wants on Black Friday; its history is checked in full."},
	{"lww", "last writer wins", "When copies disagree the version with the newest timestamp stays — by the clock of the region that wrote it."},
	{"skew", "clock skew", "A region's clock running ahead or behind true time."},
	{"lease", "lease, lock", "An etcd lock is held for as long as its holder keeps its lease alive with heartbeats; a paused holder loses it without knowing."},
	{"fencing", "fencing token, fenced off", "A number that grows with every lock grant; the storage refuses (fences off) a write with an older one than it has seen."},
	{"fault", "fault band", "In the timeline, the time the network was split or a region was down."},
}
