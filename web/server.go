package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"caplab/lab"
	"caplab/lab/audit"
	"caplab/lab/check"
	"caplab/lab/history"
	"caplab/lab/inventory"
	"caplab/lab/load"
	"caplab/static"
)

// Lab is what the web layer needs from the lab. *lab.Lab satisfies it; the
// web package holds no domain logic of its own and reaches the lab only
// through these methods.
type Lab interface {
	State() lab.State
	Regions() []string
	// Faults: links, partitions, crashes, leadership, W and R; Time: clocks
	// and shop pauses; Recorder: "Save as lesson" (lab/recording.go).
	Faults() *lab.Faults
	Time() *lab.Time
	Recorder() *lab.Recorder
	Stock(ctx context.Context, store inventory.Store, sku, region string, quantity int) (inventory.Outcome, error)
	Buy(ctx context.Context, store inventory.Store, sku, region string, qty int) (inventory.Outcome, error)
	Read(ctx context.Context, store inventory.Store, sku, region string, c inventory.Consistency) (inventory.Outcome, error)
	History(sku string) history.View
	Export(w io.Writer, format audit.Format, f audit.Filter) error
	Check(store inventory.Store, sku string) (check.Result, error)
	Visualize(store inventory.Store, sku string, w io.Writer) error
	Reset(ctx context.Context) error
	Subscribe() (<-chan lab.Event, func())
	RequestTimeout() time.Duration
	// The lock-based reservation (lab/reserve.go).
	Reserve(ctx context.Context, sku, region string, fenced bool) (inventory.Outcome, error)
	// Geo store (geo issue): a split stock; Geo: its allocations (geo_alloc.go).
	StockSplit(ctx context.Context, sku, region string, quantity int, allocations map[string]int) (inventory.Outcome, error)
	Geo() *lab.GeoStore
}

// Lessons feeds the lesson panel. It may be nil: the panel then says that no
// lessons are loaded. The lessons package (or main.go, adapting it) provides
// one; the web package only shows what it is given.
type Lessons interface {
	// List returns every lesson in display order.
	List() []LessonSummary
	// Lesson returns one lesson with its steps; ok is false when id is unknown.
	Lesson(id string) (l Lesson, ok bool)
}

// LessonRunner is optionally implemented by a Lessons provider. When it is,
// the presenter can run a step's lab block from the page
// (POST /api/lessons/{id}/steps/{step}/run) and the "n" key runs the step,
// then moves on and runs the next (a step with a question waits for votes
// first; doc.go).
type LessonRunner interface {
	// RunStep runs the lab block of step (0-based) of lesson id and returns a
	// short report for the person, e.g. "3 commands ran; all expectations met."
	RunStep(ctx context.Context, id string, step int) (report string, err error)
}

// LessonSummary is one entry in the lesson list.
type LessonSummary struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Summary string `json:"summary"`
	Steps   int    `json:"steps"`
	// Minutes is how long a class spends on it, measured from its steps
	// (lessons.Lesson.Duration says how); 0 when the provider cannot tell.
	Minutes int `json:"minutes,omitempty"`
}

// Lesson is one lesson with its steps.
type Lesson struct {
	LessonSummary
	StepList []LessonStep `json:"stepList"`
}

// LessonStep is one step of a lesson.
type LessonStep struct {
	Title string `json:"title"`
	// HTML is the step's prose, already rendered and trusted by the
	// provider (built-in or instructor-written lessons); the page inserts it
	// as is.
	HTML string `json:"html"`
	// Commands are the lines of the step's lab blocks, shown to the learner.
	Commands []string `json:"commands"`
	// Polls are the step's questions to the audience, in order; their
	// answers are not part of the JSON.
	Polls []LessonPoll `json:"polls,omitempty"`
}

