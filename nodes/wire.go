package nodes

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"go.etcd.io/etcd/api/v3/version"
)

// What a lab and its agents say to each other (remote.go, agent.go). Every
// connection to an agent's port is TLS 1.3; the first line inside names
// what the connection is for:
//
//	CAPLAB/1 control                  the lab's control connection
//	CAPLAB/1 peer <region>            raft peer traffic into <region>'s member
//	CAPLAB/1 client <from> <to> <srv> a client in <from> of <to>'s server
//	CAPLAB/1 ping                     round-trip measurement between agents
//
// and the agent answers "OK" or "ERR <sentence>" on a line of its own.
// After an OK, a control connection carries frames (a 4-byte big-endian
// length, then one JSON message); every other kind carries raw bytes.

// AgentProtocol is the version of that conversation. A lab refuses an
// agent that speaks another.
const AgentProtocol = 1

const (
	wireMagic   = "CAPLAB/1"
	kindControl = "control"
	kindPeer    = "peer"
	kindClient  = "client"
	kindPing    = "ping"

	maxLine  = 512      // a header or answer line
	maxFrame = 4 << 20  // one control message
	maxHello = 64 << 10 // the first, before any proof
)

// writeLine writes one line (no newline inside).
func writeLine(w io.Writer, words ...string) error {
	_, err := io.WriteString(w, strings.Join(words, " ")+"\n")
	return err
}

// readLine reads one line byte by byte, so that nothing after it is
// buffered away from whoever reads the connection next.
func readLine(r io.Reader) (string, error) {
	var b [1]byte
	var line []byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", err
		}
		if b[0] == '\n' {
			return string(line), nil
		}
		if len(line) >= maxLine {
			return "", errors.New("line too long")
		}
		line = append(line, b[0])
	}
}

// readHeader reads what a connection is for.
func readHeader(r io.Reader) (kind string, args []string, err error) {
	line, err := readLine(r)
	if err != nil {
		return "", nil, err
	}
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != wireMagic {
		return "", nil, fmt.Errorf("not a caplab connection (%.40q)", line)
	}
	return f[1], f[2:], nil
}

// answer tells the dialler whether its connection is taken.
func answer(w io.Writer, err error) error {
	if err == nil {
		return writeLine(w, "OK")
	}
	return writeLine(w, "ERR", strings.ReplaceAll(err.Error(), "\n", " "))
}

// readAnswer returns the agent's refusal as an error, nil for OK.
func readAnswer(r io.Reader) error {
	line, err := readLine(r)
	if err != nil {
		return err
	}
	if line == "OK" {
		return nil
	}
	if msg, ok := strings.CutPrefix(line, "ERR "); ok {
		return errors.New(msg)
	}
	return fmt.Errorf("unexpected answer %.40q", line)
}

// writeFrame sends one control message.
func writeFrame(w io.Writer, m *message) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(raw) > maxFrame {
		return fmt.Errorf("control message of %d bytes is over the %d limit", len(raw), maxFrame)
	}
	buf := make([]byte, 4+len(raw))
	binary.BigEndian.PutUint32(buf, uint32(len(raw)))
	copy(buf[4:], raw)
	_, err = w.Write(buf)
	return err
}

// readFrame reads one control message.
func readFrame(r io.Reader) (*message, error) { return readFrameMax(r, maxFrame) }

// readFrameMax reads one control message of at most limit bytes (a hello,
// read before the other side has proved anything, is small).
func readFrameMax(r io.Reader, limit uint32) (*message, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > limit {
		return nil, fmt.Errorf("control message of %d bytes is over the %d limit", size, limit)
	}
	raw := make([]byte, size)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, err
	}
	m := new(message)
	if err := json.Unmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("malformed control message: %w", err)
	}
	return m, nil
}

// message is every control message: a request (ID and Op), its reply (Re,
// Err) or the agent's status (Op "status").
type message struct {
	ID     uint64       `json:"id,omitempty"`
	Re     uint64       `json:"re,omitempty"`
	Op     string       `json:"op,omitempty"`
	Err    string       `json:"err,omitempty"`
	Code   string       `json:"code,omitempty"` // the sentinel of Err (remote.go, errCodes)
	Hello  *hello       `json:"hello,omitempty"`
	Enroll *enrollment  `json:"enroll,omitempty"`
	Spec   *agentSpec   `json:"spec,omitempty"`
	Links  *linkTable   `json:"links,omitempty"`
	Start  *startOrder  `json:"start,omitempty"`
	Zone   string       `json:"zone,omitempty"`
	Stop   *stopOrder   `json:"stop,omitempty"`
	Status *agentStatus `json:"status,omitempty"`
}

