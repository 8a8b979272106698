package lab

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"caplab/lab/inventory"
	"caplab/nodes"
)

// Outcome sentences: one place that says what an operation did, in a
// learner's words, as a pure function of the recorded Operation. The page
// shows them in the shops (live frames and the history carry them), the
// lesson runner's story lines use them, so a viewer who joins late or
// reloads reads the same words as one who watched it happen.

// Words are an operation's outcome in words: Tag for the shop's headline
// ("Sold", "Refused", "Stranded"), Why in a few words for the shop cell
// ("cannot reach a majority"), Text the whole sentence (the cell's title,
// screen readers, the timeline).
type Words struct {
	Tag  string `json:"tag"`
	Why  string `json:"why"`
	Text string `json:"text"`
	Took string `json:"took,omitempty"` // how long it took ("8 ms", "2.0 s")
}

// keepWords keeps on op what Say needs of the store's answer: its message
// and who confirmed it. A load's operations (never shown one by one) keep
// neither, so that a long run's history costs no more than before.
func keepWords(op *inventory.Operation, out inventory.Outcome, load bool) {
	if load {
		return
	}
	op.Message = out.Message
	if len(out.AnsweredBy) > 0 {
		op.AnsweredBy = out.AnsweredBy
	}
}

// Say is what op did, in words. It reads only op (its outcome, numbers,
// the store's message and who answered), so the history says what the
// live answer said.
func Say(op inventory.Operation) Words {
	msg := strings.TrimSpace(op.Message)
	low := strings.ToLower(msg)
	w := Words{}
	switch op.Op {
	case inventory.OpRead:
		w = sayRead(op, low)
	case inventory.OpStock:
		w = sayStock(op, msg)
	default:
		w = sayBuy(op, low)
	}
	full := msg
	if full == "" {
		full = w.Tag
		if w.Why != "" {
			full += ": " + w.Why
		}
	}
	if !strings.HasSuffix(full, ".") && !strings.HasSuffix(full, "!") && !strings.HasSuffix(full, "?") {
		full += "."
	}
	w.Took = took(op)
	w.Text = full + " " + w.Took + ", " + whoAnswered(op) + "."
	return w
}

func sayRead(op inventory.Operation, low string) Words {
	if op.Outcome == inventory.OK {
		why := strconv.Itoa(op.Quantity) + " in stock"
		switch {
		case op.Consistency == inventory.Cached:
			why += " (the region's cache, may be stale)"
		case op.Consistency == inventory.Serializable || strings.Contains(low, "own copy"):
			why += " (local copy, may be stale)"
		case op.Store == inventory.Geo && strings.Contains(low, "stranded"):
			why += " here; the rest is out of reach"
		}
		return Words{Tag: "Read", Why: why}
	}
	w := sayBuy(op, low)
	w.Tag = "Read " + strings.ToLower(w.Tag)
	return w
}

func sayStock(op inventory.Operation, msg string) Words {
	if op.Outcome == inventory.OK {
		why := units(op.Qty)
		if len(op.Allocations) > 0 {
			why += ", split " + splitWords(op.Allocations)
		}
		return Words{Tag: "Stocked", Why: why}
	}
	w := sayBuy(op, strings.ToLower(msg))
	w.Tag = "Not stocked"
	return w
}

// sayBuy is a buy's (or reservation's) outcome; reads and stock writes
// that fail share its refusals.
func sayBuy(op inventory.Operation, low string) Words {
	if strings.HasPrefix(low, "stranded") {
		return stranded(op.Message)
	}
	switch op.Outcome {
	case inventory.OK:
		why := strconv.Itoa(op.Quantity) + " left"
		switch {
		case strings.Contains(low, "borrowed"):
			if m := borrowedRe.FindStringSubmatch(op.Message); m != nil {
				why += " · borrowed " + m[1] + " from " + CityName(strings.TrimSpace(m[2]))
			} else {
				why += " · borrowed from another region"
			}
		case strings.Contains(low, "fencing token"):
			why += " · the storage checked the lock's token"
		case strings.Contains(low, "took the lock"):
			why += " · the storage trusted the lock"
		case op.Store == inventory.Geo:
			why += " · no ocean crossed"
		case op.Store == inventory.Replicated && len(op.AnsweredBy) > 0:
			why += " · " + confirmedBy(op.AnsweredBy)
		case op.Store == inventory.Consensus:
			why += " · a majority agreed"
		}
		return Words{Tag: "Sold", Why: why}
	case inventory.SoldOut:
		why := "nothing left to sell"
		if strings.Contains(low, "no other region") {
			why = "none here, none to borrow"
		} else if strings.Contains(low, "only ") {
			why = "not enough left"
		}
		return Words{Tag: "Sold out", Why: why}
	case inventory.FailFast:
		return Words{Tag: "Refused at once", Why: "breaker open: nothing sent"}
	case inventory.Overloaded:
		return Words{Tag: "Too busy", Why: "gateway full: not sent, try again"}
	case inventory.Conflict:
		if strings.Contains(low, "fencing token") {
			return Words{Tag: "Fenced off", Why: "its lock token was stale: nothing sold twice"}
		}
		return Words{Tag: "Gave up", Why: "stock kept changing"}
	case inventory.Unavailable:
		return refusal(op.Message)
	}
	return Words{Tag: strings.ReplaceAll(string(op.Outcome), "_", " "), Why: firstSentence(op.Message)}
}

