package lessons

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"caplab/lab/inventory"
)

// NewLabFunc starts a fresh lab with the given latency scale and regions.
// It returns the lab and a function that stops it.
type NewLabFunc func(ctx context.Context, latencyScale float64, regions []string) (Lab, func() error, error)

// Exit codes of Main.
const (
	ExitOK    = 0 // every file valid; every expectation met
	ExitFail  = 1 // a lesson has errors, or an expectation was not met
	ExitUsage = 2 // the command line is wrong
)

const usageText = `usage: caplab lessons <command> [flags]

Commands:
  list                   list the lessons: the built-in course, and --lessons DIR
  check [FILE|DIR ...]   check lesson files and print every error as file:line: message;
                         with no arguments, check the built-in course (and --lessons DIR)
  run NAME|FILE          run one lesson headless against a fresh lab, printing each step,
                         command and expectation; stop at the first unmet expectation
  record --url URL --token TOKEN [-o FILE]
                         save what a running lab did since its last reset (or
                         "Start recording") as a lesson file
  help                   print this text

Flags (anywhere on the line):
  --lessons DIR          also load the *.md lessons in DIR; a lesson named like a
                         built-in one (last-iphone.md) replaces it
  --latency-scale X      run: multiply every network delay by X (default 1; 0 = none)
  --no-timing            run: leave latencies out of the output, so runs can be diffed

Exit status: 0 all good, 1 a lesson has errors or an expectation failed, 2 bad usage.

The lesson format is described in LESSONS.md; "caplab lessons check" is its reference.
`

// Main runs the "caplab lessons" command line. args are the words after
// "lessons"; newLab starts a lab for "run". It returns the exit status.
func Main(args []string, stdout, stderr io.Writer, newLab NewLabFunc) int {
	if len(args) > 0 && args[0] == "record" {
		return recordMain(args[1:], stdout, stderr)
	}
	opts, rest, err := parseFlags(args)
	if err != nil {
		fmt.Fprintf(stderr, "caplab lessons: %v\n\n%s", err, usageText)
		return ExitUsage
	}
	if len(rest) == 0 {
		fmt.Fprint(stderr, usageText)
		return ExitUsage
	}
	if slices.ContainsFunc(rest, isHelp) { // "caplab lessons run --help" too
		fmt.Fprint(stdout, usageText)
		return ExitOK
	}
	switch cmd, rest := rest[0], rest[1:]; cmd {
	case "list":
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "caplab lessons list: unexpected argument %s\n", inventory.Echo(rest[0]))
			return ExitUsage
		}
		return list(opts, stdout, stderr)
	case "check":
		return check(opts, rest, stdout, stderr)
	case "run":
		if len(rest) != 1 {
			fmt.Fprintf(stderr, "caplab lessons run: expected one lesson name or file, got %d arguments\n\n%s", len(rest), usageText)
			return ExitUsage
		}
		return run(opts, rest[0], stdout, stderr, newLab)
	default:
		fmt.Fprintf(stderr, "caplab lessons: unknown command %s (expected list, check, run or help)\n\n%s", inventory.Echo(cmd), usageText)
		return ExitUsage
	}
}

type cliOptions struct {
	dir          string
	latencyScale float64
	noTiming     bool
}

