package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"caplab/lab/audit"
	"caplab/lab/inventory"
)

// "caplab history export": the lab's history for checkers outside it, from
// the audit log of a data directory (the lab need not run) or from a
// running lab's GET /api/history/export.

const historyUsage = `usage: caplab history export [flags]
       caplab history check [flags] FILE   (see "caplab history check --help")

Writes the lab's history for checkers outside it: every operation and fault
as JSON Lines (jsonl), porcupine's operation log (porcupine), or a Jepsen
history (edn) that Knossos and Elle read.

Where it comes from (one of):
  --data-dir DIR     the audit log a lab started with --data-dir DIR keeps
                     (DIR/audit); the lab need not be running
  --url URL          a running lab, e.g. http://127.0.0.1:8080: its audit log
                     when it has one, else its in-memory history (since the
                     last reset) (default http://127.0.0.1:8080)

Flags:
  --format F         jsonl, porcupine or edn (default jsonl)
  --store S          consensus or replicated: porcupine and edn cover one store
                     (default consensus); jsonl keeps every store unless set
  --sku S            only this SKU's operations
  --out FILE         write to FILE instead of standard output

Exit status: 0 written, 1 the export failed, 2 bad usage.
`

// historyTimeout bounds a --url export.
const historyTimeout = 2 * time.Minute

// HistoryMain runs "caplab history"; args are the words after "history".
func HistoryMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		w := stderr
		if len(args) > 0 {
			w = stdout
		}
		fmt.Fprint(w, historyUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "check" {
		return historyCheck(args[1:], stdout, stderr)
	}
	if args[0] != "export" {
		fmt.Fprintf(stderr, "caplab history: unknown command %s (expected export, check or help)\n\n%s", inventory.Echo(args[0]), historyUsage)
		return 2
	}
	opts := map[string]string{}
	known := []string{"data-dir", "url", "format", "store", "sku", "out"}
	rest := args[1:]
	for len(rest) > 0 {
		a := rest[0]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !slices.Contains(known, name) {
			fmt.Fprintf(stderr, "caplab history export: unknown argument %s (flags: --%s)\n", inventory.Echo(a), strings.Join(known, ", --"))
			return 2
		}
		rest = rest[1:]
		if !hasValue {
			if len(rest) == 0 {
				fmt.Fprintf(stderr, "caplab history export: --%s needs a value\n", name)
				return 2
			}
			value, rest = rest[0], rest[1:]
		}
		opts[name] = value
	}
	if opts["data-dir"] != "" && opts["url"] != "" {
		fmt.Fprintln(stderr, "caplab history export: give --data-dir or --url, not both")
		return 2
	}
	format, err := audit.ParseFormat(opts["format"])
	if err != nil {
		fmt.Fprintf(stderr, "caplab history export: --format: %s\n", strings.TrimPrefix(err.Error(), "bad input: "))
		return 2
	}
	filter := audit.Filter{Store: inventory.Store(opts["store"]), SKU: opts["sku"]}
	if filter.Store != "" {
		if _, err := inventory.ParseStore(string(filter.Store)); err != nil {
			fmt.Fprintf(stderr, "caplab history export: --store: %s\n", strings.TrimPrefix(err.Error(), "unknown store: "))
			return 2
		}
	}
	if filter.SKU != "" {
		if err := inventory.CheckSKU(filter.SKU); err != nil {
			fmt.Fprintf(stderr, "caplab history export: --sku: %s\n", strings.TrimPrefix(err.Error(), "bad input: "))
			return 2
		}
	}

	write := func(w io.Writer) error {
		if dir := opts["data-dir"]; dir != "" {
			logDir := audit.Dir(dir)
			if _, err := os.Stat(logDir); err != nil {
				return fmt.Errorf("%s has no audit log (%s): a lab started with --data-dir %s keeps one", dir, logDir, dir)
			}
			return audit.Export(logDir, w, format, filter)
		}
		base := opts["url"]
		if base == "" {
			base = "http://127.0.0.1:8080"
		}
		return exportFromURL(base, format, filter, w)
	}
	if out := opts["out"]; out != "" {
		err = writeFileAtomic(out, write)
	} else {
		err = write(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "caplab history export: %v\n", err)
		return 1
	}
	return 0
}

// exportFromURL copies a running lab's GET /api/history/export to w.
func exportFromURL(base string, format audit.Format, f audit.Filter, w io.Writer) error {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %s is not a lab's address (like http://127.0.0.1:8080)", inventory.Echo(base))
	}
	q := url.Values{"format": {string(format)}}
	if f.Store != "" {
		q.Set("store", string(f.Store))
	}
	if f.SKU != "" {
		q.Set("sku", f.SKU)
	}
	u.Path += "/api/history/export"
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("no lab answered at %s (%v); start caplab, or give --url or --data-dir", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("the lab at %s answered %s: %s", base, resp.Status, strings.TrimSpace(string(b)))
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("the export from %s was cut short: %w", base, err)
	}
	return nil
}

// writeFileAtomic writes path through a temporary file renamed into place,
// so a failed export leaves no half-written file.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	err = write(tmp)
	err = errors.Join(err, tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}
