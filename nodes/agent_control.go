package nodes

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// The agent's end of the control connection: one lab at a time, over one
// TLS connection. The lab proves the token (trust.go) and, once the agent
// belongs to it, presents a certificate it signed. Orders arrive as
// requests; the agent answers each and sends its status on every change
// and at least every agentHeartbeat. A connection silent for
// controlSilence is lost: the agent keeps running its region with the
// last link table it was given, and takes the lab back when it calls
// again.

// agentControl is the lab's control connection as the agent holds it.
type agentControl struct {
	a    *Agent
	conn *tls.Conn

	wmu       sync.Mutex
	closeOnce sync.Once
	done      chan struct{}
}

// serveControl authenticates a lab and serves its control connection
// until it ends.
func (a *Agent) serveControl(tc *tls.Conn, cn string, certErr error) {
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
	m, err := readFrameMax(tc, maxHello)
	if err != nil || m.Hello == nil {
		a.log.Warn("refused a control connection: no hello", "from", tc.RemoteAddr(), "err", err)
		return
	}
	cs := tc.ConnectionState()
	refuse := func(msg string) {
		a.log.Warn("refused a lab", "from", tc.RemoteAddr(), "why", msg)
		_ = writeFrame(tc, &message{Err: msg})
	}
	if !checkProof(a.key, "lab", cs, m.Hello.Proof) {
		refuse("refused: the lab's token is not this agent's token (give both the same --token)")
		return
	}
	p := a.id.pin()
	if p != nil && (certErr != nil || cn != labCommonName) {
		presented := "no certificate"
		if len(cs.PeerCertificates) > 0 {
			presented = "certificate " + shortPrint(fingerprint(cs.PeerCertificates[0].Raw)) + " signed by " + cs.PeerCertificates[0].Issuer.CommonName
		}
		refuse(fmt.Sprintf("refused: this agent belongs to lab %s, whose certificate is %s; the lab that called presented %s. "+
			"To give the agent to another lab, start it again with --reset (its region's data is deleted), or start the lab with its own --data-dir",
			p.lab, shortPrint(p.fingerprint), presented))
		return
	}
	own, err := proof(a.key, "agent", cs)
	if err != nil {
		return
	}
	reply := &hello{Proof: own, Version: a.version, Region: a.cfg.Name, Key: a.id.pkix, Boot: a.boot}
	if p != nil {
		reply.Lab, reply.CA = p.lab, p.fingerprint
	}
	if af, _ := readAgentFile(a.cfg.DataDir); af != nil {
		reply.Spec = af.Spec
	}
	if err := writeFrame(tc, &message{Hello: reply}); err != nil {
		return
	}
	ctl := &agentControl{a: a, conn: tc, done: make(chan struct{})}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	old := a.ctl
	a.ctl = ctl
	a.mu.Unlock()
	if old != nil {
		old.close() // the lab called again: the newest connection is the lab's
	}
	a.log.Info("a lab took the control connection", "from", tc.RemoteAddr(), "lab", m.Hello.Lab)
	ctl.serve()
	a.mu.Lock()
	lost, running := a.ctl == ctl, a.reg != nil
	if lost {
		a.ctl = nil
	}
	a.mu.Unlock()
	switch {
	case lost && running:
		a.log.Warn("lost the lab: the region keeps running with its last link table", "from", tc.RemoteAddr())
	case lost:
		a.log.Info("the lab closed the control connection", "from", tc.RemoteAddr())
	}
}

// serve reads the lab's requests until the connection ends.
func (ctl *agentControl) serve() {
	defer ctl.close()
	for {
		_ = ctl.conn.SetReadDeadline(time.Now().Add(controlSilence))
		m, err := readFrame(ctl.conn)
		if err != nil {
			return
		}
		ctl.handle(m)
	}
}

// handle answers one request: quick ones at once, lifecycle orders in
// turn on the agent's lifecycle goroutine.
func (ctl *agentControl) handle(m *message) {
	a := ctl.a
	reply := func(err error) {
		r := &message{Re: m.ID}
		if err != nil {
			r.Err, r.Code = err.Error(), errCode(err)
		}
		if m.Op != ctlPing && m.Op != ctlEnroll && m.Op != ctlStop {
			r.Status = a.status() // what the order changed, with its answer
		}
		_ = ctl.send(r)
	}
	switch m.Op {
	case ctlPing:
		reply(nil)
	case ctlEnroll:
		if m.Enroll == nil {
			reply(errors.New("enroll: nothing to enrol with"))
			return
		}
		err := a.id.enroll(m.Enroll, ctl.conn.ConnectionState())
		if err == nil {
			a.log.Info("joined a lab", "lab", m.Enroll.Lab, "certificate", shortPrint(fingerprint(m.Enroll.CA)))
		}
		reply(err)
	case ctlPrepare:
		if m.Spec == nil {
			reply(errors.New("prepare: no layout"))
			return
		}
		reply(a.prepare(m.Spec))
	case ctlLinks:
		reg := a.region()
		if reg == nil || m.Links == nil {
			reply(errors.New("links: the region is not prepared"))
			return
		}
		reg.applyTable(m.Links)
		reply(nil)
	case ctlStart, ctlCrash, ctlCrashZone, ctlStartZone, ctlKick, ctlStop:
		if err := a.lifecycle(func() { reply(a.order(m)) }); err != nil {
			reply(err)
		}
	default:
		reply(fmt.Errorf("unknown order %q", m.Op))
	}
}

