package load

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ---- the fault schedule ----

var faultKinds = []string{"cut", "heal", "partition", "bridge", "crash", "restart", "lead", "latency", "quorum"}

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
	case "cut", "crash", "restart", "lead", "partition", "bridge":
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
	case "bridge":
		return cl.do(ctx, "POST", "/api/network/bridge", map[string]any{"via": f.arg}, nil)
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
