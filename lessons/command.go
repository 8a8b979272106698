package lessons

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// Limits from LESSONS.md and API.md.
const (
	MaxQty       = inventory.MaxQty
	MaxStock     = inventory.MaxStock
	MaxLatencyMs = lab.MaxRTTMs
	MaxWait      = 5 * time.Minute
)

// commandNames lists every command word, in the order of LESSONS.md.
func commandNames() []string {
	return []string{"reset", "stock", "partition", "cut", "heal", "latency", "crash", "restart", "lead", "quorum", "buy", "read", "wait", "expect", "ask", "load", "clock", "pause", "reserve", "groupcommit"}
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
	case "groupcommit":
		return "groupcommit on|off"
	case "buy":
		return "buy STORE SKU from REGION [qty N] [expect OUTCOME]"
	case "read":
		return "read STORE SKU from REGION [linearizable|serializable|cached] [expect OUTCOME]"
	case "wait":
		return "wait DURATION  or  wait leader  or  wait converged"
	case "expect leader":
		return "expect leader in A,B"
	case "expect read":
		return "expect read STORE SKU from REGION [linearizable|serializable|cached] = N"
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
	digitsPattern  = regexp.MustCompile(`^[0-9]+$`)
	latencyPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(ms)?$`)
)

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
			msg += fmt.Sprintf("; did you mean %s?", inventory.Echo(s))
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
				st.Store = inventory.Geo
			}
			if st.Store != inventory.Geo {
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
	case "groupcommit":
		switch t := lp.next("on or off"); {
		case t.is("on"):
			a = GroupCommit{On: true}
		case t.is("off"):
			a = GroupCommit{}
		default:
			lp.fail("groupcommit: expected on or off, got %s (usage: %s)", t.show(), usage("groupcommit"))
		}
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
				lp.fail("partition: region %s is in more than one group (expected every lesson region in exactly one group)", inventory.Echo(r))
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
			k := inventory.Kind(o.text)
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
		k := inventory.Kind(o.text)
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
	if err != nil || d > lab.MaxClockOffset || d < -lab.MaxClockOffset {
		lp.fail("clock: offset must be a duration within ±1h, like +5s or -200ms, got %s", t.show())
	}
	c.Offset = d
	if t, ok := lp.peek(); ok && t.is("drift") {
		lp.i++
		p := lp.next("PPM")
		v, err := strconv.ParseFloat(strings.TrimSuffix(p.text, "ppm"), 64)
		if err != nil || v < -lab.MaxClockDrift || v > lab.MaxClockDrift {
			lp.fail("clock: drift must be a number of ppm from %d to %d, got %s", -lab.MaxClockDrift, lab.MaxClockDrift, p.show())
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
	if err != nil || d <= 0 || d > inventory.MaxPause {
		lp.fail("pause: duration must be more than 0 and at most %v, like 8s, got %s", inventory.MaxPause, t.show())
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
		k := inventory.Kind(o.text)
		if !slices.Contains(outcomeKinds(), k) {
			lp.fail("unknown outcome %s (expected one of: ok, sold_out, unavailable, fail_fast, conflict)", o.show())
		}
		r.Expect = k
	}
	return r
}
