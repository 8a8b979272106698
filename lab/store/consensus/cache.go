package consensus

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"caplab/lab/inventory"
	"caplab/lab/store"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The regional caches. Each region keeps the consensus store's counts in
// memory, fed by an etcd watch through its own member, and answers reads
// of consistency cached from it: no network, no Raft — a map lookup under
// a read lock. Like Kubernetes' watch cache or etcd's gRPC proxy cache.
//
// How far behind a cached read may be (its CacheLag):
//   - Revision: the revision the cache has applied (every event of the
//     store's keys up to it; progress notifications, which the cache asks
//     its member for on every probe, move it past writes to other keys);
//   - Known: the newest revision the region knows the group has — its own
//     member's, and the last quorum probe's (a linearizable, count-only
//     read every CacheProbe: one ReadIndex round); Revisions = Known −
//     Revision;
//   - Ms: the time since the cache was last known to be current: since
//     the probe whose revision it has reached was sent. A cache whose
//     region is cut off from the majority keeps answering — its probes
//     fail, so Ms grows — while the region's buys are refused.
//
// A watch that is cancelled or compacted, or whose member restarts, is
// rebuilt from a serializable read of the whole prefix (which also works
// on the minority side of a partition). A reset needs nothing: the keys of
// the new epoch are new keys, the old ones' deletes empty the cache.

// CacheProbe is how often each region's cache confirms with a majority
// which revision the group has reached.
const CacheProbe = 100 * time.Millisecond

// regionCache is one region's cache. Its feeding goroutine (Store.RunCache)
// is the only writer; reads take the read lock.
type regionCache struct {
	mu     sync.RWMutex
	built  bool
	counts map[string]cacheEntry // by full key, every epoch
	rev    int64                 // applied up to here
	known  int64                 // the group's newest revision the region knows
	// probeRev/probeAt: the last probe's revision and when it was sent;
	// currentAt: the send time of the newest probe whose revision the
	// cache has reached.
	probeRev  int64
	probeAt   time.Time
	currentAt time.Time
}

type cacheEntry struct {
	qty int
	mod int64
}

// cacheOf returns region's cache, creating it.
func (s *Store) cacheOf(region string) *regionCache {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.caches == nil {
		s.caches = map[string]*regionCache{}
	}
	c := s.caches[region]
	if c == nil {
		c = &regionCache{counts: map[string]cacheEntry{}}
		s.caches[region] = c
	}
	return c
}

// CacheLag is how far behind region's cache may be now (see readCached);
// false before its first build.
func (s *Store) CacheLag(region string) (inventory.CacheLag, bool) {
	c := s.cacheOf(region)
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.built {
		return inventory.CacheLag{}, false
	}
	return c.lag(time.Now()), true
}

// lag is the cache's lag at now (c.mu held).
func (c *regionCache) lag(now time.Time) inventory.CacheLag {
	l := inventory.CacheLag{Revision: c.rev, Known: max(c.known, c.rev), Revisions: max(0, c.known-c.rev), Ms: -1}
	if !c.currentAt.IsZero() {
		l.Ms = float64(now.Sub(c.currentAt).Microseconds()) / 1000
	}
	return l
}

// readCached answers a cached read from op.Region's cache.
func (s *Store) readCached(op inventory.Operation) inventory.Outcome {
	c := s.cacheOf(op.Region)
	key := s.Key(op.SKU)
	now := time.Now()
	c.mu.RLock()
	built, e, l := c.built, c.counts[key], c.lag(now)
	c.mu.RUnlock()
	if !built {
		return inventory.Outcome{Outcome: inventory.Unavailable,
			Message: fmt.Sprintf("Unavailable: %s's cache is not built yet (its watch has not started). Nothing was read.", store.City(op.Region))}
	}
	lag := &l
	// Built by concatenation, not Sprintf: this is the whole cost of a
	// cached read besides the map lookup.
	behind := "it has not yet confirmed with a majority"
	if lag.Ms >= 0 {
		behind = "it was current " + strconv.FormatFloat(lag.Ms, 'f', 0, 64) + " ms ago"
		if lag.Revisions > 0 {
			behind += " and is " + strconv.FormatInt(lag.Revisions, 10) + " revisions behind what the region knows"
		}
	}
	return inventory.Outcome{Outcome: inventory.OK, Quantity: e.qty, Version: inventory.Version{Wall: e.mod}, AnsweredBy: []string{op.Region}, CacheLag: lag,
		Message: strconv.Itoa(e.qty) + " left, from " + store.City(op.Region) + "'s cache in memory (fed by a watch on its own member; no network, no Raft) — " + behind + ", so it may be stale."}
}

