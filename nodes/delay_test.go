package nodes

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder is a dst that notes when each write arrived.
type recorder struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes []time.Time
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, time.Now())
	return r.buf.Write(p)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// TestPumpKeepsOrderWhenTheDelayDrops: chunks queued behind a delay are
// never overtaken by a later chunk that is due at once (the delay dropped
// to 0 meanwhile), and each delayed chunk waits its delay.
func TestPumpKeepsOrderWhenTheDelayDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink("a", "b", 200, true, 1) // 100 ms one way
		src, w := io.Pipe()
		dst := &recorder{}
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- pump(context.Background(), l, dst, nil, src) }()
		_, _ = w.Write([]byte("1"))
		_, _ = w.Write([]byte("2"))
		l.setRTT(0, 1)
		_, _ = w.Write([]byte("3")) // due now, but 1 and 2 are still queued
		time.Sleep(time.Second)
		_, _ = w.Write([]byte("4")) // due now, nothing queued: written by the reader
		synctest.Wait()
		_ = w.Close()
		if err := <-done; err != nil {
			t.Fatalf("pump: %v", err)
		}
		if got := dst.String(); got != "1234" {
			t.Fatalf("delivered %q, want 1234 in order", got)
		}
		if first := dst.writes[0].Sub(start); first < 100*time.Millisecond {
			t.Fatalf("first chunk delivered after %v, want the link's 100 ms", first)
		}
		if got := l.status().Messages; got != 4 {
			t.Fatalf("link counted %d chunks, want 4", got)
		}
	})
}

// TestPumpDeliversNothingAfterCancel: a chunk held by the delay line when
// the flow is cut (ctx cancelled) is never written, and neither is any
// chunk the reader gets after it.
func TestPumpDeliversNothingAfterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink("a", "b", 200, true, 1)
		src, w := io.Pipe()
		dst := &recorder{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- pump(ctx, l, dst, nil, src) }()
		_, _ = w.Write([]byte("held"))
		time.Sleep(50 * time.Millisecond)
		cancel()
		if err := <-done; err == nil {
			t.Fatal("pump returned nil after its flow was cut")
		}
		l.setRTT(0, 1)
		go func() { _, _ = w.Write([]byte("late")) }()
		synctest.Wait()
		_ = src.Close()
		synctest.Wait()
		if got := dst.String(); got != "" {
			t.Fatalf("delivered %q after the cut, want nothing", got)
		}
	})
}

// TestPumpZeroDelayStreams: at zero delay every chunk arrives, in order,
// counted on the link.
func TestPumpZeroDelayStreams(t *testing.T) {
	l := newLink("a", "b", 200, true, 0)
	src, w := io.Pipe()
	dst := &recorder{}
	done := make(chan error, 1)
	go func() { done <- pump(context.Background(), l, dst, nil, src) }()
	var want bytes.Buffer
	for i := range 1000 {
		p := []byte{byte('a' + i%26)}
		want.Write(p)
		_, _ = w.Write(p)
	}
	_ = w.Close()
	if err := <-done; err != nil {
		t.Fatalf("pump: %v", err)
	}
	if dst.String() != want.String() {
		t.Fatal("chunks arrived out of order or were lost at zero delay")
	}
	if st := l.status(); st.Bytes != 1000 {
		t.Fatalf("link counted %d bytes, want 1000", st.Bytes)
	}
}
