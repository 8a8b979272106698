package load

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Exit codes of Main.
const (
	ExitOK     = 0 // ran; no --fail-on condition met
	ExitFailOn = 1 // a --fail-on condition was met (or the run failed)
	ExitUsage  = 2 // bad command line
	ExitError  = 3 // the lab could not be started or reached
)

// LabFlags are the flags "caplab load" shares with "caplab", for a lab of
// its own.
type LabFlags struct {
	Regions      string
	LatencyScale float64
	DataDir      string
	EtcdLog      string
	Token        string
}

// StartLabFunc starts a lab with its web API on a loopback port and
// returns its base URL and token, and a function that stops both.
type StartLabFunc func(ctx context.Context, f LabFlags) (url, token string, stop func(), err error)

const cliUsage = `usage: caplab load [flags]

Drives every store of a lab with the same open-loop Black Friday traffic,
shows progress, and prints a table per store × region at the end.
Without --url it starts a lab of its own (the same flags as caplab).

Fault schedule (repeatable; T is the time since the load started, e.g. 20s):
  --cut REGION@T           isolate a region (every link of it cut)
  --cut A/B@T              cut the link between A and B (both ways)
  --heal @T | --heal A/B@T every link up | one link up
  --partition 'A,B|C@T'    split the regions into groups
  --crash REGION@T, --restart REGION@T, --lead REGION@T
  --latency A/B=MS@T       set a round-trip time
  --quorum W/R@T           configure the replicated store

--fail-on (repeatable or comma-separated), checked for every store driven:
  oversold>N, p99>MSms, availability<P (%, the worst region), stale>N,
  refused>P (%, the worst region), slo (fail when the SLO is missed)

Exit status: 0 ran and no --fail-on condition met, 1 a condition was met or
the run failed, 2 bad usage, 3 the lab could not be started or reached.

Flags:
`