// RunCache feeds region's cache until stop closes: a watch on the store's
// keys through the region's own member, progress requests and quorum
// probes every CacheProbe, and a rebuild whenever the watch ends.
func (s *Store) RunCache(region string, stop <-chan struct{}) {
	c := s.cacheOf(region)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-stop:
			cancel()
		case <-stopped:
		}
	}()
	var probing sync.WaitGroup
	probing.Add(1)
	go func() {
		defer probing.Done()
		s.probe(ctx, region, c)
	}()
	defer probing.Wait()
	for ctx.Err() == nil {
		if err := s.feed(ctx, region, c); err != nil && ctx.Err() == nil {
			select { // the member is down or the watch broke: try again shortly
			case <-ctx.Done():
			case <-time.After(CacheProbe):
			}
		}
	}
}

// feed builds the cache from a serializable read and applies the watch
// from the revision after it, until the watch ends.
func (s *Store) feed(ctx context.Context, region string, c *regionCache) error {
	cli, err := s.cluster.MemberClient(region)
	if err != nil {
		return err
	}
	gctx, cancel := context.WithTimeout(ctx, s.timeout)
	resp, err := cli.Get(gctx, Prefix, clientv3.WithPrefix(), clientv3.WithSerializable())
	cancel()
	if err != nil {
		return err
	}
	counts := make(map[string]cacheEntry, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		counts[string(kv.Key)] = entryOf(kv)
	}
	c.mu.Lock()
	c.counts, c.built = counts, true
	c.applied(resp.Header.Revision)
	c.mu.Unlock()

	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := cli.Watch(wctx, Prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1), clientv3.WithProgressNotify())
	for wr := range wch {
		if wr.Canceled || wr.CompactRevision != 0 || wr.Err() != nil {
			return fmt.Errorf("consensus: %s's cache watch ended: %w", region, wr.Err())
		}
		c.mu.Lock()
		top := int64(0)
		for _, ev := range wr.Events {
			key := string(ev.Kv.Key)
			if ev.Type == mvccpb.DELETE {
				delete(c.counts, key)
			} else {
				c.counts[key] = entryOf(ev.Kv)
			}
			top = max(top, ev.Kv.ModRevision)
		}
		if wr.IsProgressNotify() {
			top = max(top, wr.Header.Revision)
		}
		c.known = max(c.known, wr.Header.Revision)
		c.applied(top)
		c.mu.Unlock()
	}
	return fmt.Errorf("consensus: %s's cache watch closed", region)
}

// applied records that the cache holds every change up to rev (c.mu held).
func (c *regionCache) applied(rev int64) {
	c.rev = max(c.rev, rev)
	c.known = max(c.known, c.rev)
	if c.probeRev > 0 && c.rev >= c.probeRev && c.probeAt.After(c.currentAt) {
		c.currentAt = c.probeAt
	}
}

// probe asks a majority for the group's revision every CacheProbe (a
// linearizable count-only read: one ReadIndex round) and its member for a
// progress notification on the cache's watch.
func (s *Store) probe(ctx context.Context, region string, c *regionCache) {
	t := time.NewTicker(CacheProbe)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cli, err := s.cluster.MemberClient(region)
		if err != nil {
			return
		}
		sent := time.Now()
		pctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), s.timeout)
		resp, err := cli.Get(pctx, Prefix+"probe", clientv3.WithCountOnly())
		cancel()
		if err == nil {
			c.mu.Lock()
			c.probeRev, c.probeAt = resp.Header.Revision, sent
			c.known = max(c.known, resp.Header.Revision)
			c.applied(0)
			c.mu.Unlock()
		}
		rctx, cancel := context.WithTimeout(ctx, s.timeout)
		_ = cli.RequestProgress(rctx) // answered on the watch stream as a progress notification
		cancel()
	}
}

func entryOf(kv *mvccpb.KeyValue) cacheEntry {
	q, _ := strconv.Atoi(string(kv.Value))
	return cacheEntry{qty: q, mod: kv.ModRevision}
}
