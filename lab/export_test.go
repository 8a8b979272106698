package lab

import (
	"time"

	"caplab/lab/history"
	"caplab/lab/inventory"
	"caplab/lab/store/consensus"
	"caplab/lab/store/geo"
	"caplab/lab/store/replicated"
)

// Test hooks for package lab_test: functions (never methods, so that
// Lab's method count stays honest), one for each thing a test must reach
// that a lab's user must not.

// HistoryOf is l's History (tests fill it to its cap).
func HistoryOf(l *Lab) *history.History { return l.history }

// GapsOf is l's ledger of recording gaps.
func GapsOf(l *Lab) *history.Gaps { return l.gaps }

// GeoCallsOf is what l's geo call log holds of sku ("" for every SKU).
func GeoCallsOf(l *Lab, sku string) []inventory.GeoCall { return l.geoLog.Calls(sku) }

// Recount runs the counting goroutine's recount now; it reports whether
// the oversold or stale-read counters changed.
func Recount(l *Lab) bool { return l.counters.recount() }

// TallyReads is how many operations the counters' tally has read.
func TallyReads(l *Lab) int {
	l.counters.tallyMu.Lock()
	defer l.counters.tallyMu.Unlock()
	return l.counters.tally.Read()
}

// OutsideSettle is how long the outside-write watcher waits before it
// judges a revision.
func OutsideSettle(l *Lab) time.Duration { return l.outside.settle }

// ConsensusOf, ReplicatedOf and GeoStoreOf are l's stores (for their
// documented test and benchmark knobs).
func ConsensusOf(l *Lab) *consensus.Store   { return l.consensus }
func ReplicatedOf(l *Lab) *replicated.Store { return l.replicated }
func GeoStoreOf(l *Lab) *geo.Store          { return l.geo }

// SyncInterval is the replicated store's background replication period.
func SyncInterval(l *Lab) time.Duration { return l.cfg.SyncInterval }

// HoldGateway fills region's gateway to store as requests in flight at
// its limit would, until release.
func HoldGateway(l *Lab, region string, store inventory.Store) (release func()) {
	return l.admission.Hold(region, store)
}

// ForgetVerdicts forgets the checker's remembered segment verdicts.
func ForgetVerdicts(l *Lab) { l.verdicts.Clear() }

// ParseConsensusKey is the outside-write watcher's reading of a key.
func ParseConsensusKey(key string) (epoch int64, sku string, ok bool) { return parseConsensusKey(key) }

// ClipValue shortens a value for a message as the watcher does.
func ClipValue(s string, n int) string { return clipValue(s, n) }

// NewRecorder is an empty recorder, started as a reset starts it.
func NewRecorder(q inventory.QuorumState) *Recorder {
	r := &Recorder{}
	r.start(true, q)
	return r
}

// RecorderAdd adds an action to r as the lab does.
func RecorderAdd(r *Recorder, a RecordedAction) { r.add(a) }

// RecorderRestart makes r forget and record from now on (fromReset: as a
// reset does).
func RecorderRestart(r *Recorder, fromReset bool, q inventory.QuorumState) { r.start(fromReset, q) }

// RecorderSnapshot is what r holds.
func RecorderSnapshot(r *Recorder) Recording { return r.snapshot() }

// RecordOp records op through r as do does (kind "": a stock, buy or read).
var RecordOp = (*Recorder).op

// KeepWords keeps out's words in op as do does (load: a load's operation,
// which keeps none).
func KeepWords(op *inventory.Operation, out inventory.Outcome, load bool) { keepWords(op, out, load) }

// FirstSentence is the first sentence of s, as the words give it.
func FirstSentence(s string) string { return firstSentence(s) }

// LedgerExplains notes ops in a fresh ledger of unrecorded writes (epoch
// 1), then reports for each write (SKU and revision) the watcher sees
// whether the ledger explains it.
func LedgerExplains(ops []inventory.Operation, writes []inventory.Operation) []bool {
	var u unrecordedWrites
	for _, op := range ops {
		u.note(op, 1)
	}
	out := make([]bool, len(writes))
	for i, w := range writes {
		out[i] = u.explain(seenWrite{epoch: 1, sku: w.SKU, rev: w.Version.Wall})
	}
	return out
}