// parseFlags takes the flags out of args, wherever they are.
func parseFlags(args []string) (cliOptions, []string, error) {
	opts := cliOptions{latencyScale: 1}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "-h" || a == "--help" || a == "-help" {
			rest = append(rest, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takeValue := func() (string, error) {
			if hasValue {
				return value, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("flag --%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		switch name {
		case "lessons":
			v, err := takeValue()
			if err != nil {
				return opts, nil, err
			}
			opts.dir = v
		case "latency-scale":
			v, err := takeValue()
			if err != nil {
				return opts, nil, err
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(f) || f < 0 || f > 100 {
				return opts, nil, fmt.Errorf("--latency-scale must be a number from 0 to 100, got %s", inventory.Echo(v))
			}
			opts.latencyScale = f
		case "no-timing":
			if hasValue {
				b, err := strconv.ParseBool(value)
				if err != nil {
					return opts, nil, fmt.Errorf("--no-timing takes true or false, got %s", inventory.Echo(value))
				}
				opts.noTiming = b
			} else {
				opts.noTiming = true
			}
		default:
			return opts, nil, fmt.Errorf("unknown flag %s (expected --lessons, --latency-scale or --no-timing)", inventory.Echo(a))
		}
	}
	return opts, rest, nil
}

func list(opts cliOptions, stdout, stderr io.Writer) int {
	cat, errs := LoadCatalog(opts.dir)
	// One lesson per line, its name first (what "lessons run" takes), then
	// its title, then details: no header, so scripts can read it.
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, l := range cat.Lessons() {
		origin := ""
		switch {
		case cat.ReplacesBuiltin(l.Name):
			origin = " (" + l.File + ", replaces the built-in lesson)"
		case !l.Builtin:
			origin = " (" + l.File + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t~%d min\t(%d steps, %d regions)%s\n", l.Name, l.Title, l.Minutes(), len(l.Steps), len(l.Regions), origin)
	}
	tw.Flush()
	if len(cat.Lessons()) > 0 {
		fmt.Fprintln(stderr, "(minutes: the prose read aloud, 90 s per question, the lab's own waits, 2 s per other command)")
	}
	if len(errs) > 0 {
		fmt.Fprintf(stderr, "\nskipped lesson files with errors (see caplab lessons check):\n%v\n", errs)
		return ExitFail
	}
	return ExitOK
}

func check(opts cliOptions, paths []string, stdout, stderr io.Writer) int {
	var lessons []*Lesson
	var errs ErrorList
	if len(paths) == 0 {
		lessons, errs = Builtin()
		if opts.dir != "" {
			paths = []string{opts.dir}
		}
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		switch {
		case err != nil:
			errs = append(errs, &Error{File: p, Msg: "cannot read it: " + err.Error()})
		case info.IsDir():
			ls, lerrs := LoadDir(p)
			if len(ls) == 0 && len(lerrs) == 0 {
				errs = append(errs, &Error{File: p, Msg: "no lesson files (*.md) in this directory"})
			}
			lessons, errs = append(lessons, ls...), append(errs, lerrs...)
		default:
			l, lerrs := ParseFile(p)
			if len(lerrs) == 0 {
				lessons = append(lessons, l)
			}
			errs = append(errs, lerrs...)
		}
	}
	for _, e := range errs {
		fmt.Fprintln(stderr, e)
	}
	var warns ErrorList
	for _, l := range lessons {
		warns = append(warns, Spoilers(l)...)
	}
	for _, w := range warns {
		fmt.Fprintln(stderr, w)
	}
	if len(errs) > 0 {
		files := map[string]bool{}
		for _, e := range errs {
			files[e.File] = true
		}
		fmt.Fprintf(stdout, "%s; %s in %s\n", count(len(lessons), "valid lesson"), count(len(errs), "error"), count(len(files), "file"))
		return ExitFail
	}
	if len(warns) > 0 {
		fmt.Fprintf(stdout, "%s, all valid; %s\n", count(len(lessons), "lesson"), count(len(warns), "warning"))
		return ExitOK
	}
	fmt.Fprintf(stdout, "%s, all valid\n", count(len(lessons), "lesson"))
	return ExitOK
}

// count says "1 error", "2 errors".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// resolve finds the lesson to run: a file when arg names one, else a name
// in the catalogue.
func resolve(opts cliOptions, arg string, stderr io.Writer) (*Lesson, int) {
	if info, err := os.Stat(arg); strings.HasSuffix(arg, ".md") || strings.ContainsRune(arg, os.PathSeparator) || (err == nil && !info.IsDir()) {
		l, errs := ParseFile(arg)
		if len(errs) > 0 {
			fmt.Fprintln(stderr, errs)
			return nil, ExitFail
		}
		return l, ExitOK
	}
	cat, errs := LoadCatalog(opts.dir)
	if len(errs) > 0 {
		fmt.Fprintf(stderr, "skipped lesson files with errors:\n%v\n", errs)
	}
	l, ok := cat.Lookup(arg)
	if !ok {
		fmt.Fprintf(stderr, "caplab lessons run: no lesson named %s (lessons: %s; or give a file ending in .md)\n", inventory.Echo(arg), strings.Join(cat.Names(), ", "))
		return nil, ExitUsage
	}
	return l, ExitOK
}

func run(opts cliOptions, arg string, stdout, stderr io.Writer, newLab NewLabFunc) int {
	l, code := resolve(opts, arg, stderr)
	if l == nil {
		return code
	}
	if newLab == nil {
		fmt.Fprintln(stderr, "caplab lessons run: this build cannot start a lab")
		return ExitFail
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	lb, closeLab, err := newLab(ctx, opts.latencyScale, l.Regions)
	if err != nil {
		fmt.Fprintf(stderr, "caplab lessons run: cannot start the lab: %v\n", err)
		return ExitFail
	}
	defer func() {
		if closeLab != nil {
			if err := closeLab(); err != nil {
				fmt.Fprintf(stderr, "caplab lessons run: stopping the lab: %v\n", err)
			}
		}
	}()
	r := NewRunner(l, lb, stdout)
	defer r.Close() // a load the lesson left running
	r.NoTiming = opts.noTiming
	if _, err := r.RunAll(ctx); err != nil {
		var f *Failure
		if !errors.As(err, &f) {
			fmt.Fprintf(stderr, "caplab lessons run: %v\n", err)
		} else {
			fmt.Fprintln(stderr, f)
		}
		return ExitFail
	}
	return ExitOK
}

func isHelp(a string) bool { return a == "help" || a == "-h" || a == "--help" || a == "-help" }
