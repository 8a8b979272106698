package load

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
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
  --bridge REGION@T        the others reach each other only through REGION
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
	consistency := fs.String("consistency", DefaultConsistency, "consensus reads: serializable, linearizable or cached (the region's watch-fed cache)")
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
