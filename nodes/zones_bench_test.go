package nodes

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Ready time and memory with zones (every region's regional group of 1 or
// 3 members) at latency scale 0 and 1:
//
//	go test ./nodes -run '^$' -bench 'ZonesReady' -benchtime 5x
//	go test ./nodes -run '^$' -bench 'ZonesRSS/zones=3' -benchtime 1x   # one per process
//	go test ./nodes -run '^$' -bench 'ZonesRSS/zones=1' -benchtime 1x
//
// Ready = Start returned (every consensus member, replica and zone member
// ready) and both the consensus group and every regional group agree on a
// leader.
func BenchmarkZonesReady(b *testing.B) {
	for _, scale := range []float64{0, 1} {
		for _, zones := range []int{1, 3} {
			b.Run(fmt.Sprintf("scale=%g/zones=%d", scale, zones), func(b *testing.B) {
				var samples []time.Duration
				for range b.N {
					start := time.Now()
					c := benchStart(b, Config{LatencyScale: scale, Zones: zones})
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					if err := c.WaitRegionalLeaders(ctx); err != nil {
						b.Fatal(err)
					}
					cancel()
					samples = append(samples, time.Since(start))
					b.StopTimer()
					_ = c.Close()
					b.StartTimer()
				}
				b.ReportMetric(ms(median(samples)), "ms-to-ready")
			})
		}
	}
}

// BenchmarkZonesRSS: resident memory once a 3-region cluster is ready.
func BenchmarkZonesRSS(b *testing.B) {
	for _, zones := range []int{1, 3} {
		b.Run(fmt.Sprintf("zones=%d", zones), func(b *testing.B) {
			var peak float64
			for range b.N {
				c := benchStart(b, Config{LatencyScale: 0, Zones: zones})
				time.Sleep(time.Second)
				peak = max(peak, rssMB())
				_ = c.Close()
			}
			b.ReportMetric(peak, "MB-RSS")
		})
	}
}
