package nodes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// AgentConfig configures a region agent: the process on a region's host
// that runs the region's servers and its end of the fabric for a lab on
// another host ("caplab region").
type AgentConfig struct {
	// Name is the region it serves (from the catalogue).
	Name string
	// Listen is the address of its one port (host:port): the lab's control
	// connection, the other agents' raft and client traffic, and their
	// round-trip pings all arrive there. Nothing else listens beyond
	// loopback.
	Listen string
	// Token is the lab's token: a lab proves it knows it before it may
	// take the agent.
	Token string
	// DataDir keeps the region's data and the lab the agent belongs to;
	// an agent started again on it resumes (required).
	DataDir string
	// Reset deletes what DataDir holds of an earlier lab (its region's
	// data and the pinned lab certificate) before starting.
	Reset bool
	// Logger receives the agent's messages; nil discards them.
	Logger *slog.Logger
	// EtcdLogLevel enables etcd's own logs at this zap level.
	EtcdLogLevel string
	// Listener, when set, is served instead of listening on Listen (an
	// agent inside a lab's own process, or a test's).
	Listener net.Listener
}

// Validate checks the configuration and fills defaults.
func (c *AgentConfig) Validate() error {
	if _, ok := Lookup(c.Name); !ok {
		return fmt.Errorf("nodes: agent: region %q is not in the catalogue (known: %s)", c.Name, strings.Join(CatalogueNames(), ", "))
	}
	if c.Listener == nil {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("nodes: agent: --listen %q: give host:port, e.g. 0.0.0.0:7400 or 192.168.1.20:7400", c.Listen)
		}
	}
	if len(c.Token) < 8 {
		return errors.New("nodes: agent: the token must be the lab's token (at least 8 characters): give the --token the lab was started with")
	}
	if c.DataDir == "" {
		return errors.New("nodes: agent: a data directory is needed")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// AgentLayoutVersion is the version of an agent's data directory: its
// AgentFile, its trust files and its region's data.
const AgentLayoutVersion = 1

// AgentFile is the file in an agent's data directory that records the
// lab it belongs to and the region's layout.
const AgentFile = "caplab-agent.json"

// agentFile is what AgentFile holds.
type agentFile struct {
	Version int        `json:"version"`
	Region  string     `json:"region"`
	Spec    *agentSpec `json:"spec,omitempty"`
}

// Time limits of the agent's port and control connection.
const (
	handshakeTimeout  = 10 * time.Second       // TLS and the first line, per connection
	tunnelDialTimeout = 3 * time.Second        // reaching another agent
	agentHeartbeat    = 500 * time.Millisecond // a status at least this often
	controlSilence    = 4 * time.Second        // a control connection quiet this long is lost
	controlWrite      = 5 * time.Second        // one control message
)

// Agent runs one region for a lab on another host. Start it with
// StartAgent; Close it once.
type Agent struct {
	cfg     AgentConfig
	ln      net.Listener
	id      *agentIdentity
	key     []byte // the token's proof key
	log     *slog.Logger
	zl      *zap.Logger
	boot    string
	version buildVersion

	mu     sync.Mutex
	ctl    *agentControl // the lab's control connection, nil without one
	reg    *agentRegion  // the region, once a lab prepared it
	closed bool

	seq  atomic.Uint64 // of the last status built
	deaf atomic.Bool   // tests: close every control connection unanswered, as if the lab's host had gone (export_test.go)

	life      chan func() // lifecycle orders, one at a time (runLife)
	conns     sync.WaitGroup
	bg        sync.WaitGroup
	stop      chan struct{}
	closeOnce sync.Once
}

// StartAgent opens the agent's data directory and port. The region's
// servers start when a lab says so.
func StartAgent(cfg AgentConfig) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("nodes: agent: data dir: %w", err)
	}
	if cfg.Reset {
		if err := resetAgentDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	if err := checkAgentDir(cfg.DataDir, cfg.Name); err != nil {
		return nil, err
	}
	id, err := loadAgentIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	zl := zap.NewNop()
	if cfg.EtcdLogLevel != "" {
		lvl, err := zapcore.ParseLevel(cfg.EtcdLogLevel)
		if err != nil {
			return nil, fmt.Errorf("nodes: etcd log level: %w", err)
		}
		zc := zap.NewProductionConfig()
		zc.Level = zap.NewAtomicLevelAt(lvl)
		if zl, err = zc.Build(); err != nil {
			return nil, err
		}
	}
	a := &Agent{cfg: cfg, id: id, key: tokenKey(cfg.Token), log: cfg.Logger.With("region", cfg.Name), zl: zl,
		boot: randomID(), version: thisVersion(), life: make(chan func(), lifeQueue), stop: make(chan struct{})}
	a.ln = cfg.Listener
	if a.ln == nil {
		if a.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("nodes: agent: cannot listen on %s: %w", cfg.Listen, err)
		}
	}
	a.bg.Add(4)
	go a.accept()
	go a.runLife()
	go a.report()
	go a.upkeep()
	return a, nil
}

