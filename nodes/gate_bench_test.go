package nodes

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// BenchmarkRequestGate: what the request gate (gate.go) costs a request.
// Two single-member servers in this process, configured as a region's
// replica, one started as the lab starts them (startGated: the gate and
// its stream workers) and one as etcd alone would; 32 clients send
// serializable Gets (the first step of a consensus buy) and Puts to one,
// then the other, in alternating bursts (ABBA), so whatever else loads the
// machine hits both alike. Reported: each side's median rate and process
// CPU per request over the bursts, and their ratios gated/ungated.
//
//	go test ./nodes -run '^$' -bench RequestGate -benchtime 1x
func BenchmarkRequestGate(b *testing.B) {
	const workers, perBurst, bursts = 32, 4000, 12
	start := func(gated bool) *clientv3.Client {
		r := newRegion(Place{Name: map[bool]string{true: "gated", false: "ungated"}[gated]})
		r.dir, r.token, r.noFsync, r.zapLogger = b.TempDir(), "caplab", true, zap.NewNop()
		if err := r.pickPorts(); err != nil {
			b.Fatal(err)
		}
		r.replicaAdvertise = r.replicaPeer
		var e *embed.Etcd
		var err error
		if gated {
			e, err = startGated(r.replicaConfig(), slog.New(slog.DiscardHandler))
		} else {
			e, err = embed.StartEtcd(r.replicaConfig())
		}
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { e.Server.HardStop(); e.Close() })
		<-e.Server.ReadyNotify()
		cli, err := newClient(r.replicaClient)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cli.Close() })
		return cli
	}
	clis := map[bool]*clientv3.Client{true: start(true), false: start(false)}
	burst := func(cli *clientv3.Client, puts bool) (perSec, cpuUs float64) {
		var next atomic.Int64
		var failed atomic.Int64
		var wg sync.WaitGroup
		cpu0, t0 := cpuTime(), time.Now()
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= perBurst {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					var err error
					if puts {
						_, err = cli.Put(ctx, "k", "v")
					} else {
						_, err = cli.Get(ctx, "k", clientv3.WithSerializable())
					}
					cancel()
					if err != nil {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		el, cpu := time.Since(t0), cpuTime()-cpu0
		if failed.Load() > 0 {
			b.Fatalf("%d requests failed", failed.Load())
		}
		return perBurst / el.Seconds(), float64(cpu.Microseconds()) / perBurst
	}
	for _, op := range []string{"get", "put"} {
		b.Run(op, func(b *testing.B) {
			for range b.N {
				rate := map[bool][]float64{}
				cpu := map[bool][]float64{}
				for i := range bursts {
					for _, gated := range []bool{i%2 == 0, i%2 != 0} { // ABBA
						r, c := burst(clis[gated], op == "put")
						rate[gated] = append(rate[gated], r)
						cpu[gated] = append(cpu[gated], c)
					}
				}
				med := func(s []float64) float64 { s = slices.Clone(s); slices.Sort(s); return s[len(s)/2] }
				b.ReportMetric(med(rate[true]), "req/s-gated")
				b.ReportMetric(med(rate[false]), "req/s-ungated")
				b.ReportMetric(med(cpu[true]), "cpu-µs/req-gated")
				b.ReportMetric(med(cpu[false]), "cpu-µs/req-ungated")
				b.ReportMetric(med(rate[true])/med(rate[false]), "rate-ratio")
				b.ReportMetric(med(cpu[true])/med(cpu[false]), "cpu-ratio")
				b.Logf("%s: gated %.0f req/s %.1f cpu-µs, ungated %.0f req/s %.1f cpu-µs", op, med(rate[true]), med(cpu[true]), med(rate[false]), med(cpu[false]))
			}
		})
	}
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGateEnterLeave: the gate's own work per request, alone.
func BenchmarkGateEnterLeave(b *testing.B) {
	g := newRequestGate("bench", slog.New(slog.DiscardHandler))
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, leave, _ := g.enter(parent)
			leave()
		}
	})
}
