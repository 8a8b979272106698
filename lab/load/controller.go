package load

import (
	"errors"
	"fmt"
	"sync"
)

// ErrRunning: a load is already running (API: 409).
var ErrRunning = errors.New("a load is already running")

// ErrClosed: the controller has been closed.
var ErrClosed = errors.New("load controller closed")

// Controller owns the one load a lab runs at a time. The web API, the
// lessons and "caplab load" all go through it. Safe for concurrent use.
type Controller struct {
	target Target

	mu     sync.Mutex
	run    *Run
	closed bool
	subs   map[chan Frame]struct{}
}

// NewController returns a controller for target (usually LabTarget{l}).
func NewController(target Target) *Controller {
	return &Controller{target: target, subs: map[chan Frame]struct{}{}}
}

// Start normalizes cfg and starts a run. It fails with ErrBadConfig (the
// message names the field) or ErrRunning, and then nothing has started.
func (c *Controller) Start(cfg Config) (Status, error) {
	norm, err := cfg.Normalize(c.target.Regions(), c.target.Stores())
	if err != nil {
		return Status{}, err
	}
	// A run whose status already says it ended closes Done right after its
	// last frame (which takes c.mu): wait for that, so that a caller who
	// saw "stopped" can start the next one.
	if r := c.Run(); r != nil && r.over() {
		<-r.Done()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return Status{}, ErrClosed
	}
	if c.run != nil {
		select {
		case <-c.run.Done():
		default:
			return Status{}, fmt.Errorf("%w (%s); stop it first (DELETE /api/load, or \"load stop\")", ErrRunning, c.run.Status(false).State)
		}
	}
	r := newRun(norm, c.target, c.broadcast)
	c.run = r
	go r.main()
	return r.Status(false), nil
}

// Stop ends the running load (if any) and waits until it has drained and
// been checked; it returns the final status.
func (c *Controller) Stop() Status {
	c.mu.Lock()
	r := c.run
	c.mu.Unlock()
	if r == nil {
		return IdleStatus()
	}
	r.Stop("stopped")
	<-r.Done()
	return r.Status(false)
}

// StopAsync ends the running load without waiting.
func (c *Controller) StopAsync() {
	c.mu.Lock()
	r := c.run
	c.mu.Unlock()
	if r != nil {
		r.Stop("stopped")
	}
}

// Status is the current (or last) run's status; withSamples adds the
// kept samples.
func (c *Controller) Status(withSamples bool) Status {
	c.mu.Lock()
	r := c.run
	c.mu.Unlock()
	if r == nil {
		return IdleStatus()
	}
	return r.Status(withSamples)
}

// Run is the current (or last) run, nil if none.
func (c *Controller) Run() *Run {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.run
}

// Subscribe returns a channel of frames (one a second while a run runs,
// and one at every change of state). A subscriber that does not keep up
// misses frames; it never slows the run. Call the function to unsubscribe.
func (c *Controller) Subscribe() (<-chan Frame, func()) {
	ch := make(chan Frame, 8)
	c.mu.Lock()
	if c.closed {
		close(ch)
	} else {
		c.subs[ch] = struct{}{}
	}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, ok := c.subs[ch]; ok {
			delete(c.subs, ch)
			close(ch)
		}
	}
}

func (c *Controller) broadcast(f Frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.subs {
		select {
		case ch <- f:
		default:
		}
	}
}

// Close aborts a running load (operations in flight end), waits for it,
// and ends every subscription. Close it before closing the lab. Safe to
// call twice.
func (c *Controller) Close() {
	c.mu.Lock()
	c.closed = true
	r := c.run
	c.mu.Unlock()
	if r != nil {
		r.abortNow("the lab is closing")
		<-r.Done()
	}
	c.mu.Lock()
	for ch := range c.subs {
		close(ch)
	}
	clear(c.subs)
	c.mu.Unlock()
}
