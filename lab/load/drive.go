package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

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
	show := newProgress(progress, time.Duration(cfg.Duration), isTerminal(progress), quiet)
	next := 0
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	stopped := false
	for {
		select {
		case <-ctx.Done():
			if !stopped {
				stopped = true
				show.note("stopping …")
				_ = cl.do(context.Background(), "DELETE", "/api/load", nil, nil)
			}
		case <-tick.C:
		}
		if err := cl.do(context.Background(), "GET", "/api/load?samples=0", nil, &st); err != nil {
			return Status{}, err
		}
		show.update(st)
		if st.State == StateRunning {
			for next < len(sched) && time.Duration(st.ElapsedS*float64(time.Second)) >= sched[next].at {
				f := sched[next]
				next++
				if err := f.apply(ctx, cl, regions); err != nil {
					show.note(fmt.Sprintf("fault %s refused: %v", f, err))
				} else {
					show.note("fault: " + f.String())
				}
			}
		}
		if slices.Contains([]string{StateFinished, StateStopped, StateFailed}, st.State) {
			break
		}
	}
	show.finish()
	if err := cl.do(context.Background(), "GET", "/api/load", nil, &st); err != nil {
		return Status{}, err
	}
	return st, nil
}
