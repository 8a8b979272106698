package lab

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"caplab/lab/history"
	"caplab/lab/inventory"
	"caplab/lab/store/consensus"
	"caplab/nodes"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Outside clients. Every region's member and replica are reachable by any
// etcd v3 client through the client endpoints (nodes.Cluster.Endpoints,
// State.regions[].clientUrls). Their reads and writes bypass the lab: no
// operation is recorded, no breaker sees them, and the checker — which
// judges the lab's history — does not know them. A write to a SKU's key
// therefore looks to the checker like a value no operation wrote: the
// next read or buy of that SKU can make the history "not linearizable".
//
// So the lab watches the consensus store's keys (through whichever
// region's member has a leader) and compares every write to a SKU of the
// current epoch with the revisions its own operations produced (each
// stock's and buy's Version.Wall is the revision it wrote). A revision the
// lab did not write, once the lab has had time to record its own
// operations, is recorded as a FaultOutsideWrite fault naming the SKU, the
// revision and the value: it shows in the history, on the page's
// space-time diagram and in caplab_faults_total. A write the lab sent but
// could not confirm (answered unavailable; it may still be applied) might
// be the one that landed, so each such operation explains at most one
// unknown revision of its SKU instead of it being flagged.
//
// Writes to keys outside the inventory, deletes, and writes to the
// replicated store's replicas are not flagged (the replicas keep no record
// of who wrote: every write there is a put of a versioned value).

// outsideWatcher watches the consensus store's keys for writes no
// operation of the lab made (see above). Its goroutine (run) starts in New
// and ends when the lab stops.
type outsideWatcher struct {
	cluster   *nodes.Cluster
	regions   []string
	consensus *consensus.Store
	history   *history.History
	ownWrites *unrecordedWrites
	// settle is how long after seeing a revision the watcher waits for
	// the lab to record the operation that wrote it: one request deadline
	// and a margin.
	settle time.Duration
	// from is the first revision to watch: the one after the consensus
	// group's revision when the lab started (startRevision), so that a
	// write made before the first watch is up is not missed; 0: from the
	// first watch's start.
	from int64
	stop <-chan struct{}
	// happened records a write it flags (Lab.faultHappened).
	happened func(kind inventory.FaultKind, regions []string, detail string, act *RecordedAction)
}

// seenWrite is one write to a SKU key the watcher saw.
type seenWrite struct {
	epoch int64
	sku   string
	rev   int64
	value string
	seen  time.Time
}

// run watches until the lab closes.
func (w *outsideWatcher) run() {
	var (
		next    = w.from // revision to resume from; 0: from the watch's start
		pending []seenWrite
		used    = map[int]bool{} // unconfirmed lab writes already taken as an explanation
		epoch   = w.consensus.Epoch()
		turn    int
	)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		region := w.regions[turn%len(w.regions)]
		turn++
		cli, err := w.cluster.MemberClient(region)
		if err != nil || !w.cluster.IsUp(region) {
			if !w.wait(100 * time.Millisecond) {
				return
			}
			continue
		}
		// With a leader required, the watch ends when this member loses
		// its leader (a partition's minority), and the next member's watch
		// resumes from the next revision: nothing is missed.
		ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(context.Background()))
		opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCreatedNotify()}
		if next > 0 {
			opts = append(opts, clientv3.WithRev(next))
		}
		wch := cli.Watch(ctx, consensus.Prefix, opts...)
	watching:
		for {
			select {
			case <-w.stop:
				cancel()
				return
			case resp, ok := <-wch:
				if !ok {
					break watching
				}
				if resp.CompactRevision > 0 { // history compacted away: resume from what is left
					next = resp.CompactRevision
					break watching
				}
				if resp.Err() != nil {
					break watching
				}
				if resp.Created && next == 0 {
					next = resp.Header.Revision + 1
				}
				for _, ev := range resp.Events {
					next = max(next, ev.Kv.ModRevision+1)
					if ev.Type != mvccpb.PUT {
						continue
					}
					if ep, sku, ok := parseConsensusKey(string(ev.Kv.Key)); ok {
						pending = append(pending, seenWrite{epoch: ep, sku: sku, rev: ev.Kv.ModRevision, value: string(ev.Kv.Value), seen: time.Now()})
					}
				}
			case <-tick.C:
				if !w.cluster.IsUp(region) { // crashed under the watch: use another member
					break watching
				}
				if now := w.consensus.Epoch(); now != epoch { // a reset: new history, new keys
					epoch = now
					clear(used)
				}
				pending = w.attribute(pending, epoch, used)
			}
		}
		cancel()
		if !w.wait(100 * time.Millisecond) {
			return
		}
	}
}

