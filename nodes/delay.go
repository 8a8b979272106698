package nodes

import (
	"context"
	"io"
	"sync"
	"time"
)

// chunk is a piece of a byte stream in a delay line.
type chunk struct {
	data []byte
	due  time.Time
}

// pump copies src to dst across link l, as a delay line: a reader stamps
// each chunk with its release time (arrival + the link's delay) and a writer
// releases it then, so delays never add up the way a per-chunk sleep would.
// A chunk that is due on arrival with nothing queued ahead of it (no delay:
// latency scale 0, or a link set to 0 ms) is written by the reader itself,
// without waking the writer: one goroutine hand-off less per chunk, which
// at latency 0 is most of what the fabric costs (docs/benchmarks.md).
// Every chunk written is counted on the link. flush, if not nil, runs after
// each write (HTTP streams must be flushed per message).
//
// pump returns when src ends (nil), a write fails, or ctx is done; nothing
// is written to dst after it returns. The caller must close src once pump
// returns: that ends pump's reader if it is still blocked in Read.
func pump(ctx context.Context, l *link, dst io.Writer, flush func(), src io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex // one writer at a time; guards queued and stopped
		queued  int        // chunks handed to the writer, not yet written
		stopped bool       // pump returned: dst is no longer ours
	)
	defer func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
	}()
	write := func(p []byte) error { // under mu
		if stopped || ctx.Err() != nil { // cut while this chunk waited: deliver nothing more
			return context.Canceled
		}
		if _, err := dst.Write(p); err != nil {
			return err
		}
		if flush != nil {
			flush()
		}
		l.count(len(p))
		return nil
	}
	chunks := make(chan chunk, 256)
	readErr := make(chan error, 1)
	go func() {
		defer close(chunks)
		buf := make([]byte, 32*1024)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				now := time.Now()
				due := l.due(now)
				mu.Lock()
				if queued == 0 && !due.After(now) {
					werr := write(buf[:n])
					mu.Unlock()
					if werr != nil {
						readErr <- werr
						return
					}
				} else {
					queued++
					mu.Unlock()
					select {
					case chunks <- chunk{data: append([]byte(nil), buf[:n]...), due: due}:
					case <-ctx.Done():
						readErr <- ctx.Err()
						return
					}
				}
			}
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				readErr <- err
				return
			}
		}
	}()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for c := range chunks {
		if wait := time.Until(c.due); wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		mu.Lock()
		err := write(c.data)
		queued--
		mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
	return <-readErr
}

// sleepUntil waits until t or until ctx is done.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
