// Package dhcp is hotspotd's DHCPv4 server on the LAN (RFC 2131), built on
// github.com/insomniacslk/dhcp/dhcpv4 for the messages and on sockets of
// its own.
//
// Addresses come from a pool (by default 192.168.43.10 to .254 of
// 192.168.43.0/24; .2 to .9 stay free for static hosts), with the device
// as router and DNS server. At most MaxLeases clients hold an address at
// once; an offer reserves a slot for a few seconds. A lease counts until it
// expires, or, once the access point reports its station gone,
// until a short grace period has passed: the slot is then given to
// others, but the address stays the client's until the lease expires, so a
// client coming back gets it again. A client is its client identifier
// (option 61), else its hardware address; it gets its previous address back
// whenever nobody else holds it, and new clients get the address unused
// for longest.
//
// The server is authoritative: a REQUEST for an address that is free and
// in the pool is acknowledged even without a record of the client (a lost
// lease file costs nobody their address), one for an address that is not
// available is refused with a NAK.
//
// Every binding is on disk before its ACK leaves: the lease file is a
// journal synced once per batch of ACKs (see journal.go). OFFERs never
// touch the disk.
//
// Against floods: a packet is first checked by a pre-parser that does not
// allocate; a DISCOVER from an unknown client while every slot is held is
// dropped there, before any further work. Packets are read in batches,
// and those of known clients are handled first. Malformed packets and
// surplus DISCOVERs are logged at most once per kind every ten seconds.
//
// Relayed requests (giaddr set) are answered through the relay when the
// relay is on the LAN itself; the device has no use for relays, but
// perfdhcp, the load generator, speaks as one.
package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/drivers/netns"
	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/ratelog"
	"github.com/openmifi/openmifi/internal/sharing"
)

// Defaults of Config.
const (
	DefaultLeaseTime    = time.Hour
	DefaultDomain       = "lan"
	DefaultLeaseFile    = "/var/lib/openmifi/dhcp.leases"
	DefaultStationGrace = time.Minute
)

// The default LAN, the one Android hotspots use.
var (
	DefaultServerAddr = netip.MustParseAddr("192.168.43.1")
	DefaultPrefix     = netip.MustParsePrefix("192.168.43.0/24")
)

const (
	// offerHold is how long an offer reserves its address and slot:
	// clients request within a second, and a flood of DISCOVERs gets
	// one offer per slot and period.
	offerHold = 10 * time.Second
	// declineHold is how long a declined address is not handed out.
	declineHold = 10 * time.Minute
	// poolOffset is where the default pool starts in the prefix.
	poolOffset = 10
	// batchSize is how many packets one read takes from the socket.
	batchSize = 32
)

// Config is the server's configuration; zero fields take the defaults.
type Config struct {
	Interface  string       // LAN interface; required
	ServerAddr netip.Addr   // the device's LAN address: server, router and DNS
	Prefix     netip.Prefix // the LAN
	// PoolStart and PoolEnd bound the addresses handed out; default:
	// from the prefix's base address plus 10 (192.168.43.10) to the
	// last before its broadcast address.
	PoolStart, PoolEnd netip.Addr
	LeaseTime          time.Duration
	Domain             string
	LeaseFile          string
	// StationGrace is how long after its station left a lease still
	// counts against the limit.
	StationGrace time.Duration
	// NetNS is a network namespace file descriptor to serve in; 0 is
	// the current one. Tests run the server in a namespace of their
	// own.
	NetNS int
	Clock clock.Clock
	Log   *slog.Logger
}

// Stats counts what the server did since it was created.
type Stats struct {
	Received uint64 // packets read
	Dropped  uint64 // malformed, not for us or not understood
	PoolFull uint64 // DISCOVERs and REQUESTs refused for the limit
	Offers   uint64
	Acks     uint64
	Naks     uint64
	Releases uint64
	Declines uint64
	Commits  uint64 // lease file syncs
	Records  uint64 // lease records synced
}

