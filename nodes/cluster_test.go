package nodes

import (
	"context"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// grpc and etcd start process-wide goroutines once.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	)
}

// startCluster starts a cluster for one test and closes it at the end.
func startCluster(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatalf("wait leader: %v", err)
	}
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func put(t *testing.T, c *Cluster, region, key, val string, d time.Duration) error {
	t.Helper()
	cli, err := c.MemberClient(region)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err = cli.Put(clientv3.WithRequireLeader(ctx), key, val)
	return err
}

func TestStartAgreeOnLeaderAndCloseCleanly(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxFor(t, 60*time.Second)
	c, err := Start(ctx, Config{DataDir: dir + "/lab", LatencyScale: 0})
	if err != nil {
		t.Fatal(err)
	}
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := c.State()
	if len(st.Regions) != 3 {
		t.Fatalf("regions = %d, want 3", len(st.Regions))
	}
	leaders := 0
	for _, r := range st.Regions {
		if r.Role == RoleLeader {
			leaders++
		}
		if r.Leader != leader && r.Leader != "" {
			t.Errorf("%s believes %q leads, majority says %q", r.Name, r.Leader, leader)
		}
	}
	if leaders != 1 {
		t.Errorf("%d members call themselves leader, want 1", leaders)
	}
	if len(st.Links) != 6 {
		t.Errorf("links = %d, want 6", len(st.Links))
	}
	if err := put(t, c, "ap-southeast-1", "k", "v", 5*time.Second); err != nil {
		t.Fatalf("put: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // safe twice
		t.Fatal(err)
	}
}

func TestTempDirRemovedOnClose(t *testing.T) {
	ctx := ctxFor(t, 60*time.Second)
	c, err := Start(ctx, Config{LatencyScale: 0})
	if err != nil {
		t.Fatal(err)
	}
	dir := c.Dir()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("data dir missing while running: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("data dir %s still there after Close (err=%v)", dir, err)
	}
}
