package nodes

// Test hooks.

// goDeaf makes an in-process agent drop the lab's control connection and
// every new one, unanswered, until goDeaf(false): to the lab it is out of
// reach (not down), while its region runs on with its peers.
func (a *Agent) goDeaf(on bool) {
	a.deaf.Store(on)
	if on {
		a.mu.Lock()
		ctl := a.ctl
		a.mu.Unlock()
		if ctl != nil {
			ctl.close()
		}
	}
}
