package replicated

import (
	"context"
	"strings"
	"sync"
	"time"

	"caplab/lab/inventory"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// localItems reads the newest item of every SKU on a region's own replica.
func (s *Store) localItems(ctx context.Context, region string) (map[string]inventory.Item, error) {
	cli, err := s.cluster.ReplicaClient(region, region)
	if err != nil {
		return nil, err
	}
	prefix := s.epochPrefix()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	return itemsOf(prefix, resp), nil
}

// defaultFullScanEvery: every so many rounds the background replication
// reads every SKU of every replica, not only what changed — a safety net.
const defaultFullScanEvery = 50

// changedItems reads the newest item of every SKU written on a region's
// own replica since the last read (every SKU when full): first only the
// replica's revision (one key, no range); if it has not moved, nothing
// changed and nothing else is read.
func (s *Store) changedItems(ctx context.Context, region string, full bool) (map[string]inventory.Item, error) {
	cli, err := s.cluster.ReplicaClient(region, region)
	if err != nil {
		return nil, err
	}
	s.scanMu.Lock()
	since, seen := s.scanned[region]
	s.scanMu.Unlock()
	if !full && seen {
		probe, err := cli.Get(ctx, replicaPrefix, clientv3.WithCountOnly())
		if err != nil {
			return nil, err
		}
		if probe.Header.Revision == since {
			return nil, nil
		}
		if probe.Header.Revision < since { // a replica with other data: read all
			full = true
		}
	}
	prefix := s.epochPrefix()
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if !full && seen {
		opts = append(opts, clientv3.WithMinModRev(since+1))
	}
	resp, err := cli.Get(ctx, prefix, opts...)
	if err != nil {
		return nil, err
	}
	if !full {
		s.changedKeysRead.Add(int64(len(resp.Kvs)))
	}
	s.scanMu.Lock()
	s.scanned[region] = resp.Header.Revision
	s.scanMu.Unlock()
	return itemsOf(prefix, resp), nil
}

// itemsOf merges a replica's answer into the newest item per SKU; keys
// that are not prefix/SKU/… or values that do not decode are skipped.
func itemsOf(prefix string, resp *clientv3.GetResponse) map[string]inventory.Item {
	items := map[string]inventory.Item{}
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), prefix)
		sku, _, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		it, err := decodeItem(kv.Value)
		if err != nil {
			continue
		}
		items[sku] = inventory.Merge(items[sku], it)
	}
	return items
}

// AntiEntropy pushes every up region's newest values to every other
// replica it can reach that has not had them yet. It reads only what
// changed on each replica since the last round (and keeps what it could
// not push yet for the next round), so an idle store costs one small read
// per replica a round however many SKUs it holds.
func (s *Store) AntiEntropy(ctx context.Context) {
	s.rounds++
	full := s.rounds%int(max(1, s.fullScanEvery.Load())) == 0
	var wg sync.WaitGroup
	todo := map[string]map[string]inventory.Item{}
	for _, from := range s.regions {
		if !s.cluster.IsUp(from) {
			continue
		}
		changed, err := s.changedItems(ctx, from, full)
		if err != nil {
			continue
		}
		s.scanMu.Lock()
		items := s.pending[from]
		if items == nil {
			items = map[string]inventory.Item{}
			s.pending[from] = items
		}
		for sku, it := range changed {
			items[sku] = inventory.Merge(items[sku], it)
		}
		todo[from] = items
		s.scanMu.Unlock()
		if len(items) == 0 {
			continue
		}
		f := s.cluster.Fabric()
		for _, to := range s.regions {
			if to == from || !s.cluster.IsUp(to) || !f.Up(from, to) || !f.Up(to, from) {
				continue
			}
			for sku, it := range items {
				if !s.needsPush(from, to, sku, it.Version) {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if s.writeItem(ctx, from, to, sku, it) == nil {
						s.markPushed(from, to, sku, it.Version)
					}
				}()
			}
		}
	}
	wg.Wait()
	// Forget what every other replica has had; keep the rest for later.
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	for from, items := range todo {
		for sku, it := range items {
			everywhere := true
			for _, to := range s.regions {
				if to != from && s.needsPush(from, to, sku, it.Version) {
					everywhere = false
					break
				}
			}
			if everywhere {
				delete(items, sku)
			}
		}
	}
}

func (s *Store) needsPush(from, to, sku string, v inventory.Version) bool {
	s.pushedMu.Lock()
	defer s.pushedMu.Unlock()
	last, ok := s.pushed[[2]string{from, to}][sku]
	return !ok || last.Less(v)
}

func (s *Store) markPushed(from, to, sku string, v inventory.Version) {
	s.pushedMu.Lock()
	defer s.pushedMu.Unlock()
	m := s.pushed[[2]string{from, to}]
	if m == nil {
		m = map[string]inventory.Version{}
		s.pushed[[2]string{from, to}] = m
	}
	if last, ok := m[sku]; !ok || last.Less(v) {
		m[sku] = v
	}
}

// Converged reports whether every running replica holds the same newest
// item for every SKU.
func (s *Store) Converged(ctx context.Context) (bool, error) {
	var first map[string]inventory.Item
	for _, r := range s.regions {
		if !s.cluster.IsUp(r) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		items, err := s.localItems(cctx, r)
		cancel()
		if err != nil {
			return false, err
		}
		if first == nil {
			first = items
			continue
		}
		if len(items) != len(first) {
			return false, nil
		}
		for sku, it := range items {
			if first[sku] != it {
				return false, nil
			}
		}
	}
	return true, nil
}

// SetFullScanEvery makes every nth anti-entropy round read every replica
// whole instead of only what changed (default 50; 1 reads all every round).
// A knob for benchmarks of the background replication.
func (s *Store) SetFullScanEvery(n int64) { s.fullScanEvery.Store(n) }

// ChangedKeysRead is how many keys the rounds that read only changes have
// read so far (for tests of the background replication's cost).
func (s *Store) ChangedKeysRead() int64 { return s.changedKeysRead.Load() }
