package nodes

import (
	"context"
	"encoding/binary"
	"io"
	"slices"
	"sort"
	"sync"
	"time"
)

// The round trips between hosts. Every agent keeps one ping connection to
// every other agent of its lab — the same TLS path raft and client
// traffic take — and sends 8 bytes every meshEvery, which the other
// echoes. The median of the last meshSamples round trips is the pair's
// measured RTT; the lab adds only what is missing to reach the model
// (link.go, addedDelay). A peer that cannot be reached is reported with
// the reason, which is how a lab finds out at start that two of its hosts
// cannot see each other.

const (
	meshEvery   = 500 * time.Millisecond
	meshSamples = 9
)

type mesh struct {
	ar *agentRegion

	mu    sync.Mutex
	peers map[string]*meshPeer

	stop chan struct{}
	wg   sync.WaitGroup
}

type meshPeer struct {
	samples []float64 // newest last, at most meshSamples
	err     string
}

func newMesh(ar *agentRegion) *mesh {
	m := &mesh{ar: ar, peers: map[string]*meshPeer{}, stop: make(chan struct{})}
	for _, sr := range ar.specCopy().Regions {
		if sr.Name == ar.self {
			continue
		}
		m.peers[sr.Name] = &meshPeer{err: "not measured yet"}
		m.wg.Add(1)
		go m.ping(sr.Name)
	}
	return m
}

// ping measures one peer until the mesh closes, dialling again after a
// failure.
func (m *mesh) ping(region string) {
	defer m.wg.Done()
	for {
		err := m.session(region)
		m.mu.Lock()
		if err != nil {
			m.peers[region].err = err.Error()
		}
		again := time.Second
		if len(m.peers[region].samples) == 0 {
			again = 100 * time.Millisecond // at start the other agent may not be laid out yet
		}
		m.mu.Unlock()
		select {
		case <-m.stop:
			return
		case <-time.After(again):
		}
	}
}

// session is one ping connection's life.
func (m *mesh) session(region string) error {
	ctx, cancel := context.WithTimeout(context.Background(), tunnelDialTimeout)
	c, err := m.ar.dial(ctx, region, kindPing)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-m.stop:
			_ = c.Close()
		case <-stopped:
		}
	}()
	var out, in [8]byte
	t := time.NewTicker(meshEvery)
	defer t.Stop()
	for seq := uint64(1); ; seq++ {
		binary.BigEndian.PutUint64(out[:], seq)
		_ = c.SetDeadline(time.Now().Add(3 * meshEvery))
		sent := time.Now()
		if _, err := c.Write(out[:]); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, in[:]); err != nil {
			return err
		}
		if binary.BigEndian.Uint64(in[:]) != seq {
			return io.ErrUnexpectedEOF
		}
		m.record(region, float64(time.Since(sent))/float64(time.Millisecond))
		select {
		case <-m.stop:
			return nil
		case <-t.C:
		}
	}
}

func (m *mesh) record(region string, ms float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.peers[region]
	p.err = ""
	p.samples = append(p.samples, ms)
	if len(p.samples) > meshSamples {
		p.samples = p.samples[1:]
	}
}

// states reports every peer, in region order.
func (m *mesh) states() []peerRTT {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]peerRTT, 0, len(m.peers))
	for name, p := range m.peers {
		out = append(out, peerRTT{Region: name, RTTMs: rttMedian(p.samples), Samples: len(p.samples), Err: p.err})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Region < out[j].Region })
	return out
}

func rttMedian(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (m *mesh) close() {
	select {
	case <-m.stop:
		return
	default:
	}
	close(m.stop)
	m.wg.Wait()
}