// Control operations, lab → agent.
const (
	ctlPing      = "ping"       // keep-alive
	ctlEnroll    = "enroll"     // pin the lab's certificate, take the agent's own
	ctlPrepare   = "prepare"    // the region's layout: ports, peers, zones
	ctlLinks     = "links"      // the link rules in force
	ctlStart     = "start"      // start (or repair) the region's servers
	ctlCrash     = "crash"      // crash the region's servers
	ctlCrashZone = "crash-zone" // crash one zone's member
	ctlStartZone = "start-zone" // restart one zone's member
	ctlKick      = "kick"       // end every peer exchange: etcd dials its streams again
	ctlStop      = "stop"       // the lab is leaving: stop the servers (and forget it if temporary)
	ctlStatus    = "status"     // agent → lab: what it runs and measures
)

// buildVersion is what a lab and an agent compare before working
// together.
type buildVersion struct {
	Protocol int    `json:"protocol"`
	Layout   int    `json:"layout"`
	Etcd     string `json:"etcd"`
	Build    string `json:"build,omitempty"` // version control revision, when the binary knows it
}

func thisVersion() buildVersion {
	v := buildVersion{Protocol: AgentProtocol, Layout: AgentLayoutVersion, Etcd: version.Version}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+modified"
				}
			}
		}
		if rev != "" {
			v.Build = rev + dirty
		} else if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Build = bi.Main.Version
		}
	}
	return v
}

func (v buildVersion) String() string {
	s := fmt.Sprintf("protocol %d, layout %d, etcd %s", v.Protocol, v.Layout, v.Etcd)
	if v.Build != "" {
		s += ", build " + v.Build
	}
	return s
}

// versionDifference names how an agent's version differs from the lab's,
// or returns "" when they can work together. A build is compared only
// when both binaries know theirs (a test binary or a -buildvcs=false
// build does not).
func versionDifference(lab, agent buildVersion) string {
	var d []string
	if lab.Protocol != agent.Protocol {
		d = append(d, fmt.Sprintf("protocol %d, not %d", agent.Protocol, lab.Protocol))
	}
	if lab.Layout != agent.Layout {
		d = append(d, fmt.Sprintf("data layout %d, not %d", agent.Layout, lab.Layout))
	}
	if lab.Etcd != agent.Etcd {
		d = append(d, fmt.Sprintf("etcd %s, not %s", agent.Etcd, lab.Etcd))
	}
	if lab.Build != "" && agent.Build != "" && lab.Build != agent.Build {
		d = append(d, fmt.Sprintf("build %s, not %s", agent.Build, lab.Build))
	}
	return strings.Join(d, "; ")
}

// hello opens a control connection, both ways.
type hello struct {
	Proof   []byte       `json:"proof"` // HMAC of the TLS session under the token's key (trust.go)
	Version buildVersion `json:"version"`
	Region  string       `json:"region"` // lab: the region it expects there; agent: the one it serves
	Lab     string       `json:"lab"`    // lab: its id; agent: the lab it belongs to ("" none)
	// Agent only:
	CA   string     `json:"ca,omitempty"`   // fingerprint of the lab certificate it pinned
	Key  []byte     `json:"key,omitempty"`  // its public key (PKIX), for its certificate
	Boot string     `json:"boot,omitempty"` // this run of the agent's process
	Spec *agentSpec `json:"spec,omitempty"` // the layout its data was made with (nil: no data)
}

// enrollment gives an agent to a lab: the certificate it pins and its own.
type enrollment struct {
	CA        []byte `json:"ca"`   // the lab's certificate (DER)
	Cert      []byte `json:"cert"` // the agent's certificate, signed by it (DER)
	Lab       string `json:"lab"`
	Temporary bool   `json:"temporary"` // the lab keeps no data: forget it when it leaves
}

// agentSpec is a region's layout as its agent runs it: fixed once the
// region has data (its consensus member knows its peers by these ports),
// except the agents' addresses, which a lab may change (a laptop's new
// address on the Wi-Fi).
type agentSpec struct {
	Lab       string       `json:"lab"`
	Region    string       `json:"region"`
	Regions   []specRegion `json:"regions"`
	Zones     int          `json:"zones"`
	Fsync     bool         `json:"fsync"`
	Temporary bool         `json:"temporary"`
	// ReplicaPeer is the agent's own choice for its replica's peer
	// address; a lab leaves it empty.
	ReplicaPeer string `json:"replicaPeer,omitempty"`
}

// specRegion is one region of the lab as every agent sees it.
type specRegion struct {
	Name  string `json:"name"`
	Peer  string `json:"peer"`  // 127.0.0.1:port the region's member is known by, on every host
	Agent string `json:"agent"` // host:port of the region's agent
}

