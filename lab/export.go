package lab

import (
	"io"
	"slices"

	"caplab/lab/audit"
)

// Export writes the lab's history in format: from its audit log when one
// is attached (OpenAudit; everything since the log began), else from
// memory (since the last reset, at most MaxHistoryOperations operations; a
// jsonl export then ends with a "dropped" record when some were not kept).
func (l *Lab) Export(w io.Writer, format audit.Format, f audit.Filter) error {
	if err := f.Check(); err != nil {
		return err
	}
	if a := l.hooks.log(); a != nil {
		l.gaps.All(true) // the log hears of every gap change before it is read
		if err := a.Flush(); err != nil {
			return err
		}
		return audit.Export(a.Dir(), w, format, f)
	}
	// Read in this order (the History, the geo log, the gaps last), every
	// gap a recorded answer could have seen is in it.
	v := l.history.View("")
	dropped, _ := l.history.Dropped()
	m := audit.InMemory{Started: l.history.StartedAt(), Regions: slices.Clone(l.regions),
		Operations: v.Operations, Faults: v.Faults, GeoCalls: l.geoLog.Calls(""), Gaps: l.gaps.All(false), Dropped: dropped}
	return audit.Write(w, format, f, audit.Memory(m))
}
