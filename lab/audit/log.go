package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"caplab/lab/inventory"
)

// The audit log: every operation, fault and reset the lab records,
// appended as JSON Lines to files in a directory (with --data-dir:
// DATA/audit/). Unlike the in-memory History it has no cap and survives a
// restart: a new lab on the same directory appends after what is there.
// Files rotate by size (audit-000001.jsonl, audit-000002.jsonl, …).
//
// The log hears the lab through a recorder (Lab.Record): a hook called on
// the recording goroutine for every recorded operation, fault and reset,
// which never drops an event the way a slow Subscribe channel may. Append
// queues the record for the one writer goroutine and waits until it is
// written (group commit: concurrent operations share one write), so an
// operation's answer leaves only once its record is with the operating
// system — a killed process loses no answered operation; with Sync, a
// machine crash loses none either. A disk that does not answer delays an
// operation by at most auditWait, never hangs it.

// RecordType names what an Record holds.
type RecordType string

const (
	RecordStart     RecordType = "start"     // a lab opened the log (Regions, Run)
	RecordOperation RecordType = "operation" // Operation
	RecordFault     RecordType = "fault"     // Fault
	RecordReset     RecordType = "reset"     // the lab was reset: stores emptied
	RecordDropped   RecordType = "dropped"   // memory export only: Dropped operations past the history cap were not kept
	RecordGap       RecordType = "gap"       // Gap: writes on a SKU went unrecorded from Gap.From (the latest record of a gap ID stands)
	RecordGeoCall   RecordType = "geo_call"  // GeoCall: a call of the geo store's log, what its verdict is computed from
	RecordStop      RecordType = "stop"      // the lab closed the log cleanly: no operation of its run was left unrecorded
)

// Record is one line of the audit log.
type Record struct {
	// Seq numbers the records of a log from 1, across restarts.
	Seq  int64      `json:"seq"`
	Type RecordType `json:"type"`
	// Run identifies the lab process that wrote the record (its start
	// time): operation and fault IDs restart at 1 in every run.
	Run       string                  `json:"run,omitempty"`
	At        time.Time               `json:"at"`
	Regions   []string                `json:"regions,omitempty"`
	Operation *inventory.Operation    `json:"operation,omitempty"`
	Fault     *inventory.Fault        `json:"fault,omitempty"`
	Dropped   int                     `json:"dropped,omitempty"`
	Gap       *inventory.RecordingGap `json:"gap,omitempty"`
	GeoCall   *inventory.GeoCall      `json:"geoCall,omitempty"`
}

// Options configure an Log.
type Options struct {
	// MaxFileBytes rotates to a new file once a file would grow past it;
	// default 16 MiB.
	MaxFileBytes int64
	// Sync fsyncs after every batch of records: the log then survives a
	// machine crash, not only a killed process (whose written records the
	// operating system keeps either way). Off by default.
	Sync bool
}

const defaultAuditFileBytes = 16 << 20

// Log appends records to the JSON Lines files of one directory. It is
// safe for concurrent use. Close it after the lab, so that the lab's last
// records are written.
type Log struct {
	dir  string
	opts Options
	run  string

	mu         sync.Mutex
	cond       *sync.Cond    // signals queue growth to the writer
	written    chan struct{} // closed (and replaced) whenever writtenSeq grows
	queue      []Record
	seq        int64 // last assigned
	writtenSeq int64 // last written to the file
	err        error // first write error; the log stops there
	closed     bool
	done       chan struct{}

	// writer goroutine only
	file  *os.File
	index int // number of the current file
	size  int64
	buf   bytes.Buffer
}

func auditName(i int) string { return fmt.Sprintf("audit-%06d.jsonl", i) }

// auditFiles lists the log's files in order.
func auditFiles(dir string) ([]string, []int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	var idx []int
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), "audit-")
		if n, ok2 := strings.CutSuffix(n, ".jsonl"); ok && ok2 && !e.IsDir() {
			if i, err := strconv.Atoi(n); err == nil && i > 0 {
				idx = append(idx, i)
			}
		}
	}
	slices.Sort(idx)
	names := make([]string, len(idx))
	for k, i := range idx {
		names[k] = filepath.Join(dir, auditName(i))
	}
	return names, idx, nil
}