// sameLayout names the first difference between two specs that data
// cannot survive, or "".
func (s *agentSpec) sameLayout(o *agentSpec) string {
	switch {
	case s.Lab != o.Lab:
		return fmt.Sprintf("it belongs to lab %s, not %s", o.Lab, s.Lab)
	case s.Region != o.Region:
		return fmt.Sprintf("it holds region %s, not %s", o.Region, s.Region)
	case s.Zones != o.Zones:
		return fmt.Sprintf("its region has %d zone(s), not %d", o.Zones, s.Zones)
	case len(s.Regions) != len(o.Regions):
		return fmt.Sprintf("its consensus group has %d regions (%s), not %d (%s)", len(o.Regions), o.regionNames(), len(s.Regions), s.regionNames())
	}
	for i := range s.Regions {
		a, b := s.Regions[i], o.Regions[i]
		if a.Name != b.Name || a.Peer != b.Peer {
			return fmt.Sprintf("its consensus group is %s at %s, not %s at %s", o.regionNames(), o.peers(), s.regionNames(), s.peers())
		}
	}
	return ""
}

func (s *agentSpec) regionNames() string {
	var n []string
	for _, r := range s.Regions {
		n = append(n, r.Name)
	}
	return strings.Join(n, ",")
}

func (s *agentSpec) peers() string {
	var n []string
	for _, r := range s.Regions {
		n = append(n, r.Peer)
	}
	return strings.Join(n, ",")
}

// agentAddr is the address of a region's agent in the spec.
func (s *agentSpec) agentAddr(region string) string {
	for _, r := range s.Regions {
		if r.Name == region {
			return r.Agent
		}
	}
	return ""
}

// linkTable is every link rule a lab has decided, versioned: an agent
// applies a table newer than the one it has and enforces the links that
// touch its region.
type linkTable struct {
	Version uint64     `json:"version"`
	Links   []linkRule `json:"links"`
	Zone    []linkRule `json:"zone"` // the links between the agent's own zones
}

// linkRule is one link's rule.
type linkRule struct {
	From       string  `json:"from"`
	To         string  `json:"to"`
	Up         bool    `json:"up"`
	RTTMs      float64 `json:"rttMs"`      // model, at scale 1
	MeasuredMs float64 `json:"measuredMs"` // real round trip between the hosts
	DelayMs    float64 `json:"delayMs"`    // one-way delay to add
	JitterMs   float64 `json:"jitterMs"`
}

// startOrder starts a region's servers.
type startOrder struct {
	TickMs     uint `json:"tickMs"`
	ElectionMs uint `json:"electionMs"`
	Hurry      bool `json:"hurry"`     // new data: campaign at once (election.go)
	Candidate  bool `json:"candidate"` // this region's member is the one to campaign
}

// stopOrder ends an agent's service for a lab that is leaving.
type stopOrder struct {
	Discard bool `json:"discard"` // the lab was temporary: delete the region's data, forget the lab
}

// agentStatus is what an agent reports, on every change and at least
// every agentHeartbeat.
type agentStatus struct {
	Boot string `json:"boot"`
	Seq  uint64 `json:"seq"` // order of the reports of one run: a later one replaces an earlier

	Table        uint64       `json:"table"` // version of the link table in force
	Prepared     bool         `json:"prepared"`
	Ports        []portState  `json:"ports,omitempty"`
	Region       RegionStatus `json:"region"`
	ReplicaReady bool         `json:"replicaReady"`
	MemberID     uint64       `json:"memberId"`
	Zones        []ZoneStatus `json:"zones,omitempty"`
	ZoneLinks    []linkCount  `json:"zoneLinks,omitempty"`
	Links        []linkCount  `json:"links,omitempty"`
	Peers        []peerRTT    `json:"peers,omitempty"`
}

// portState is one loopback port an agent's host needs (a region's
// member is known by it on every host).
type portState struct {
	Region string `json:"region"`
	Addr   string `json:"addr"`
	State  string `json:"state"` // portServing, portShared, portPending, portHeld
	Detail string `json:"detail,omitempty"`
}

// linkCount is what an agent counted on one link.
type linkCount struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Bytes    int64  `json:"bytes"`
	Messages int64  `json:"messages"`
	Fresh    int    `json:"fresh"` // raft streams opened since the link last came up
}

// peerRTT is the round trip an agent measures to another.
type peerRTT struct {
	Region  string  `json:"region"`
	RTTMs   float64 `json:"rttMs"` // median of the last samples; 0 with none
	Samples int     `json:"samples"`
	Err     string  `json:"err,omitempty"` // why the last attempt failed
}
