package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"caplab/lab"
	"caplab/lab/load"
	"caplab/web"
)

// startLoadLab starts a lab and its web API on a free loopback port for
// "caplab load" without --url; the load then drives it over HTTP exactly
// as it would drive a running caplab.
func startLoadLab(ctx context.Context, f load.LabFlags) (string, string, func(), error) {
	names, err := parseRegions(f.Regions)
	if err != nil {
		return "", "", nil, fmt.Errorf("--regions: %v", err)
	}
	if f.LatencyScale < 0 || f.LatencyScale > 100 {
		return "", "", nil, fmt.Errorf("--latency-scale must be between 0 and 100 (got %v)", f.LatencyScale)
	}
	token := f.Token
	if token == "" {
		token = randomToken()
	}
	logger := slog.New(slog.DiscardHandler)
	l, err := lab.New(ctx, lab.Config{Regions: names, LatencyScale: f.LatencyScale, DataDir: f.DataDir, Logger: logger, EtcdLogLevel: f.EtcdLog})
	if err != nil {
		return "", "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = l.Close()
		return "", "", nil, err
	}
	srv := web.New(l, web.Options{Token: token, Logger: logger, AllowedHosts: loopbackHosts(ln.Addr())})
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	stop := func() {
		_ = hs.Close()
		srv.Close()
		_ = l.Close()
	}
	return "http://" + ln.Addr().String(), token, stop, nil
}