var (
	borrowedRe = regexp.MustCompile(`borrowed (\d+) from ([^(]+?) \(`)
	strandedRe = regexp.MustCompile(`borrowing from (.+?) is impossible.*?— (\d+) units?`)
)

// stranded is a geo buy whose own allocation could not serve it and whose
// other regions' units could not be reached.
func stranded(msg string) Words {
	w := Words{Tag: "Stranded", Why: "none left here; the other regions' units are cut off"}
	if m := strandedRe.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[2])
		w.Why = "none left here; " + units(n) + " stranded in " + joinAnd(cities(strings.Split(m[1], ", ")))
	}
	return w
}

// refusal is why an unavailable answer refused, from the store's message.
func refusal(msg string) Words {
	low := strings.ToLower(strings.TrimSpace(msg))
	w := Words{Tag: "Refused"}
	switch {
	case strings.Contains(low, "majority"):
		w.Why = "cannot reach a majority"
	case strings.Contains(low, "is down (crashed)"):
		w.Why = "this region is down"
	case strings.Contains(low, "being reset"):
		w.Why = "the lab is resetting"
	case strings.Contains(low, "regional group did not answer"):
		w.Why = "its own zones cannot agree"
	case strings.Contains(low, "no regional group"):
		w.Why = "no region's group answered"
	case strings.Contains(low, "could not take the lock"):
		w.Why = "could not get the lock"
	case strings.Contains(low, "pending transfer"):
		w.Why = "units in transfer; may still apply"
	case strings.Contains(low, "replicas"):
		w.Why = "too few replicas answered"
	case strings.Contains(low, "deadline") || strings.Contains(low, "may or may not"):
		w.Why = "no answer in time; may still apply"
	case low == "":
		w.Why = "no quorum in time"
	default:
		w.Why = strings.TrimSuffix(firstSentence(msg), ".")
	}
	return w
}

// took is how long op took, as the live answer's LatencyMs rounds it.
func took(op inventory.Operation) string {
	ms := math.Round(float64(op.Return.Sub(op.Call).Microseconds())/10) / 100
	if ms >= 1000 {
		return strconv.FormatFloat(ms/1000, 'f', 1, 64) + " s"
	}
	return strconv.FormatFloat(math.Round(ms), 'f', 0, 64) + " ms"
}

func whoAnswered(op inventory.Operation) string {
	switch {
	case op.Outcome == inventory.FailFast || op.Outcome == inventory.Overloaded:
		return "nothing was sent"
	case len(op.AnsweredBy) == 0:
		if op.Outcome == inventory.OK || op.Outcome == inventory.SoldOut {
			return "answered"
		}
		return "no region answered"
	case op.Outcome == inventory.OK:
		return "confirmed by " + joinAnd(cities(op.AnsweredBy))
	}
	return "answered by " + joinAnd(cities(op.AnsweredBy))
}

func confirmedBy(regions []string) string {
	if len(regions) == 1 {
		return "only " + cities(regions)[0] + " confirmed"
	}
	return strconv.Itoa(len(regions)) + " regions confirmed"
}

