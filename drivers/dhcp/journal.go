package dhcp

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/internal/atomicfile"
)

// The lease file is a journal of JSON lines, one record per address state,
// later lines overriding earlier ones. An ACK leaves only after the record
// of its binding is written and fdatasync'ed; ACKs that arrive while a
// sync is under way share the next one (group commit), so the rate of
// bindings is not bounded by the disk's sync latency.
//
// The records are followed by zeroed space that new records overwrite:
// the file's blocks and size stay as they are, so a sync flushes the data
// and no file system metadata, which halves its latency on ext4. When the
// space is used up, the file is replaced by a snapshot of the table with
// new space after it, through atomicfile; that also happens at every
// start, so a line torn by a power cut is never written after. Reading
// stops at the first zero byte.

// record is one line of the lease file: the persistent state of one
// address. Times are Unix seconds, an expiry rounded up.
type record struct {
	Addr     netip.Addr `json:"addr"`
	Client   string     `json:"client,omitempty"` // "id:<hex>" or "hw:<hex>"
	MAC      string     `json:"mac,omitempty"`
	Host     string     `json:"host,omitempty"`
	Since    int64      `json:"since,omitempty"`
	Expires  int64      `json:"expires,omitempty"`
	Declined int64      `json:"declined,omitempty"` // quarantined until
}

// journalSpace is the zeroed space after a snapshot: about 400 records
// of 160 bytes, a day of renewals for eight clients, before the next
// snapshot.
const journalSpace = 64 << 10

// errJournalFull says that the records do not fit in the space left.
var errJournalFull = errors.New("lease file space used up")

type journal struct {
	path string
	f    *os.File // open for writing; nil until the first snapshot
	off  int64    // where the next record goes
	size int64
	// broken is set when a write failed halfway: the file may hold a
	// partial line, so the next write must be a snapshot.
	broken bool
}

func encodeKey(key string) string {
	if key == "" {
		return ""
	}
	kind := "id:"
	if key[0] == 'h' {
		kind = "hw:"
	}
	return kind + hex.EncodeToString([]byte(key[1:]))
}

func decodeKey(s string) (string, error) {
	kind, hx, ok := strings.Cut(s, ":")
	if !ok || (kind != "id" && kind != "hw") {
		return "", fmt.Errorf("client %q: not id:<hex> or hw:<hex>", s)
	}
	b, err := hex.DecodeString(hx)
	if err != nil || len(b) == 0 {
		return "", fmt.Errorf("client %q: bad hex", s)
	}
	return string(kind[0]) + string(b), nil
}

func unixCeil(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

func fromUnix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

// recordOf returns the persistent state of address i.
func (t *table) recordOf(i int) record {
	l := &t.leases[i]
	r := record{Addr: t.addr(i), Client: encodeKey(l.key), Host: l.host,
		Since: unixCeil(l.since), Expires: unixCeil(l.expires), Declined: unixCeil(l.quarantine)}
	if l.key == "" {
		r.Host, r.Since, r.Expires = "", 0, 0
	}
	if len(l.mac) > 0 && l.key != "" {
		r.MAC = l.mac.String()
	}
	return r
}

// snapshot returns the records of every address with something to keep.
func (t *table) snapshot(now time.Time) []record {
	var rs []record
	for i := range t.leases {
		l := &t.leases[i]
		if l.key != "" || now.Before(l.quarantine) {
			rs = append(rs, t.recordOf(i))
		}
	}
	return rs
}

// apply loads one record into the table.
func (t *table) apply(r record) error {
	i, ok := t.index(r.Addr)
	if !ok {
		return fmt.Errorf("address %v is outside the pool", r.Addr)
	}
	key := ""
	if r.Client != "" {
		var err error
		if key, err = decodeKey(r.Client); err != nil {
			return err
		}
	}
	var mac net.HardwareAddr
	if r.MAC != "" {
		var err error
		if mac, err = net.ParseMAC(r.MAC); err != nil {
			return fmt.Errorf("mac %q: %w", r.MAC, err)
		}
	}
	l := &t.leases[i]
	if l.key != "" && l.key != key {
		delete(t.byKey, l.key)
	}
	if key != "" {
		if j, ok := t.byKey[key]; ok && j != i {
			// The client moved; its old address is free.
			t.leases[j] = lease{quarantine: t.leases[j].quarantine}
		}
		t.byKey[key] = i
	}
	*l = lease{key: key, mac: mac, host: sanitizeHost(r.Host), since: fromUnix(r.Since),
		expires: fromUnix(r.Expires), quarantine: fromUnix(r.Declined)}
	if key != "" {
		t.mayHold(i)
	}
	return nil
}

// readJournal returns the records in the file at path; a missing file has
// none. A line that does not parse is skipped with a warning; an
// unterminated last line is dropped quietly: a power cut tore it before its
// sync, so its ACK never left. The zeroed space ends the records.
func readJournal(path string, warn func(line int, err error)) ([]record, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lease file: %w", err)
	}
	return parseJournal(data, warn), nil
}

func parseJournal(data []byte, warn func(line int, err error)) []record {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		data = data[:i]
	}
	lines := bytes.Split(data, []byte{'\n'})
	// After the last newline comes either nothing or a line whose
	// append was cut short.
	lines = lines[:len(lines)-1]
	var rs []record
	for n, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			warn(n+1, err)
			continue
		}
		rs = append(rs, r)
	}
	return rs
}

func marshalRecords(rs []record) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range rs {
		// Encoding these fields cannot fail.
		_ = enc.Encode(r)
	}
	return buf.Bytes()
}

// rewrite replaces the file with exactly rs and zeroed space after them.
func (j *journal) rewrite(rs []record) error {
	data := marshalRecords(rs)
	n := len(data)
	data = append(data, make([]byte, journalSpace)...)
	if err := atomicfile.Write(j.path, data, 0o600); err != nil {
		return fmt.Errorf("lease file: %w", err)
	}
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY, 0)
	if err != nil {
		j.broken = true
		return fmt.Errorf("lease file: %w", err)
	}
	j.f, j.off, j.size, j.broken = f, int64(n), int64(len(data)), false
	return nil
}

// needsRewrite reports whether the next commit must be a snapshot.
func (j *journal) needsRewrite() bool {
	return j.f == nil || j.broken
}

// append writes rs into the space and waits until they are on disk. It
// returns errJournalFull, having written nothing, when they do not fit.
func (j *journal) append(rs []record) error {
	if len(rs) == 0 {
		return nil
	}
	data := marshalRecords(rs)
	if j.off+int64(len(data)) > j.size {
		return errJournalFull
	}
	if _, err := j.f.WriteAt(data, j.off); err != nil {
		j.broken = true
		return fmt.Errorf("write lease file: %w", err)
	}
	if err := unix.Fdatasync(int(j.f.Fd())); err != nil {
		j.broken = true
		return fmt.Errorf("sync lease file: %w", err)
	}
	j.off += int64(len(data))
	return nil
}

func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}
