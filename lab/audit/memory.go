package audit

import (
	"slices"
	"time"

	"caplab/lab/inventory"
)

// InMemory is what a lab holds in memory since its last reset, for an
// export without an audit log.
type InMemory struct {
	Started    time.Time // when the history began
	Regions    []string
	Operations []inventory.Operation
	Faults     []inventory.Fault
	GeoCalls   []inventory.GeoCall
	Gaps       []inventory.RecordingGap
	Dropped    int // operations past the history's cap, not kept
}

// Memory turns an in-memory history into records: a start record naming
// the regions, then operations (by return time), faults, geo calls and
// gaps merged in time order, and a dropped record when some operations
// were not kept.
func Memory(m InMemory) func(func(Record) error) error {
	v := struct {
		Operations []inventory.Operation
		Faults     []inventory.Fault
	}{m.Operations, m.Faults}
	dropped, calls, gaps := m.Dropped, m.GeoCalls, m.Gaps
	recs := make([]Record, 0, len(v.Operations)+len(v.Faults)+len(calls)+len(gaps)+2)
	for i := range v.Operations {
		recs = append(recs, Record{Type: RecordOperation, At: v.Operations[i].Return, Operation: &v.Operations[i]})
	}
	for i := range v.Faults {
		recs = append(recs, Record{Type: RecordFault, At: v.Faults[i].At, Fault: &v.Faults[i]})
	}
	for i := range calls {
		recs = append(recs, Record{Type: RecordGeoCall, At: calls[i].Return, GeoCall: &calls[i]})
	}
	for i := range gaps {
		recs = append(recs, Record{Type: RecordGap, At: gaps[i].From, Gap: &gaps[i]})
	}
	slices.SortStableFunc(recs, func(a, b Record) int { return a.At.Compare(b.At) })
	recs = slices.Insert(recs, 0, Record{Type: RecordStart, At: m.Started, Regions: slices.Clone(m.Regions)})
	if dropped > 0 {
		recs = append(recs, Record{Type: RecordDropped, At: time.Now(), Dropped: dropped})
	}
	for i := range recs {
		recs[i].Seq = int64(i + 1)
	}
	return func(fn func(Record) error) error {
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
}