// Options configure a Server. The zero value is usable but nobody can act:
// set Token.
type Options struct {
	// Token is the lab token a presenter needs for every mutating request.
	// Empty means nobody can mutate through HTTP (every mutation is 401).
	Token string
	// Logger receives request errors and hub events; nil means slog.Default().
	Logger *slog.Logger
	// JoinURL is the page URL for the audience (without the token). When
	// set, presenter mode shows it with a QR code.
	JoinURL string
	// Present starts every page in presenter mode (large type, high
	// contrast), as ?present=1 does for one page.
	Present bool
	// Lessons feeds the lesson panel; nil leaves the panel empty.
	Lessons Lessons
	// DefaultSKU is the product the page starts with; "" means IPHONE-15-PRO.
	DefaultSKU string
	// AllowedHosts, when set, are the only Host headers served (e.g.
	// "127.0.0.1:8080", "localhost:8080"): a lab on loopback then refuses
	// pages of other sites that rebind their name to 127.0.0.1 (DNS
	// rebinding). Empty serves every Host, as a classroom lab must.
	AllowedHosts []string
	// VotesPerAddress caps how many viewers at one client address vote on
	// one question (viewer.go); 0 means 50.
	VotesPerAddress int
	// Load is the lab's load controller (shared with the lessons); nil
	// makes one of the server's own when the lab is a *lab.Lab (load.go).
	Load *load.Controller
}

// Server is caplab's HTTP face: the JSON API of API.md, the WebSocket stream
// and the page. Create it with New, mount Handler, and Close it before
// closing the lab.
type Server struct {
	lab     Lab
	opts    Options
	log     *slog.Logger
	hub     *hub
	verdict *verdictWorker
	qr      string // data: URI of the JoinURL QR code, "" when none
	mux     *http.ServeMux
	session *lessonSession // the shared lesson and poll; nil without Options.Lessons
	metrics *metrics       // GET /metrics (metrics.go)

	viewerKeys *viewerKeys // signs viewer ids (viewer.go)
	votes      voteGate    // votes per address per question (viewer.go)
	load       *loadFeed   // load.go
	replays    replays     // the class replay (replay.go)

	closeOnce sync.Once
	unsubHub  func()
	unsubVerd func()
}

// New returns a Server for l. It subscribes to l's events at once and starts
// the hub that fans them out to WebSocket viewers; call Close to stop it.
func New(l Lab, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DefaultSKU == "" {
		opts.DefaultSKU = "IPHONE-15-PRO"
	}
	s := &Server{lab: l, opts: opts, log: opts.Logger, viewerKeys: newViewerKeys()}
	if opts.JoinURL != "" {
		opts.JoinURL = joinURLWithoutToken(opts.JoinURL)
		s.opts.JoinURL = opts.JoinURL
		s.qr = qrDataURI(opts.JoinURL, s.log)
	}
	events, unsub := l.Subscribe()
	s.unsubHub = unsub
	s.hub = newHub(events, hubConfig{Logger: s.log, Fragments: stateFragments})
	go s.hub.run()

	verdEvents, unsubVerd := l.Subscribe()
	s.unsubVerd = unsubVerd
	s.verdict = newVerdictWorker(l, verdEvents, s.hub, s.log)
	go s.verdict.run()

	if src, ok := opts.Lessons.(LessonSource); ok {
		s.session = newLessonSession(opts.Lessons, src, s.hub, s.log)
	}
	s.metrics = newMetrics(l)
	s.startLoad()
	s.mux = s.routes()
	return s
}

// Handler returns the http.Handler serving the API, the WebSocket, the
// static files and the page.
func (s *Server) Handler() http.Handler {
	if len(s.opts.AllowedHosts) == 0 {
		return recoverPanics(s.mux, s.log)
	}
	return recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(s.opts.AllowedHosts, strings.ToLower(r.Host)) {
			writeError(w, http.StatusMisdirectedRequest, "This lab answers only to %s, not to %s.", strings.Join(s.opts.AllowedHosts, " or "), inventory.Echo(r.Host))
			return
		}
		s.mux.ServeHTTP(w, r)
	}), s.log)
}

// recoverPanics answers a request whose handler panicked with a 500 and a
// sentence, and logs the panic with its stack, instead of net/http's
// closed connection with no answer (the page would show nothing). A
// handler that had already written its header cannot be answered again;
// its connection ends as before. http.ErrAbortHandler passes through.
func recoverPanics(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			log.Error("web: a handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			writeError(w, http.StatusInternalServerError, "The lab hit a bug answering %s %s (it is logged; the lab keeps running). Please report it.", r.Method, inventory.Echo(r.URL.Path))
		}()
		h.ServeHTTP(w, r)
	})
}