// Addr is the address the agent listens on.
func (a *Agent) Addr() string { return a.ln.Addr().String() }

// Lab is the lab the agent belongs to ("" when none has taken it) and the
// fingerprint of that lab's certificate.
func (a *Agent) Lab() (id, cert string) {
	p := a.id.pin()
	if p == nil {
		return "", ""
	}
	return p.lab, p.fingerprint
}

// Close stops the agent: its port, the control connection, the region's
// servers (abruptly, like a crash: the data stays for the next start) and
// its proxies. Safe to call twice.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		a.mu.Lock()
		a.closed = true
		ctl, reg := a.ctl, a.reg
		a.ctl, a.reg = nil, nil
		a.mu.Unlock()
		_ = a.ln.Close()
		if ctl != nil {
			ctl.close()
		}
		close(a.stop)
		a.bg.Wait()
		if reg != nil {
			reg.close()
		}
		a.conns.Wait()
	})
	return nil
}

// accept takes connections on the agent's port until Close.
func (a *Agent) accept() {
	defer a.bg.Done()
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			_ = c.Close()
			return
		}
		a.conns.Add(1)
		a.mu.Unlock()
		go func() {
			defer a.conns.Done()
			a.serveConn(c)
		}()
	}
}

// serveConn authenticates one connection and hands it to what it is for.
// Anything that is not the lab or another agent of the lab is closed:
// plain TCP and HTTP fail the TLS handshake, a certificate the lab did not
// sign is refused after it (with a sentence on a control connection).
func (a *Agent) serveConn(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	tc := tls.Server(c, a.id.serverConfig())
	if err := tc.Handshake(); err != nil {
		a.log.Debug("refused a connection: no TLS", "from", c.RemoteAddr(), "err", err)
		_ = c.Close()
		return
	}
	kind, args, err := readHeader(tc)
	if err != nil {
		a.log.Debug("refused a connection", "from", c.RemoteAddr(), "err", err)
		_ = tc.Close()
		return
	}
	cn, certErr := a.id.peerName(tc.ConnectionState())
	if kind == kindControl && a.deaf.Load() {
		_ = tc.Close()
		return
	}
	if kind == kindControl {
		_ = answer(tc, nil)
		a.serveControl(tc, cn, certErr)
		return
	}
	reg := a.region()
	refuse := func(err error) {
		a.log.Warn("refused a connection", "from", c.RemoteAddr(), "kind", kind, "err", err)
		_ = answer(tc, err)
		_ = tc.Close()
	}
	switch {
	case certErr != nil:
		refuse(fmt.Errorf("not a member of this lab: %w", certErr))
		return
	case reg == nil: // its peers call before the lab does, after a restart
		a.log.Debug("refused a connection: the region is not prepared", "from", c.RemoteAddr(), "kind", kind)
		_ = answer(tc, errors.New("this agent's region is not prepared"))
		_ = tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	switch {
	case kind == kindPeer && len(args) == 1 && args[0] == a.cfg.Name && reg.isAgent(cn):
		if err := answer(tc, nil); err != nil {
			_ = tc.Close()
			return
		}
		reg.tunnels.push(tc)
	case kind == kindClient && len(args) == 3:
		reg.serveClient(tc, cn, args[0], args[1], args[2])
	case kind == kindPing && reg.isAgent(cn):
		if err := answer(tc, nil); err != nil {
			_ = tc.Close()
			return
		}
		echo(tc, a.stop)
	default:
		refuse(fmt.Errorf("%s %v is not something this agent serves to %s", kind, args, cn))
	}
}

func (a *Agent) region() *agentRegion {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reg
}

// runLife carries out lifecycle orders (start, crash, stop …) one after
// another, each to the end, so the control connection keeps reading —
// link rules take effect while a region starts.
func (a *Agent) runLife() {
	defer a.bg.Done()
	for {
		select {
		case f := <-a.life:
			f()
		case <-a.stop:
			return
		}
	}
}

// upkeep defragments the region's servers whose database file is mostly
// free space (upkeep.go), as a lab on one machine does.
func (a *Agent) upkeep() {
	defer a.bg.Done()
	t := time.NewTicker(defragEvery)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			if reg := a.region(); reg != nil {
				_ = a.lifecycle(func() { _ = reg.r.do(opDefrag) })
			}
		}
	}
}

// lifeQueue is how many lifecycle orders may wait for runLife.
const lifeQueue = 64

// errBusy refuses an order when lifeQueue orders wait already.
var errBusy = errors.New("the agent has too many orders waiting")