// Open opens (creating it when needed) the audit log in dir and
// writes a start record naming regions. A last line cut short by a killed
// process is cut off, so the log stays one record per line.
func Open(dir string, regions []string, opts Options) (*Log, error) {
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = defaultAuditFileBytes
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lab: audit log: %w", err)
	}
	a := &Log{dir: dir, opts: opts, run: time.Now().UTC().Format(time.RFC3339Nano), done: make(chan struct{})}
	a.cond = sync.NewCond(&a.mu)
	a.written = make(chan struct{})
	_, idx, err := auditFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("lab: audit log: %w", err)
	}
	a.index = 1
	if len(idx) > 0 {
		a.index = idx[len(idx)-1]
		if a.seq, err = repairLastFile(filepath.Join(dir, auditName(a.index))); err != nil {
			return nil, fmt.Errorf("lab: audit log: %w", err)
		}
		a.writtenSeq = a.seq
	}
	if err := a.openFile(); err != nil {
		return nil, err
	}
	go a.writer()
	a.wait(a.append(Record{Type: RecordStart, At: time.Now(), Regions: slices.Clone(regions)}), auditWait)
	return a, nil
}

// repairLastFile cuts a partial last line off path and returns the Seq of
// its last record (0 when it holds none).
func repairLastFile(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	if end := bytes.LastIndexByte(b, '\n') + 1; end < len(b) {
		if err := os.Truncate(path, int64(end)); err != nil {
			return 0, err
		}
		b = b[:end]
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		var r struct {
			Seq int64 `json:"seq"`
		}
		if len(lines[i]) > 0 && json.Unmarshal(lines[i], &r) == nil {
			return r.Seq, nil
		}
	}
	return 0, nil
}

func (a *Log) openFile() error {
	f, err := os.OpenFile(filepath.Join(a.dir, auditName(a.index)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("lab: audit log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("lab: audit log: %w", err)
	}
	a.file, a.size = f, st.Size()
	return nil
}

// Dir is the directory of the log.
func (a *Log) Dir() string { return a.dir }

// AppendOperation appends op and waits (at most auditWait) until it is
// written: an operation's answer goes out only once the log holds it.
func (a *Log) AppendOperation(op inventory.Operation) {
	a.wait(a.append(Record{Type: RecordOperation, At: op.Return, Operation: &op}), auditWait)
}

// AppendFault appends f and waits (at most auditWait) until it is written.
func (a *Log) AppendFault(f inventory.Fault) {
	f.Regions = slices.Clone(f.Regions)
	a.wait(a.append(Record{Type: RecordFault, At: f.At, Fault: &f}), auditWait)
}

// AppendReset appends a reset and waits (at most auditWait) until it is
// written.
func (a *Log) AppendReset() {
	a.wait(a.append(Record{Type: RecordReset, At: time.Now()}), auditWait)
}

// AppendGap appends a recording gap as it began or changed. It does not
// wait: the operation it belongs to is queued after it and waits for its
// own record, which is written after this one.
func (a *Log) AppendGap(g inventory.RecordingGap) {
	a.append(Record{Type: RecordGap, At: g.From, Gap: &g})
}

// AppendGeoCall appends a call of the geo store's log (what its verdict is
// computed from). It does not wait, like AppendGap.
func (a *Log) AppendGeoCall(c inventory.GeoCall) {
	a.append(Record{Type: RecordGeoCall, At: c.Return, GeoCall: &c})
}

// auditWait bounds how long Append waits for its record to be written:
// part of the small margin an answer may take past its store deadline
// (deadline.go). A write to the operating system takes microseconds and
// an fsync (--fsync) milliseconds; a disk slower than this delays the
// record, never the answer — the record is still written, in order, just
// after the answer left (a kill in that window loses it).
const auditWait = 250 * time.Millisecond

// append queues r and returns its Seq (0 when the log is closed).
func (a *Log) append(r Record) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0
	}
	a.seq++
	r.Seq, r.Run = a.seq, a.run
	a.queue = append(a.queue, r)
	a.cond.Broadcast()
	return a.seq
}

// wait waits until record seq is written, the log failed or closed, or d
// passed; it reports whether seq was written.
func (a *Log) wait(seq int64, d time.Duration) bool {
	var timeout <-chan time.Time
	for {
		a.mu.Lock()
		done, ch, failed := a.writtenSeq >= seq, a.written, a.err != nil
		a.mu.Unlock()
		if done {
			return true
		}
		if failed {
			return false
		}
		if timeout == nil {
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-ch:
		case <-a.done:
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.writtenSeq >= seq
		case <-timeout:
			return false
		}
	}
}