// SayFault is a recorded fault in words ("The network splits: N. Virginia,
// Ireland | Singapore.").
func SayFault(f inventory.Fault) string {
	names := joinAnd(cities(f.Regions))
	pair := func() (string, string, bool) { // "a <-> b" / "a -> b"
		if len(f.Regions) != 2 {
			return "", "", false
		}
		a, b := CityName(f.Regions[0]), CityName(f.Regions[1])
		return a, b, strings.Contains(f.Detail, " -> ")
	}
	switch f.Kind {
	case inventory.FaultPartition:
		groups := strings.Split(f.Detail, " | ")
		for i, g := range groups {
			groups[i] = joinAnd(cities(strings.Split(g, ",")))
		}
		return "The network splits: " + strings.Join(groups, " | ") + " can no longer reach each other."
	case inventory.FaultCut:
		if a, b, oneWay := pair(); a != "" {
			if oneWay {
				return "Messages from " + a + " to " + b + " are dropped; the other way still works."
			}
			return "The link between " + a + " and " + b + " is cut."
		}
	case inventory.FaultHeal:
		if a, b, oneWay := pair(); a != "" {
			if oneWay {
				return "Messages from " + a + " to " + b + " get through again."
			}
			return "The link between " + a + " and " + b + " is back up."
		}
		return "Every link is back up."
	case inventory.FaultLatency:
		if i := strings.LastIndex(f.Detail, ": "); i > 0 && len(f.Regions) == 2 {
			return "A round trip between " + names + " now takes " + strings.TrimSuffix(f.Detail[i+2:], " round trip") + "."
		}
	case inventory.FaultCrash:
		return names + " crashes: its servers stop without warning."
	case inventory.FaultRestart:
		return names + " restarts from its disk."
	case inventory.FaultLead:
		return names + " now leads the consensus group."
	case inventory.FaultQuorum:
		return "The replicated store now runs with " + f.Detail + "."
	case inventory.FaultReset:
		return "The lab starts afresh: empty shelves, every link up, every region running."
	case inventory.FaultClock:
		if len(f.Regions) == 0 {
			return "Every clock reads true time again."
		}
		off := strings.TrimSpace(strings.TrimPrefix(f.Detail, f.Regions[0]+" clock"))
		off, drift, _ := strings.Cut(off, ",")
		way := "ahead of"
		if strings.HasPrefix(off, "-") {
			way = "behind"
		}
		s := names + "'s clock now runs " + strings.TrimLeft(off, "+-") + " " + way + " true time"
		if drift != "" {
			s += " (" + strings.TrimSpace(drift) + ")"
		}
		return s + ": every timestamp it writes is off by that much, and nothing else notices."
	case inventory.FaultMerge:
		return f.Detail
	case inventory.FaultSpeed:
		return "The network runs faster: " + f.Detail + "."
	case inventory.FaultPause:
		if _, d, ok := strings.Cut(f.Detail, " paused for "); ok {
			return names + "'s shop freezes for " + d + " (a long GC pause): it sends nothing, not even its lock's heartbeats."
		}
	}
	d := cityWords(f.Detail)
	kind := strings.ReplaceAll(string(f.Kind), "_", " ")
	if kind == "" {
		return d
	}
	kind = strings.ToUpper(kind[:1]) + kind[1:]
	if d == "" {
		return kind + "."
	}
	return kind + ": " + d + "."
}

// cityWords puts each region name in s as its city ("us-east-1" →
// "N. Virginia").
func cityWords(s string) string {
	out := strings.TrimSuffix(strings.TrimSpace(s), ".")
	for _, p := range nodes.Catalogue() {
		out = strings.ReplaceAll(out, p.Name, p.City)
	}
	return out
}

// CityName is a region's city ("Singapore"), or the name itself when the
// catalogue does not know it.
func CityName(region string) string {
	if p, ok := nodes.Lookup(region); ok {
		return p.City
	}
	return region
}

func cities(regions []string) []string {
	out := make([]string, len(regions))
	for i, r := range regions {
		out[i] = CityName(r)
	}
	return out
}

func splitWords(a map[string]int) string {
	var parts []string
	for _, p := range nodes.Catalogue() {
		if n, ok := a[p.Name]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", p.City, n))
		}
	}
	return strings.Join(parts, ", ")
}

func units(n int) string {
	if n == 1 {
		return "1 unit"
	}
	return strconv.Itoa(n) + " units"
}

func joinAnd(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}

// firstSentence is s up to its first full stop, without a leading
// "Unavailable: "-style label; a stop after a single capital ("N.
// Virginia") or a number ("1.5") does not end it.
func firstSentence(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, ": "); i > 0 && i < 40 && !strings.ContainsAny(s[:i], ".,") {
		s = s[i+2:]
	}
	rs := []rune(s)
	for i := 0; i+1 < len(rs); i++ {
		if rs[i] != '.' || !unicode.IsSpace(rs[i+1]) {
			continue
		}
		// "N. Virginia": one capital letter before the stop
		if i >= 1 && unicode.IsUpper(rs[i-1]) && (i == 1 || !unicode.IsLetter(rs[i-2])) {
			continue
		}
		return string(rs[:i+1])
	}
	return s
}

// SayOutcome is Say for a store's answer as the API returns it (an
// operation that took o.LatencyMs).
func SayOutcome(o inventory.Outcome) Words {
	op := inventory.Operation{Store: o.Store, Region: o.Region, SKU: o.SKU, Op: o.Op, Qty: o.Qty, Consistency: o.Consistency,
		Outcome: o.Outcome, Quantity: o.Quantity, Message: o.Message, AnsweredBy: o.AnsweredBy}
	op.Return = op.Call.Add(time.Duration(math.Round(o.LatencyMs * float64(time.Millisecond))))
	if o.Op == inventory.OpStock {
		op.Allocations = map[string]int{}
		for r, a := range o.Allocations {
			op.Allocations[r] = a.Quantity
		}
		if len(op.Allocations) == 0 {
			op.Allocations = nil
		}
	}
	return Say(op)
}
