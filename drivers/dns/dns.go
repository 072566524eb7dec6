// Package dns is the hotspot's DNS forwarder on the LAN address.
//
// It serves the LAN clients only, over UDP and TCP on port 53 of the LAN
// address. The device's own name and the names of its DHCP clients are
// answered from memory; names under the local domain and reverse names in
// the LAN prefix never leave the device; everything else goes to the DNS
// servers of the cellular uplink, through a small cache. While there is no
// uplink every forwarded query gets SERVFAIL at once, so that clients fail
// fast instead of waiting out their own timeouts.
//
// Everything a client or an upstream sends is untrusted: the work per
// packet is bounded, bad packets are dropped or answered with an error
// code and logged at most once a second, and upstream answers are checked
// against the question they claim to answer.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/openmifi/openmifi/drivers/netns"
	"github.com/openmifi/openmifi/internal/clock"
)

const (
	defaultPort      = 53
	defaultCacheSize = 512

	// upstreamTimeout is how long one upstream gets before the next is
	// asked. Stub resolvers (glibc, Android, Windows) give up on a server
	// after about 5 s, so the forwarder must have failed over and still
	// have time to answer by then.
	upstreamTimeout = 1500 * time.Millisecond

	// maxQuery bounds what a client may send. A query has one question of
	// at most 255 bytes and an OPT record; 1232 bytes leave room for EDNS
	// padding and cookies, and anything longer is not a query we serve.
	maxQuery = 1232

	// ednsSize is the UDP payload size advertised to clients and upstreams:
	// the DNS flag day 2020 value, which fits a cellular path MTU without
	// IP fragmentation (fragments are easy to spoof and often dropped).
	ednsSize = 1232

	// maxInflight bounds the UDP queries being forwarded at once: each
	// holds a socket and a goroutine. Beyond it queries are dropped and
	// the clients retry.
	maxInflight = 64

	// maxTCPConns bounds the TCP client connections; tcpIdle closes a
	// connection that sends nothing.
	maxTCPConns = 16
	tcpIdle     = 10 * time.Second
)

// Config configures a Forwarder.
type Config struct {
	Listen    netip.Addr   // the LAN address, e.g. 192.168.43.1; UDP and TCP are served on it only
	Port      uint16       // 0 means 53
	LANPrefix netip.Prefix // clients outside it get REFUSED
	LocalName string       // the device's name, e.g. "hotspot.lan": A (or AAAA) is Listen, and the PTR of Listen
	Domain    string       // e.g. "lan": unknown names under it get NXDOMAIN and are never forwarded
	CacheSize int          // entries; 0 means 512
	Clock     clock.Clock  // nil means the wall clock
	Log       *slog.Logger // nil means slog.Default()
	NetNS     int          // network namespace fd to open sockets in (tests); 0: the current one
}

// Forwarder is the DNS forwarder. Its methods may be called from any
// goroutine.
type Forwarder struct {
	cfg       Config
	port      uint16
	localName string // canonical FQDN, "" if none
	domain    string // canonical FQDN, "" if none
	clock     clock.Clock
	log       *slog.Logger
	cache     *cache
	timeout   time.Duration // per upstream; tests shorten it

	badPackets  sometimes // clients' bad packets
	badUpstream sometimes // failing or misbehaving upstreams

	mu        sync.Mutex
	upstreams []netip.AddrPort
	upGen     uint64 // counts changes of upstreams
	preferred int    // index in upstreams of the one that answered last
	hosts     map[string]netip.Addr
	ptrs      map[netip.Addr]string

	runMu sync.Mutex
	run   *run // nil while stopped
}

// run is one run of the server, from Start to Stop. A new one per Start:
// goroutines of a run whose Stop gave up waiting may still be ending.
type run struct {
	cancel   context.CancelFunc
	udp      *net.UDPConn
	tcp      *net.TCPListener
	wg       sync.WaitGroup
	inflight chan struct{} // a token per UDP query being forwarded

	mu    sync.Mutex
	conns map[net.Conn]struct{} // nil once stopping
}