// Server is the DHCP server. Its methods are safe for concurrent use.
type Server struct {
	cfg  Config
	log  *slog.Logger
	rl   *ratelog.Logger
	mask net.IPMask

	// startMu serialises Start and Stop.
	startMu  sync.Mutex
	lan      *lan
	stopping atomic.Bool   // set before stop is closed
	stop     chan struct{} // closed by Stop
	wg       sync.WaitGroup

	// commitMu makes commits one at a time, in order.
	commitMu sync.Mutex

	// mu guards the fields below.
	mu      sync.Mutex
	tab     *table // nil while stopped
	jr      *journal
	tx      sender
	mtu     int
	dirty   []int      // addresses whose record the next commit writes
	isDirty []bool     // by address
	waiting []outgoing // ACKs that leave after the next commit
	kick    chan struct{}
	stats   Stats
}

// outgoing is a reply and where it goes.
type outgoing struct {
	b   []byte
	dst destination
}

var _ sharing.DHCPServer = (*Server)(nil)

// New checks cfg and fills in the defaults.
func New(cfg Config) (*Server, error) {
	if cfg.Interface == "" {
		return nil, errors.New("dhcp: no LAN interface configured")
	}
	if !cfg.Prefix.IsValid() {
		cfg.Prefix = DefaultPrefix
	}
	cfg.Prefix = cfg.Prefix.Masked()
	if !cfg.Prefix.Addr().Is4() || cfg.Prefix.Bits() > 30 || cfg.Prefix.Bits() < 8 {
		return nil, fmt.Errorf("dhcp: LAN prefix %v: want an IPv4 prefix of /8 to /30", cfg.Prefix)
	}
	if !cfg.ServerAddr.IsValid() {
		cfg.ServerAddr = DefaultServerAddr
	}
	if !cfg.Prefix.Contains(cfg.ServerAddr) {
		return nil, fmt.Errorf("dhcp: server address %v is outside the LAN %v", cfg.ServerAddr, cfg.Prefix)
	}
	base := ipv4u32(cfg.Prefix.Addr())
	size := uint32(1) << (32 - cfg.Prefix.Bits())
	if !cfg.PoolStart.IsValid() {
		off := uint32(poolOffset)
		if off >= size-1 {
			off = 1
		}
		cfg.PoolStart = u32ipv4(base + off)
	}
	if !cfg.PoolEnd.IsValid() {
		cfg.PoolEnd = u32ipv4(base + size - 2)
	}
	s, e := ipv4u32(cfg.PoolStart), ipv4u32(cfg.PoolEnd)
	switch {
	case !cfg.PoolStart.Is4() || !cfg.PoolEnd.Is4() || !cfg.Prefix.Contains(cfg.PoolStart) || !cfg.Prefix.Contains(cfg.PoolEnd):
		return nil, fmt.Errorf("dhcp: pool %v-%v is not inside the LAN %v", cfg.PoolStart, cfg.PoolEnd, cfg.Prefix)
	case s > e:
		return nil, fmt.Errorf("dhcp: pool %v-%v is empty", cfg.PoolStart, cfg.PoolEnd)
	case s == base || e == base+size-1:
		return nil, fmt.Errorf("dhcp: pool %v-%v includes the network or broadcast address", cfg.PoolStart, cfg.PoolEnd)
	case ipv4u32(cfg.ServerAddr) >= s && ipv4u32(cfg.ServerAddr) <= e:
		return nil, fmt.Errorf("dhcp: pool %v-%v includes the server address %v", cfg.PoolStart, cfg.PoolEnd, cfg.ServerAddr)
	}
	if cfg.LeaseTime <= 0 {
		cfg.LeaseTime = DefaultLeaseTime
	}
	if cfg.LeaseTime < 4*time.Second || cfg.LeaseTime > 365*24*time.Hour {
		return nil, fmt.Errorf("dhcp: lease time %v: want 4s to a year", cfg.LeaseTime)
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if cfg.LeaseFile == "" {
		cfg.LeaseFile = DefaultLeaseFile
	}
	if cfg.StationGrace <= 0 {
		cfg.StationGrace = DefaultStationGrace
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	log := cfg.Log.With("component", "dhcp")
	return &Server{
		cfg:  cfg,
		log:  log,
		rl:   ratelog.New(log, cfg.Clock),
		mask: net.CIDRMask(cfg.Prefix.Bits(), 32),
	}, nil
}

func u32ipv4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Start loads the lease file and serves the LAN with at most maxLeases
// leases. The server runs until Stop; ctx only bounds the start. Starting
// a running server only changes the limit.
func (s *Server) Start(ctx context.Context, maxLeases int) error {
	if maxLeases < 1 {
		return fmt.Errorf("dhcp: at most %d leases: want at least 1", maxLeases)
	}
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.lan != nil && s.stopping.Load() {
		if err := s.stopLocked(ctx); err != nil {
			return err
		}
	}
	if s.lan != nil {
		return s.SetMaxLeases(ctx, maxLeases)
	}
	if err := s.load(maxLeases); err != nil {
		return err
	}
	var l *lan
	var mtu int
	hasAddr := false
	err := netns.Do(s.cfg.NetNS, func() error {
		var err error
		if l, mtu, err = openLAN(s.cfg.Interface, s.cfg.ServerAddr); err != nil {
			return err
		}
		hasAddr = interfaceHas(s.cfg.Interface, s.cfg.ServerAddr)
		return nil
	})
	if err != nil {
		s.unload()
		return fmt.Errorf("dhcp: %w", err)
	}
	if err := ctx.Err(); err != nil {
		l.close()
		s.unload()
		return fmt.Errorf("dhcp: start: %w", err)
	}
	s.mu.Lock()
	s.tx, s.mtu = l, mtu
	s.mu.Unlock()
	s.lan = l
	s.stop = make(chan struct{})
	s.stopping.Store(false)
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.readLoop(l) }()
	go func() { defer s.wg.Done(); s.commitLoop() }()
	if !hasAddr {
		// Unicast replies would leave with another source address,
		// and clients could not reach the router or DNS they are
		// given; the server runs all the same, as the address may be
		// configured next.
		s.log.Warn("DHCP: the LAN interface does not have the server address", "interface", s.cfg.Interface, "addr", s.cfg.ServerAddr)
	}
	s.log.Info("DHCP server started", "interface", s.cfg.Interface, "pool", s.cfg.PoolStart.String()+"-"+s.cfg.PoolEnd.String(), "max_leases", maxLeases, "mtu", mtu)
	return nil
}

// load reads the lease file into a new table and rewrites the file from it.
func (s *Server) load(maxLeases int) error {
	if err := os.MkdirAll(filepath.Dir(s.cfg.LeaseFile), 0o755); err != nil {
		return fmt.Errorf("dhcp: %w", err)
	}
	recs, err := readJournal(s.cfg.LeaseFile, func(line int, err error) {
		s.log.Warn("DHCP lease file: line skipped", "file", s.cfg.LeaseFile, "line", line, "err", err)
	})
	if err != nil {
		return fmt.Errorf("dhcp: %w", err)
	}
	tab := newTable(s.cfg.PoolStart, s.cfg.PoolEnd, maxLeases, s.cfg.StationGrace)
	for _, r := range recs {
		if err := tab.apply(r); err != nil {
			s.log.Warn("DHCP lease file: record skipped", "file", s.cfg.LeaseFile, "err", err)
		}
	}
	now := s.cfg.Clock.Now()
	jr := &journal{path: s.cfg.LeaseFile}
	if err := jr.rewrite(tab.snapshot(now)); err != nil {
		return fmt.Errorf("dhcp: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tab, s.jr = tab, jr
	s.dirty, s.isDirty, s.waiting = nil, make([]bool, len(tab.leases)), nil
	s.kick = make(chan struct{}, 1)
	bound := 0
	for i := range tab.leases {
		if tab.leases[i].key != "" && tab.leases[i].bound(now) {
			bound++
		}
	}
	s.log.Info("DHCP leases restored", "file", s.cfg.LeaseFile, "bound", bound)
	return nil
}

func (s *Server) unload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jr != nil {
		s.jr.close()
	}
	s.tab, s.jr, s.tx, s.waiting, s.dirty = nil, nil, nil, nil, nil
}

// Stop stops serving; replies waiting for the disk are written and sent
// first. Stopping a stopped server does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	return s.stopLocked(ctx)
}

func (s *Server) stopLocked(ctx context.Context) error {
	if s.lan == nil {
		return nil
	}
	if !s.stopping.Load() {
		// Waking the read loop, rather than closing the socket,
		// leaves the socket to the last commit to send through.
		s.stopping.Store(true)
		s.lan.wake()
		close(s.stop)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		// The last commit is stuck on the disk; a later Stop (or
		// Start) waits for it again.
		return fmt.Errorf("dhcp: stop: %w", ctx.Err())
	}
	err := s.lan.close()
	s.lan = nil
	s.mu.Lock()
	jerr := s.jr.close()
	s.tab, s.jr, s.tx, s.waiting, s.dirty = nil, nil, nil, nil, nil
	s.mu.Unlock()
	s.log.Info("DHCP server stopped")
	if err = errors.Join(err, jerr); err != nil {
		return fmt.Errorf("dhcp: stop: %w", err)
	}
	return nil
}

// SetMaxLeases changes the limit. Lowering it below the leases held
// withdraws outstanding offers first, then revokes the newest leases:
// their clients get a NAK when they renew (the access point disconnects
// them anyway).
func (s *Server) SetMaxLeases(ctx context.Context, n int) error {
	if n < 1 {
		return fmt.Errorf("dhcp: at most %d leases: want at least 1", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tab == nil {
		// Start sets the limit it is given.
		return nil
	}
	t := s.tab
	t.max = n
	now := s.cfg.Clock.Now()
	var held []int
	for i := range t.leases {
		if t.holdsSlot(i, now) {
			held = append(held, i)
		}
	}
	if len(held) <= n {
		return nil
	}
	// Offers first, then bindings newest first.
	slices.SortStableFunc(held, func(a, b int) int {
		la, lb := &t.leases[a], &t.leases[b]
		if oa, ob := !la.bound(now), !lb.bound(now); oa != ob {
			if oa {
				return -1
			}
			return 1
		}
		return lb.since.Compare(la.since)
	})
	for _, i := range held[:len(held)-n] {
		l := &t.leases[i]
		if l.bound(now) {
			s.log.Info("DHCP lease revoked: limit lowered", "addr", t.addr(i), "mac", macValue(l.mac), "max", n)
			t.release(i, now)
			s.markDirty(i)
		} else {
			l.offerUntil = time.Time{}
		}
	}
	s.signal()
	return nil
}

// StationChanged is StationJoined or StationLeft, in the form of
// sharing.Config.StationChanged. It never blocks for long: it takes the
// lock the packet path holds for microseconds, never across a disk sync.
func (s *Server) StationChanged(mac net.HardwareAddr, present bool) {
	if present {
		s.StationJoined(mac)
	} else {
		s.StationLeft(mac)
	}
}

// StationJoined tells the server that the access point associated mac.
func (s *Server) StationJoined(mac net.HardwareAddr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tab == nil {
		return
	}
	for i := range s.tab.leases {
		if l := &s.tab.leases[i]; l.key != "" && slices.Equal(l.mac, mac) {
			l.leftAt = time.Time{}
			s.tab.mayHold(i)
		}
	}
}

// StationLeft tells the server that mac left the access point: its lease
// stops counting against the limit after the station grace period, unless
// the station comes back first. The lease itself runs on, so the client
// gets the same address if it returns.
func (s *Server) StationLeft(mac net.HardwareAddr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tab == nil {
		return
	}
	now := s.cfg.Clock.Now()
	for i := range s.tab.leases {
		if l := &s.tab.leases[i]; l.key != "" && slices.Equal(l.mac, mac) && l.leftAt.IsZero() {
			l.leftAt = now
		}
	}
}

// Leases returns the leases that count against the limit.
func (s *Server) Leases() []sharing.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tab == nil {
		return nil
	}
	now := s.cfg.Clock.Now()
	var ls []sharing.Lease
	for i := range s.tab.leases {
		l := &s.tab.leases[i]
		if s.tab.holdsSlot(i, now) && l.bound(now) {
			ls = append(ls, sharing.Lease{MAC: slices.Clone(l.mac), Addr: s.tab.addr(i), Hostname: l.host, Expires: l.expires})
		}
	}
	return ls
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Server) markDirty(i int) {
	if i < 0 || s.isDirty[i] {
		return
	}
	s.isDirty[i] = true
	s.dirty = append(s.dirty, i)
}

// signal wakes the committer if there is anything to write.
func (s *Server) signal() {
	if len(s.dirty) == 0 && len(s.waiting) == 0 {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Server) commitLoop() {
	for {
		select {
		case <-s.kick:
			s.commit()
		case <-s.stop:
			s.commit()
			return
		}
	}
}

// commit writes the records of every changed address, then sends the
// replies that waited for them. Replies queued while a commit is syncing
// wait for the next one, which takes them all: one sync per batch.
func (s *Server) commit() {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	if s.tab == nil || (len(s.dirty) == 0 && len(s.waiting) == 0) {
		s.mu.Unlock()
		return
	}
	now := s.cfg.Clock.Now()
	dirty, replies, jr, tx := s.dirty, s.waiting, s.jr, s.tx
	s.dirty, s.waiting = nil, nil
	var recs []record
	rewrite := jr.needsRewrite()
	if rewrite {
		recs = s.tab.snapshot(now)
	} else {
		recs = make([]record, 0, len(dirty))
		for _, i := range dirty {
			recs = append(recs, s.tab.recordOf(i))
		}
	}
	for _, i := range dirty {
		s.isDirty[i] = false
	}
	s.mu.Unlock()

	var err error
	if !rewrite {
		err = jr.append(recs)
		if errors.Is(err, errJournalFull) {
			s.mu.Lock()
			recs, rewrite = s.tab.snapshot(now), true
			s.mu.Unlock()
		}
	}
	if rewrite {
		err = jr.rewrite(recs)
	}
	s.mu.Lock()
	if err != nil {
		// The replies are dropped: their clients retry, and the next
		// commit writes the records again.
		for _, i := range dirty {
			if s.isDirty != nil {
				s.markDirty(i)
			}
		}
		s.mu.Unlock()
		s.rl.Warn("disk", "DHCP lease file not written: ACKs held back", "err", err)
		return
	}
	s.stats.Commits++
	s.stats.Records += uint64(len(recs))
	s.mu.Unlock()
	for _, o := range replies {
		if err := tx.send(o.b, o.dst); err != nil {
			s.rl.Warn("send", "DHCP reply not sent", "dst", o.dst.ip, "err", err)
		}
	}
}

// readLoop reads requests until Stop.
func (s *Server) readLoop(l *lan) {
	// One byte more than the largest packet accepted tells an oversized
	// packet from one that fits exactly.
	r := newReader(l.rc, batchSize, maxMessage+1)
	for {
		pkts, err := r.read()
		switch {
		case s.stopping.Load():
			return
		case err == unix.EINTR:
		case err != nil:
			s.rl.Warn("read", "DHCP socket read failed", "err", err)
			select {
			case <-s.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		default:
			s.receive(pkts)
		}
	}
}
