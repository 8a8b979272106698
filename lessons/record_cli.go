package lessons

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// recordTimeout bounds the request to the running lab.
const recordTimeout = 30 * time.Second

// maxLessonBytes bounds the answer read from the lab.
const maxLessonBytes = 4 << 20

// recordMain runs "caplab lessons record --url URL --token TOKEN [-o FILE]":
// it asks a running lab for its recording as a lesson and writes it to FILE
// (or stdout).
func recordMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("caplab lessons record", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "", "the running lab's address, e.g. http://127.0.0.1:8080 (the URL caplab printed, with or without ?token=…)")
	token := fs.String("token", "", "the lab token (default: the token in --url, or $CAPLAB_TOKEN)")
	out := fs.String("o", "", "write the lesson to this file (default: standard output)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: caplab lessons record --url URL [--token TOKEN] [-o FILE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "caplab lessons record: unexpected argument %q\n", fs.Arg(0))
		return ExitUsage
	}
	if *base == "" {
		fmt.Fprintln(stderr, "caplab lessons record: say which lab with --url, e.g. --url http://127.0.0.1:8080")
		return ExitUsage
	}
	u, err := url.Parse(*base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "caplab lessons record: --url must be an http(s) address like http://127.0.0.1:8080, got %q\n", *base)
		return ExitUsage
	}
	tok := *token
	if tok == "" {
		tok = u.Query().Get("token")
	}
	if tok == "" {
		tok = os.Getenv("CAPLAB_TOKEN")
	}
	if tok == "" {
		fmt.Fprintln(stderr, "caplab lessons record: the lab token is needed: --token TOKEN (or the ?token=… URL caplab printed)")
		return ExitUsage
	}
	md, err := FetchRecording(context.Background(), u.Scheme+"://"+u.Host, tok)
	if err != nil {
		fmt.Fprintf(stderr, "caplab lessons record: %v\n", err)
		return ExitFail
	}
	if *out == "" {
		_, _ = stdout.Write(md)
		return ExitOK
	}
	if err := os.WriteFile(*out, md, 0o644); err != nil {
		fmt.Fprintf(stderr, "caplab lessons record: %v\n", err)
		return ExitFail
	}
	fmt.Fprintf(stdout, "wrote %s; check it with: caplab lessons check %s\n", *out, *out)
	return ExitOK
}

// FetchRecording asks the lab at base (scheme://host) for its recording
// as a lesson (GET /api/recording/lesson).
func FetchRecording(ctx context.Context, base, token string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/api/recording/lesson", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the lab at %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLessonBytes))
	if err != nil {
		return nil, fmt.Errorf("reading the lab's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("the lab answered %d: %s", resp.StatusCode, e.Error)
		}
		return nil, fmt.Errorf("the lab answered %s", resp.Status)
	}
	return body, nil
}
