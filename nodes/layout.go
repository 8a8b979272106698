package nodes

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// A data directory remembers what its data was made for in LayoutFile: the
// regions, in order, and the peer address every member and replica is known
// by. etcd keeps the consensus group's peer URLs in its own data, so a lab
// started again on that data must advertise the same addresses — the same
// ports — or its members never find each other. Another caplab layout or
// other regions are refused with an error that names the difference.

// LayoutFile is the file in a data directory that records its layout.
const LayoutFile = "caplab-layout.json"

// LayoutVersion is the version of the data directory's shape. A caplab
// that changes what it keeps where bumps it; a directory of another
// version is refused rather than misread.
const LayoutVersion = 1

// RemoteLayoutVersion is the version of a data directory made for a lab
// whose regions run under agents (remote.go): the regions' data is on
// their hosts; the directory keeps the lab's certificate, its id, the
// members' loopback ports and where the agents were.
const RemoteLayoutVersion = 2

// layout is what LayoutFile holds.
type layout struct {
	Version      int            `json:"version"`
	Regions      []layoutRegion `json:"regions"`
	BypassFabric bool           `json:"bypassFabric,omitempty"`
	// A remote lab's (RemoteLayoutVersion):
	Lab    string            `json:"lab,omitempty"`
	Zones  int               `json:"zones,omitempty"`
	Remote map[string]string `json:"remote,omitempty"` // region → its agent's address, as last started
}

// layoutRegion is one region's fixed addresses.
type layoutRegion struct {
	Name string `json:"name"`
	// MemberPeer is the host:port the group knows the member by: its peer
	// proxy (or, bypassing the fabric, its own peer listener).
	MemberPeer string `json:"memberPeer"`
	// ReplicaPeer is the replica's advertised peer address (its agent
	// keeps it in a remote lab).
	ReplicaPeer string `json:"replicaPeer,omitempty"`
}

func (l *layout) regionNames() []string {
	names := make([]string, len(l.Regions))
	for i, r := range l.Regions {
		names[i] = r.Name
	}
	return names
}

// readLayout reads a data directory's layout. It returns nil, nil for an
// empty (or new) directory, and an error for a directory that holds
// something else.
func readLayout(dir string) (*layout, error) {
	raw, err := os.ReadFile(filepath.Join(dir, LayoutFile))
	if errors.Is(err, fs.ErrNotExist) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("nodes: data dir: %w", err)
		}
		if len(entries) > 0 {
			return nil, fmt.Errorf("nodes: data dir %s is not empty and holds no %s: it was not made by this caplab (or by one older than layout version %d); give an empty or new directory", dir, LayoutFile, LayoutVersion)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nodes: data dir: %w", err)
	}
	var l layout
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("nodes: data dir %s: %s is damaged (%v); move the directory away or start with another --data-dir", dir, LayoutFile, err)
	}
	return &l, nil
}

// checkLayout compares a data directory's layout with the lab asked for.
func checkLayout(dir string, l *layout, regions []string, bypass, remote bool) error {
	switch {
	case l.Version == RemoteLayoutVersion && !remote:
		return fmt.Errorf("nodes: data dir %s was made by a lab whose regions ran under agents on other hosts (their data is there): start with --remote %s, or use another --data-dir", dir, remoteFlag(l))
	case l.Version == LayoutVersion && remote:
		return fmt.Errorf("nodes: data dir %s holds the data of regions that ran in this process; it cannot move to agents: start without --remote, or use another --data-dir", dir)
	case l.Version == RemoteLayoutVersion:
		if have := l.regionNames(); !slices.Equal(have, regions) {
			return fmt.Errorf("nodes: data dir %s holds regions %s, not %s: start with --regions %s, or use another --data-dir",
				dir, strings.Join(have, ","), strings.Join(regions, ","), strings.Join(have, ","))
		}
		for _, r := range l.Regions {
			if r.MemberPeer == "" {
				return fmt.Errorf("nodes: data dir %s: %s lacks the address of %s; move the directory away or start with another --data-dir", dir, LayoutFile, r.Name)
			}
		}
		return nil
	}
	if l.Version != LayoutVersion {
		return fmt.Errorf("nodes: data dir %s was made by a caplab with layout version %d; this caplab uses version %d and cannot read it: start with another --data-dir", dir, l.Version, LayoutVersion)
	}
	if have := l.regionNames(); !slices.Equal(have, regions) {
		return fmt.Errorf("nodes: data dir %s holds regions %s, not %s: start with --regions %s, or use another --data-dir",
			dir, strings.Join(have, ","), strings.Join(regions, ","), strings.Join(have, ","))
	}
	if l.BypassFabric != bypass {
		return fmt.Errorf("nodes: data dir %s was made with the fabric bypass %v, this lab asks for %v: use another data dir", dir, l.BypassFabric, bypass)
	}
	for _, r := range l.Regions {
		if r.MemberPeer == "" || r.ReplicaPeer == "" {
			return fmt.Errorf("nodes: data dir %s: %s lacks the addresses of %s; move the directory away or start with another --data-dir", dir, LayoutFile, r.Name)
		}
	}
	return nil
}

