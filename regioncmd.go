package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"caplab/nodes"
)

const regionUsage = `caplab region — run one region of a lab on this host (the lab runs elsewhere).

Usage:
  caplab region --name REGION --listen HOST:PORT --token TOKEN [--data-dir DIR] [--reset]

The lab, started on another host with the same --token and
--remote REGION=THIS-HOST:PORT, takes this agent: it runs the region's
etcd servers here and its end of the lab's network. Only the lab and the
lab's other agents are let in (TLS with a certificate the lab makes and
this agent pins the first time). Stop it (Ctrl-C, or kill -9) and the lab
sees the region crash; start it again and the region resumes from its
data. The token may also come from the CAPLAB_TOKEN environment variable.

Flags:
`

// regionMain runs "caplab region": an agent for one region (nodes.RunAgent).
func regionMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("caplab region", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "the region this host runs (one of: "+strings.Join(nodes.CatalogueNames(), ", ")+")")
	listen := fs.String("listen", "", "where to listen for the lab and the other agents (host:port), e.g. 0.0.0.0:7400; required")
	token := fs.String("token", "", "the lab's token (or CAPLAB_TOKEN)")
	dataDir := fs.String("data-dir", "", "keep the region's data and the lab it belongs to here (default: the user's cache directory, caplab/region-NAME)")
	reset := fs.Bool("reset", false, "delete what the data directory holds of an earlier lab (its region's data, the lab it belonged to) before starting")
	etcdLog := fs.String("etcd-log", "", "show etcd's own logs at this level (warn, info, debug)")
	fs.Usage = func() {
		fmt.Fprint(stderr, regionUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "caplab region: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *token == "" {
		*token = os.Getenv("CAPLAB_TOKEN")
	}
	for _, missing := range []struct{ flag, value string }{{"--name", *name}, {"--listen", *listen}, {"--token", *token}} {
		if missing.value == "" {
			fmt.Fprintf(stderr, "caplab region: %s is required\n\n", missing.flag)
			fs.Usage()
			return 2
		}
	}
	if *dataDir == "" {
		d, err := nodes.DefaultAgentDir(*name)
		if err != nil {
			fmt.Fprintf(stderr, "caplab region: %v\n", err)
			return 2
		}
		*dataDir = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := nodes.RunAgent(ctx, nodes.AgentConfig{Name: *name, Listen: *listen, Token: *token, DataDir: *dataDir, Reset: *reset,
		EtcdLogLevel: *etcdLog, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "caplab region: %v\n", err)
		return 1
	}
	return 0
}

// parseRemote reads --remote: REGION=HOST:PORT, comma-separated.
func parseRemote(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		region, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || region == "" || addr == "" {
			return nil, fmt.Errorf("%q: give REGION=HOST:PORT, e.g. eu-west-1=192.168.1.21:7400", part)
		}
		if _, ok := nodes.Lookup(region); !ok {
			return nil, fmt.Errorf("region %q is not in the catalogue (known: %s)", region, strings.Join(nodes.CatalogueNames(), ", "))
		}
		if _, dup := out[region]; dup {
			return nil, fmt.Errorf("region %s is named twice", region)
		}
		out[region] = addr
	}
	return out, nil
}

// takeRemoteFlags takes --remote, --token and --region-listen out of the
// words after "caplab lessons", for "lessons run" on agents; the rest go
// to the lessons command line.
func takeRemoteFlags(args []string) (rest []string, remote map[string]string, token, regionListen string, err error) {
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") || (name != "remote" && name != "token" && name != "region-listen") {
			rest = append(rest, args[i])
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, nil, "", "", fmt.Errorf("flag --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		switch name {
		case "remote":
			if remote, err = parseRemote(value); err != nil {
				return nil, nil, "", "", fmt.Errorf("--remote: %v", err)
			}
		case "token":
			token = value
		case "region-listen":
			regionListen = value
		}
	}
	if len(remote) > 0 && token == "" {
		token = os.Getenv("CAPLAB_TOKEN")
	}
	if len(remote) > 0 && token == "" {
		return nil, nil, "", "", errors.New("--remote needs --token: the one the agents were started with")
	}
	return rest, remote, token, regionListen, nil
}
