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
// from ≠ to, link state "up" or "cut", consistency linearizable,
// serializable or cached (cached: the consensus store only). Bodies: at most 64 KiB (413), exactly one JSON value (400
// for malformed, truncated or trailing data, and for wrong types); unknown
// fields are ignored because the API may grow; an empty body reads as {}.
// Every mutating route reads its body so, those that take nothing ({})
// included: "hello", "[]" or "{}{}" is 400, a body over 64 KiB 413. PUT
// /api/lesson needs "lesson" ("" closes the lesson; missing or null is
// 400). A handler that panics (a bug) answers 500 with a sentence and is
// logged.
// Every error is {"error": "<sentence>"}. Lab errors map as: ErrUnknownRegion
// and ErrUnknownStore 404, ErrBadInput 400, ErrUnavailable and ErrClosed 503
// with Retry-After. Outcomes: 200 ok and sold_out, 503 + Retry-After
// unavailable, fail_fast and overloaded, 409 conflict.
//
// # Routes beyond API.md (extensions)
//
//	GET  /healthz                               {"ok":true}
//	GET  /metrics                               Prometheus text format from the lab's own registry; no token (metrics.go)
//	GET  /                                      the page (text/html); ?present=1 presenter mode, ?sku=S product
//	GET  /static/…                              app.js, lessons.js, app.css, favicon.svg (package static)
//	GET  /ui/verdict?sku=S                      {"type":"fragment","id":"verdict","html":"…"}: the verdict panel
//	GET  /api/lessons                           {"lessons":[LessonSummary…]} (empty without a provider)
//	GET  /api/lessons/{id}                      Lesson with "stepList"
//	POST /api/lessons/{id}/steps/{step}/run     {"lesson","step","report","results","failed"}; token; see Lessons
//	GET  /api/lesson                            {"lesson":lessonView|null,"poll":pollView|null,"vote":"<your vote>"}
//	PUT  /api/lesson                            {"lesson":"id","step":0} moves every page there ("lesson":"" closes; no "lesson" is 400); token
//	POST /api/poll/vote                         {"option":"X"}: the audience's vote; no token (see Lessons)
//	POST /api/poll/reveal                       the open question's tally and answer to everyone; token
//	POST /api/poll/next                         the step's next question; token
//	GET  /api/load                              the load's status and samples (load.go; docs/api.md "Load")
//	POST /api/load, DELETE /api/load            start (400 names the bad field, 409 if one runs) / stop a load; token
//	POST /api/network/bridge                    {"via":"A"}: the other regions split in two halves that reach each other only through A, atomically; token
//	PUT  /api/stores/consensus/config           {"groupCommit":true|false}: a region's concurrent buys of one SKU share one Txn;
//	                                            State.consensus {groupCommit, rounds, unitsSold, roundsPerUnit}; 400 for w/r or a
//	                                            missing/non-boolean groupCommit; token (docs/api.md "Group commit and cached reads")
//	GET  /api/stores/consensus/skus/{sku}?…&consistency=cached   the region's watch-fed cache: Outcome.cacheLag
//	                                            {revision, knownRevision, revisions, ms}; other stores 400
//	GET  /api/history                           without ?sku: whatever the lab keeps for ""; &last=N (1..100000): only the newest N operations and faults
//	GET  /api/history/export                    ?format=jsonl|porcupine|edn&store=S&sku=S: the history for other checkers (export.go)
//	GET  /api/check                             ?store defaults to consensus
//	GET  /api/lessons/{id}/handout              the lesson on paper (text/html, printable; no script): story and questions;
//	                                            with the token also the answering prose and the answer key (class.go)
//	POST /api/class/reset                       {}: the next group — lab reset (stores, links, clocks, history, recording;
//	                                            a load stops), the open lesson back at step 1 with no votes; 409 while a
//	                                            step runs; token
//	PUT  /api/network/speed                     {"factor":0.5}: every link's delay that share of the start (0 < factor ≤ 1;
//	                                            Raft's timers were set for the start, so never slower); State.speed; token
//	GET  /api/state?at=T                        the State as it was at T (RFC 3339) with "at", "shops" (each shop's last
//	                                            answer then, with words) and "replay" (the window); 400 names the window (replay.go)
//	GET  /api/replay/steps?from=T&to=T2         a stretch to play again: "start" (the moment at from) and "steps" (faults with
//	                                            the network they left, shop answers), each with its live sentence as "caption"
//	GET  /api/replay                            {"replay": the class replay playing or null, "window": {"from","to"}}
//	POST /api/replay, DELETE /api/replay        {"seconds":120,"speed":4} or {"from","to","speed"}: every page replays that
//	                                            stretch (sticky "replay" frame); DELETE: every page live again; token
//
// Unknown paths answer a JSON 404; a known path with another method a JSON
// 405 with Allow.
//
// # History export
//
// GET /api/history/export and the "caplab history export" command line
// (HistoryMain, history_cli.go: from a data directory's audit log, or a
// running lab's route) write lab.Export's formats; docs/api.md describes
// them. Besides operations and faults they carry what each store's verdict
// is computed from: the recording gaps (jsonl type "gap") and the geo
// store's call log (type "geo_call"); porcupine and edn are cut at the gaps.
// "caplab history check FILE" (history_check.go) reads a JSON Lines export
// or a porcupine log (audit.ReadHistory) and prints check.Judge's verdict per
// store and SKU — GET /api/check's on the same history; exit 1 when one is
// not linearizable, 2 when the file is not a history.
//
// GET /api/check's result carries (trusted-verdicts issue) cuts, notJudged
// (what a bounded recording left out) and unplaced (the answer a failed
// search could not place; the explanation is written from it);
// GET /api/check/visual marks the same answer. docs/api.md, "What a verdict
// covers".
//
// # Lessons
//
// LessonsFrom(catalog, lab) adapts a lessons.Catalog (built-in course plus
// --lessons DIR) to Options.Lessons; it also implements LessonRunner and
// LessonReporter and LessonSource. Every page follows one shared session, a
// lessons.Session (the domain rules: reveal, votes, what a viewer may see)
// guarded by a mutex in the Server: the open lesson, its current step, what
// each step did, and the open question. Only the presenter (token) moves it; each change goes
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
// Spoilers (docs/lessons.md): a viewer's lesson frames, GET /api/lesson and
// GET /api/lessons/{id} without the token hold neither the prose after the
// lab block holding a step's ask (until the reveal or the run) nor the
// expectations of a step that has not run. Presenters' frames carry them,
// marked ("revealHtml", "held"), and the page in presenter mode — the
// projector — leaves them out itself.
//
// # Regions on separate machines
//
// A lab started with --remote runs some regions under agents on other
// hosts (nodes.Config.Remote). The API is the same; State gains
// regions[].agent (the agent's address; absent for a region in the lab's
// process) and regions[].stale (true while the lab has lost that agent:
// shown as last reported), links[].measuredRttMs (the real round trip
// between the two hosts; delayMs adds only what is missing to reach the
// model) and links[].overModel (the measured round trip exceeds the
// model's). The map marks a stale region (dashed, "· stale") and labels a
// measured link "76 ms · 0.4 measured" (⚠ when over the model).
//
// # WebSocket /ws
//
// Same-origin upgrades only (an Origin header must name the request's Host;
// no Origin is allowed for non-browser clients). Read limit 4 KiB — the
// browser sends keep-alives and which panels it shows (below); a ping every
// 20 s, pong extends the 60 s read deadline; 10 s write deadline. One
// reader and one writer goroutine per connection. permessage-deflate
// (RFC 7692) when the client offers it, as browsers do: frames of 512
// bytes or more are deflated, each once for every viewer. Frames are JSON
// objects with "type":
//
//	{"type":"state",<State's fields>,"state":State}         the first message, at connect (the newest State the hub knows): also a State itself (API.md)
//	{"type":"state","state":State}                          then on changes
//	{"type":"operation","operation":Operation,"outcome":Outcome,"said":Words}
//	{"type":"fault","fault":Fault,"said":{"text":"…"}}
//	{"type":"reset","firstOpId":N}                          N: the ID of the first operation after the reset
//	{"type":"resync","missed":N}                            the hub lost N lab events (it fell behind on a busy machine): read /api/history again
//	{"type":"fragment","id":"counters","html":"…"}          after every state frame (panel "checker")
//	{"type":"delta","base":B,"version":V,"delta":{…}}       instead of a state frame, to a viewer that asked (?delta=1): see below
//	{"type":"load","load":Status}                           the Black Friday load (load.go; panel "load")
//	{"type":"fragment","id":"verdict","html":"…"}           ~0.4 s after operations settle, for the SKU last operated on
//	{"type":"fragment","id":"verdict-full","html":"…"}      with it: the whole verdict (the Checker tab)
//	{"type":"lesson","lesson":{…}}                          at connect and on every change of the lesson session; no "lesson" when none is open
//	{"type":"poll","poll":{…}}                              at connect and on every change of the open question; no "poll" when none is open
//	{"type":"replay","replay":{…}|null}                     the class replay started (POST /api/replay) or stopped; sticky: a page that connects during it follows it
//
// A lesson is {"id","title","step" (from 0),"steps","stepTitle","stepTitles",
// "html","revealHtml" (presenters, before the reveal),"revealed","commands",
// "held","polls" (questions in the step),"results":[{"line","command",
// "status" (done|passed|failed|error),"text","story"}],"ran","running",
// "failed","report"} (lessons.LessonView). A poll is {"lesson","step",
// "index","count","question","options","labels","votes","revealed","tally"
// (per option, in order),"answer","answerLabel"} (lessons.PollView):
// presenters' frames carry "tally" always, viewers' frames carry "tally"
// and "answer" only once revealed. Lesson and poll frames are queued like
// operation frames, never coalesced away.
//
// The hub (one goroutine owns the viewer set) coalesces state: it keeps only
// the newest State and sends at most one state frame per 50 ms (20 a
// second) per viewer when the State changed in shape (a role, a term, a
// leader, a link's state or latency, a breaker, a crash, a zone, a clock
// setting, the quorum), and at most one per 250 ms (4 a second) when only
// running totals moved: outcome counters, link traffic, the consensus
// log's indexes, replica revisions, clock skew — during a load, all that
// changes (delta.go, sameShape). Operation, fault, reset, lesson and poll
// frames are queued in order.
//
// Two opt-ins make a viewer cheaper during a load; the page uses both
// (/ws?delta=1&panels=…). Clients that use neither get the frames above,
// unchanged.
//
//   - delta=1: after the first State (whole, as above), each State comes
//     as {"type":"delta","base":B,"version":V,"delta":D}: D turns the State
//     of version B — the last this viewer got — into the State of version
//     V. D is a JSON merge patch (RFC 7396: an object holds the members
//     that changed, null removes one, any other value replaces) with one
//     addition: where the State holds an array and D an object, D's keys
//     are indexes of the elements that changed ({"links":{"3":{"bytes":
//     51200}}}). An array whose length changed comes whole. A State that no
//     delta can say comes as a state frame; a viewer whose version is not
//     B should reconnect (the hub never sends one).
//   - panels=checker,load (names from: checker, load; empty: none), and
//     later the message {"type":"panels","show":["load"]} from the viewer
//     when its open tab changes: frames that only a panel shows — the
//     counters fragment (checker) and load frames (load) — go to the viewer
//     only while it shows that panel, and the newest of them at once when
//     it opens it. A viewer that never says gets them all. Unknown names in
//     a message are ignored; in the query they are a 400.
//
// Each viewer has a send buffer of 256 frames; a viewer whose buffer is full
// is dropped, never waited for (the page reconnects and reads the history
// again). The hub's own subscription to the lab holds 256 events; when it
// falls behind, the lab drops events for it and says how many with the next
// (lab.Event.Missed), and the hub sends every viewer a resync frame.
//
// # Story mode: one source of sentences (a-class issue)
//
// What an operation did is said in one place, lab.Say (lab/sentence.go), a
// pure function of the recorded Operation — which keeps the store's
// message and who answered, so the history says what the live answer
// said. Words are {"tag" ("Sold", "Refused", "Stranded", "Fenced off"…),
// "why" (a few words for a shop cell), "text" (the whole sentence),
// "took"}. Operation frames, GET /api/history's operations and the API's
// Outcome answers carry them as "said"; faults carry lab.SayFault's
// sentence as "said":{"text"}. The page shows only these words, so a viewer
// who joins late or reloads reads what a live viewer read. The lesson
// runner's story lines use the same words (lessons.Story).
//
// The page follows the lesson: a lesson view names its "product" (the SKU
// of the last command run that named one, else the step's own,
// lessons.Lesson.Product) and "spans" (when each step ran); every page
// switches its product, score and checker to it, each shop answer names its
// product and step ("TICKET · step 2"), and a step's story lines appear as
// captions over the map (stage-caption) as they happen: each command's
// line is published as soon as it is known (a lesson frame per command).
// After a heal the lab records a "merge" fault once the replicated store's
// copies agree, naming the sales last-writer-wins lost; the page shows it
// over the map too. A lesson view also carries "minutes" (lessons.Lesson.
// Duration: measured from the steps).
//
// Keys for a class: q the step's next question (after the reveal), g a new
// group (POST /api/class/reset). Presenter mode with a lesson open gives the
// lesson the room it needs (question, options, tally and reveal whole at
// 1920×1080 and 1440×900) and the map shrinks; it is remembered per tab.
//
// # Scrub back and replay (scrub-back issue)
//
// GET /api/state?at=T rebuilds the lab at T from the History and the
// network every fault recorded (Fault.Net; lab.MomentAt): nothing runs
// while nobody asks. The page (static/replay.js): the slider above the
// timeline (#scrub-range; its value is milliseconds since the last reset,
// its end now) shows the moment while it is held and comes back to live
// when it is let go (#scrub-when names the moment or "live"); a click on a
// timeline bar or fault (class "seek", data-at) or on an anomaly card's
// button (#anomaly-<store>-moment, data-action="show-moment") shows its
// moment until #past-live or #scrub-live; so does the ⏱ beside each story
// line of a lesson (class "story-moment"; the result's "at"). While a moment shows, body has
// class "past", #past-banner names it, live frames keep the page's state
// current underneath, and any presenter action returns to live first.
// #replay-1x and #replay-4x replay the class since the last reset on this
// page (GET /api/replay/steps) with the story's captions (the sentences
// the live page said: lab.Say, lab.SayFault); body has class "replaying".
// The presenter's #replay-class replays the last 2 minutes at 4× on every
// page: POST /api/replay, the sticky "replay" frame, each page in step
// with the server's clock (docs/api.md). The Checker tab's verdicts carry
// an anomaly card per failed check (#anomaly-<store>, anomaly.templ): the
// smallest counterexample's sentence, a mini-timeline, each answer in
// words (#anomaly-<store>-op-<i>, data-op its ID); the one-line verdict's
// "why?" (#verdict-why-<store>) opens it.
//
// # Page, for test writers
//
// The page works without a build step and without third-party code. The
// element ids below are stable; each interactive one has the same
// data-testid. {r} is a region name (us-east-1), {a}--{b} an unordered pair
// of regions in State order, {store} a store in inventory.Stores (consensus,
// replicated, geo).
//
//	body[data-role]              "presenter" or "viewer"; body.present in presenter mode; body.poll-open while a poll is open,
//	                             body.poll-voting until its reveal; body.lesson-open while a lesson is open
//	                             (data-stores: the stores in column order)
//	role-badge, conn-status      who you are; "live" / "reconnecting…"
//	present-toggle, help-open    presenter mode (key p), help (key ?)
//	help, help-close             help overlay (role=dialog, aria-modal; Tab stays inside while open)
//	bad-token, viewer-note       notices
//	sku                          product SKU; presenter only: stock-both-qty, stock-both (every store), reset (key r)
//
//	The stage (the first screen): the map beside the shops.
//	map                          the SVG map
//	region-{r}                   region group (focusable; Enter/click opens region-menu); region-{r}-role
//	                             ("♛ leader", "follower", "✕ crashed"…); region-{r}-tip (its title: role, term, breakers)
//	link-{a}--{b}                link group (focusable; click/Enter cuts or heals both ways; Shift+click,
//	                             Shift+Enter or right click opens link-menu); data-state up|oneway|cut;
//	                             link-{a}--{b}-fwd / -rev lanes (a→b, b→a), -label ("76 ms", "✂ cut", "✂ one way"),
//	                             -traffic, -dots, -tip (the details)
//	link-menu                    link-menu-cut-both, link-menu-heal-both, link-menu-cut-fwd, link-menu-cut-rev,
//	                             link-menu-rtt, link-menu-rtt-apply, link-menu-close
//	region-menu                  region-menu-crash, region-menu-restart, region-menu-lead, region-menu-isolate, region-menu-close
//	preset-isolate-{r}           isolate a region (keys 1..7)
//	preset-heal                  heal all (key h)
//	shops                        one row per region (shop-{r}, .down when crashed; shop-{r}-role), one column per
//	                             store: buy-{store}-{r}, read-{store}-{r} (presenter only), breaker-{store}-{r} (shown
//	                             when open), outcome-{store}-{r} (data-outcome; "⊘ Refused · 1.0 s" and a reason; the
//	                             full sentence in its title and for screen readers); buy-qty-{r}; read-consistency
//	score-{store}                the product's score since its last stock: score-{store}-sold|refused|soldout|oversold
//	verdict                      the checker's one line per store: verdict-{store}; verdict-refresh (presenter)
//	stage-caption                story mode: the running step's newest story lines (or a merge) over the map's foot
//	                             outcome cells: .o-head (tag, time, .o-ctx "SKU · step N"), .o-why; data-sku
//
//	The dock (tabs below the stage): tab-{lesson|timeline|checker|stores|load} and panel-….
//	lesson-panel                 the lesson: lesson-select (presenter; "Title (4 steps · ~7 min)"), lesson-name (viewers),
//	                             lesson-handout (link to the handout), group-reset (key g), lesson-steps,
//	                             lesson-progress ("Step 2 of 4"), lesson-step (title and the prose that may be
//	                             shown), lesson-status (report), lesson-effects (the story: one line per effect,
//	                             ✓ as expected / ✗ not), lesson-details with lesson-commands and lesson-command-{i}
//	                             (data-status pending|running|done|passed|failed|error); presenter only:
//	                             lesson-prev (key b), lesson-next, lesson-run (key n), lesson-notes (the answer,
//	                             not in presenter mode)
//	poll                         the open question (hidden when none; .revealed): poll-question, poll-option-{i}
//	                             (buttons showing words, data-option the token, aria-pressed for your vote),
//	                             poll-tally (hidden on the projector until the reveal), poll-answer, poll-status;
//	                             presenter only: poll-reveal (key v), poll-next
//	timeline, timeline-scroll    space-time diagram (SVG; bars .bar.o-{outcome}[data-op=id], at least 10 px wide;
//	                             faults dashed red, heals solid green); timeline-follow; timeline-list (screen readers)
//	verdict-full                 the whole verdict: verdict-full-{store}, verdict-visual-{store} (link to /api/check/visual)
//	counters                     counters-table; counter-{store}-{ok|soldOut|unavailable|failFast|conflict|overloaded|oversold|staleReads}
//	                             and a row for any other counter the lab reports
//	store-explainer, quorum-panel  quorum-w, quorum-r (ranges), quorum-w-value, quorum-r-value, quorum-indicator,
//	                             quorum-apply, quorum-preset-global, quorum-preset-strict; bridge-region, preset-bridge;
//	                             speed (presenter: the network's speed, PUT /api/network/speed)
//	glossary                     in help: every term the page shows (glossary-{id})
//	load-slot                    where the load panel goes (tab-load): the stores side by side, each its verdict
//	                             first, then its plots as tall as the dock allows (110–170 px, load-panel's
//	                             data-plot-height; the tab scrolls to them when the dock is shorter)
//	load panel (load.templ)      load-panel (data-state, data-samples, data-bands), load-rate, load-mix, load-duration,
//	                             load-start, load-stop, load-status, load-store-{store}, load-verdict-{store},
//	                             load-tput-{store}, load-p99-{store}, load-oversold-{store}, load-checked
//	join, join-url, join-qr      audience link and QR code (presenter mode, beside the dock; covers nothing)
//	toast                        status and error messages (aria-live)
//
// Viewers get the same page without the shops' buttons and with every other
// mutating control disabled; they can vote. The presenter's n key moves the
// lesson one beat forward: it runs the current step if it has not run,
// otherwise it goes to the next step and runs it — unless that step asks the
// audience, which it opens for votes (press n again to run it); v reveals
// the answer, b goes back a step. window.caplab offers on(type, fn) for
// frames ("state", "operation", "fault", "reset", "fragment", "lesson",
// "poll", and "lesson-next" from the n key), state() and api(method, path,
// body). A load panel mounts itself in #load-slot and selects its tab with
// a click on #tab-load.
package web
