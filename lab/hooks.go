package lab

import (
	"slices"
	"sync"
	"sync/atomic"

	"caplab/lab/audit"
)

// ---- the hook between the lab and its recorders

// hooks are the functions called for every recorded operation, fault,
// reset, recording gap and geo call (Record: the audit log). The list is
// copied on write, so calling them takes no lock.
type hooks struct {
	fns   atomic.Pointer[[]*func(Event)]
	mu    sync.Mutex // serialises changes
	audit atomic.Pointer[audit.Log]
}

func (rs *hooks) call(e Event) {
	switch e.Type {
	case EventOperation, EventFault, EventReset, EventGap, EventGeoCall:
	default:
		return
	}
	if p := rs.fns.Load(); p != nil {
		for _, fn := range *p {
			(*fn)(e)
		}
	}
}

// Record calls fn for every operation, fault and reset the lab records
// from now on, on the goroutine that records it and in the order it is
// recorded there; fn must return quickly and must not call the lab. Unlike
// a Subscribe channel, a recorder misses nothing. cancel stops the calls.
func (l *Lab) Record(fn func(Event)) (cancel func()) {
	rs := &l.hooks
	p := &fn
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var cur []*func(Event)
	if old := rs.fns.Load(); old != nil {
		cur = *old
	}
	next := append(slices.Clone(cur), p)
	rs.fns.Store(&next)
	return func() {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		var cur []*func(Event)
		if old := rs.fns.Load(); old != nil {
			cur = *old
		}
		next := slices.DeleteFunc(slices.Clone(cur), func(q *func(Event)) bool { return q == p })
		rs.fns.Store(&next)
	}
}

// OpenAudit opens the audit log in dir and records every operation, fault
// and reset of l into it; exports (Lab.Export) then read the log. Close the
// log after the lab.
func OpenAudit(l *Lab, dir string, opts audit.Options) (*audit.Log, error) {
	a, err := audit.Open(dir, l.Regions(), opts)
	if err != nil {
		return nil, err
	}
	l.Record(func(e Event) {
		switch {
		case e.Type == EventOperation && e.Operation != nil:
			a.AppendOperation(*e.Operation)
		case e.Type == EventFault && e.Fault != nil:
			a.AppendFault(*e.Fault)
		case e.Type == EventReset:
			a.AppendReset()
		case e.Type == EventGap && e.Gap != nil:
			a.AppendGap(*e.Gap)
		case e.Type == EventGeoCall && e.GeoCall != nil:
			a.AppendGeoCall(*e.GeoCall)
		}
	})
	l.hooks.audit.Store(a)
	return a, nil
}

// log is the audit log OpenAudit attached, nil when none.
func (rs *hooks) log() *audit.Log { return rs.audit.Load() }
