package web

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestErrorsEchoLittleInput: an error sentence repeats at most about 60
// characters of what was sent, however long it was (inventory.Echo).
func TestErrorsEchoLittleInput(t *testing.T) {
	f := newAPI(t)
	long := strings.Repeat("A", 2000)
	digits := "1" + strings.Repeat("0", 2000)
	cases := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"long sku", "POST", "/api/stores/consensus/skus/" + long + "/buy", `{"region":"us-east-1","qty":1}`, 400, "(2000 characters)"},
		{"long region", "POST", "/api/stores/consensus/skus/X/buy", `{"region":"` + long + `","qty":1}`, 404, "(2000 characters)"},
		{"long store", "GET", "/api/stores/" + long + "/skus/X?region=us-east-1", "", 404, "(2000 characters)"},
		{"long link state", "POST", "/api/network/link", `{"from":"us-east-1","to":"eu-west-1","state":"` + long + `"}`, 400, "(2000 characters)"},
		{"huge rtt", "POST", "/api/network/latency", `{"from":"us-east-1","to":"eu-west-1","rttMs":1e308}`, 400, "not 1e+308"},
		{"long number", "POST", "/api/stores/consensus/skus/X/buy", `{"region":"us-east-1","qty":` + digits + `}`, 400, "(2001 characters)"},
		{"long consistency", "GET", "/api/stores/consensus/skus/X?region=us-east-1&consistency=" + long, "", 400, "(2000 characters)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := f.call(t, c.method, c.path, c.body, nil)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(e.Error, c.want) {
				t.Errorf("error %q does not say %q", e.Error, c.want)
			}
			if len(e.Error) > 300 || strings.Contains(e.Error, strings.Repeat("A", 61)) || strings.Contains(e.Error, strings.Repeat("0", 61)) {
				t.Errorf("error repeats too much of the input (%d bytes): %s", len(e.Error), e.Error)
			}
		})
	}
}
