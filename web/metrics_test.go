package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches /metrics without a token, as Prometheus would, and
// parses it.
func scrape(t *testing.T, f *apiFixture) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(f.srv.URL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics without a token: %s, want 200 (open to viewers like /api/state)", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want Prometheus' text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics is not Prometheus' text format: %v", err)
	}
	return fams
}

// sample finds the series of a family whose labels include want; ok is
// false when there is none.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (*dto.Metric, bool) {
	fam := fams[name]
	if fam == nil {
		return nil, false
	}
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m, true
	}
	return nil, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// TestMetricsMoveWithABuy scrapes /metrics over real HTTP before and after
// a stock and a buy on a real lab, and checks that the operation counters,
// the latency histogram and the link counters moved, and that the state
// gauges (leader, links, breakers, Go runtime) are there.
func TestMetricsMoveWithABuy(t *testing.T) {
	f := newAPI(t)
	before := scrape(t, f)
	buy := map[string]string{"store": "consensus", "region": "eu-west-1", "op": "buy", "outcome": "ok"}
	m0, _ := sample(before, "caplab_operations_total", buy)
	bytes0 := 0.0
	for _, m := range before["caplab_link_bytes_total"].GetMetric() {
		bytes0 += value(m)
	}

	if resp, body := f.call(t, "PUT", "/api/stores/consensus/skus/METRIC", `{"region":"us-east-1","quantity":5}`, nil); resp.StatusCode != 200 {
		t.Fatalf("stock: %s %s", resp.Status, body)
	}
	if resp, body := f.call(t, "POST", "/api/stores/consensus/skus/METRIC/buy", `{"region":"eu-west-1","qty":1}`, nil); resp.StatusCode != 200 || !strings.Contains(string(body), `"outcome":"ok"`) {
		t.Fatalf("buy: %s %s", resp.Status, body)
	}

	// The counters follow the lab's event stream: give them a moment.
	var after map[string]*dto.MetricFamily
	deadline := time.Now().Add(5 * time.Second)
	for {
		after = scrape(t, f)
		m1, _ := sample(after, "caplab_operations_total", buy)
		if value(m1) == value(m0)+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("caplab_operations_total%v went from %v to %v after one buy, want +1", buy, value(m0), value(m1))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m, ok := sample(after, "caplab_operations_total", map[string]string{"store": "consensus", "region": "us-east-1", "op": "stock", "outcome": "ok"}); !ok || value(m) < 1 {
		t.Fatal("caplab_operations_total has no ok stock from us-east-1 after one")
	}
	h, ok := sample(after, "caplab_operation_duration_seconds", buy)
	if !ok || h.Histogram.GetSampleCount() < 1 || h.Histogram.GetSampleSum() <= 0 {
		t.Fatalf("caplab_operation_duration_seconds%v has no observation of the buy: %v", buy, h)
	}
	bytes1 := 0.0
	for _, m := range after["caplab_link_bytes_total"].GetMetric() {
		bytes1 += value(m)
	}
	if bytes1 <= bytes0 {
		t.Fatalf("caplab_link_bytes_total did not move with a committed buy (%v → %v)", bytes0, bytes1)
	}

	if m, ok := sample(after, "caplab_group_has_leader", map[string]string{"group": "consensus"}); !ok || value(m) != 1 {
		t.Fatal("caplab_group_has_leader{group=consensus} is not 1 in a healthy lab")
	}
	if fam := after["caplab_group_leader"]; fam == nil || len(fam.GetMetric()) != 1 {
		t.Fatal("caplab_group_leader should name exactly one leader")
	}
	if m, ok := sample(after, "caplab_group_term", map[string]string{"group": "consensus"}); !ok || value(m) < 1 {
		t.Fatal("caplab_group_term{group=consensus} is missing or 0")
	}
	if got := len(after["caplab_link_up"].GetMetric()); got != 6 {
		t.Fatalf("caplab_link_up has %d series, want 6 (3 regions, ordered pairs)", got)
	}
	if m, ok := sample(after, "caplab_breaker_state", map[string]string{"region": "eu-west-1", "store": "consensus", "state": "closed"}); !ok || value(m) != 1 {
		t.Fatal("caplab_breaker_state says eu-west-1's consensus breaker is not closed")
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "caplab_replica_revision", "caplab_member_term"} {
		if after[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}

	// A cut shows at the next scrape.
	if resp, body := f.call(t, "POST", "/api/network/link", `{"from":"us-east-1","to":"eu-west-1","state":"cut"}`, nil); resp.StatusCode != 200 {
		t.Fatalf("cut: %s %s", resp.Status, body)
	}
	cut := scrape(t, f)
	if m, ok := sample(cut, "caplab_link_up", map[string]string{"from": "us-east-1", "to": "eu-west-1"}); !ok || value(m) != 0 {
		t.Fatal("caplab_link_up{us-east-1→eu-west-1} is not 0 after the cut")
	}
	if m, ok := sample(cut, "caplab_faults_total", map[string]string{"kind": "cut"}); !ok || value(m) < 1 {
		// the fault counter follows the event stream too
		time.Sleep(200 * time.Millisecond)
		if m, ok = sample(scrape(t, f), "caplab_faults_total", map[string]string{"kind": "cut"}); !ok || value(m) < 1 {
			t.Fatal("caplab_faults_total{kind=cut} did not count the cut")
		}
	}
}
