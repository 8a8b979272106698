// Package lessons reads, checks and runs caplab lessons: Markdown files in
// which prose explains the CAP theorem to a learner and fenced ```lab blocks
// drive the lab and assert what it must do.
//
// # Format
//
// The format is LESSONS.md (v1) in the design folder; this is a summary.
// A lesson starts with optional front matter between two "---" lines:
//
//	---
//	title: The last iPhone
//	summary: Two regions, one unit, one partition.
//	regions: [us-east-1, eu-west-1, ap-southeast-1]
//	---
//
// Only title, summary and regions are allowed; values may be quoted;
// regions is a bracketed list of catalogue regions (see KnownRegions) and
// defaults to DefaultRegions; title defaults to the lesson's name.
//
// Every "## " heading starts a step titled by the heading's text. Prose
// before the first heading is the lesson's intro. Inside a step, fenced
// code blocks whose info string is "lab" hold commands, one per line, with
// "#" starting a comment outside double quotes:
//
//	reset
//	stock IPHONE-15-PRO 1
//	partition us-east-1,eu-west-1 | ap-southeast-1
//	buy consensus IPHONE-15-PRO from ap-southeast-1 expect unavailable
//	ask "Can Ireland still sell?" answer yes
//
// Parse turns each line into a Command holding a typed Action (Buy,
// Partition, ExpectRead, ...). It reports every problem in a file, each as
// an Error printed "file:line: message", where the line counts from the top
// of the file, front matter included.
//
// # Choices where LESSONS.md is silent
//
//   - ask without options offers "yes | no"; the answer must be one of the
//     options, exactly as written. Options are separated by "|", may hold
//     spaces, and may be double-quoted.
//   - A read without a consistency is linearizable (as in the HTTP API).
//     A consistency on a replicated read is accepted and passed on; that
//     store's reads follow R.
//   - buy's "qty N" and "expect OUTCOME" may come in either order.
//   - Extensions: "heal A -> B" heals one direction only and
//     "latency A -> B MS" sets one direction only; MS may end in "ms".
//   - "partition" needs at least two groups; regions in a group may be
//     separated by commas or spaces.
//   - A level-2 setext heading (text underlined with "---") also starts a
//     step; it renders as the same heading. Lab blocks inside lists or
//     quotes are errors, since a reader would not expect them to run.
//   - If the intro (before the first "## ") holds lab blocks, it becomes the
//     first step, titled by the lesson's title, and Lesson.Intro is empty.
//   - A lesson with no steps at all is an error.
//   - Prose is rendered with goldmark's defaults: raw HTML is omitted and
//     dangerous link schemes are dropped, so a user's lesson cannot script
//     the page. Link reference definitions apply within their own step.
//
// # Running
//
// A Runner runs a parsed lesson against anything satisfying Lab (the real
// *lab.Lab does): RunStep for a presenter stepping through, RunAll for a
// headless run. Both write progress lines, one per command, marking met
// expectations with ✓, unmet ones with ✗ and predictions with ?; each
// command also yields a CommandResult for a browser panel. A run stops at
// the first unmet expectation or lab error, returned as a *Failure whose
// message reads "file:line: expected X, got Y". How the runner reads the
// commands:
//
//   - stock writes to both stores (consensus first) unless "on STORE", from
//     the consensus leader's region (the first lesson region when there is
//     none). A stock that is not answered ok stops the run.
//   - buy and read without an expectation print their outcome and never
//     fail; "expect read" fails on any outcome but ok with that quantity.
//   - "wait DURATION" waits DURATION × max(latency scale, 1). "wait leader",
//     "wait converged" and "lead" give up after BaseWaitTimeout × max(latency
//     scale, 1), or Runner.WaitTimeout. "wait converged" waits for the
//     replicated store to converge and for every running region's consensus
//     member to know a leader and apply everything committed.
//   - "expect leader in" looks once; use "wait leader" first.
//   - ask never blocks: it prints question, options and answer, and the step
//     exposes it as a Poll for a browser to turn into a vote.
//
// Runner.NoTiming leaves latencies and lab messages out of the output, so
// that transcripts can be compared; testdata/golden holds two.
//
// # Catalogue and command line
//
// Builtin parses the embedded course (builtin/NN-name.md, named without
// the numeric prefix: "last-iphone"). LoadDir parses an instructor's
// directory, naming lessons after their files without ".md" and skipping
// files with errors. In a Catalog a user lesson named like a built-in one
// replaces it, in its place; other user lessons follow, sorted by name.
//
// Main implements "caplab lessons list | check | run | help" for main.go;
// "check" also prints Spoilers' warnings (prose before an ask that names
// the answer) without failing.
//
// # A classroom: Session
//
// Session is the lesson a presenter shows a room: the open lesson and step,
// what each step did when it ran (StepRun, with a Story line per command),
// the open question, the votes and the reveal. It is plain state, without
// I/O or locking; the web server guards it and sends its views. View and
// PollView apply the spoiler rule of docs/lessons.md: a step's Pose (the
// prose up to the lab block holding its first ask) shows at once, its
// Reveal (the prose after that block) only after the step's questions are
// revealed or the step ran; a viewer never sees an expectation of a step
// that has not run, nor a tally or an answer before the reveal. Options
// reach pages as OptionLabel's words; votes keep the tokens.
package lessons
