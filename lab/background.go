package lab

import (
	"context"
	"time"

	"caplab/lab/guard"
	"caplab/lab/store/geo"
	"caplab/lab/store/replicated"
)

// The lab's background loops, started in New and ended by Close: each
// enters the gate for a round, so a reset never interleaves with one.

// replicate runs the replicated store's background replication every
// every until stop, skipping a round while a reset or Close holds the gate.
func replicate(stop <-chan struct{}, gate *guard.Gate, s *replicated.Store, every, timeout time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if !gate.TryEnter() { // a reset or Close: skip this round
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(every, timeout))
		s.AntiEntropy(ctx)
		cancel()
		gate.Leave()
	}
}

// geoRecoverEvery is how often pending transfers are looked at; a transfer
// younger than two request deadlines is left to the buy that started it.
const geoRecoverEvery = time.Second

// recoverTransfers completes or refunds the geo store's pending transfers
// every geoRecoverEvery (those older than two request deadlines), and all
// of them at once when the store is kicked (after a restart), until stop.
func recoverTransfers(stop <-chan struct{}, gate *guard.Gate, s *geo.Store, timeout time.Duration) {
	t := time.NewTicker(geoRecoverEvery)
	defer t.Stop()
	for {
		minAge := 2 * timeout
		select {
		case <-stop:
			return
		case <-t.C:
		case <-s.Kicked():
			minAge = 0 // after a restart
		}
		if !gate.TryEnter() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
		s.Recover(ctx, minAge)
		cancel()
		gate.Leave()
	}
}
