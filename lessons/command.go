package lessons

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"caplab/lab"
)

// Limits from LESSONS.md and API.md.
const (
	MaxQty       = 1000
	MaxStock     = 1000000
	MaxLatencyMs = 5000
	MaxWait      = 5 * time.Minute
)

// commandNames lists every command word, in the order of LESSONS.md.
func commandNames() []string {
	return []string{"reset", "stock", "partition", "cut", "heal", "latency", "crash", "restart", "lead", "quorum", "buy", "read", "wait", "expect", "ask", "load", "clock", "pause", "reserve"}
}

// usage is each command's syntax, quoted in error messages.
func usage(cmd string) string {
	switch cmd {
	case "reset":
		return "reset"
	case "stock":
		return "stock SKU N [on STORE] [split A=4,B=6]"
	case "partition":
		return "partition A,B | C"
	case "cut":
		return "cut A B  or  cut A -> B"
	case "heal":
		return "heal  or  heal A B  or  heal A -> B"
	case "latency":
		return "latency A B MS  or  latency A -> B MS"
	case "crash":
		return "crash REGION  or  crash ZONE (e.g. us-east-1a)"
	case "restart":
		return "restart REGION  or  restart ZONE"
	case "lead":
		return "lead REGION"
	case "quorum":
		return "quorum W R"
	case "buy":
		return "buy STORE SKU from REGION [qty N] [expect OUTCOME]"
	case "read":
		return "read STORE SKU from REGION [linearizable|serializable] [expect OUTCOME]"
	case "wait":
		return "wait DURATION  or  wait leader  or  wait converged"
	case "expect leader":
		return "expect leader in A,B"
	case "expect read":
		return "expect read STORE SKU from REGION [linearizable|serializable] = N"
	case "expect check":
		return "expect check STORE SKU linearizable|not linearizable|oversold = N|oversold >= N"
	case "expect":
		return "expect leader ... | expect read ... | expect check ... | expect load ..."
	case "load":
		return "load start [rate N] [mix R] [for DURATION] [skus N] [stock N] [on STORE,…]  or  load stop"
	case "load start":
		return "load start [rate N] [mix R] [for DURATION] [skus N] [stock N] [on STORE,…]"
	case "expect load":
		return "expect load STORE [in REGION] availability >= P% | availability < P% | oversold = N | oversold >= N | p99 < MS | p99 >= MS [last DURATION]"
	case "ask":
		return `ask "QUESTION" [options X|Y|Z] answer X`
	case "clock":
		return "clock REGION +5s [drift PPM]  or  clock reset"
	case "pause":
		return "pause shop REGION DURATION"
	case "reserve":
		return "reserve SKU from REGION [fenced] [expect OUTCOME]"
	}
	return cmd
}

