package nodes

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A lab started again on its data directory comes up with every
// acknowledged write, says it resumed, and refuses a directory made for
// other regions or by something else.
func TestResumeFromDataDir(t *testing.T) {
	dir := t.TempDir()
	cfg := fastTiming
	cfg.DataDir = dir
	c := startCluster(t, cfg)
	if c.Resumed() {
		t.Fatal("a new data dir reported as resumed")
	}
	if err := put(t, c, c.Leader(), "k", "kept", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	rep, _ := c.ReplicaClient("eu-west-1", "eu-west-1")
	if _, err := rep.Put(ctxFor(t, 5*time.Second), "r", "kept too"); err != nil {
		t.Fatal(err)
	}
	if err := c.SaveNote("epochs", []byte(`{"n":3}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c2 := startCluster(t, cfg)
	if !c2.Resumed() {
		t.Fatal("second start on the same data dir did not say it resumed")
	}
	assertConverged(t, c2, "k", "kept")
	rep2, _ := c2.ReplicaClient("eu-west-1", "eu-west-1")
	resp, err := rep2.Get(ctxFor(t, 5*time.Second), "r")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "kept too" {
		t.Fatalf("replica after resume: %v %v", resp, err)
	}
	if note, err := c2.LoadNote("epochs"); err != nil || string(note) != `{"n":3}` {
		t.Fatalf("note after resume: %q %v", note, err)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}

	bad := cfg
	bad.Regions = []string{"us-east-1", "eu-west-1"}
	_, err = Start(ctxFor(t, 30*time.Second), bad)
	if err == nil || !strings.Contains(err.Error(), "holds regions us-east-1,eu-west-1,ap-southeast-1, not us-east-1,eu-west-1") {
		t.Fatalf("other regions: %v", err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, LayoutFile))
	if err := os.WriteFile(filepath.Join(dir, LayoutFile), []byte(strings.Replace(string(raw), `"version": 1`, `"version": 99`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Start(ctxFor(t, 30*time.Second), cfg)
	if err == nil || !strings.Contains(err.Error(), "layout version 99") {
		t.Fatalf("other layout version: %v", err)
	}

	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = other
	_, err = Start(ctxFor(t, 30*time.Second), cfg)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("foreign dir: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(other, "notes.txt")); string(b) != "mine" {
		t.Fatal("a refused start changed the directory")
	}
}

// A lab without a data dir removes the temporary data a killed run left.
func TestStaleTempDirsRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no 'true' to make a dead pid:", err)
	}
	stale := filepath.Join(tmp, tempPrefix+strconv.Itoa(dead.Process.Pid)+"-123")
	live := filepath.Join(tmp, tempPrefix+strconv.Itoa(os.Getpid())+"-456")
	for _, d := range []string{stale, live} {
		if err := os.MkdirAll(filepath.Join(d, "us-east-1"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, fastTiming)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("data of a dead run still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("data of a live process removed: %v", err)
	}
	if !strings.HasPrefix(filepath.Base(c.Dir()), tempPrefix+strconv.Itoa(os.Getpid())+"-") {
		t.Errorf("temp dir %s does not name its pid", c.Dir())
	}
}

// A data dir's zones are fixed in its regional groups' data: a start with
// another number of zones is refused, either way round, naming both.
func TestZoneCountOnResume(t *testing.T) {
	regions := []string{"us-east-1", "eu-west-1"}
	three := map[string]string{}
	one := map[string]string{}
	for _, r := range regions {
		for i := range 3 {
			three[ZoneName(r, i)] = "127.0.0.1:1"
		}
		one[ZoneName(r, 0)] = "127.0.0.1:1"
	}
	for _, tc := range []struct {
		saved map[string]string
		n     int
		want  string
	}{
		{three, 1, "made with 3 zone(s) per region (us-east-1's regional group has 3 member(s)), this lab asks for 1: start with --zones 3"},
		{one, 3, "made with 1 zone(s) per region (us-east-1's regional group has 1 member(s)), this lab asks for 3: start with --zones 1"},
		{three, 3, ""},
		{one, 1, ""},
		{map[string]string{}, 2, ""}, // made before zones: new groups
	} {
		err := checkZoneAddrs("D", tc.saved, regions, tc.n)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("saved %d zones, asked %d: %v, want %q", len(tc.saved), tc.n, err, tc.want)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, zoneAddrsFile), []byte("{half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadZoneAddrs(dir); err == nil || !strings.Contains(err.Error(), "zones.json is damaged") {
		t.Errorf("damaged zones.json: %v", err)
	}
}

// A lab started again on data with hundreds of entries since the servers'
// last disk snapshot (every server's first 5,000 entries have none) comes
// up and stays up, every time, with everything written. etcd replays such
// a log from index 1 and compacts its in-memory log to index 1 after 100
// replayed entries before raft hears they were applied; a campaign asked
// for in that gap panicked the process ("error scanning unapplied entries
// [1, N): requested index is unavailable due to compaction", issue 19) —
// Start asked every replica to campaign every 20 ms while no server knew
// a leader, and did so on resumed data too.
func TestResumeAfterHundredsOfEntries(t *testing.T) {
	cfg := fastTiming
	cfg.DataDir = t.TempDir()
	const rounds, writes = 6, 150
	for round := range rounds {
		c := startCluster(t, cfg)
		if round > 0 && !c.Resumed() {
			t.Fatalf("round %d: did not resume", round)
		}
		ctx := ctxFor(t, time.Minute)
		if err := c.WaitRegionalLeaders(ctx); err != nil {
			t.Fatal(err)
		}
		for _, r := range c.Regions() {
			rep, _ := c.ReplicaClient(r, r)
			zones, _ := c.RegionalClient(r, r)
			for _, cli := range []*clientv3.Client{rep, zones} {
				// Every value written before this round is still there.
				if resp, err := cli.Get(ctx, "n"); err != nil || round > 0 && (len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != strconv.Itoa(round*writes-1)) {
					t.Fatalf("round %d: %s: read %v %v, want %d", round, r, resp, err, round*writes-1)
				}
				for i := range writes {
					if _, err := cli.Put(ctx, "n", strconv.Itoa(round*writes+i)); err != nil {
						t.Fatalf("round %d: %s: put: %v", round, r, err)
					}
				}
			}
			for i := range writes / len(c.Regions()) {
				if err := put(t, c, r, "m"+r, strconv.Itoa(i), 10*time.Second); err != nil {
					t.Fatalf("round %d: consensus put in %s: %v", round, r, err)
				}
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