// remoteFlag is the --remote a remote layout was last started with.
func remoteFlag(l *layout) string {
	var parts []string
	for _, r := range l.Regions {
		if a, ok := l.Remote[r.Name]; ok {
			parts = append(parts, r.Name+"="+a)
		}
	}
	return strings.Join(parts, ",")
}

// writeLayout saves the layout atomically (write, sync, rename, sync dir),
// before any server writes data: a directory with data always has one.
func writeLayout(dir string, l *layout) error {
	raw, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, LayoutFile), append(raw, '\n'), true)
}

// writeFileAtomic replaces path with data: a reader sees the old or the
// new content, never a mix. With sync, the content and the rename are on
// disk before it returns (a machine crash keeps them).
func writeFileAtomic(path string, data []byte, sync bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if sync {
		d, err := os.Open(filepath.Dir(path))
		if err != nil {
			return err
		}
		defer d.Close()
		return d.Sync()
	}
	return nil
}

// SaveNote keeps a small piece of the caller's state (say, the lab's store
// epochs) in the data directory, replacing the previous one of that name:
// what a lab started again on this directory finds with LoadNote. It is
// written atomically and, with Fsync, synced.
func (c *Cluster) SaveNote(name string, data []byte) error {
	if !validNoteName(name) {
		return fmt.Errorf("nodes: note name %q: use letters, digits, '-' and '_'", name)
	}
	if err := os.MkdirAll(filepath.Join(c.dir, "notes"), 0o700); err != nil {
		return fmt.Errorf("nodes: save note: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(c.dir, "notes", name+".json"), data, c.cfg.Fsync); err != nil {
		return fmt.Errorf("nodes: save note %s: %w", name, err)
	}
	return nil
}

// LoadNote returns a note saved by SaveNote, or nil when there is none.
func (c *Cluster) LoadNote(name string) ([]byte, error) {
	if !validNoteName(name) {
		return nil, fmt.Errorf("nodes: note name %q: use letters, digits, '-' and '_'", name)
	}
	raw, err := os.ReadFile(filepath.Join(c.dir, "notes", name+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nodes: load note %s: %w", name, err)
	}
	return raw, nil
}

func validNoteName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// tempPrefix starts the name of every temporary data directory; the pid
// of the process that made it follows, so a later start can tell which
// ones a killed run left behind.
const tempPrefix = "caplab-pid"

// makeTempDir creates this process's temporary data directory.
func makeTempDir() (string, error) {
	return os.MkdirTemp("", fmt.Sprintf("%s%d-", tempPrefix, os.Getpid()))
}

// removeStaleTempDirs removes the temporary data directories of processes
// that no longer run (a run killed before its Close), and returns them.
func removeStaleTempDirs() []string {
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), tempPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		path := filepath.Join(os.TempDir(), e.Name())
		if os.RemoveAll(path) == nil {
			removed = append(removed, path)
		}
	}
	return removed
}

// processAlive reports whether a process with this pid exists (one we may
// not signal exists too).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
