package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startBinary builds caplab and runs it on a free port; it returns the base
// URL, the token and the process.
func startBinary(t testing.TB, args ...string) (base, token string, cmd *exec.Cmd, started time.Time, out *strings.Builder) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "caplab")
	build := exec.Command("go", "build", "-o", bin, ".")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	args = append([]string{"--listen", "127.0.0.1:0", "--open=false"}, args...)
	cmd = exec.Command(bin, args...)
	stdout, _ := cmd.StdoutPipe()
	out = &strings.Builder{}
	cmd.Stderr = out
	started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	urlRe := regexp.MustCompile(`(http://127\.0\.0\.1:\d+)/\?token=([0-9a-f]+)`)
	sc := bufio.NewScanner(stdout)
	deadline := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if m := urlRe.FindStringSubmatch(sc.Text()); m != nil {
			base, token = m[1], m[2]
			break
		}
	}
	if base == "" {
		t.Fatalf("caplab printed no URL:\n%s", out)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return base, token, cmd, started, out
}

func TestCaplabServesAndStopsOnCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	base, token, cmd, _, out := startBinary(t, "--latency-scale", "0")
	resp, err := http.Get(base + "/api/state")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Regions []struct {
			Consensus struct{ Role string }
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || len(st.Regions) != 3 {
		t.Fatalf("state: %v %+v", err, st)
	}
	req, _ := http.NewRequest("POST", base+"/api/stores/consensus/skus/IPHONE/buy", strings.NewReader(`{"region":"us-east-1","qty":1}`))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("mutation without token: %d, want 401", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", base+"/api/stores/consensus/skus/IPHONE/buy", strings.NewReader(`{"region":"us-east-1","qty":1}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK { // sold_out: nothing stocked yet
		t.Fatalf("buy with token: %d %s", resp.StatusCode, body)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after Ctrl-C: %v\n%s", err, out)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("caplab did not stop within 10 s of Ctrl-C")
	}
}

func TestHelpAndBadFlags(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, want := range []string{"--listen", "--regions", "--latency-scale", "--token", "--data-dir", "--lessons", "lessons run"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
	for _, args := range [][]string{{"--regions", "9"}, {"--regions", "mars-1"}, {"--latency-scale", "-1"}, {"bogus"}} {
		errb.Reset()
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
		if errb.Len() == 0 {
			t.Errorf("%v: no error message", args)
		}
	}
}

// BenchmarkCaplabProcess: the binary's cold start to a serving API with a
// leader, its RSS once ready, and the time from Ctrl-C to exit.
//
//	go test . -run '^$' -bench CaplabProcess -benchtime 3x
func BenchmarkCaplabProcess(b *testing.B) {
	for _, scale := range []string{"0", "1"} {
		b.Run("latency-scale="+scale, func(b *testing.B) { benchProcess(b, scale) })
	}
}

func benchProcess(b *testing.B, scale string) {
	var starts, stops []float64
	var rss float64
	for range b.N {
		base, _, cmd, started, _ := startBinary(b, "--latency-scale", scale)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for ctx.Err() == nil {
			resp, err := http.Get(base + "/api/state")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(body), `"role":"leader"`) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		starts = append(starts, float64(time.Since(started).Milliseconds()))
		time.Sleep(time.Second)
		rss = max(rss, procRSS(cmd.Process.Pid))
		stop := time.Now()
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		stops = append(stops, float64(time.Since(stop).Milliseconds()))
	}
	b.ReportMetric(medianOf(starts), "ms-to-serving")
	b.ReportMetric(rss, "MB-RSS")
	b.ReportMetric(medianOf(stops), "ms-ctrl-c-to-exit")
}

func procRSS(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func medianOf(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// Every built-in lesson passes "caplab lessons run" on a fresh lab at a
// small latency scale — the command an instructor runs, end to end.
func TestEveryBuiltinLessonRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole course on real etcd")
	}
	var list, errb strings.Builder
	if code := run([]string{"lessons", "list"}, &list, &errb); code != 0 {
		t.Fatalf("lessons list: exit %d: %s", code, errb.String())
	}
	names := 0
	for _, line := range strings.Split(strings.TrimSpace(list.String()), "\n") {
		name, _, _ := strings.Cut(line, " ")
		names++
		t.Run(name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := run([]string{"lessons", "run", name, "--latency-scale", "0.05"}, &out, &errOut)
			if code == 1 {
				// At scale 0.05 every store call has a 1 s deadline. Once in
				// a CI run, on two cores shared with other packages' labs, a
				// healthy lab's first linearizable read missed it. A lesson
				// that is wrong fails again on a fresh lab; a starved
				// machine rarely starves the same read twice. The first
				// run's output (with the lab's roles, terms and applied
				// indexes at the failure) stays in the log.
				t.Logf("caplab lessons run %s failed once; running it again on a fresh lab. Its output:\n%s\n%s", name, out.String(), errOut.String())
				out.Reset()
				errOut.Reset()
				code = run([]string{"lessons", "run", name, "--latency-scale", "0.05"}, &out, &errOut)
			}
			if code != 0 {
				t.Fatalf("caplab lessons run %s: exit %d\n%s\n%s", name, code, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), "PASS "+name) {
				t.Fatalf("no PASS line:\n%s", out.String())
			}
		})
	}
	if names < 10 {
		t.Fatalf("the course has %d lessons, want at least 10", names)
	}
}