// Flush waits until every record appended so far is written (and synced,
// with Sync) and returns the first write error, if any.
func (a *Log) Flush() error {
	a.mu.Lock()
	target := a.seq
	a.mu.Unlock()
	if !a.wait(target, time.Minute) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.err != nil {
			return a.err
		}
		return fmt.Errorf("lab: audit log: records not written within a minute")
	}
	return nil
}

// Close writes what is queued, syncs and closes the file. Safe twice.
func (a *Log) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		<-a.done
		return a.err
	}
	// The last record says the run ended cleanly: a reader of the log
	// then knows no operation of this run was cut off unrecorded (a run
	// without it was killed; see HistoryFile).
	a.seq++
	a.queue = append(a.queue, Record{Seq: a.seq, Run: a.run, Type: RecordStop, At: time.Now()})
	a.closed = true
	a.cond.Broadcast()
	a.mu.Unlock()
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// writer is the only goroutine that touches the file.
func (a *Log) writer() {
	defer close(a.done)
	defer func() {
		err := a.file.Sync()
		err = errors.Join(err, a.file.Close())
		a.mu.Lock()
		if a.err == nil && err != nil {
			a.err = fmt.Errorf("lab: audit log: %w", err)
		}
		a.mu.Unlock()
	}()
	for {
		a.mu.Lock()
		for len(a.queue) == 0 && !a.closed {
			a.cond.Wait()
		}
		batch := a.queue
		a.queue = nil
		closed := a.closed
		a.mu.Unlock()
		if len(batch) > 0 {
			err := a.write(batch)
			a.mu.Lock()
			if err != nil && a.err == nil {
				a.err = fmt.Errorf("lab: audit log: %w", err)
			}
			if err == nil {
				a.writtenSeq = batch[len(batch)-1].Seq
			}
			close(a.written)
			a.written = make(chan struct{})
			a.mu.Unlock()
		}
		if closed && len(batch) == 0 {
			return
		}
	}
}

// write appends batch, one line per record, rotating between records.
func (a *Log) write(batch []Record) error {
	a.buf.Reset()
	for _, r := range batch {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		line = append(line, '\n')
		if a.size+int64(a.buf.Len()) > 0 && a.size+int64(a.buf.Len()+len(line)) > a.opts.MaxFileBytes {
			if err := a.flushBuf(); err != nil {
				return err
			}
			if err := a.rotate(); err != nil {
				return err
			}
		}
		a.buf.Write(line)
	}
	return a.flushBuf()
}

func (a *Log) flushBuf() error {
	if a.buf.Len() == 0 {
		return nil
	}
	n, err := a.file.Write(a.buf.Bytes())
	a.size += int64(n)
	a.buf.Reset()
	if err == nil && a.opts.Sync {
		err = a.file.Sync()
	}
	return err
}

func (a *Log) rotate() error {
	if err := a.file.Sync(); err != nil {
		return err
	}
	if err := a.file.Close(); err != nil {
		return err
	}
	a.index++
	return a.openFile()
}

// Read calls fn for every record of the log in dir, in order. A
// last line cut short (a process killed while writing) is skipped; any
// other line that is not a record is an error naming its file and line.
func Read(dir string, fn func(Record) error) error {
	names, _, err := auditFiles(dir)
	if err != nil {
		return fmt.Errorf("lab: audit log: %w", err)
	}
	if len(names) == 0 {
		return fmt.Errorf("lab: audit log: %s holds no audit-*.jsonl files", dir)
	}
	for k, name := range names {
		if err := readAuditFile(name, k == len(names)-1, fn); err != nil {
			return err
		}
	}
	return nil
}

func readAuditFile(name string, last bool, fn func(Record) error) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("lab: audit log: %w", err)
	}
	defer f.Close()
	rd := bufio.NewReaderSize(f, 64<<10)
	for line := 1; ; line++ {
		b, err := rd.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(b) == 0 || last {
				return nil // a partial last line: a killed writer
			}
		} else if err != nil {
			return fmt.Errorf("lab: audit log %s:%d: %w", name, line, err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil || r.Type == "" {
			return fmt.Errorf("lab: audit log %s:%d is not a record (%s)", name, line, inventory.Echo(string(bytes.TrimSpace(b))))
		}
		if err := fn(r); err != nil {
			return err
		}
	}
}

// Dir is where a lab with a data directory keeps its audit log.
func Dir(dataDir string) string { return filepath.Join(dataDir, "audit") }