// order carries out one lifecycle order (on the lifecycle goroutine).
func (a *Agent) order(m *message) error {
	if m.Op == ctlStop {
		return a.leave(m.Stop != nil && m.Stop.Discard)
	}
	reg := a.region()
	if reg == nil {
		return fmt.Errorf("%s: the region is not prepared", m.Op)
	}
	switch m.Op {
	case ctlStart:
		if m.Start == nil {
			return errors.New("start: no timing")
		}
		return reg.start(*m.Start)
	case ctlCrash:
		return reg.crash()
	case ctlCrashZone:
		return reg.crashZone(m.Zone)
	case ctlStartZone:
		return reg.startZone(m.Zone)
	case ctlKick:
		reg.kick()
		return nil
	}
	return nil
}

// leave stops the region for a lab that is leaving: its servers stop
// (like a crash: no hand-off) and its ports close; a temporary lab's data
// and pin are deleted, so the next lab with the token may take the agent.
func (a *Agent) leave(discard bool) error {
	a.mu.Lock()
	reg := a.reg
	a.reg = nil
	a.mu.Unlock()
	if reg != nil {
		reg.close()
	}
	if !discard {
		return nil
	}
	if err := removeRegionData(a.cfg.DataDir); err != nil {
		return err
	}
	a.log.Info("the lab left and took its data: this agent belongs to no lab now")
	return a.id.forget()
}

// send writes one message; an error closes the connection.
func (ctl *agentControl) send(m *message) error {
	ctl.wmu.Lock()
	defer ctl.wmu.Unlock()
	_ = ctl.conn.SetWriteDeadline(time.Now().Add(controlWrite))
	err := writeFrame(ctl.conn, m)
	if err != nil {
		go ctl.close()
	}
	return err
}

func (ctl *agentControl) close() {
	ctl.closeOnce.Do(func() {
		close(ctl.done)
		_ = ctl.conn.Close()
	})
}

// report sends the agent's status to the lab: within observeEvery of a
// change in roles, terms or indexes, counters at most every
// countersEvery, and at least every agentHeartbeat (the lab's sign of
// life).
func (a *Agent) report() {
	defer a.bg.Done()
	t := time.NewTicker(observeEvery)
	defer t.Stop()
	var last *agentStatus
	var lastSent time.Time
	var lastCtl *agentControl
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		a.mu.Lock()
		ctl := a.ctl
		a.mu.Unlock()
		if ctl == nil {
			continue
		}
		st := a.status()
		since := time.Since(lastSent)
		send := ctl != lastCtl || last == nil || since >= agentHeartbeat ||
			!sameAgentStructure(last, st) || (!sameAgentCounters(last, st) && since >= countersEvery)
		if !send {
			continue
		}
		if ctl.send(&message{Op: ctlStatus, Status: st}) == nil {
			last, lastSent, lastCtl = st, time.Now(), ctl
		}
	}
}

// status is the agent's status now, numbered.
func (a *Agent) status() *agentStatus {
	seq := a.seq.Add(1)
	reg := a.region()
	if reg == nil {
		p, _ := Lookup(a.cfg.Name)
		return &agentStatus{Boot: a.boot, Seq: seq, Region: RegionStatus{Name: p.Name, City: p.City, Lat: p.Lat, Lon: p.Lon, Role: RoleOffline}}
	}
	st := reg.status(a.boot)
	st.Seq = seq
	return st
}

func sameAgentStructure(a, b *agentStatus) bool {
	if a.Table != b.Table || a.Prepared != b.Prepared || a.Region != b.Region || a.ReplicaReady != b.ReplicaReady ||
		!slices.Equal(a.Zones, b.Zones) || !slices.Equal(a.Ports, b.Ports) || len(a.Peers) != len(b.Peers) {
		return false
	}
	for i := range a.Peers {
		if a.Peers[i].Err != b.Peers[i].Err || (a.Peers[i].Samples == 0) != (b.Peers[i].Samples == 0) {
			return false
		}
	}
	for i := range a.Links {
		if i >= len(b.Links) || a.Links[i].Fresh != b.Links[i].Fresh {
			return false
		}
	}
	return len(a.Links) == len(b.Links)
}

func sameAgentCounters(a, b *agentStatus) bool {
	return slices.Equal(a.Links, b.Links) && slices.Equal(a.ZoneLinks, b.ZoneLinks) && slices.EqualFunc(a.Peers, b.Peers, func(x, y peerRTT) bool { return x.RTTMs == y.RTTMs })
}