var (
	skuPattern     = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	digitsPattern  = regexp.MustCompile(`^[0-9]+$`)
	latencyPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(ms)?$`)
)

// token is one word, quoted string or punctuation mark of a command line.
type token struct {
	text   string
	quoted bool
}

func (t token) is(s string) bool { return !t.quoted && t.text == s }

// punct reports whether t is one of the punctuation tokens.
func (t token) punct() bool {
	if t.quoted {
		return false
	}
	switch t.text {
	case "|", ",", "->", "=", ">=":
		return true
	}
	return false
}

// show quotes a token for an error message.
func (t token) show() string { return lab.Echo(t.text) }

// tokenize splits a command line. It returns the tokens and the line without
// its comment.
func tokenize(s string) ([]token, string, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '#':
			return toks, strings.TrimSpace(s[:i]), nil
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, "", fmt.Errorf("unterminated quoted string %s (expected a closing \")", s[i:])
			}
			v, err := strconv.Unquote(s[i : j+1])
			if err != nil {
				return nil, "", fmt.Errorf("malformed quoted string %s (expected Go-style escapes such as \\\" and \\\\)", s[i:j+1])
			}
			toks = append(toks, token{text: v, quoted: true})
			i = j + 1
		case c == '|' || c == ',' || c == '=':
			toks = append(toks, token{text: string(c)})
			i++
		case strings.HasPrefix(s[i:], "->") || strings.HasPrefix(s[i:], ">="):
			toks = append(toks, token{text: s[i : i+2]})
			i += 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n#\"|,=", rune(s[j])) &&
				!strings.HasPrefix(s[j:], "->") && !strings.HasPrefix(s[j:], ">=") {
				j++
			}
			toks = append(toks, token{text: s[i:j]})
			i = j
		}
	}
	return toks, strings.TrimSpace(s), nil
}

// lineParser parses the arguments of one command.
type lineParser struct {
	p    *parser
	cmd  string // command name for messages, e.g. "buy" or "expect read"
	toks []token
	i    int
}

// failure is a parse error of the current line; it carries the message.
type failure struct{ msg string }

func (f failure) Error() string { return f.msg }

func (lp *lineParser) fail(format string, args ...any) {
	panic(failure{fmt.Sprintf(format, args...)})
}

func (lp *lineParser) more() bool { return lp.i < len(lp.toks) }

func (lp *lineParser) peek() (token, bool) {
	if lp.i < len(lp.toks) {
		return lp.toks[lp.i], true
	}
	return token{}, false
}

// next returns the next token, which must be a word described by what.
func (lp *lineParser) next(what string) token {
	t, ok := lp.peek()
	if !ok {
		lp.fail("%s: missing %s (usage: %s)", lp.cmd, what, usage(lp.cmd))
	}
	if t.punct() {
		lp.fail("%s: unexpected %s where %s was expected (usage: %s)", lp.cmd, t.show(), what, usage(lp.cmd))
	}
	lp.i++
	return t
}

// keyword consumes the word kw.
func (lp *lineParser) keyword(kw, after string) {
	t, ok := lp.peek()
	if !ok {
		lp.fail("%s: missing %q after %s (usage: %s)", lp.cmd, kw, after, usage(lp.cmd))
	}
	if !t.is(kw) {
		lp.fail("%s: expected %q after %s, got %s (usage: %s)", lp.cmd, kw, after, t.show(), usage(lp.cmd))
	}
	lp.i++
}

// end fails when tokens are left over.
func (lp *lineParser) end() {
	if t, ok := lp.peek(); ok {
		lp.fail("%s: unexpected %s at the end (usage: %s)", lp.cmd, t.show(), usage(lp.cmd))
	}
}

func (lp *lineParser) store() lab.Store {
	t := lp.next("STORE (consensus, replicated or geo)")
	switch s := lab.Store(t.text); s {
	case lab.Consensus, lab.Replicated, lab.Geo:
		return s
	}
	lp.fail("unknown store %s (expected consensus, replicated or geo)", t.show())
	return ""
}

func (lp *lineParser) sku() string {
	t := lp.next("SKU")
	if !skuPattern.MatchString(t.text) {
		lp.fail("invalid SKU %s (expected 1 to 64 characters from A-Z, a-z, 0-9, '.', '_', '-')", t.show())
	}
	return t.text
}

func (lp *lineParser) region() string {
	t := lp.next("REGION")
	return lp.checkRegion(t)
}

func (lp *lineParser) checkRegion(t token) string {
	if slices.Contains(lp.p.regions, t.text) {
		return t.text
	}
	lesson := strings.Join(lp.p.regions, ", ")
	if slices.Contains(KnownRegions(), t.text) {
		lp.fail("region %s is not in this lesson (lesson regions: %s; add it to regions: in the front matter)", t.show(), lesson)
	}
	lp.fail("unknown region %s (lesson regions: %s)", t.show(), lesson)
	return ""
}

// regionOrZone parses a lesson region or one of its zones (us-east-1a:
// the region's name and a zone letter a to c).
func (lp *lineParser) regionOrZone() string {
	t := lp.next("REGION or ZONE")
	if n := len(t.text); n > 1 && t.text[n-1] >= 'a' && t.text[n-1] <= 'c' && slices.Contains(lp.p.regions, t.text[:n-1]) {
		return t.text
	}
	return lp.checkRegion(t)
}

// split parses "A=4,B=6" (commas optional): units per lesson region,
// adding up to total; regions not named get 0.
func (lp *lineParser) split(total int) map[string]int {
	out := map[string]int{}
	sum := 0
	for lp.more() {
		if t, _ := lp.peek(); t.is(",") {
			lp.i++
			continue
		}
		r := lp.region()
		if _, dup := out[r]; dup {
			lp.fail("stock: region %s is split twice", strconv.Quote(r))
		}
		lp.keyword("=", "the region")
		n := lp.integer("units", 0, MaxStock)
		out[r] = n
		sum += n
	}
	if len(out) == 0 {
		lp.fail("stock: split needs REGION=N pairs (usage: %s)", usage("stock"))
	}
	if sum != total {
		lp.fail("stock: the split adds up to %d but N is %d", sum, total)
	}
	return out
}

// integer parses a whole number in [lo, hi].
func (lp *lineParser) integer(what string, lo, hi int) int {
	t := lp.next(what)
	n, err := strconv.Atoi(t.text)
	if !digitsPattern.MatchString(t.text) || err != nil || n < lo || n > hi {
		lp.fail("%s: %s must be a whole number from %d to %d, got %s", lp.cmd, what, lo, hi, t.show())
	}
	return n
}

// link parses "A B" or "A -> B".
func (lp *lineParser) link() (from, to string, oneWay bool) {
	from = lp.region()
	if t, ok := lp.peek(); ok && t.is("->") {
		lp.i++
		oneWay = true
	}
	to = lp.region()
	if from == to {
		lp.fail("%s: a region has no link to itself (got %s twice; expected two different regions)", lp.cmd, strconv.Quote(from))
	}
	return from, to, oneWay
}

// regionList parses "A,B,C" (commas optional) up to the end or a stop word.
func (lp *lineParser) regionList(stop string) []string {
	var out []string
	for lp.more() {
		t, _ := lp.peek()
		if stop != "" && t.is(stop) {
			break
		}
		lp.i++
		if t.is(",") {
			continue
		}
		if t.punct() {
			lp.fail("%s: unexpected %s in a region list (usage: %s)", lp.cmd, t.show(), usage(lp.cmd))
		}
		r := lp.checkRegion(t)
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func (lp *lineParser) consistency() lab.Consistency {
	if t, ok := lp.peek(); ok {
		switch c := lab.Consistency(t.text); c {
		case lab.Linearizable, lab.Serializable:
			lp.i++
			return c
		}
	}
	return ""
}

// command parses one line of a lab block. It reports false for blank and
// comment lines and for lines with errors (which it records).
func (p *parser) command(line int, s string) (cmd Command, ok bool) {
	toks, source, err := tokenize(s)
	if err != nil {
		p.errorf(line, "%s", err)
		return Command{}, false
	}
	if len(toks) == 0 {
		return Command{}, false
	}
	defer func() {
		if r := recover(); r != nil {
			f, isFailure := r.(failure)
			if !isFailure {
				panic(r)
			}
			p.errorf(line, "%s", f.msg)
			cmd, ok = Command{}, false
		}
	}()
	name := toks[0]
	lp := &lineParser{p: p, cmd: name.text, toks: toks, i: 1}
	if name.quoted || !slices.Contains(commandNames(), name.text) {
		msg := fmt.Sprintf("unknown command %s (expected one of: %s)", name.show(), strings.Join(commandNames(), ", "))
		if s := closest(name.text, commandNames()); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", lab.Echo(s))
		}
		lp.fail("%s", msg)
	}
	var a Action
	switch name.text {
	case "reset":
		a = Reset{}
	case "stock":
		st := Stock{SKU: lp.sku(), Quantity: lp.integer("N", 0, MaxStock)}
		if t, ok := lp.peek(); ok && !t.is("split") {
			lp.keyword("on", "the quantity")
			st.Store = lp.store()
		}
		if lp.more() {
			lp.keyword("split", "the store")
			st.Split = lp.split(st.Quantity)
			if st.Store == "" {
				st.Store = lab.Geo
			}
			if st.Store != lab.Geo {
				lp.fail("stock: only the geo store takes a split (got on %s)", st.Store)
			}
		}
		a = st
	case "partition":
		a = lp.partition()
	case "cut":
		c := Cut{}
		c.From, c.To, c.OneWay = lp.link()
		a = c
	case "heal":
		h := Heal{}
		if lp.more() {
			h.From, h.To, h.OneWay = lp.link()
		}
		a = h
	case "latency":
		l := Latency{}
		l.From, l.To, l.OneWay = lp.link()
		t := lp.next("MS (round-trip time in milliseconds)")
		ms, err := strconv.ParseFloat(strings.TrimSuffix(t.text, "ms"), 64)
		if !latencyPattern.MatchString(t.text) || err != nil || ms > MaxLatencyMs {
			lp.fail("latency: MS must be a number of milliseconds from 0 to %d, got %s", MaxLatencyMs, t.show())
		}
		l.RTTMs = ms
		a = l
	case "crash":
		a = Crash{Region: lp.regionOrZone()}
	case "restart":
		a = Restart{Region: lp.regionOrZone()}
	case "lead":
		a = Lead{Region: lp.region()}
	case "quorum":
		n := len(p.regions)
		a = Quorum{W: lp.integer("W", 1, n), R: lp.integer("R", 1, n)}
	case "buy":
		a = lp.buy()
	case "read":
		a = lp.read()
	case "wait":
		a = lp.wait()
	case "expect":
		a = lp.expect()
	case "ask":
		a = lp.ask(line)
	case "load":
		a = lp.load() // load.go
	case "clock":
		a = lp.clock()
	case "pause":
		a = lp.pause()
	case "reserve":
		a = lp.reserve()
	}
	lp.end()
	return Command{Line: line, Source: source, Action: a}, true
}

func (lp *lineParser) partition() Partition {
	var groups [][]string
	for {
		g := lp.regionList("|")
		if len(g) == 0 {
			lp.fail("partition: empty group (usage: %s, every lesson region in exactly one group)", usage("partition"))
		}
		groups = append(groups, g)
		if !lp.more() {
			break
		}
		lp.i++ // the "|"
	}
	if len(groups) < 2 {
		lp.fail("partition: needs at least two groups separated by | (usage: %s)", usage("partition"))
	}
	seen := map[string]bool{}
	for _, g := range groups {
		for _, r := range g {
			if seen[r] {
				lp.fail("partition: region %s is in more than one group (expected every lesson region in exactly one group)", lab.Echo(r))
			}
			seen[r] = true
		}
	}
	var missing []string
	for _, r := range lp.p.regions {
		if !seen[r] {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		lp.fail("partition: %s in no group (expected every lesson region in exactly one group: %s)", strings.Join(missing, ", "), strings.Join(lp.p.regions, ", "))
	}
	return Partition{Groups: groups}
}

func outcomeKinds() []lab.Kind {
	return lab.Kinds
}

// kindList spells the outcomes for an error: "ok, sold_out, …".
func kindList() string {
	names := make([]string, len(lab.Kinds))
	for i, k := range lab.Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

func (lp *lineParser) buy() Buy {
	b := Buy{Store: lp.store(), SKU: lp.sku(), Qty: 1}
	lp.keyword("from", "the SKU")
	b.Region = lp.region()
	seenQty, seenExpect := false, false
	for lp.more() {
		t := lp.next(`"qty" or "expect"`)
		switch {
		case t.is("qty") && !seenQty:
			seenQty = true
			b.Qty = lp.integer("qty", 1, MaxQty)
		case t.is("expect") && !seenExpect:
			seenExpect = true
			o := lp.next("OUTCOME")
			k := lab.Kind(o.text)
			if !slices.Contains(outcomeKinds(), k) {
				lp.fail("unknown outcome %s (expected one of: %s)", o.show(), kindList())
			}
			b.Expect = k
		default:
			lp.fail("buy: unexpected %s (usage: %s)", t.show(), usage("buy"))
		}
	}
	return b
}

func (lp *lineParser) wait() Wait {
	t := lp.next("DURATION, leader or converged")
	switch {
	case t.is("leader"):
		return Wait{For: WaitLeader}
	case t.is("converged"):
		return Wait{For: WaitConverged}
	}
	d, err := time.ParseDuration(t.text)
	if err != nil {
		lp.fail("wait: invalid duration %s (expected a duration like 2s or 500ms, or leader, or converged)", t.show())
	}
	if d <= 0 || d > MaxWait {
		lp.fail("wait: duration %s out of range (expected more than 0 and at most 5m)", t.show())
	}
	return Wait{For: WaitDuration, Duration: d}
}

func (lp *lineParser) expect() Action {
	t := lp.next("what to expect (leader, read, check or load)")
	switch {
	case t.is("load"):
		return lp.expectLoad() // load.go
	case t.is("leader"):
		lp.cmd = "expect leader"
		lp.keyword("in", `"leader"`)
		regions := lp.regionList("")
		if len(regions) == 0 {
			lp.fail("expect leader: missing regions (usage: %s)", usage(lp.cmd))
		}
		return ExpectLeader{Regions: regions}
	case t.is("read"):
		lp.cmd = "expect read"
		e := ExpectRead{Store: lp.store(), SKU: lp.sku()}
		lp.keyword("from", "the SKU")
		e.Region = lp.region()
		e.Consistency = lp.consistency()
		eq, ok := lp.peek()
		if !ok || !eq.is("=") {
			what := "the end of the line"
			if ok {
				what = eq.show()
			}
			lp.fail("expect read: expected \"= N\", got %s (usage: %s)", what, usage(lp.cmd))
		}
		lp.i++
		e.Quantity = lp.integer("N", 0, MaxStock)
		return e
	case t.is("check"):
		lp.cmd = "expect check"
		store, sku := lp.store(), lp.sku()
		v := lp.next("linearizable, not linearizable or oversold")
		switch {
		case v.is("linearizable"):
			return ExpectLinearizable{Store: store, SKU: sku, Want: true}
		case v.is("not"):
			lp.keyword("linearizable", `"not"`)
			return ExpectLinearizable{Store: store, SKU: sku, Want: false}
		case v.is("oversold"):
			op, ok := lp.peek()
			if !ok || !(op.is("=") || op.is(">=")) {
				lp.fail("expect check: expected = or >= after \"oversold\" (usage: %s)", usage(lp.cmd))
			}
			lp.i++
			return ExpectOversold{Store: store, SKU: sku, AtLeast: op.is(">="), N: lp.integer("N", 0, MaxStock)}
		}
		lp.fail("expect check: unknown verdict %s (expected linearizable, not linearizable, oversold = N or oversold >= N)", v.show())
	}
	lp.fail("unknown expectation %s (expected leader, read, check or load; usage: %s)", t.show(), usage("expect"))
	return nil
}

// phrase joins the words up to the next "|" or the stop word.
func (lp *lineParser) phrase(stop string) string {
	var words []string
	for lp.more() {
		t, _ := lp.peek()
		if t.is("|") || t.is(stop) {
			break
		}
		if t.punct() {
			lp.fail("ask: unexpected %s (put options with punctuation in quotes; usage: %s)", t.show(), usage("ask"))
		}
		words = append(words, t.text)
		lp.i++
	}
	return strings.Join(words, " ")
}

func (lp *lineParser) ask(line int) Ask {
	q, ok := lp.peek()
	if !ok || !q.quoted {
		lp.fail("ask: the question must be in double quotes (usage: %s)", usage("ask"))
	}
	lp.i++
	if strings.TrimSpace(q.text) == "" {
		lp.fail("ask: empty question (usage: %s)", usage("ask"))
	}
	poll := Poll{Line: line, Question: q.text, Options: []string{"yes", "no"}}
	if t, ok := lp.peek(); ok && t.is("options") {
		lp.i++
		poll.Options = nil
		for {
			o := lp.phrase("answer")
			if o == "" {
				lp.fail("ask: empty option (expected options separated by |, like options yes|no|maybe)")
			}
			if slices.Contains(poll.Options, o) {
				lp.fail("ask: option %s is listed twice", lab.Echo(o))
			}
			poll.Options = append(poll.Options, o)
			if t, ok := lp.peek(); !ok || !t.is("|") {
				break
			}
			lp.i++
		}
		if len(poll.Options) < 2 {
			lp.fail("ask: needs at least two options separated by | (got %s)", lab.Echo(poll.Options[0]))
		}
	}
	lp.keyword("answer", "the question and options")
	poll.Answer = lp.phrase("")
	if poll.Answer == "" {
		lp.fail("ask: missing answer (usage: %s)", usage("ask"))
	}
	if !slices.Contains(poll.Options, poll.Answer) {
		lp.fail("ask: answer %s is not one of the options (options: %s)", lab.Echo(poll.Answer), strings.Join(poll.Options, " | "))
	}
	return Ask{Poll: poll}
}

// closest is the candidate within edit distance 2 of s, or "".
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// read parses "read STORE SKU from REGION [CONSISTENCY] [expect OUTCOME]";
// the expect is an extension (docs/lessons.md) that recorded lessons use
// for reads that did not answer ok.
func (lp *lineParser) read() Read {
	r := Read{Store: lp.store(), SKU: lp.sku()}
	lp.keyword("from", "the SKU")
	r.Region = lp.region()
	r.Consistency = lp.consistency()
	if t, ok := lp.peek(); ok && t.is("expect") {
		lp.i++
		o := lp.next("OUTCOME")
		k := lab.Kind(o.text)
		if !slices.Contains(outcomeKinds(), k) {
			lp.fail("unknown outcome %s (expected one of: ok, sold_out, unavailable, fail_fast, conflict)", o.show())
		}
		r.Expect = k
	}
	return r
}

// clock parses "clock REGION OFFSET [drift PPM]" or "clock reset".
func (lp *lineParser) clock() Clock {
	if t, ok := lp.peek(); ok && t.is("reset") {
		lp.i++
		return Clock{Reset: true}
	}
	c := Clock{Region: lp.region()}
	t := lp.next("OFFSET (like +5s or -200ms)")
	d, err := time.ParseDuration(t.text)
	if err != nil || d > time.Hour || d < -time.Hour {
		lp.fail("clock: offset must be a duration within ±1h, like +5s or -200ms, got %s", t.show())
	}
	c.Offset = d
	if t, ok := lp.peek(); ok && t.is("drift") {
		lp.i++
		p := lp.next("PPM")
		v, err := strconv.ParseFloat(strings.TrimSuffix(p.text, "ppm"), 64)
		if err != nil || v < -100000 || v > 100000 {
			lp.fail("clock: drift must be a number of ppm from -100000 to 100000, got %s", p.show())
		}
		c.DriftPpm = v
	}
	return c
}

// pause parses "pause shop REGION DURATION".
func (lp *lineParser) pause() PauseShop {
	lp.keyword("shop", `"pause"`)
	p := PauseShop{Region: lp.region()}
	t := lp.next("DURATION (like 8s)")
	d, err := time.ParseDuration(t.text)
	if err != nil || d <= 0 || d > lab.MaxPause {
		lp.fail("pause: duration must be more than 0 and at most %v, like 8s, got %s", lab.MaxPause, t.show())
	}
	p.Duration = d
	return p
}

// reserve parses "reserve SKU from REGION [fenced] [expect OUTCOME]".
func (lp *lineParser) reserve() Reserve {
	r := Reserve{SKU: lp.sku()}
	lp.keyword("from", "the SKU")
	r.Region = lp.region()
	if t, ok := lp.peek(); ok && t.is("fenced") {
		lp.i++
		r.Fenced = true
	}
	if t, ok := lp.peek(); ok && t.is("expect") {
		lp.i++
		o := lp.next("OUTCOME")
		k := lab.Kind(o.text)
		if !slices.Contains(outcomeKinds(), k) {
			lp.fail("unknown outcome %s (expected one of: ok, sold_out, unavailable, fail_fast, conflict)", o.show())
		}
		r.Expect = k
	}
	return r
}
