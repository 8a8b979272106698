package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Regions on separate hosts, for real: each region's agent runs in a
// network namespace of its own, with its own address on a bridge, and
// the lab in another — hosts as far as the kernel is concerned, on one
// machine. Everything the test makes lives in namespaces it creates
// (named caplab24-<pid>-…, on a private subnet 10.231.N.0/24) and removes,
// also after a failure; nothing touches the machine's own network.

// hostWorld is the namespaces of one test: a switch with a bridge, and one
// namespace per host with an address on it.
type hostWorld struct {
	prefix string
	subnet string // 10.231.N
	hosts  map[string]string
}

// needNetns skips, loudly, where the test cannot make namespaces: it
// needs root and iproute2 (CI runs as root; .ci/run installs iproute2).
func needNetns(t *testing.T) {
	t.Helper()
	why := ""
	switch {
	case runtime.GOOS != "linux":
		why = "network namespaces are Linux only"
	case os.Geteuid() != 0:
		why = "creating network namespaces needs root"
	default:
		if _, err := exec.LookPath("ip"); err != nil {
			why = "iproute2's ip is not installed (apt-get install -y iproute2)"
		}
	}
	if why != "" {
		t.Skip("SKIPPING THE TEST OF REGIONS ON SEPARATE HOSTS: " + why + " — it is not run here")
	}
}