// New returns a stopped Forwarder. The configuration is checked by Start.
func New(cfg Config) *Forwarder {
	cfg.Listen = cfg.Listen.Unmap()
	f := &Forwarder{
		cfg:     cfg,
		port:    cfg.Port,
		clock:   cfg.Clock,
		log:     cfg.Log,
		timeout: upstreamTimeout,
	}
	if f.port == 0 {
		f.port = defaultPort
	}
	if f.clock == nil {
		f.clock = clock.Real{}
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if cfg.LocalName != "" {
		f.localName = mdns.CanonicalName(cfg.LocalName)
	}
	if cfg.Domain != "" {
		f.domain = mdns.CanonicalName(cfg.Domain)
	}
	size := cfg.CacheSize
	if size <= 0 {
		size = defaultCacheSize
	}
	f.cache = newCache(size, f.clock)
	f.badPackets = sometimes{clock: f.clock, every: time.Second}
	f.badUpstream = sometimes{clock: f.clock, every: time.Second}
	return f
}

func (f *Forwarder) check() error {
	if !f.cfg.Listen.IsValid() {
		return errors.New("dns: no listen address")
	}
	if !f.cfg.LANPrefix.IsValid() {
		return errors.New("dns: no LAN prefix")
	}
	if !f.cfg.LANPrefix.Contains(f.cfg.Listen) {
		return fmt.Errorf("dns: listen address %v is outside the LAN prefix %v", f.cfg.Listen, f.cfg.LANPrefix)
	}
	for _, n := range []struct{ what, name string }{{"local name", f.localName}, {"domain", f.domain}} {
		if n.name == "" {
			continue
		}
		if _, ok := mdns.IsDomainName(n.name); !ok || n.name == "." {
			return fmt.Errorf("dns: %s %q is not a domain name", n.what, n.name)
		}
	}
	return nil
}

// Start binds UDP and TCP on the listen address and serves until Stop. ctx
// bounds the start only. Starting a running Forwarder does nothing.
func (f *Forwarder) Start(ctx context.Context) error {
	if err := f.check(); err != nil {
		return err
	}
	f.runMu.Lock()
	defer f.runMu.Unlock()
	if f.run != nil {
		return nil
	}
	addr := netip.AddrPortFrom(f.cfg.Listen, f.port)
	udpNet, tcpNet := "udp4", "tcp4"
	if f.cfg.Listen.Is6() {
		udpNet, tcpNet = "udp6", "tcp6"
	}
	var pc net.PacketConn
	var ln net.Listener
	err := netns.Do(f.cfg.NetNS, func() error {
		var lc net.ListenConfig
		var err error
		pc, err = lc.ListenPacket(ctx, udpNet, addr.String())
		if err != nil {
			return err
		}
		ln, err = lc.Listen(ctx, tcpNet, addr.String())
		if err != nil {
			pc.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dns: listen on %v: %w", addr, err)
	}
	// The server outlives ctx, which only bounds the start; Stop ends it.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &run{
		cancel:   cancel,
		udp:      pc.(*net.UDPConn),
		tcp:      ln.(*net.TCPListener),
		inflight: make(chan struct{}, maxInflight),
		conns:    make(map[net.Conn]struct{}),
	}
	f.run = r
	r.wg.Add(2)
	go f.serveUDP(runCtx, r)
	go f.serveTCP(runCtx, r)
	f.log.Info("dns forwarder started", "addr", addr)
	return nil
}

// Stop closes the sockets and waits for every goroutine of the Forwarder
// to end, or for ctx. Stopping a stopped Forwarder does nothing.
func (f *Forwarder) Stop(ctx context.Context) error {
	f.runMu.Lock()
	r := f.run
	f.run = nil
	f.runMu.Unlock()
	if r == nil {
		return nil
	}
	r.cancel()
	r.udp.Close()
	r.tcp.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.conns = nil
	r.mu.Unlock()

	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		f.log.Info("dns forwarder stopped")
		return nil
	case <-ctx.Done():
		// Everything is closed and cancelled: the stragglers end on
		// their own, but the caller does not wait for them.
		return fmt.Errorf("dns: stop: %w", ctx.Err())
	}
}

// SetUpstreams sets the DNS servers queries are forwarded to, in order of
// preference: those of the uplink's packet data context. nil or empty means
// there is no uplink. A change flushes the cache: answers from another
// operator's servers, or from before a reconnection, are not served again.
func (f *Forwarder) SetUpstreams(servers []netip.AddrPort) {
	self := netip.AddrPortFrom(f.cfg.Listen, f.port)
	var ups []netip.AddrPort
	for _, s := range servers {
		s = netip.AddrPortFrom(s.Addr().Unmap(), s.Port())
		if s.Port() == 0 {
			s = netip.AddrPortFrom(s.Addr(), 53)
		}
		// Forwarding to ourselves would loop each query until it
		// times out.
		if !s.Addr().IsValid() || s.Addr().IsUnspecified() || s == self || slices.Contains(ups, s) {
			continue
		}
		ups = append(ups, s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Equal(ups, f.upstreams) {
		return
	}
	f.upstreams = ups
	f.upGen++
	f.preferred = 0
	f.cache.flush()
	f.log.Info("dns upstreams", "servers", ups)
}

// SetHosts sets the names of the LAN clients, as DHCP learnt them: "laptop"
// or "laptop.lan" both serve laptop.<Domain> and its PTR. Names that are not
// a single valid label under Domain, addresses outside the LAN prefix, and
// the device's own name and address are ignored: a client cannot take over
// the device's name. Without a Domain there is no place for them.
func (f *Forwarder) SetHosts(names map[string]netip.Addr) {
	hosts := make(map[string]netip.Addr)
	ptrs := make(map[netip.Addr]string)
	for name, addr := range names {
		fq, ok := f.hostName(name)
		addr = addr.Unmap()
		if !ok || !f.cfg.LANPrefix.Contains(addr) || addr == f.cfg.Listen || fq == f.localName {
			continue
		}
		hosts[fq] = addr
		// Two names for one address: the PTR is the smaller one, so
		// that it does not change with map order.
		if old, ok := ptrs[addr]; !ok || fq < old {
			ptrs[addr] = fq
		}
	}
	f.mu.Lock()
	f.hosts, f.ptrs = hosts, ptrs
	f.mu.Unlock()
}

// hostName turns a DHCP host name into the FQDN it is served under.
func (f *Forwarder) hostName(name string) (string, bool) {
	if f.domain == "" {
		return "", false
	}
	name = mdns.CanonicalName(name)
	label, ok := strings.CutSuffix(name, "."+f.domain)
	if !ok {
		label = name[:len(name)-1]
	}
	if !validLabel(label) {
		return "", false
	}
	return label + "." + f.domain, true
}

// validLabel reports whether s is a host name label (RFC 952, 1123):
// letters, digits and inner hyphens, 1 to 63 of them.
func validLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// serveUDP reads queries until the socket is closed. Local answers, cache
// hits and errors are written from here; forwarding runs in a goroutine per
// query, at most maxInflight of them.
func (f *Forwarder) serveUDP(ctx context.Context, r *run) {
	defer r.wg.Done()
	conn := r.udp
	// One byte more than we accept tells an oversized datagram from one
	// that just fits.
	buf := make([]byte, maxQuery+1)
	for {
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			f.logBad(src, "read error", "err", err)
			continue
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		resp, q := f.prepare(buf[:n], src, false)
		if q == nil {
			if resp != nil {
				f.writeUDP(conn, resp, src)
			}
			continue
		}
		select {
		case r.inflight <- struct{}{}:
		default:
			f.logBad(src, "too many queries in flight")
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() { <-r.inflight }()
			if resp := f.resolve(ctx, q); resp != nil {
				f.writeUDP(conn, resp, q.src)
			}
		}()
	}
}

func (f *Forwarder) writeUDP(conn *net.UDPConn, b []byte, to netip.AddrPort) {
	if _, err := conn.WriteToUDPAddrPort(b, to); err != nil && !errors.Is(err, net.ErrClosed) {
		f.logBad(to, "write error", "err", err)
	}
}

func (f *Forwarder) serveTCP(ctx context.Context, r *run) {
	defer r.wg.Done()
	for {
		c, err := r.tcp.AcceptTCP()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			f.logBad(netip.AddrPort{}, "accept error", "err", err)
			// Out of file descriptors, typically: give the
			// connections being served time to end.
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if !r.track(c) {
			f.logBad(c.RemoteAddr().(*net.TCPAddr).AddrPort(), "too many TCP connections")
			c.Close()
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer r.untrack(c)
			f.serveConn(ctx, c)
		}()
	}
}

// track registers a client connection for Stop to close, unless there are
// too many already or Stop has begun.
func (r *run) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns == nil || len(r.conns) >= maxTCPConns {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *run) untrack(c net.Conn) {
	c.Close()
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

// serveConn answers the queries of one TCP client, one after the other
// (RFC 7766 allows more than one per connection), until it is idle for
// tcpIdle or sends something that is not a query.
func (f *Forwarder) serveConn(ctx context.Context, c *net.TCPConn) {
	src := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	buf := make([]byte, maxQuery)
	for {
		c.SetReadDeadline(time.Now().Add(tcpIdle))
		pkt, err := readTCPMsg(c, buf)
		if err != nil {
			if !isEOF(err) && ctx.Err() == nil {
				f.logBad(src, "tcp read", "err", err)
			}
			return
		}
		resp := f.handle(ctx, pkt, src, true)
		if resp == nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(tcpIdle))
		if err := writeTCPMsg(c, resp); err != nil {
			if ctx.Err() == nil {
				f.logBad(src, "tcp write", "err", err)
			}
			return
		}
	}
}

// logBad logs a bad packet or client, at most once per second with the
// count of those not logged: a flood must not flood the console too.
func (f *Forwarder) logBad(src netip.AddrPort, reason string, args ...any) {
	if ok, n := f.badPackets.allow(); ok {
		args = append([]any{"client", src, "reason", reason}, args...)
		if n > 0 {
			args = append(args, "suppressed", n)
		}
		f.log.Warn("dns: bad query", args...)
	}
}

func (f *Forwarder) logUpstream(server netip.AddrPort, msg string, args ...any) {
	if ok, n := f.badUpstream.allow(); ok {
		args = append([]any{"upstream", server}, args...)
		if n > 0 {
			args = append(args, "suppressed", n)
		}
		f.log.Warn("dns: "+msg, args...)
	}
}

// sometimes lets one event through per interval and counts the others.
type sometimes struct {
	clock      clock.Clock
	every      time.Duration
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether to log now, and how many events were suppressed
// since the last one logged.
func (s *sometimes) allow() (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if now.Before(s.next) {
		s.suppressed++
		return false, 0
	}
	s.next = now.Add(s.every)
	n := s.suppressed
	s.suppressed = 0
	return true, n
}
