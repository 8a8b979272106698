// Command caplab is an interactive CAP-theorem lab: real etcd servers as
// simulated cloud regions, a network between them you can cut, and a
// browser UI to buy the last unit of a product from any region and watch a
// consensus store and a replicated store disagree about it.
//
//	caplab                      start the lab and open the page
//	caplab lessons list|check|run …   work with lessons headless
//	caplab history export …          the history for Knossos, Elle, porcupine
//	caplab history check FILE        the lab's verdicts on an exported history
//	caplab region …                  run one region on this host for a lab elsewhere
//
// Run "caplab --help" for the flags.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"caplab/lab"
	"caplab/lab/audit"
	"caplab/lab/load"
	"caplab/lessons"
	"caplab/nodes"
	"caplab/web"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `caplab — an interactive CAP-theorem lab on real etcd servers.

Usage:
  caplab [flags]                       start the lab, print its URL, open the page
  caplab lessons list                  list the lessons (name, then title)
  caplab lessons check [FILE|DIR ...]  validate lessons (no args: the built-in course)
  caplab lessons run NAME|FILE [--latency-scale X]
                                       run a lesson headless on a fresh lab
  caplab history export [--data-dir DIR|--url URL] [--format jsonl|porcupine|edn]
                                       write the history (audit log) for other checkers
  caplab history check [--store S --sku S --json] FILE
                                       the checker's verdicts on a history file (exit 1: not linearizable)
  caplab load [--rate N --mix R --duration D --cut A@T --fail-on oversold>0 …]
                                       Black Friday load on every store, headless ("caplab load --help")
  caplab lessons record --url URL --token TOKEN [-o FILE]
                                       save a running lab's recording as a lesson
  caplab region --name R --listen HOST:PORT --token T
                                       run region R on this host for a lab on another
                                       ("caplab region --help"); the lab takes it with
                                       --remote R=HOST:PORT (lessons run takes --remote too)

Flags:
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "lessons" {
		rest, remote, token, regionListen, err := takeRemoteFlags(args[1:]) // regioncmd.go
		if err != nil {
			fmt.Fprintf(stderr, "caplab lessons: %v\n", err)
			return lessons.ExitUsage
		}
		return lessons.Main(rest, stdout, stderr, func(ctx context.Context, scale float64, regions []string) (lessons.Lab, func() error, error) {
			return newLessonLab(ctx, scale, regions, remote, token, regionListen)
		})
	}
	if len(args) > 0 && args[0] == "region" {
		return regionMain(args[1:], stdout, stderr) // regioncmd.go
	}
	if len(args) > 0 && args[0] == "history" {
		return web.HistoryMain(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "load" {
		return load.Main(args[1:], stdout, stderr, startLoadLab) // loadcmd.go
	}
	fs := flag.NewFlagSet("caplab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve the lab on; 0.0.0.0:8080 exposes it to your network (classrooms)")
	regions := fs.String("regions", "3", "how many regions (1-7, from the catalogue) or a comma-separated list, e.g. us-east-1,eu-west-1,ap-southeast-1")
	scale := fs.Float64("latency-scale", 1, "multiply every round-trip time: 1 = real RTTs between AWS regions, 0 = none, 0.1 = ten times faster")
	token := fs.String("token", "", "lab token needed for every change (default: random)")
	dataDir := fs.String("data-dir", "", "keep the lab's data here; starting again with the same directory resumes with every acknowledged write (default: a temporary directory removed at exit)")
	fsync := fs.Bool("fsync", false, "sync every write to disk: acknowledged writes then survive a machine crash or power loss, not only a killed process (slower)")
	lessonDir := fs.String("lessons", "", "also load your own lessons (*.md) from this directory")
	present := fs.Bool("present", false, "start every page in presenter mode (large type, high contrast, audience join link)")
	open := fs.Bool("open", true, "open the page in your browser")
	etcdLog := fs.String("etcd-log", "", "show etcd's own logs at this level (warn, info, debug)")
	printEndpoints := fs.Bool("print-endpoints", false, "print the etcd client URLs of every region's member and replica, as seen from every region (for etcdctl)")
	groupCommit := fs.Bool("group-commit", true, "the consensus store batches a region's concurrent buys into one Txn (a compare-and-set per SKU) (switch it later with PUT /api/stores/consensus/config or the lesson command groupcommit on|off)")
	zones := fs.Int("zones", 3, "zones per region, each with one member of the region's regional Raft group (the geo store): 1 to 3; 1 halves the etcd servers for small machines")
	remoteFlag := fs.String("remote", "", "run these regions on other hosts, under agents started there with \"caplab region\": REGION=HOST:PORT,… (needs --token, the agents' own); other regions run here")
	regionListen := fs.String("region-listen", "", "with --remote: where the regions that run here listen for the agents (host:port; default: this host's address towards the first agent, any port)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.VisitAll(func(f *flag.Flag) {
			name, help := flag.UnquoteUsage(f)
			fmt.Fprintf(stderr, "  --%s %s\n    \t%s", f.Name, name, help)
			if f.DefValue != "" && f.DefValue != "false" {
				fmt.Fprintf(stderr, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(stderr)
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "caplab: unexpected argument %q (did you mean \"caplab lessons %s\"?)\n", fs.Arg(0), fs.Arg(0))
		return 2
	}
	names, err := parseRegions(*regions)
	if err != nil {
		fmt.Fprintf(stderr, "caplab: --regions: %v\n", err)
		return 2
	}
	if *scale < 0 || *scale > 100 {
		fmt.Fprintf(stderr, "caplab: --latency-scale must be between 0 and 100 (got %v)\n", *scale)
		return 2
	}
	if *zones < 1 || *zones > nodes.MaxZones {
		fmt.Fprintf(stderr, "caplab: --zones must be between 1 and %d (got %d)\n", nodes.MaxZones, *zones)
		return 2
	}
	remote, err := parseRemote(*remoteFlag) // regioncmd.go
	if err != nil {
		fmt.Fprintf(stderr, "caplab: --remote: %v\n", err)
		return 2
	}
	if *token == "" && len(remote) > 0 {
		*token = os.Getenv("CAPLAB_TOKEN")
	}
	if *token == "" && len(remote) > 0 {
		fmt.Fprintln(stderr, "caplab: --remote needs --token: the one the agents were started with")
		return 2
	}
	if *token == "" {
		*token = randomToken()
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	catalog, lessonErrs := lessons.LoadCatalog(*lessonDir)
	for _, e := range lessonErrs {
		fmt.Fprintf(stderr, "caplab: skipping lesson: %v\n", e)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "caplab: cannot listen on %s: %v\n(is another caplab running? try --listen 127.0.0.1:8081)\n", *listen, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	started := time.Now()
	fmt.Fprintf(stdout, "caplab: starting %d regions (%s) on real etcd …\n", len(names), strings.Join(names, ", "))
	l, err := lab.New(ctx, lab.Config{Regions: names, LatencyScale: *scale, DataDir: *dataDir, Fsync: *fsync, Logger: logger, EtcdLogLevel: *etcdLog, Zones: *zones,
		Remote: remote, Token: *token, RegionListen: *regionListen, GroupCommitOff: !*groupCommit})
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "caplab: %v\n", err)
		return 1
	}
	if *dataDir != "" { // the audit log: every operation and fault, durable (lab/audit)
		audit, err := lab.OpenAudit(l, audit.Dir(*dataDir), audit.Options{Sync: *fsync}) // --fsync: the log survives a machine crash too
		if err != nil {
			_ = l.Close()
			ln.Close()
			fmt.Fprintf(stderr, "caplab: %v\n", err)
			return 1
		}
		defer audit.Close() // after l.Close below: the lab's last records are written
	}
	base := "http://" + displayHost(ln.Addr().String())
	srv := web.New(l, web.Options{Token: *token, Logger: logger, JoinURL: joinURL(ln.Addr().String()), Present: *present,
		Lessons: web.LessonsFrom(catalog, lessons.LabOf(l)), AllowedHosts: loopbackHosts(ln.Addr())})
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second, // WebSockets set their own deadlines once upgraded
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()

	if l.Cluster().Resumed() {
		fmt.Fprintf(stdout, "caplab: resumed from %s: the stores hold what the last run there acknowledged\n", *dataDir)
	}
	t := l.Cluster().Timing()
	fmt.Fprintf(stdout, "caplab: ready in %v — leader %s, heartbeat %d ms, election %d ms, latency scale %g\n",
		time.Since(started).Round(time.Millisecond), l.Leader(), t.TickMs, t.ElectionMs, *scale)
	fmt.Fprintf(stdout, "\n  Open the lab:   %s/?token=%s\n", base, *token)
	fmt.Fprintf(stdout, "  Audience link:  %s/  (watch only)\n\n", strings.TrimSuffix(joinURL(ln.Addr().String()), "/"))
	if exposed(ln.Addr()) {
		fmt.Fprintf(stdout, "  WARNING: listening on %s exposes the lab to your network. Anyone who\n"+
			"  reaches this machine can watch; only holders of the token can change anything.\n\n", *listen)
	}
	if *printEndpoints {
		writeEndpoints(stdout, l.Cluster().Endpoints())
	}
	if cert := l.Cluster().LabCertificate(); cert != "" {
		writeAgents(stdout, l.Cluster().State(), cert)
	}
	fmt.Fprintln(stdout, "Press Ctrl-C to stop.")
	if *open && os.Getenv("CI") == "" {
		openBrowser(base + "/?token=" + *token)
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		fmt.Fprintf(stderr, "caplab: server stopped: %v\n", err)
	}
	stopping := time.Now()
	fmt.Fprintln(stdout, "\ncaplab: stopping …")
	shutCtx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_ = hs.Shutdown(shutCtx) // WebSockets are hijacked: the hub closes them
	cancel()
	srv.Close()
	_ = hs.Close()
	if err := l.Close(); err != nil {
		fmt.Fprintf(stderr, "caplab: close: %v\n", err)
	}
	fmt.Fprintf(stdout, "caplab: stopped in %v\n", time.Since(stopping).Round(time.Millisecond))
	return 0
}

// newLessonLab starts a fresh lab for "caplab lessons run" (on agents
// with --remote).
func newLessonLab(ctx context.Context, scale float64, regions []string, remote map[string]string, token, regionListen string) (lessons.Lab, func() error, error) {
	l, err := lab.New(ctx, lab.Config{Regions: regions, LatencyScale: scale, Remote: remote, Token: token, RegionListen: regionListen})
	if err != nil {
		return nil, nil, err
	}
	return lessons.LabOf(l), l.Close, nil
}

// parseRegions takes a count (first N of the catalogue) or a list.
func parseRegions(s string) ([]string, error) {
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		return nodes.FirstRegions(n)
	}
	var names []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			names = append(names, r)
		}
	}
	for _, r := range names {
		if _, ok := nodes.Lookup(r); !ok {
			return nil, fmt.Errorf("region %q is not in the catalogue (known: %s)", r, strings.Join(nodes.CatalogueNames(), ", "))
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("give a count (1-%d) or a comma-separated list of regions", nodes.MaxRegions)
	}
	return names, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// displayHost turns an unspecified listen address into one a browser on
// this machine can open.
func displayHost(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// joinURL is the address the audience opens: the machine's first
// non-loopback address when the lab listens on every interface.
func joinURL(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
					host = n.IP.String()
					break
				}
			}
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// loopbackHosts are the Host headers a lab on loopback answers to (the
// page refuses other names: DNS rebinding); nil when exposed, where any
// name may reach it.
func loopbackHosts(a net.Addr) []string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		return nil
	}
	port := strconv.Itoa(tcp.Port)
	hosts := []string{"127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port}
	if own := net.JoinHostPort(tcp.IP.String(), port); !slices.Contains(hosts, own) {
		hosts = append(hosts, own) // another loopback address, e.g. 127.0.0.2
	}
	return hosts
}

func exposed(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && !tcp.IP.IsLoopback()
}

// openBrowser opens url in the desktop's browser, if there is one.
func openBrowser(url string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return
		}
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err == nil {
		go func() { _ = cmd.Wait() }()
	}
}

// writeAgents prints where each region runs and the measured round trips.
func writeAgents(w io.Writer, s nodes.Snapshot, cert string) {
	fmt.Fprintf(w, "  Regions on agents (lab certificate %s, pinned by each agent):\n", cert)
	for _, r := range s.Regions {
		fmt.Fprintf(w, "    %-16s agent %s\n", r.Name, r.Agent)
	}
	order := map[string]int{}
	for i, r := range s.Regions {
		order[r.Name] = i
	}
	for _, l := range s.Links {
		if order[l.From] > order[l.To] {
			continue
		}
		note := fmt.Sprintf("adds %.1f ms each way", l.DelayMs)
		if l.OverModel {
			note = "already slower than the model: adds nothing"
		}
		fmt.Fprintf(w, "    %-16s ↔ %-16s measured %.1f ms, model %.0f ms × %g: %s\n", l.From, l.To, l.MeasuredRTTMs, l.RTTMs, s.LatencyScale, note)
	}
	fmt.Fprintln(w)
}

// writeEndpoints prints the etcd client URLs: a client standing in one
// region reaches another region's member or replica through the fabric.
func writeEndpoints(w io.Writer, eps []nodes.Endpoint) {
	fmt.Fprintln(w, "  etcd client endpoints (loopback only; a client in FROM reaches TO's servers across the links FROM <-> TO):")
	fmt.Fprintf(w, "    %-16s %-16s %-24s %s\n", "FROM", "TO", "MEMBER (consensus)", "REPLICA")
	urls := map[[2]string]map[nodes.Server]string{}
	var order [][2]string
	for _, e := range eps {
		k := [2]string{e.From, e.To}
		if urls[k] == nil {
			urls[k] = map[nodes.Server]string{}
			order = append(order, k)
		}
		urls[k][e.Server] = e.URL
	}
	for _, k := range order {
		fmt.Fprintf(w, "    %-16s %-16s %-24s %s\n", k[0], k[1], urls[k][nodes.ServerMember], urls[k][nodes.ServerReplica])
	}
	if len(order) > 0 {
		fmt.Fprintf(w, "  e.g.  ETCDCTL_API=3 etcdctl --endpoints %s get --prefix /inventory/\n\n", urls[order[0]][nodes.ServerMember])
	}
}