// Close ends the lesson session (cancelling a step that is running), stops
// the metrics reader, the verdict worker and the hub and disconnects every viewer, in that
// order, after unsubscribing from the lab. It does not close the
// lab. Close is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.session != nil {
			s.session.close()
		}
		s.metrics.close()
		s.closeLoad()
		s.unsubVerd()
		s.verdict.close()
		s.unsubHub()
		s.hub.close()
	})
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	// Open to viewers.
	mux.HandleFunc("GET /{$}", s.handlePage)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.Handle("GET /static/", http.StripPrefix("/static/", noCache(http.FileServerFS(static.FS))))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})
	ws := newWSHandler(s.hub, s.lab.State, s.log)
	ws.presenter = func(r *http.Request) bool { return s.authenticate(r) != authNone }
	ws.header = s.upgradeHeader
	mux.Handle("GET /ws", ws)
	mux.HandleFunc("GET /api/state", s.handleState)
	mux.HandleFunc("GET /api/replay", s.handleReplay)            // replay.go
	mux.HandleFunc("GET /api/replay/steps", s.handleReplaySteps) // replay.go
	mux.Handle("GET /metrics", s.metrics)
	mux.HandleFunc("GET /api/stores/{store}/skus/{sku}", s.handleRead)
	mux.HandleFunc("GET /api/stores/{store}/skus/{sku}/allocations", s.handleGeoAllocations) // geo_alloc.go
	mux.HandleFunc("GET /api/history", s.handleHistory)
	mux.HandleFunc("GET /api/history/export", s.handleExport)
	mux.HandleFunc("GET /api/check", s.handleCheck)
	mux.HandleFunc("GET /api/check/visual", s.handleCheckVisual)
	mux.HandleFunc("GET /api/lessons", s.handleLessons)
	mux.HandleFunc("GET /api/lessons/{id}", s.handleLesson)
	mux.HandleFunc("GET /api/lessons/{id}/handout", s.handleHandout) // class.go
	mux.HandleFunc("GET /ui/verdict", s.handleVerdictFragment)
	mux.HandleFunc("GET /api/lesson", s.handleSession)
	// The audience's only action: no token, but same origin and one vote
	// per signed viewer cookie, a cap per address (viewer.go).
	mux.HandleFunc("POST /api/poll/vote", s.handleVote)

	// Mutations: token required, same origin for cookies.
	m := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.mutation(h)) }
	m("POST /api/network/partition", s.handlePartition)
	m("POST /api/network/heal", s.handleHeal)
	m("POST /api/network/bridge", s.handleBridge)
	m("POST /api/network/link", s.handleLink)
	m("POST /api/network/latency", s.handleLatency)
	m("POST /api/regions/{region}/crash", s.handleCrash)
	m("POST /api/regions/{region}/restart", s.handleRestart)
	m("POST /api/regions/{region}/lead", s.handleLead)
	m("PUT /api/stores/{store}/skus/{sku}", s.handleStock)
	m("POST /api/stores/{store}/skus/{sku}/buy", s.handleBuy)
	m("PUT /api/stores/{store}/config", s.handleStoreConfig)
	m("POST /api/reset", s.handleReset)
	m("POST /api/class/reset", s.handleGroupReset) // class.go
	m("PUT /api/network/speed", s.handleSpeed)
	m("POST /api/lessons/{id}/steps/{step}/run", s.handleRunStep)
	m("PUT /api/lesson", s.handleSetLesson)
	m("POST /api/poll/reveal", s.handleReveal)
	m("POST /api/poll/next", s.handleNextQuestion)
	s.loadRoutes(mux, m)
	m("GET /api/recording/lesson", s.handleRecordingLesson)
	m("GET /api/recording", s.handleRecordingStatus)
	m("POST /api/recording/start", s.handleRecordingStart)
	m("POST /api/regions/{region}/clock", s.handleClock)
	m("POST /api/clocks/reset", s.handleClocksReset)
	m("POST /api/regions/{region}/pause", s.handlePause)
	m("POST /api/stores/{store}/skus/{sku}/reserve", s.handleReserve)
	m("POST /api/replay", s.handleReplayStart) // replay.go
	m("DELETE /api/replay", s.handleReplayStop)

	mux.HandleFunc("/", s.handleNotFound(mux))
	return mux
}

// handleNotFound answers every request no route matches with a JSON 404, or
// a 405 naming the allowed methods when the path exists for others.
func (s *Server) handleNotFound(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
			if m == r.Method {
				continue
			}
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", joinComma(allowed))
			writeError(w, http.StatusMethodNotAllowed, "%s is not allowed on %s; use %s.", r.Method, r.URL.Path, joinOr(allowed))
			return
		}
		writeError(w, http.StatusNotFound, "There is nothing at %s %s; the routes are listed in API.md.", r.Method, r.URL.Path)
	}
}

func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
