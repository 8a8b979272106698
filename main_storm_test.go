package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	stormRounds = flag.Int("storm.rounds", 5, "TestCrashStorm: crash/restart rounds per thread (issue 19's must-show: 20)")
	stormRuns   = flag.Int("storm.runs", 1, "TestCrashStorm: storms, each on a fresh lab (issue 19's must-show: 3)")
)

// Regions and zones crashed and restarted from 4 threads at once while 9
// buyers buy on every store: the process survives (a crash once closed a
// member's storage under a serializable read it was serving: SIGSEGV in
// bbolt, issue 19), every region and zone comes back with a role, the
// consensus store's verdict is linearizable with nothing oversold, and
// every store sells again. -storm.rounds 20 -storm.runs 3 is the issue's
// must-show.
func TestCrashStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildCaplab(t)
	for run := range *stormRuns {
		t.Run(fmt.Sprintf("run%d", run), func(t *testing.T) { crashStorm(t, bin) })
	}
}

func crashStorm(t *testing.T, bin string) {
	const token, threads, buyersPerStore = "0123456789abcdef", 4, 9
	p := startLabProcess(t, bin, "--latency-scale", "0", "--token", token)
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-1"}
	stores := []string{"consensus", "replicated", "geo"}
	for _, store := range stores {
		body := `{"region":"us-east-1","quantity":1000000}`
		if store == "geo" {
			body = `{"region":"us-east-1","quantity":999999,"allocations":{"us-east-1":333333,"eu-west-1":333333,"ap-southeast-1":333333}}`
		}
		if o, _, err := call(p.base, token, "PUT", "/api/stores/"+store+"/skus/S", body); err != nil || o != "ok" {
			t.Fatalf("stock %s: %q %v", store, o, err)
		}
	}
	var targets []string // every region and zone
	for _, r := range regions {
		targets = append(targets, r, r+"a", r+"b", r+"c")
	}

	stop := make(chan struct{})
	var buyers sync.WaitGroup
	var ok, notOK atomic.Int64
	for _, store := range stores {
		for b := range buyersPerStore {
			buyers.Go(func() {
				for i := b; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					o, _, err := call(p.base, token, "POST", "/api/stores/"+store+"/skus/S/buy", fmt.Sprintf(`{"region":%q,"qty":1}`, regions[i%3]))
					switch {
					case err != nil && p.exited():
						return
					case o == "ok":
						ok.Add(1)
					default:
						notOK.Add(1)
					}
				}
			})
		}
	}
	var storm sync.WaitGroup
	var crashes atomic.Int64
	for range threads {
		storm.Go(func() {
			for range *stormRounds {
				if p.exited() {
					return
				}
				target := targets[rand.IntN(len(targets))]
				// 409: already down (or its region is), or already up.
				if code, _ := post(p.base, token, "/api/regions/"+target+"/crash"); code == http.StatusOK {
					crashes.Add(1)
				}
				time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond) // the fault schedule: down for 0–0.3 s
				_, _ = post(p.base, token, "/api/regions/"+target+"/restart")
			}
		})
	}
	storm.Wait()
	close(stop)
	buyers.Wait()
	if p.exited() {
		t.Fatalf("caplab died during the storm (%v):\n%s", p.cmd.ProcessState, p.out)
	}
	t.Logf("%d crashes from %d threads; buys: %d ok, %d not", crashes.Load(), threads, ok.Load(), notOK.Load())
	if crashes.Load() == 0 {
		t.Fatal("the storm crashed nothing")
	}

	// Everything back: regions first (a zone restarts only in a running
	// region), then any zone still down.
	for _, name := range append(regions, targets...) {
		_, _ = post(p.base, token, "/api/regions/"+name+"/restart")
	}
	awaitSettled(t, p)
	for _, store := range stores {
		for _, r := range regions {
			sold := false
			for try := 0; try < 50 && !sold; try++ { // a breaker opened by the storm may still be cooling down
				o, _, err := call(p.base, token, "POST", "/api/stores/"+store+"/skus/S/buy", fmt.Sprintf(`{"region":%q,"qty":1}`, r))
				if err != nil {
					t.Fatalf("buy %s in %s after the storm: %v", store, r, err)
				}
				if sold = o == "ok"; !sold {
					time.Sleep(200 * time.Millisecond)
				}
			}
			if !sold {
				t.Errorf("%s does not sell in %s after the storm", store, r)
			}
		}
	}
	// The verdict covers the storm and the buys after it.
	var check struct {
		Linearizable bool
		Oversold     int
		Operations   int
		Explanation  string
	}
	if err := getJSON(p.base+"/api/check?store=consensus&sku=S", &check); err != nil {
		t.Fatal(err)
	}
	if !check.Linearizable || check.Oversold != 0 || check.Operations == 0 {
		t.Errorf("consensus after the storm: linearizable %v, oversold %d, %d operations: %s", check.Linearizable, check.Oversold, check.Operations, check.Explanation)
	}
	if p.exited() {
		t.Fatalf("caplab died (%v):\n%s", p.cmd.ProcessState, p.out)
	}
}

// post sends a mutation with an empty body and returns the status code.
func post(base, token, path string) (int, error) {
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func getJSON(url string, v any) error {
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
