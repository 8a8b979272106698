// Package web is caplab's HTTP face: the JSON API of API.md, the WebSocket
// stream and the page, all served by one http.Handler. It holds no domain
// logic; every request goes through the Lab interface (satisfied by
// *lab.Lab), so a click, a lesson step and an instructor's curl share one
// command path.
//
// # Use
//
//	srv := web.New(l, web.Options{Token: tok, Logger: log, JoinURL: "http://host:8080/"})
//	hs := &http.Server{Handler: srv.Handler()}
//	go hs.Serve(ln)
//	…
//	hs.Shutdown(ctx) // WebSockets are hijacked: Close ends them
//	srv.Close()      // then close the lab
//
// New subscribes to the lab's events and starts the hub at once. Close
// unsubscribes, stops the verdict worker, then the hub, which disconnects
// every viewer; it does not close the lab, and it is safe to call twice.
//
// # Auth
//
// Mutations need the lab token, as "Authorization: Bearer <token>" or the
// caplab_token cookie: without it 401. GET /?token=<token> sets the cookie
// (HttpOnly, SameSite=Strict) and redirects (303) to the same URL without
// the token; a wrong token shows the page as a viewer with a notice. A
// cookie-authenticated mutation whose Origin or Referer is another origin
// (or Sec-Fetch-Site is cross-site) is refused with 403. Tokens are compared
// in constant time; an empty Options.Token makes every mutation 401. GETs of
// state, history, check and the WebSocket are open to viewers.
//
// # Validation
//
// Everything API.md defines is checked before the lab is called, so a
// refused request changes nothing: region names (404 naming the valid
// ones), stores (404), SKU ^[A-Za-z0-9._-]{1,64}$ (400), qty a JSON integer
// 1..1000 (400 for "1", 1.5, 0, 1001 or missing), stock quantity 0..1000000,
// rttMs 0..5000, W and R 1..N, groups covering every region exactly once,
// from ≠ to, link state "up" or "cut", consistency linearizable or
// serializable. Bodies: at most 64 KiB (413), exactly one JSON value (400
// for malformed, truncated or trailing data, and for wrong types); unknown
// fields are ignored because the API may grow; an empty body reads as {}.
// Every error is {"error": "<sentence>"}. Lab errors map as: ErrUnknownRegion
// and ErrUnknownStore 404, ErrBadInput 400, ErrUnavailable and ErrClosed 503
// with Retry-After. Outcomes: 200 ok and sold_out, 503 + Retry-After
// unavailable and fail_fast, 409 conflict.
//
// # Routes beyond API.md (extensions)
//
//	GET  /healthz                               {"ok":true}
//	GET  /                                      the page (text/html); ?present=1 presenter mode, ?sku=S product
//	GET  /static/…                              app.js, app.css, favicon.svg (package static)
//	GET  /ui/verdict?sku=S                      {"type":"fragment","id":"verdict","html":"…"}: the verdict panel
//	GET  /api/lessons                           {"lessons":[LessonSummary…]} (empty without a provider)
//	GET  /api/lessons/{id}                      Lesson with "stepList"
//	POST /api/lessons/{id}/steps/{step}/run     {"lesson","step","report","results","failed"}; token; see Lessons
//	GET  /api/lesson                            {"lesson":lessonView|null,"poll":pollView|null,"vote":"<your vote>"}
//	PUT  /api/lesson                            {"lesson":"id","step":0} moves every page there ("lesson":"" closes); token
//	POST /api/poll/vote                         {"option":"X"}: the audience's vote; no token (see Lessons)
//	POST /api/poll/reveal                       the open question's tally and answer to everyone; token
//	POST /api/poll/next                         the step's next question; token
//	POST /api/network/bridge                    {"via":"A"}: the other regions split in two halves that reach each other only through A, atomically; token
//	PUT  /api/stores/consensus/config           400: only the replicated store has W and R
//	GET  /api/history                           without ?sku: whatever the lab keeps for ""
//	GET  /api/history/export                    ?format=jsonl|porcupine|edn&store=S&sku=S: the history for other checkers (export.go)
//	GET  /api/check                             ?store defaults to consensus
//
// Unknown paths answer a JSON 404; a known path with another method a JSON
// 405 with Allow.
//
// # History export
//
// GET /api/history/export and the "caplab history export" command line
// (HistoryMain, history_cli.go: from a data directory's audit log, or a
// running lab's route) write lab.Export's formats; docs/api.md describes
// them.
//
// # Lessons
//
// LessonsFrom(catalog, lab) adapts a lessons.Catalog (built-in course plus
// --lessons DIR) to Options.Lessons; it also implements LessonRunner and
// LessonReporter. Every page follows one shared session, guarded by a mutex
// in the Server: the open lesson, its current step, what each step did, and
// the open question. Only the presenter (token) moves it; each change goes
// to every viewer as a lesson or poll frame, and a page that connects gets
// the current ones at once.
//
// Running a step (POST …/run, which first moves the session to that step)
// runs its lab block on the real lab through one lessons.Runner per lesson,
// bounded by 3 minutes and cancelled by Close but not by the presenter
// closing the tab. One step runs at a time: while it runs, a second run or
// a PUT /api/lesson is 409. An unmet expectation is still 200, with
// "failed": true and the results up to that command; a lesson whose regions
// the lab does not run is 409 naming them.
//
// Polls: going to a step that has ask commands opens its first question
// before anything runs, so the audience predicts before the reveal. Votes
// need no token, but they must come from the page: an Origin naming this
// host (else 403) and a caplab_viewer cookie the lab signed (a random id
// and its HMAC-SHA256 tag under a per-lab secret; HttpOnly,
// SameSite=Strict; set by GET / when lessons are loaded and by the
// WebSocket upgrade; a made-up or tampered id is 403). One vote per viewer
// and question; a second replaces the first. At most
// Options.VotesPerAddress viewers (default 50) from one client address
// (an IPv6 address by its /64) vote on one question: 429 naming the
// address (viewer.go). The presenter's poll frame carries "viewers", the
// WebSocket viewers connected when it was sent, beside "votes". The option
// must be one of the question's (400 naming them); no open question, or one
// already revealed, is 409; a question counts at most 10,000 voters (429
// for more). The presenter's page gets the tally live; viewers get the
// number of votes, and the tally and answer only after POST
// /api/poll/reveal. Running the step reveals its open question too (the
// results state the answer). Commands never show an ask's answer. Poll
// frames caused by votes are sent at most every 150 ms.
//
// # WebSocket /ws
//
// Same-origin upgrades only (an Origin header must name the request's Host;
// no Origin is allowed for non-browser clients). Read limit 4 KiB — the
// browser sends nothing but keep-alives; a ping every 20 s, pong extends the
// 60 s read deadline; 10 s write deadline. One reader and one writer
// goroutine per connection. Frames are JSON objects with "type":
//
//	{"type":"state",<State's fields>,"state":State}         the first message, at connect (the newest State the hub knows): also a State itself (API.md)
//	{"type":"state","state":State}                          then on changes
//	{"type":"operation","operation":Operation,"outcome":Outcome}
//	{"type":"fault","fault":Fault}
//	{"type":"reset"}
//	{"type":"fragment","id":"counters","html":"…"}          after every state frame
//	{"type":"fragment","id":"verdict","html":"…"}           ~0.4 s after operations settle, for the SKU last operated on
//	{"type":"lesson","lesson":{…}}                          at connect and on every change of the lesson session; no "lesson" when none is open
//	{"type":"poll","poll":{…}}                              at connect and on every change of the open question; no "poll" when none is open
//
// A lesson is {"id","title","step" (from 0),"steps","stepTitle","stepTitles",
// "html","commands","polls" (questions in the step),"results":[{"line",
// "command","status" (done|passed|failed|error),"text"}],"ran","running",
// "failed","report"}. A poll is {"lesson","step","index","count","question",
// "options","votes","revealed","tally" (per option, in order),"answer"}:
// presenters' frames carry "tally" always, viewers' frames carry "tally"
// and "answer" only once revealed. Lesson and poll frames are queued like
// operation frames, never coalesced away.
//
// The hub (one goroutine owns the viewer set) coalesces state: it keeps only
// the newest State and sends at most one state frame per 50 ms (20 a
// second) per viewer; operation, fault, reset, lesson and poll frames are
// queued in order.
// Each viewer has a send buffer of 256 frames; a viewer whose buffer is full
// is dropped, never waited for.
//
// # Page, for test writers
//
// The page works without a build step and without third-party code. The
// element ids below are stable; each interactive one has the same
// data-testid. {r} is a region name (us-east-1), {a}--{b} an unordered pair
// of regions in State order, {store} consensus or replicated.
//
//	body[data-role]              "presenter" or "viewer"; body.present in presenter mode; body.store-replicated
//	role-badge, conn-status      who you are; "live" / "reconnecting…"
//	present-toggle, help-open    presenter mode (key p), help (key ?)
//	help, help-close             help overlay (role=dialog)
//	bad-token, viewer-note       notices
//	lesson-panel                 the lesson: lesson-step (step title and prose) and, with a provider,
//	                             lesson-select (disabled for viewers: they follow), lesson-progress ("Step 2 of 4"),
//	                             lesson-steps (list; the current li has aria-current="step"), lesson-commands with
//	                             lesson-command-{i} (data-status pending|running|done|passed|failed|error; ✓ ✗ ⚠ ● ○),
//	                             lesson-status (report); presenter only: lesson-prev, lesson-next, lesson-run
//	poll                         the open question (hidden when none): poll-question, poll-option-{i} (buttons,
//	                             aria-pressed for your vote), poll-tally, poll-answer (after the reveal),
//	                             poll-status; presenter only: poll-reveal, poll-next
//	map                          the SVG map
//	region-{r}                   region group (focusable; Enter/click opens region-menu);
//	                             region-{r}-role ("♛ leader", "follower", "✕ crashed"…), region-{r}-term, region-{r}-breakers
//	link-{a}--{b}                link group (focusable; click/Enter cuts or heals both ways; Shift+click,
//	                             Shift+Enter or right click opens link-menu); data-state up|oneway|cut;
//	                             link-{a}--{b}-fwd / -rev lanes (a→b, b→a), -label, -traffic, -dots
//	link-menu                    link-menu-cut-both, link-menu-heal-both, link-menu-cut-fwd, link-menu-cut-rev,
//	                             link-menu-rtt, link-menu-rtt-apply, link-menu-close
//	region-menu                  region-menu-crash, region-menu-restart, region-menu-lead, region-menu-isolate, region-menu-close
//	preset-isolate-{r}           isolate a region (keys 1..7)
//	bridge-region, preset-bridge bridge through a region
//	preset-heal                  heal all (key h)
//	store-consensus, store-replicated   the store the shops use (per browser)
//	store-explainer              what the chosen store does
//	quorum-panel                 quorum-w, quorum-r (ranges), quorum-w-value, quorum-r-value,
//	                             quorum-indicator (W+R>N sentence), quorum-apply, quorum-preset-global, quorum-preset-strict
//	sku                          product SKU
//	stock-both-qty, stock-both   stock the SKU in both stores
//	reset                        reset the lab (key r)
//	shop-{r}                     buy-qty-{r}, buy-{r}, read-consistency-{r}, read-{r}, stock-qty-{r}, stock-{r},
//	                             outcome-{r} (sentence: "✓ ok · buy · CP Sold — 0 left. 231 ms, confirmed by …")
//	timeline, timeline-scroll    space-time diagram (SVG; bars .bar.o-{outcome}[data-op=id]); timeline-follow
//	timeline-list                screen-reader list of recent outcomes
//	counters                     counters-table; counter-{store}-{ok|soldOut|unavailable|failFast|conflict|oversold|staleReads}
//	verdict                      verdict-refresh, verdict-{store}, verdict-visual-{store} (link to /api/check/visual)
//	join, join-url, join-qr      audience link and QR code (presenter mode, when Options.JoinURL is set)
//	toast                        status and error messages (aria-live)
//
// Viewers get the same page with every mutating control disabled; they can
// vote. The presenter's n key moves the lesson one beat forward: it runs the
// current step if it has not run, otherwise it goes to the next step and
// runs it — unless that step asks the audience, which it opens for votes
// (press n again to run it). window.caplab offers on(type, fn) for frames
// ("state", "operation", "fault", "reset", "fragment", "lesson", "poll",
// and "lesson-next" from the n key), state() and api(method, path, body).
package web