// lifecycle queues f for runLife without waiting (the control connection
// keeps reading: link rules take effect while a region starts).
func (a *Agent) lifecycle(f func()) error {
	select {
	case <-a.stop:
		return ErrClosed
	default:
	}
	select {
	case a.life <- f:
		return nil
	default:
		return errBusy
	}
}

// checkAgentDir refuses a data directory made for another region or by
// another layout, or one caplab did not make.
func checkAgentDir(dir, region string) error {
	af, err := readAgentFile(dir)
	if err != nil {
		return err
	}
	if af == nil {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("nodes: agent: data dir: %w", err)
		}
		for _, e := range entries {
			if e.Name() != "trust" {
				return fmt.Errorf("nodes: agent: data dir %s is not empty and holds no %s: it was not made by a caplab agent; give an empty or new directory", dir, AgentFile)
			}
		}
		return nil
	}
	if af.Version != AgentLayoutVersion {
		return fmt.Errorf("nodes: agent: data dir %s was made by a caplab agent with layout version %d; this one uses %d: start with another --data-dir (or --reset to delete it)", dir, af.Version, AgentLayoutVersion)
	}
	if af.Region != region {
		return fmt.Errorf("nodes: agent: data dir %s holds region %s, not %s: start with --name %s, or use another --data-dir", dir, af.Region, region, af.Region)
	}
	return nil
}

func readAgentFile(dir string) (*agentFile, error) {
	raw, err := os.ReadFile(filepath.Join(dir, AgentFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nodes: agent: data dir: %w", err)
	}
	var af agentFile
	if err := json.Unmarshal(raw, &af); err != nil {
		return nil, fmt.Errorf("nodes: agent: %s in %s is damaged (%v): start with --reset to delete it", AgentFile, dir, err)
	}
	return &af, nil
}

func writeAgentFile(dir string, af *agentFile) error {
	raw, err := json.MarshalIndent(af, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, AgentFile), append(raw, '\n'), true)
}

// resetAgentDir deletes what an agent keeps in dir — only a directory
// an agent made (or an empty one).
func resetAgentDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("nodes: agent: data dir: %w", err)
	}
	made := slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == AgentFile || e.Name() == "trust" })
	if len(entries) > 0 && !made {
		return fmt.Errorf("nodes: agent: --reset: %s was not made by a caplab agent; not deleting it", dir)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("nodes: agent: --reset: %w", err)
		}
	}
	return nil
}

// echo answers round-trip pings: every 8 bytes read are written back.
func echo(c net.Conn, stop <-chan struct{}) {
	defer c.Close()
	go func() {
		<-stop
		_ = c.Close()
	}()
	var b [8]byte
	for {
		_ = c.SetDeadline(time.Now().Add(3 * meshEvery))
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return
		}
		if _, err := c.Write(b[:]); err != nil {
			return
		}
	}
}

// agentIdentity is an agent's key, the lab it pinned and the certificate
// that lab gave it.
type agentIdentity struct {
	dir  string
	key  tls.Certificate // self-signed, for the key; presented until enrolled
	pkix []byte

	mu     sync.RWMutex
	pinned *agentPin
}

// agentPin is the lab an agent belongs to.
type agentPin struct {
	lab         string
	temporary   bool
	ca          *x509.Certificate
	fingerprint string
	pool        *x509.CertPool
	cert        tls.Certificate // the agent's own, signed by the lab
}

func (id *agentIdentity) pin() *agentPin {
	id.mu.RLock()
	defer id.mu.RUnlock()
	return id.pinned
}

// DefaultAgentDir is where an agent keeps its region's data unless told:
// the user's cache directory, so that an agent started again — after
// Ctrl-C, a kill -9 or a reboot — resumes its region.
func DefaultAgentDir(region string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("nodes: agent: no cache directory for the region's data (%v): give --data-dir", err)
	}
	return filepath.Join(base, "caplab", "region-"+region), nil
}

// RunAgent runs an agent until ctx ends (caplab region), telling out
// where it listens and which lab it belongs to.
func RunAgent(ctx context.Context, cfg AgentConfig, out io.Writer) error {
	a, err := StartAgent(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "caplab region: %s listens on %s (data in %s)\n", cfg.Name, a.Addr(), cfg.DataDir)
	if lab, cert := a.Lab(); lab != "" {
		fmt.Fprintf(out, "caplab region: belongs to lab %s (certificate %s): waiting for it to call\n", lab, shortPrint(cert))
	} else {
		fmt.Fprintf(out, "caplab region: waiting for a lab: start it with --token (the same) and --remote %s=<this host>:<port>\n", cfg.Name)
	}
	<-ctx.Done()
	fmt.Fprintln(out, "caplab region: stopping (the region's data stays for the next start)")
	return a.Close()
}
