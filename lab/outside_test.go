package lab_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/history"
	"caplab/lab/inventory"
	"caplab/lab/store/consensus"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// outsideClient is an etcd v3 client standing in region from, talking to
// region to's consensus member through the lab's client endpoint (the
// URL State lists), like etcdctl would.
func outsideClient(t *testing.T, l *lab.Lab, from, to string) *clientv3.Client {
	t.Helper()
	url := ""
	for _, r := range l.State().Regions {
		if r.Name == to {
			url = r.ClientURLs.Consensus[from]
		}
	}
	if url == "" {
		t.Fatalf("State lists no client URL of %s's member for a client in %s", to, from)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func outsideFaults(l *lab.Lab) []inventory.Fault {
	var out []inventory.Fault
	for _, f := range l.History("").Faults {
		if f.Kind == inventory.FaultOutsideWrite {
			out = append(out, f)
		}
	}
	return out
}

// TestOutsideWriteIsFlagged: the lab's own stocks and buys are never
// flagged; a put by an outside client (through a client endpoint, across
// the fabric) to a SKU's key is recorded as an outside_write fault, and the
// checker — which knows only the lab's operations — then finds the
// history not linearizable.
func TestOutsideWriteIsFlagged(t *testing.T) {
	l := newLab(t, lab.Config{})
	const sku = "OUTSIDE"
	if _, err := l.Stock(ctxT(t, 5*time.Second), inventory.Consensus, sku, "us-east-1", 5); err != nil {
		t.Fatal(err)
	}
	for _, r := range l.Regions() {
		if o, err := l.Buy(ctxT(t, 5*time.Second), inventory.Consensus, sku, r, 1); err != nil || o.Outcome != inventory.OK {
			t.Fatalf("buy from %s: %s", r, o.Message)
		}
	}
	// Wait past the settle time: the lab's own writes must not be flagged.
	time.Sleep(lab.OutsideSettle(l) + 500*time.Millisecond)
	if f := outsideFaults(l); len(f) != 0 {
		t.Fatalf("the lab's own writes were flagged as outside writes: %+v", f)
	}

	cli := outsideClient(t, l, "ap-southeast-1", "us-east-1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, err := cli.Get(ctx, consensus.Prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatalf("outside get: %v", err)
	}
	key := ""
	for _, kv := range keys.Kvs {
		if strings.HasSuffix(string(kv.Key), "/"+sku) {
			key = string(kv.Key)
		}
	}
	if key == "" {
		t.Fatalf("no key for %s among %v", sku, keys.Kvs)
	}
	put, err := cli.Put(ctx, key, "99")
	if err != nil {
		t.Fatalf("outside put: %v", err)
	}

	deadline := time.Now().Add(lab.OutsideSettle(l) + 5*time.Second)
	for len(outsideFaults(l)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("an outside write to a SKU was not flagged")
		}
		time.Sleep(100 * time.Millisecond)
	}
	f := outsideFaults(l)
	if len(f) != 1 || !strings.Contains(f[0].Detail, sku) || !strings.Contains(f[0].Detail, "99") {
		t.Fatalf("outside write fault: %+v, want one naming %s and the value 99", f, sku)
	}
	t.Logf("flagged: %s (revision %d)", f[0].Detail, put.Header.Revision)

	// The lab reads the outside value; no recorded operation wrote it.
	o, err := l.Read(ctxT(t, 5*time.Second), inventory.Consensus, sku, "eu-west-1", inventory.Linearizable)
	o = mustOutcome(t, o, err)
	if o.Quantity != 99 {
		t.Fatalf("lab read %d after the outside write of 99", o.Quantity)
	}
	res, err := l.Check(inventory.Consensus, sku)
	if err != nil {
		t.Fatal(err)
	}
	if res.Linearizable {
		t.Fatal("the checker found the history linearizable although a read saw a value no operation wrote")
	}
}

func TestParseConsensusKey(t *testing.T) {
	for _, tc := range []struct {
		key   string
		epoch int64
		sku   string
		ok    bool
	}{
		{"/inventory/3/IPHONE", 3, "IPHONE", true},
		{"/inventory/0/A/fence", 0, "", false}, // a reservation's fencing token: no SKU
		{"/inventory/0/A-1.b_2", 0, "A-1.b_2", true},
		{"/inventory/x/IPHONE", 0, "", false},
		{"/inventory/3/", 0, "", false},
		{"/inventory/3", 0, "", false},
		{"greeting", 0, "", false},
	} {
		e, s, ok := lab.ParseConsensusKey(tc.key)
		if ok != tc.ok || (ok && (e != tc.epoch || s != tc.sku)) {
			t.Errorf("parseConsensusKey(%q) = %d, %q, %v; want %d, %q, %v", tc.key, e, s, ok, tc.epoch, tc.sku, tc.ok)
		}
	}
}

// The watcher must not flag anything when nobody writes from outside,
// even across a reset (new epoch, new history).
func TestNoOutsideWriteAcrossReset(t *testing.T) {
	l := newLab(t, lab.Config{})
	if _, err := l.Stock(ctxT(t, 5*time.Second), inventory.Consensus, "R", "eu-west-1", 2); err != nil {
		t.Fatal(err)
	}
	if err := l.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Stock(ctxT(t, 5*time.Second), inventory.Consensus, "R", "eu-west-1", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Buy(ctxT(t, 5*time.Second), inventory.Consensus, "R", "us-east-1", 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(lab.OutsideSettle(l) + 500*time.Millisecond)
	if f := outsideFaults(l); len(f) != 0 {
		t.Fatalf("flagged without an outside client: %+v", f)
	}
}

// TestFullHistoryWritesAreNotOutsideWrites: past the History's cap the
// lab's operations are not stored, but their writes are still the lab's
// own. (Before, every buy after the 100,000th recorded operation became an
// outside_write fault — and a State built and published for each.)
func TestFullHistoryWritesAreNotOutsideWrites(t *testing.T) {
	l := newLab(t, lab.Config{})
	const sku = "PASTCAP"
	if _, err := l.Stock(ctxT(t, 5*time.Second), inventory.Consensus, sku, "us-east-1", 10); err != nil {
		t.Fatal(err)
	}
	// Fill the History with reads of another SKU, as a long session would.
	for lab.HistoryOf(l).Stored() < history.MaxOperations {
		lab.HistoryOf(l).AddOperation(inventory.Operation{Store: inventory.Consensus, SKU: "FILLER", Region: "us-east-1", Op: inventory.OpRead, Outcome: inventory.OK})
	}
	for _, r := range l.Regions() {
		o, err := l.Buy(ctxT(t, 5*time.Second), inventory.Consensus, sku, r, 1)
		if o = mustOutcome(t, o, err); o.Outcome != inventory.OK {
			t.Fatalf("buy from %s past the cap: %s", r, o.Message)
		}
	}
	if n, _ := lab.HistoryOf(l).Dropped(); n < len(l.Regions()) {
		t.Fatalf("%d operations dropped past the cap, want the %d buys", n, len(l.Regions()))
	}
	time.Sleep(lab.OutsideSettle(l) + 1500*time.Millisecond) // the watcher judges every 500 ms
	if f := outsideFaults(l); len(f) != 0 {
		t.Fatalf("buys past the History's cap were flagged as outside writes: %d faults, first %+v", len(f), f[0])
	}
}
