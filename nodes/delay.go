package nodes

import (
	"context"
	"io"
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
// Every chunk written is counted on the link. flush, if not nil, runs after
// each write (HTTP streams must be flushed per message).
//
// pump returns when src ends (nil), a write fails, or ctx is done. The
// caller must close src once pump returns: that ends pump's reader if it is
// still blocked in Read.
func pump(ctx context.Context, l *link, dst io.Writer, flush func(), src io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan chunk, 256)
	readErr := make(chan error, 1)
	go func() {
		defer close(chunks)
		buf := make([]byte, 32*1024)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				c := chunk{data: append([]byte(nil), buf[:n]...), due: l.due(time.Now())}
				select {
				case chunks <- c:
				case <-ctx.Done():
					readErr <- ctx.Err()
					return
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
		if ctx.Err() != nil { // cut while this chunk waited: deliver nothing more
			return ctx.Err()
		}
		if _, err := dst.Write(c.data); err != nil {
			return err
		}
		if flush != nil {
			flush()
		}
		l.count(len(c.data))
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
