package web

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"caplab/lab/audit"
	"caplab/lab/check"
	"caplab/lab/inventory"
)

// "caplab history check FILE": the lab's checker on a history file — one
// the lab exported, yesterday or now, or one another service wrote in
// porcupine's format. The verdicts are check.Judge's, the same the lab's
// GET /api/check gives on the same history.

const historyCheckUsage = `usage: caplab history check [flags] FILE

Judges a history as the lab's checker does (GET /api/check) and prints,
per store and SKU, the verdict and its explanation. FILE ("-" for standard
input) is JSON Lines as GET /api/history/export and "caplab history
export" write (operations, faults, resets, the gaps where writes went
unrecorded, the geo store's call log), or porcupine's operation log (the
lab's --format porcupine export, or another service's in that format).
Only what follows the file's last reset is judged.

Flags:
  --store S      only this store (consensus, replicated or geo); for a
                 porcupine log, the store it is of (default consensus; a
                 log of geo calls is the geo store's)
  --sku S        only this SKU
  --json         one verdict a line, as JSON (GET /api/check's shape)
  --timeout D    bound on each SKU's search (default 60s; 0: none)

Exit status: 0 every verdict linearizable, 1 some verdict not linearizable
(or undecided), 2 bad usage or the file is not a history.
`

// historyCheck runs "caplab history check"; args follow "check".
func historyCheck(args []string, stdout, stderr io.Writer) int {
	var file string
	opts := map[string]string{}
	asJSON := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-h" || a == "--help" || a == "help" {
			fmt.Fprint(stdout, historyCheckUsage)
			return 0
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if file != "" {
				fmt.Fprintf(stderr, "caplab history check: one FILE, not %s and %s\n", inventory.Echo(file), inventory.Echo(a))
				return 2
			}
			file = a
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "json":
			asJSON = !hasValue || value == "true"
			continue
		case "store", "sku", "timeout":
		default:
			fmt.Fprintf(stderr, "caplab history check: unknown argument %s (flags: --store, --sku, --json, --timeout)\n\n%s", inventory.Echo(a), historyCheckUsage)
			return 2
		}
		if !hasValue {
			if i+1 >= len(args) {
				fmt.Fprintf(stderr, "caplab history check: --%s needs a value\n", name)
				return 2
			}
			i++
			value = args[i]
		}
		opts[name] = value
	}
	if file == "" {
		fmt.Fprint(stderr, "caplab history check: which file? (\"-\" reads standard input)\n\n"+historyCheckUsage)
		return 2
	}
	var store inventory.Store
	if v := opts["store"]; v != "" {
		s, err := inventory.ParseStore(v)
		if err != nil {
			fmt.Fprintf(stderr, "caplab history check: --store: %s\n", strings.TrimPrefix(err.Error(), "unknown store: "))
			return 2
		}
		store = s
	}
	sku := opts["sku"]
	if sku != "" {
		if err := inventory.CheckSKU(sku); err != nil {
			fmt.Fprintf(stderr, "caplab history check: --sku: %s\n", strings.TrimPrefix(err.Error(), "bad input: "))
			return 2
		}
	}
	timeout := time.Minute
	if v, ok := opts["timeout"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			fmt.Fprintf(stderr, "caplab history check: --timeout %s is not a duration such as 60s (0: no limit)\n", inventory.Echo(v))
			return 2
		}
		timeout = d
	}

	in, name := io.Reader(os.Stdin), "standard input"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			fmt.Fprintf(stderr, "caplab history check: %v\n", err)
			return 2
		}
		defer f.Close()
		in, name = f, file
	}
	h, err := audit.ReadHistory(in, name, store)
	if err != nil {
		fmt.Fprintf(stderr, "caplab history check: %v\n", err)
		return 2
	}
	var subjects []audit.CheckSubject
	for _, s := range h.Subjects() {
		if (store == "" || s.Store == store || h.Format == audit.FormatPorcupine) && (sku == "" || s.SKU == sku) {
			subjects = append(subjects, s)
		}
	}
	if len(subjects) == 0 {
		what := "operations"
		if store != "" || sku != "" {
			what = fmt.Sprintf("operations of store %s, SKU %s", cmp.Or(string(store), "any"), cmp.Or(sku, "any"))
		}
		fmt.Fprintf(stderr, "caplab history check: %s holds no %s (after its last reset)\n", name, what)
		return 2
	}
	code := 0
	enc := json.NewEncoder(stdout)
	for _, s := range subjects {
		res := check.Judge(h.Recorded(s.Store, s.SKU), s.Store, s.SKU, timeout)
		if !res.Linearizable {
			code = 1
		}
		if asJSON {
			_ = enc.Encode(res)
			continue
		}
		verdict := "linearizable"
		switch {
		case res.TimedOut:
			verdict = "UNDECIDED (the search ran out of time)"
		case !res.Linearizable:
			verdict = "NOT linearizable"
		}
		fmt.Fprintf(stdout, "%s %s: %s (%d operations judged", s.Store, s.SKU, verdict, res.Operations)
		if res.Geo != nil {
			fmt.Fprintf(stdout, ", %d geo calls", res.Geo.Calls)
		}
		fmt.Fprintf(stdout, ")\n  %s\n", res.Explanation)
		if res.Geo != nil && !res.Linearizable {
			var bad []string
			for r, ok := range res.Geo.Regions {
				if !ok {
					bad = append(bad, r)
				}
			}
			slices.Sort(bad)
			fmt.Fprintf(stdout, "  allocations not linearizable: %s\n", strings.Join(bad, ", "))
		}
	}
	return code
}