// startRevision is the revision after the consensus group's newest, read
// through any region's member within ctx: where the outside-write watcher
// starts (0 when no member answers; the watcher then starts from its first
// watch).
func startRevision(ctx context.Context, cl *nodes.Cluster, regions []string) int64 {
	for _, r := range regions {
		cli, err := cl.MemberClient(r)
		if err != nil {
			continue
		}
		resp, err := cli.Get(clientv3.WithRequireLeader(ctx), consensus.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err == nil {
			return resp.Header.Revision + 1
		}
	}
	return 0
}

// wait waits d; false once the lab is stopping.
func (w *outsideWatcher) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.stop:
		return false
	case <-t.C:
		return true
	}
}

// attribute settles the pending writes old enough to judge: each is the
// lab's own (a recorded stock or buy wrote that revision), explained by an
// unconfirmed lab write of the same SKU, or flagged. Writes of an older
// epoch are dropped: nothing reads them any more. The history is read
// once per call, and only when some write is ready to judge.
func (w *outsideWatcher) attribute(pending []seenWrite, epoch int64, used map[int]bool) []seenWrite {
	var keep, ready []seenWrite
	for _, sw := range pending {
		switch {
		case sw.epoch != epoch:
		case time.Since(sw.seen) < w.settle:
			keep = append(keep, sw)
		case w.ownWrites.explain(sw): // a load's write, left out of the History
		default:
			ready = append(ready, sw)
		}
	}
	if len(ready) == 0 {
		return keep
	}
	// One pass over the history in place (no copy of it: at the cap that
	// would be ~25 MB of garbage per tick), keeping only what concerns the
	// ready writes.
	own := map[int64]bool{} // revisions of ready writes that the lab's confirmed writes produced
	skus := map[string]bool{}
	for _, sw := range ready {
		own[sw.rev], skus[sw.sku] = false, true
	}
	unconfirmed := map[string][]int{} // per SKU, writes that answered unavailable, not yet used
	w.history.Scan(func(op *inventory.Operation) {
		if op.Store != inventory.Consensus || (op.Op != inventory.OpStock && op.Op != inventory.OpBuy) {
			return
		}
		switch {
		case op.Outcome == inventory.OK:
			if _, ok := own[op.Version.Wall]; ok {
				own[op.Version.Wall] = true
			}
		case op.Outcome == inventory.Unavailable && skus[op.SKU] && !used[op.ID]:
			unconfirmed[op.SKU] = append(unconfirmed[op.SKU], op.ID)
		}
	})
	for _, sw := range ready {
		if own[sw.rev] {
			continue
		}
		if ids := unconfirmed[sw.sku]; len(ids) > 0 { // perhaps the lab's own late write
			used[ids[0]] = true
			unconfirmed[sw.sku] = ids[1:]
			continue
		}
		w.happened(inventory.FaultOutsideWrite, nil, fmt.Sprintf(
			"%s was set to %q at etcd revision %d by a client outside the lab (not one of its operations); the checker judges only the lab's own operations",
			sw.sku, clipValue(sw.value, 20), sw.rev), nil)
	}
	return keep
}

// parseConsensusKey splits a consensus store key, /inventory/<epoch>/<sku>.
// Other keys under the prefix are no SKU's stock (a reservation's fencing
// token lives at /inventory/<epoch>/<sku>/fence): ok is false for them.
func parseConsensusKey(key string) (epoch int64, sku string, ok bool) {
	rest, found := strings.CutPrefix(key, consensus.Prefix)
	if !found {
		return 0, "", false
	}
	e, sku, found := strings.Cut(rest, "/")
	if !found || !inventory.ValidSKU(sku) {
		return 0, "", false
	}
	epoch, err := strconv.ParseInt(e, 10, 64)
	if err != nil {
		return 0, "", false
	}
	return epoch, sku, true
}

// clipValue shortens a value for a message.
func clipValue(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ClientURLs are the etcd v3 client URLs of one region's servers, by the
// region the client stands in (State extension; nodes.Endpoint).
type ClientURLs struct {
	// Consensus: the region's member of the consensus group.
	Consensus map[string]string `json:"consensus"`
	// Replica: the region's replica of the replicated store.
	Replica map[string]string `json:"replica"`
}

// clientURLs groups the cluster's endpoints by the server's region.
func clientURLs(eps []nodes.Endpoint) map[string]ClientURLs {
	out := map[string]ClientURLs{}
	for _, e := range eps {
		c, ok := out[e.To]
		if !ok {
			c = ClientURLs{Consensus: map[string]string{}, Replica: map[string]string{}}
			out[e.To] = c
		}
		if e.Server == nodes.ServerMember {
			c.Consensus[e.From] = e.URL
		} else {
			c.Replica[e.From] = e.URL
		}
	}
	return out
}
