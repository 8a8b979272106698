package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAuditLogSurvivesKill9: a lab with --data-dir answers buys, is killed
// with SIGKILL, and "caplab history export --data-dir" (no lab running)
// still lists every operation it answered.
func TestAuditLogSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	base, token, cmd, _, out := startBinary(t, "--latency-scale", "0", "--data-dir", dir)
	call := func(method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, out)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := call("PUT", "/api/stores/consensus/skus/AUDIT", `{"region":"us-east-1","quantity":5}`); code != 200 {
		t.Fatalf("stock: %d", code)
	}
	const buys = 4
	for i := range buys {
		if code := call("POST", "/api/stores/consensus/skus/AUDIT/buy", fmt.Sprintf(`{"region":%q,"qty":1}`, []string{"us-east-1", "eu-west-1"}[i%2])); code != 200 {
			t.Fatalf("buy %d: %d", i, code)
		}
	}
	if code := call("POST", "/api/network/heal", `{}`); code != 200 {
		t.Fatalf("heal: %d", code)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	var stdout, stderr bytes.Buffer
	if code := run([]string{"history", "export", "--data-dir", dir, "--format", "edn", "--sku", "AUDIT"}, &stdout, &stderr); code != 0 {
		t.Fatalf("history export: %d %s", code, stderr.String())
	}
	edn := stdout.String()
	if n := strings.Count(edn, ":type :ok, :f :buy"); n != buys || strings.Count(edn, ":type :ok, :f :stock") != 1 || !strings.Contains(edn, ":f :heal") {
		t.Errorf("after kill -9 the log has %d ok buys (want %d), the stock and the heal:\n%s", n, buys, edn)
	}
	if !strings.Contains(edn, `:value ["AUDIT" [1 1]]`) {
		t.Errorf("the last buy (1 left) is missing:\n%s", edn)
	}
}
