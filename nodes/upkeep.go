package nodes

import (
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/storage/wal"
)

// Bounds on what a lab keeps, so memory and disk stay flat under
// sustained buys (every figure is per server; a lab runs two per region).
const (
	// walSegmentBytes is the size of one preallocated WAL file. etcd's
	// 64 MB suits a production disk; a lab writes a few hundred bytes per
	// operation, and six servers × two preallocated 64 MB files were most
	// of a lab's 735 MB on disk. With the geo store's zones a lab runs
	// 15 servers (3 regions × consensus member, replica and 3 zones), each
	// keeping up to keptFiles files plus the next one made ahead: at 4 MB
	// that was 180 MB; at 1 MB (~5,000 entries of a lab, about one
	// snapshot's worth) it is 45 MB.
	walSegmentBytes = 1 << 20
	// compactionRetention: etcd compacts the key-value history to the
	// revision it had this long ago (nothing in caplab reads or watches
	// old revisions). Without it every revision stays in memory.
	compactionRetention = "30s"
	// snapshotCount: committed entries between raft snapshots; after one,
	// older WAL files and in-memory raft entries can go. (2,000 with 1,000
	// catch-up entries instead of etcd's 5,000 + 5,000 was tried against
	// the soak's live-heap plateau: no difference measured — issue 9,
	// docs/benchmarks.md "Soak".)
	snapshotCount = 5000
	// keptFiles: WAL and snapshot files kept beyond what is needed.
	keptFiles = 2
	// defragAbove and defragEvery: a server's database file is defragmented
	// when it is larger than defragAbove and at least half of it is free
	// space left by compaction, checked every defragEvery.
	defragAbove = 32 << 20
	defragEvery = 30 * time.Second
)

var walSizeOnce sync.Once

// boundStorage sets a server's compaction, snapshot and file limits.
func boundStorage(cfg *embed.Config) {
	// wal.SegmentSizeBytes is a package variable of etcd's, read when a WAL
	// file is created: set it once, before the first server starts.
	walSizeOnce.Do(func() { wal.SegmentSizeBytes = walSegmentBytes })
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = compactionRetention
	cfg.SnapshotCount = snapshotCount
	cfg.MaxWalFiles = keptFiles
	cfg.MaxSnapFiles = keptFiles
}

// upkeep defragments servers whose database file is mostly free space,
// one at a time, until the cluster closes.
func (c *Cluster) upkeep() {
	defer c.observer.Done()
	t := time.NewTicker(defragEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		for _, r := range c.regions {
			_ = r.do(opDefrag)
		}
	}
}

// doDefrag defragments the region's running servers whose database file
// is larger than defragAbove and at least half free. Owner only: a server
// never closes under it.
func (r *region) doDefrag() {
	m, rep := r.servers()
	for _, e := range []*embed.Etcd{m, rep} {
		if !running(e) {
			continue
		}
		be := e.Server.Backend()
		if size := be.Size(); size > defragAbove && be.SizeInUse() < size/2 {
			_ = e.Server.Defragment()
		}
	}
}