// Main runs "caplab load". args are the words after "load".
func Main(args []string, stdout, stderr io.Writer, startLab StartLabFunc) int {
	fs := flag.NewFlagSet("caplab load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf LabFlags
	fs.StringVar(&lf.Regions, "regions", "3", "own lab: how many regions (1-7) or a comma-separated list")
	fs.Float64Var(&lf.LatencyScale, "latency-scale", 1, "own lab: multiply every round-trip time (1 = real, 0 = none)")
	fs.StringVar(&lf.DataDir, "data-dir", "", "own lab: keep etcd data here")
	fs.StringVar(&lf.EtcdLog, "etcd-log", "", "own lab: show etcd's logs at this level")
	url := fs.String("url", "", "drive a running lab at this URL (e.g. http://127.0.0.1:8080) instead of starting one")
	fs.StringVar(&lf.Token, "token", "", "the lab token (needed with --url)")
	rate := fs.Float64("rate", DefaultRate, "buys a second per region")
	mix := fs.Float64("mix", DefaultReadsPerBuy, "reads per buy")
	skus := fs.Int("skus", DefaultSKUs, "catalogue size")
	stock := fs.Int("stock", DefaultStock, "units per SKU")
	doorStock := fs.Int("doorbuster-stock", -1, "units of the doorbuster (default: --stock)")
	doorShare := fs.Float64("doorbuster-share", DefaultDoorbusterShare, "share of arrivals for the doorbuster")
	duration := fs.Duration("duration", 30*time.Second, "how long the load runs")
	stores := fs.String("stores", "", "stores to drive, comma-separated (default: every store)")
	consistency := fs.String("consistency", DefaultConsistency, "consensus reads: serializable or linearizable")
	slo := fs.Float64("slo", DefaultSLOMs, "p99 objective in ms")
	seed := fs.Uint64("seed", 0, "reproducible arrivals (0: random)")
	restock := fs.Duration("restock-every", 0, "restock the doorbuster and hottest SKUs this often (0: never)")
	asJSON := fs.Bool("json", false, "print the final status with every sample as JSON on stdout (the table goes to stderr)")
	asCSV := fs.Bool("csv", false, "print every sample as CSV on stdout (the table goes to stderr)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	var sched schedule
	for _, k := range faultKinds {
		fs.Func(k, "fault: see above", func(v string) error { return sched.add(k, v) })
	}
	var failOn []condition
	fs.Func("fail-on", "exit 1 when a condition holds, e.g. oversold>0,p99>150ms", func(v string) error {
		for _, part := range strings.Split(v, ",") {
			c, err := parseCondition(strings.TrimSpace(part))
			if err != nil {
				return err
			}
			failOn = append(failOn, c)
		}
		return nil
	})
	fs.Usage = func() {
		fmt.Fprint(stderr, cliUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "caplab load: unexpected argument %q\n", fs.Arg(0))
		return ExitUsage
	}
	if *asJSON && *asCSV {
		fmt.Fprintln(stderr, "caplab load: choose --json or --csv, not both")
		return ExitUsage
	}
	cfg := Config{Rate: *rate, ReadsPerBuy: mix, SKUs: *skus, Stock: stock, DoorbusterShare: doorShare,
		Duration: Duration(*duration), Consistency: *consistency, SLOP99Ms: *slo, Seed: *seed, RestockEvery: Duration(*restock)}
	if *doorStock >= 0 {
		cfg.DoorbusterStock = doorStock
	}
	if *stores != "" {
		for _, s := range strings.Split(*stores, ",") {
			if s = strings.TrimSpace(s); s != "" {
				cfg.Stores = append(cfg.Stores, s)
			}
		}
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	base, token := strings.TrimSuffix(*url, "/"), lf.Token
	if base == "" {
		fmt.Fprintf(stderr, "caplab load: starting a lab (%s regions, latency scale %g) …\n", lf.Regions, lf.LatencyScale)
		u, tok, stop, err := startLab(ctx, lf)
		if err != nil {
			fmt.Fprintf(stderr, "caplab load: %v\n", err)
			return ExitError
		}
		defer stop()
		base, token = u, tok
	}
	cl := &client{base: base, token: token, http: &http.Client{Timeout: 2 * time.Minute}}
	table := stdout
	if *asJSON || *asCSV {
		table = stderr
	}
	final, err := drive(ctx, cl, cfg, sched, stderr, *quiet)
	if err != nil {
		fmt.Fprintf(stderr, "caplab load: %v\n", err)
		if errors.Is(err, errBadConfig) {
			return ExitUsage
		}
		return ExitError
	}
	PrintTable(table, final)
	switch {
	case *asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(final)
	case *asCSV:
		_ = WriteCSV(stdout, final.Samples)
	}
	if final.State == StateFailed {
		fmt.Fprintf(stderr, "caplab load: the load failed: %s\n", final.Reason)
		return ExitFailOn
	}
	met := false
	for _, c := range failOn {
		for _, s := range final.Stores {
			if why, ok := c.holds(s, final.Config.SLOP99Ms); ok {
				fmt.Fprintf(stderr, "caplab load: --fail-on %s: %s: %s\n", c.text, s.Store, why)
				met = true
			}
		}
	}
	if met {
		return ExitFailOn
	}
	return ExitOK
}

var errBadConfig = errors.New("bad config")

// ---- the fault schedule ----

var faultKinds = []string{"cut", "heal", "partition", "crash", "restart", "lead", "latency", "quorum"}

type fault struct {
	at   time.Duration
	kind string
	arg  string
}

type schedule []fault

func (s *schedule) add(kind, v string) error {
	i := strings.LastIndex(v, "@")
	if i < 0 {
		return fmt.Errorf("%q needs a time, e.g. %s@20s", v, strings.TrimSuffix(v, "@"))
	}
	at, err := time.ParseDuration(v[i+1:])
	if err != nil || at < 0 {
		return fmt.Errorf("%q: the time after @ must be a duration such as 20s", v)
	}
	arg := strings.TrimSpace(v[:i])
	switch kind {
	case "heal":
	case "cut", "crash", "restart", "lead", "partition":
		if arg == "" {
			return fmt.Errorf("--%s %q: say what, e.g. --%s ap-southeast-1@%v", kind, v, kind, at)
		}
	case "latency":
		if !regexp.MustCompile(`^[^/=]+/[^/=]+=\d+(\.\d+)?$`).MatchString(arg) {
			return fmt.Errorf("--latency %q: write A/B=MS@T, e.g. us-east-1/eu-west-1=300@10s", v)
		}
	case "quorum":
		if !regexp.MustCompile(`^\d+/\d+$`).MatchString(arg) {
			return fmt.Errorf("--quorum %q: write W/R@T, e.g. 2/2@10s", v)
		}
	}
	*s = append(*s, fault{at: at, kind: kind, arg: arg})
	sort.SliceStable(*s, func(a, b int) bool { return (*s)[a].at < (*s)[b].at })
	return nil
}

// apply sends one fault through the lab's API.
func (f fault) apply(ctx context.Context, cl *client, regions []string) error {
	pair := func(s string) (string, string, error) {
		a, b, ok := strings.Cut(s, "/")
		if !ok {
			return "", "", fmt.Errorf("--%s %q: write A/B for a link", f.kind, s)
		}
		return a, b, nil
	}
	switch f.kind {
	case "cut":
		if strings.Contains(f.arg, "/") {
			a, b, err := pair(f.arg)
			if err != nil {
				return err
			}
			return cl.do(ctx, "POST", "/api/network/link", map[string]any{"from": a, "to": b, "state": "cut"}, nil)
		}
		if !slices.Contains(regions, f.arg) {
			return fmt.Errorf("--cut %s: region '%s' is not in this lab (regions: %s)", f.arg, f.arg, strings.Join(regions, ", "))
		}
		rest := slices.DeleteFunc(slices.Clone(regions), func(r string) bool { return r == f.arg })
		return cl.do(ctx, "POST", "/api/network/partition", map[string]any{"groups": [][]string{{f.arg}, rest}}, nil)
	case "heal":
		if f.arg == "" {
			return cl.do(ctx, "POST", "/api/network/heal", map[string]any{}, nil)
		}
		a, b, err := pair(f.arg)
		if err != nil {
			return err
		}
		return cl.do(ctx, "POST", "/api/network/link", map[string]any{"from": a, "to": b, "state": "up"}, nil)
	case "partition":
		var groups [][]string
		for _, g := range strings.Split(f.arg, "|") {
			var grp []string
			for _, r := range strings.Split(g, ",") {
				if r = strings.TrimSpace(r); r != "" {
					grp = append(grp, r)
				}
			}
			groups = append(groups, grp)
		}
		return cl.do(ctx, "POST", "/api/network/partition", map[string]any{"groups": groups}, nil)
	case "crash", "restart", "lead":
		return cl.do(ctx, "POST", "/api/regions/"+f.arg+"/"+f.kind, map[string]any{}, nil)
	case "latency":
		link, msText, _ := strings.Cut(f.arg, "=")
		a, b, err := pair(link)
		if err != nil {
			return err
		}
		ms, _ := strconv.ParseFloat(msText, 64)
		return cl.do(ctx, "POST", "/api/network/latency", map[string]any{"from": a, "to": b, "rttMs": ms}, nil)
	case "quorum":
		w, r, _ := strings.Cut(f.arg, "/")
		wi, _ := strconv.Atoi(w)
		ri, _ := strconv.Atoi(r)
		return cl.do(ctx, "PUT", "/api/stores/replicated/config", map[string]any{"w": wi, "r": ri}, nil)
	}
	return fmt.Errorf("unknown fault %q", f.kind)
}

func (f fault) String() string {
	if f.arg == "" {
		return fmt.Sprintf("%s @%v", f.kind, f.at)
	}
	return fmt.Sprintf("%s %s @%v", f.kind, f.arg, f.at)
}

// ---- --fail-on ----

type condition struct {
	text   string
	metric string
	op     byte
	value  float64
}

var condPattern = regexp.MustCompile(`^(oversold|p99|availability|stale|refused)\s*([<>])\s*([0-9.]+)\s*(ms|%)?$`)

func parseCondition(s string) (condition, error) {
	if s == "slo" {
		return condition{text: s, metric: "slo"}, nil
	}
	m := condPattern.FindStringSubmatch(s)
	if m == nil {
		return condition{}, fmt.Errorf("--fail-on %q: write e.g. oversold>0, p99>150ms, availability<99, stale>0, refused>5 or slo", s)
	}
	v, err := strconv.ParseFloat(m[3], 64)
	if err != nil {
		return condition{}, fmt.Errorf("--fail-on %q: %q is not a number", s, m[3])
	}
	return condition{text: s, metric: m[1], op: m[2][0], value: v}, nil
}

// holds reports whether c holds for the store, and why.
func (c condition) holds(s StoreStatus, slo float64) (string, bool) {
	cmp := func(v float64) bool {
		if c.op == '>' {
			return v > c.value
		}
		return v < c.value
	}
	switch c.metric {
	case "slo":
		return fmt.Sprintf("p99 missed the %g ms SLO", slo), !s.SLOMet
	case "oversold":
		return fmt.Sprintf("oversold %d units", s.Oversold), cmp(float64(s.Oversold))
	}
	for _, f := range s.Regions {
		var v float64
		var what string
		switch c.metric {
		case "p99":
			v, what = f.P99Ms, fmt.Sprintf("p99 %.1f ms in %s", f.P99Ms, f.Region)
		case "availability":
			v, what = f.Availability, fmt.Sprintf("availability %.2f%% in %s", f.Availability, f.Region)
		case "stale":
			v, what = float64(f.StaleReads), fmt.Sprintf("%d stale reads in %s", f.StaleReads, f.Region)
		case "refused":
			v, what = 100-f.Availability, fmt.Sprintf("%.2f%% of buys refused in %s", 100-f.Availability, f.Region)
		}
		if cmp(v) {
			return what, true
		}
	}
	return "", false
}

// ---- driving a lab over HTTP ----

type client struct {
	base, token string
	http        *http.Client
}

// apiError is an answer with an error status.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.msg, e.status) }

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		_ = json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &apiError{resp.StatusCode, fmt.Sprintf("%s %s: %s", method, path, e.Error)}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// drive starts the load, applies the fault schedule, shows progress and
// returns the final status with every sample.
func drive(ctx context.Context, cl *client, cfg Config, sched schedule, progress io.Writer, quiet bool) (Status, error) {
	var state struct {
		Regions []struct{ Name string } `json:"regions"`
	}
	if err := cl.do(ctx, "GET", "/api/state", nil, &state); err != nil {
		return Status{}, fmt.Errorf("cannot reach the lab: %w", err)
	}
	var regions []string
	for _, r := range state.Regions {
		regions = append(regions, r.Name)
	}
	var st Status
	if err := cl.do(ctx, "POST", "/api/load", cfg, &st); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusBadRequest {
			return Status{}, fmt.Errorf("%w: %v", errBadConfig, err)
		}
		return Status{}, err
	}
	dur := time.Duration(cfg.Duration)
	var bar *progressbar.ProgressBar
	if !quiet {
		bar = progressbar.NewOptions64(int64(dur/time.Second), progressbar.OptionSetWriter(progress),
			progressbar.OptionSetDescription("stocking"), progressbar.OptionSetWidth(30), progressbar.OptionShowCount(),
			progressbar.OptionSetItsString("s"), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetPredictTime(false))
	}
	next := 0
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	stopped := false
	for {
		select {
		case <-ctx.Done():
			if !stopped {
				stopped = true
				fmt.Fprintln(progress, "\ncaplab load: stopping …")
				_ = cl.do(context.Background(), "DELETE", "/api/load", nil, nil)
			}
		case <-tick.C:
		}
		if err := cl.do(context.Background(), "GET", "/api/load?samples=0", nil, &st); err != nil {
			return Status{}, err
		}
		if bar != nil {
			bar.Describe(progressLine(st))
			_ = bar.Set64(int64(st.ElapsedS))
		}
		if st.State == StateRunning {
			for next < len(sched) && time.Duration(st.ElapsedS*float64(time.Second)) >= sched[next].at {
				f := sched[next]
				next++
				if err := f.apply(ctx, cl, regions); err != nil {
					fmt.Fprintf(progress, "\ncaplab load: fault %s refused: %v\n", f, err)
				} else if bar != nil {
					_, _ = progressbar.Bprintln(bar, "fault: "+f.String())
				}
			}
		}
		if slices.Contains([]string{StateFinished, StateStopped, StateFailed}, st.State) {
			break
		}
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(progress)
	}
	if err := cl.do(context.Background(), "GET", "/api/load", nil, &st); err != nil {
		return Status{}, err
	}
	return st, nil
}

func progressLine(st Status) string {
	switch st.State {
	case StateStocking:
		return fmt.Sprintf("stocking %d/%d", st.Stocking, st.StockingTotal)
	case StateRunning:
		var parts []string
		for _, s := range st.Stores {
			var ok, off int64
			for _, f := range s.Regions {
				ok += f.OK + f.SoldOut
				off += f.Offered - f.InFlight
			}
			parts = append(parts, fmt.Sprintf("%s %s oversold %d", s.Store, pct(percentf(ok, off)), s.Oversold))
		}
		return strings.Join(parts, " | ")
	}
	return st.State
}

func percentf(a, b int64) float64 {
	if b == 0 {
		return 100
	}
	return 100 * float64(a) / float64(b)
}

// PrintTable writes the final table: one row per store × region.
func PrintTable(w io.Writer, st Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "store\tregion\toffered\tok%\trefused\tp50 ms\tp99 ms\treads\tstale\toversold\tSLO\t")
	for _, s := range st.Stores {
		for _, f := range s.Regions {
			slo := "met"
			if !f.SLOMet {
				slo = "MISSED"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%d\t%.1f\t%.1f\t%d\t%d\t%d\t%s\t\n", s.Store, f.Region, f.Offered, f.Availability,
				f.Refused, f.P50Ms, f.P99Ms, f.ReadsOffered, f.StaleReads, s.Oversold, slo)
		}
	}
	_ = tw.Flush()
	for _, s := range st.Stores {
		fmt.Fprintf(w, "%s: %s\n", s.Store, s.Verdict)
		if s.Check != nil {
			lin := "linearizable"
			if !s.Check.Linearizable {
				lin = "NOT linearizable"
			}
			fmt.Fprintf(w, "  checker (%d recorded operations on %s): %s\n", s.Check.Operations, s.Check.SKU, lin)
		}
	}
	if len(st.Faults) > 0 {
		var fs []string
		for _, f := range st.Faults {
			fs = append(fs, fmt.Sprintf("%.1fs %s", f.T, f.Detail))
		}
		fmt.Fprintf(w, "faults: %s\n", strings.Join(fs, "; "))
	}
	if st.State != StateFinished {
		fmt.Fprintf(w, "state: %s %s\n", st.State, st.Reason)
	}
}

// WriteCSV writes one row per sample.
func WriteCSV(w io.Writer, samples []Sample) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"t", "store", "region", "offered", "ok", "sold_out", "unavailable", "fail_fast", "conflict", "overloaded", "shed",
		"reads_offered", "reads", "stale_reads", "p50_ms", "p90_ms", "p99_ms", "max_ms", "read_p99_ms", "availability", "sold", "oversold", "in_flight"})
	for _, s := range samples {
		f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
		i := func(v int64) string { return strconv.FormatInt(v, 10) }
		_ = cw.Write([]string{f(s.T), s.Store, s.Region, i(s.Offered), i(s.OK), i(s.SoldOut), i(s.Unavailable), i(s.FailFast), i(s.Conflict),
			i(s.Overloaded), i(s.Shed), i(s.ReadsOffered), i(s.Reads), i(s.StaleReads), f(s.P50Ms), f(s.P90Ms), f(s.P99Ms), f(s.MaxMs),
			f(s.ReadP99Ms), f(s.Availability), i(s.Sold), i(s.Oversold), i(s.InFlight)})
	}
	cw.Flush()
	return cw.Error()
}