// run runs a command; output and error for the message.
func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// newHostWorld creates the namespaces: a switch and the named hosts, each
// host with 10.231.N.(10+i). Its cleanup, registered before the first
// namespace exists, kills whatever runs in them and deletes them.
func newHostWorld(t *testing.T, hosts ...string) *hostWorld {
	t.Helper()
	w := &hostWorld{prefix: fmt.Sprintf("caplab24-%d-", os.Getpid()), subnet: fmt.Sprintf("10.231.%d", 1+rand.IntN(250)), hosts: map[string]string{}}
	removeStaleWorlds(t)
	names := append([]string{"sw"}, hosts...)
	t.Cleanup(func() {
		for _, n := range names {
			ns := w.prefix + n
			if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
				for _, p := range strings.Fields(string(out)) {
					if pid, err := strconv.Atoi(p); err == nil && pid != os.Getpid() {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, n := range names {
		if _, err := runCmd("ip", "netns", "add", w.prefix+n); err != nil {
			if n == "sw" {
				t.Skip("SKIPPING THE TEST OF REGIONS ON SEPARATE HOSTS: cannot create a network namespace here (" + err.Error() + ")")
			}
			t.Fatal(err)
		}
		if _, err := runCmd("ip", "-n", w.prefix+n, "link", "set", "lo", "up"); err != nil {
			t.Fatal(err)
		}
	}
	sw := w.prefix + "sw"
	steps := [][]string{{"-n", sw, "link", "add", "br0", "type", "bridge"}, {"-n", sw, "link", "set", "br0", "up"}}
	for i, h := range hosts {
		ns, port := w.prefix+h, fmt.Sprintf("p%d", i)
		addr := fmt.Sprintf("%s.%d", w.subnet, 10+i)
		w.hosts[h] = addr
		steps = append(steps,
			[]string{"link", "add", port, "netns", sw, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"-n", sw, "link", "set", port, "master", "br0", "up"},
			[]string{"-n", ns, "addr", "add", addr + "/24", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"})
	}
	for _, s := range steps {
		if _, err := runCmd("ip", s...); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// removeStaleWorlds deletes the namespaces of earlier runs that were
// killed before their cleanup.
func removeStaleWorlds(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	re := regexp.MustCompile(`^caplab24-(\d+)-\S+`)
	for _, line := range strings.Split(string(out), "\n") {
		m := re.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		t.Logf("removing namespace %s left by a killed run", m[0])
		_ = exec.Command("ip", "netns", "del", m[0]).Run()
	}
}

func (w *hostWorld) ns(host string) string { return w.prefix + host }

// command is a command run on a host.
func (w *hostWorld) command(host string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", w.ns(host)}, args...)...)
}

// dialer opens connections from inside a host's namespace: the socket is
// made on a thread that enters it and then returns to its own.
func (w *hostWorld) dialer(host string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	path := "/var/run/netns/" + w.ns(host)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			own, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, err}
				return
			}
			defer own.Close()
			f, err := os.Open(path)
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, err}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, fmt.Errorf("setns %s: %v", path, err)}
				return
			}
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			ch <- result{c, err}
			if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread() // back home; otherwise the thread ends with this goroutine
			}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// proc is a caplab process on a host.
type proc struct {
	cmd *exec.Cmd
	out *os.File
}

// start runs the caplab binary on a host, its output in a file of the
// test's; the process is killed at the end of the test.
func (w *hostWorld) start(t *testing.T, bin, host, logName string, args ...string) *proc {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), logName+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := w.command(host, append([]string{bin}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: f}
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	_, _ = p.cmd.Process.Wait()
}

func (p *proc) log() string {
	raw, _ := os.ReadFile(p.out.Name())
	return string(raw)
}

// waitFor polls cond until it holds, failing with what after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hostState is what the test reads of GET /api/state.
type hostState struct {
	Regions []struct {
		Name      string
		Up        bool
		Agent     string
		Stale     bool
		Consensus struct {
			Role         string
			AppliedIndex uint64
		}
	}
	Links []struct {
		From, To      string
		State         string
		Bytes         int64
		Messages      int64
		MeasuredRTTMs float64 `json:"measuredRttMs"`
		DelayMs       float64
		RTTMs         float64
	}
}

func (s hostState) region(name string) (up, stale bool, role string) {
	for _, r := range s.Regions {
		if r.Name == name {
			return r.Up, r.Stale, r.Consensus.Role
		}
	}
	return false, false, ""
}

func (s hostState) link(from, to string) (bytes, messages int64) {
	for _, l := range s.Links {
		if l.From == from && l.To == to {
			return l.Bytes, l.Messages
		}
	}
	return -1, -1
}

// labClient talks to a lab listening on its host's loopback.
type labClient struct {
	t     *testing.T
	base  string
	token string
	http  *http.Client
}

func (c *labClient) do(method, path, body string) (int, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func (c *labClient) state() hostState {
	c.t.Helper()
	code, raw := c.do("GET", "/api/state", "")
	var s hostState
	if code != 200 || json.Unmarshal(raw, &s) != nil {
		c.t.Fatalf("state: %d %s", code, raw)
	}
	return s
}

func (c *labClient) outcome(method, path, body string) string {
	c.t.Helper()
	_, raw := c.do(method, path, body)
	var o struct{ Outcome string }
	_ = json.Unmarshal(raw, &o)
	return o.Outcome
}

const hostsToken = "hosts-test-token-5f2c"

func TestRegionsOnSeparateHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds caplab and runs a lab across network namespaces")
	}
	needNetns(t)
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-1"}
	w := newHostWorld(t, append([]string{"lab"}, regions...)...)
	bin := filepath.Join(t.TempDir(), "caplab")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dataDirs := map[string]string{}
	agents := map[string]*proc{}
	var remote []string
	startAgent := func(r string) {
		agents[r] = w.start(t, bin, r, "agent-"+r, "region", "--name", r, "--listen", w.hosts[r]+":7400", "--token", hostsToken, "--data-dir", dataDirs[r])
	}
	for _, r := range regions {
		dataDirs[r] = t.TempDir()
		startAgent(r)
		remote = append(remote, r+"="+w.hosts[r]+":7400")
	}
	remoteFlag := strings.Join(remote, ",")
	dial := w.dialer("lab")
	for _, r := range regions {
		waitFor(t, 20*time.Second, "agent "+r+" listening", func() bool {
			c, err := dial(context.Background(), "tcp", w.hosts[r]+":7400")
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}

	t.Run("lessons", func(t *testing.T) {
		for _, lesson := range []string{"last-iphone", "partial-partitions"} {
			cmd := w.command("lab", bin, "lessons", "run", lesson, "--remote", remoteFlag, "--token", hostsToken, "--latency-scale", "0.1")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "PASS "+lesson) {
				t.Fatalf("caplab lessons run %s on the agents: %v\n%s", lesson, err, out)
			}
		}
	})

	labDir := t.TempDir()
	lab := w.start(t, bin, "lab", "lab", "--remote", remoteFlag, "--token", hostsToken, "--listen", "127.0.0.1:8080",
		"--open=false", "--latency-scale", "0.1", "--data-dir", labDir)
	c := &labClient{t: t, base: "http://127.0.0.1:8080", token: hostsToken,
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: dial}}}
	waitFor(t, 90*time.Second, "the lab on the agents ready", func() bool { return strings.Contains(lab.log(), "Press Ctrl-C") })
	st := c.state()
	for _, r := range st.Regions {
		if !r.Up || r.Agent != w.hosts[r.Name]+":7400" || r.Stale {
			t.Fatalf("region %+v\n%s", r, lab.log())
		}
	}
	waitFor(t, 20*time.Second, "every link measured", func() bool {
		for _, l := range c.state().Links {
			if l.MeasuredRTTMs <= 0 {
				return false
			}
		}
		return true
	})

	t.Run("one-way cut", func(t *testing.T) {
		a, b := "us-east-1", "ap-southeast-1"
		if code, raw := c.do("POST", "/api/regions/"+a+"/lead", "{}"); code != 200 {
			t.Fatalf("lead: %d %s", code, raw)
		}
		if code, raw := c.do("POST", "/api/network/link", `{"from":"`+a+`","to":"`+b+`","state":"cut","oneWay":true}`); code != 200 {
			t.Fatalf("cut: %d %s", code, raw)
		}
		cut := c.state()
		cutBytes, cutMsgs := cut.link(a, b)
		_, backMsgs := cut.link(b, a)
		// b hears nothing from its leader and asks the others for votes:
		// b → a moves while a → b stays where it was.
		waitFor(t, 20*time.Second, b+"→"+a+" carries messages", func() bool {
			_, m := c.state().link(b, a)
			return m > backMsgs+3
		})
		if by, m := c.state().link(a, b); by != cutBytes || m != cutMsgs {
			t.Fatalf("the cut direction %s→%s moved: %d bytes, %d messages → %d, %d", a, b, cutBytes, cutMsgs, by, m)
		}
		if code, raw := c.do("POST", "/api/network/heal", "{}"); code != 200 {
			t.Fatalf("heal: %d %s", code, raw)
		}
		waitFor(t, 20*time.Second, "the healed direction carries messages", func() bool {
			_, m := c.state().link(a, b)
			return m > cutMsgs
		})
	})

	t.Run("strangers", func(t *testing.T) {
		// A lab with another token, and another lab with the token, are
		// refused by the agents, naming why.
		for _, tc := range []struct{ token, want string }{
			{"some-other-token", "token"},
			{hostsToken, "belongs to lab"},
		} {
			out, err := w.command("lab", bin, "--remote", remoteFlag, "--token", tc.token, "--listen", "127.0.0.1:0", "--open=false", "--data-dir", t.TempDir()).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("a second lab (token %s): %v, want a refusal naming %q:\n%s", tc.token, err, tc.want, out)
			}
		}
		// The agent's port takes neither plain TCP (nor HTTP) nor TLS
		// without a certificate of the lab.
		addr := w.hosts["eu-west-1"] + ":7400"
		raw, err := dial(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(raw, "GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
		got, _ := io.ReadAll(raw)
		raw.Close()
		if strings.Contains(string(got), "HTTP/") {
			t.Fatalf("plain HTTP was answered: %q", got)
		}
		for _, header := range []string{"CAPLAB/1 peer eu-west-1", "CAPLAB/1 client eu-west-1 eu-west-1 member", "CAPLAB/1 ping"} {
			tcp, err := dial(context.Background(), "tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			tc := tls.Client(tcp, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			if tc.Handshake() == nil {
				_, _ = io.WriteString(tc, header+"\n")
				line, _ := bufio.NewReader(tc).ReadString('\n')
				if !strings.HasPrefix(line, "ERR ") {
					t.Fatalf("%q without a certificate: answered %q", header, line)
				}
			}
			tc.Close()
		}
		// Nothing else of an agent listens beyond its host's loopback.
		for _, r := range regions {
			out, err := w.command(r, "ss", "-Hltn").Output()
			if err != nil {
				t.Skipf("ss (iproute2) failed: %v", err)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				f := strings.Fields(line)
				if len(f) < 4 {
					continue
				}
				local := f[3]
				if local != w.hosts[r]+":7400" && !strings.HasPrefix(local, "127.0.0.1:") {
					t.Fatalf("agent %s listens on %s besides its port:\n%s", r, local, out)
				}
			}
		}
	})

	t.Run("kill -9 and restart", func(t *testing.T) {
		r := "eu-west-1"
		if code, raw := c.do("PUT", "/api/stores/consensus/skus/KEPT", `{"region":"us-east-1","quantity":7}`); code != 200 {
			t.Fatalf("stock: %d %s", code, raw)
		}
		_ = agents[r].cmd.Process.Signal(syscall.SIGKILL)
		_, _ = agents[r].cmd.Process.Wait()
		waitFor(t, 20*time.Second, r+" seen crashed", func() bool {
			up, stale, role := c.state().region(r)
			return !up && !stale && role == "offline"
		})
		if got := c.outcome("POST", "/api/stores/consensus/skus/KEPT/buy", `{"region":"us-east-1","qty":1}`); got != "ok" {
			t.Fatalf("a buy on the majority while %s is down: %s", r, got)
		}
		startAgent(r)
		waitFor(t, 60*time.Second, r+" back, following", func() bool {
			up, stale, role := c.state().region(r)
			return up && !stale && (role == "follower" || role == "leader")
		})
		waitFor(t, 30*time.Second, r+" reads what was stocked and sold", func() bool {
			_, raw := c.do("GET", "/api/stores/consensus/skus/KEPT?region="+r+"&consistency=linearizable", "")
			var o struct {
				Outcome  string
				Quantity int
			}
			return json.Unmarshal(raw, &o) == nil && o.Outcome == "ok" && o.Quantity == 6
		})
	})

	t.Run("the lab lost", func(t *testing.T) {
		if _, err := runCmd("ip", "-n", w.ns("lab"), "link", "set", "eth0", "down"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "every region shown stale", func() bool {
			for _, r := range c.state().Regions {
				if !r.Stale || !r.Up {
					return false
				}
			}
			return true
		})
		if _, err := runCmd("ip", "-n", w.ns("lab"), "link", "set", "eth0", "up"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "every region back", func() bool {
			for _, r := range c.state().Regions {
				if r.Stale || !r.Up {
					return false
				}
			}
			return true
		})
		if got := c.outcome("POST", "/api/stores/consensus/skus/KEPT/buy", `{"region":"ap-southeast-1","qty":1}`); got != "ok" {
			t.Fatalf("a buy after the lab found its agents again: %s\n%s", got, lab.log())
		}
	})
	if t.Failed() {
		t.Logf("lab:\n%s", lab.log())
		for r, a := range agents {
			t.Logf("agent %s:\n%s", r, a.log())
		}
	}
}
