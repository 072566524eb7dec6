package dns

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/openmifi/openmifi/drivers/netns"
	"github.com/openmifi/openmifi/internal/clock"
)

var (
	testStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// The unit tests' LAN is 127.0.0.0/24 on loopback; 127.0.9.9 is a
	// client outside it.
	testLAN     = netip.MustParsePrefix("127.0.0.0/24")
	testOutside = netip.MustParseAddr("127.0.9.9")
)

// upstream is a DNS server for the forwarder to ask, on UDP and TCP of one
// port. answer makes its answers; it counts what it is asked.
type upstream struct {
	addr   netip.AddrPort
	answer func(q mdns.Question, tcp bool) *mdns.Msg

	udp, tcp atomic.Int32
	mu       sync.Mutex
	ids      []uint16
	names    []string
}

func (u *upstream) queries() int { return int(u.udp.Load() + u.tcp.Load()) }

func (u *upstream) asked() (ids []uint16, names []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.ids), slices.Clone(u.names)
}

func (u *upstream) ServeDNS(w mdns.ResponseWriter, r *mdns.Msg) {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	if tcp {
		u.tcp.Add(1)
	} else {
		u.udp.Add(1)
	}
	u.mu.Lock()
	u.ids = append(u.ids, r.Id)
	u.names = append(u.names, r.Question[0].Name)
	u.mu.Unlock()
	a := u.answer(r.Question[0], tcp)
	if a == nil {
		return
	}
	rcode, tc := a.Rcode, a.Truncated
	a.SetReply(r)
	a.Rcode, a.Truncated = rcode, tc
	w.WriteMsg(a)
}

// startUpstream runs an upstream on ip, on a port free for both UDP and
// TCP, in the network namespace nsfd (0: here).
func startUpstream(t testing.TB, nsfd int, ip string, port uint16, answer func(q mdns.Question, tcp bool) *mdns.Msg) *upstream {
	t.Helper()
	u := &upstream{answer: answer}
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ; try++ {
		err := netns.Do(nsfd, func() error {
			var err error
			pc, err = net.ListenPacket("udp4", net.JoinHostPort(ip, strconv.Itoa(int(port))))
			if err != nil {
				return err
			}
			ln, err = net.Listen("tcp4", pc.LocalAddr().String())
			if err != nil {
				pc.Close()
			}
			return err
		})
		if err == nil {
			break
		}
		if try == 20 || port != 0 {
			t.Fatalf("upstream: %v", err)
		}
	}
	u.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, s := range []*mdns.Server{{PacketConn: pc, Handler: u}, {Listener: ln, Handler: u}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() {
			s.Shutdown()
			<-done
		})
	}
	return u
}

// exampleAnswers answers A questions for names under .test with one
// address and a TTL of 300 s, NXDOMAIN for nx.test.
func exampleAnswers(q mdns.Question, _ bool) *mdns.Msg {
	m := &mdns.Msg{}
	switch {
	case q.Name == "nx.test.":
		m.Rcode = mdns.RcodeNameError
		m.Ns = []mdns.RR{testSOA(3600, 60)}
	case q.Qtype == mdns.TypeA:
		m.Answer = []mdns.RR{aRR(q.Name, 300, "192.0.2.1")}
	default:
		m.Ns = []mdns.RR{testSOA(3600, 60)}
	}
	return m
}

func aRR(name string, ttl uint32, addr string) *mdns.A {
	return &mdns.A{
		Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: ttl},
		A:   net.ParseIP(addr).To4(),
	}
}

func testSOA(ttl, minttl uint32) *mdns.SOA {
	return &mdns.SOA{
		Hdr: mdns.RR_Header{Name: "test.", Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: ttl},
		Ns:  "ns.test.", Mbox: "hostmaster.test.", Serial: 1, Refresh: 1, Retry: 1, Expire: 1, Minttl: minttl,
	}
}

// testForwarder is a running forwarder on 127.0.0.1 with a fake clock.
type testForwarder struct {
	*Forwarder
	addr  netip.AddrPort
	clock *clock.Fake
}

func startForwarder(t testing.TB, mod func(*Config)) *testForwarder {
	t.Helper()
	fc := clock.NewFake(testStart)
	cfg := Config{
		Listen:    netip.MustParseAddr("127.0.0.1"),
		LANPrefix: testLAN,
		LocalName: "hotspot.lan",
		Domain:    "lan",
		Clock:     fc,
		Log:       slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	for try := 0; ; try++ {
		cfg.Port = freePort(t)
		f := New(cfg)
		err := f.Start(context.Background())
		if errors.Is(err, syscall.EADDRINUSE) && try < 20 {
			continue
		}
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := f.Stop(ctx); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
		return &testForwarder{Forwarder: f, addr: netip.AddrPortFrom(cfg.Listen, cfg.Port), clock: fc}
	}
}

func freePort(t testing.TB) uint16 {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// ask sends one query and returns the answer. net is "udp" or "tcp";
// from, if valid, is the client's source address.
func ask(t testing.TB, server netip.AddrPort, network string, from netip.Addr, m *mdns.Msg) *mdns.Msg {
	t.Helper()
	c := &mdns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: 65535}
	if from.IsValid() {
		d := &net.Dialer{Timeout: 5 * time.Second}
		if network == "tcp" {
			d.LocalAddr = &net.TCPAddr{IP: from.AsSlice()}
		} else {
			d.LocalAddr = &net.UDPAddr{IP: from.AsSlice()}
		}
		c.Dialer = d
	}
	a, _, err := c.Exchange(m, server.String())
	if err != nil {
		t.Fatalf("%s query %v: %v", network, m.Question, err)
	}
	if a.Id != m.Id {
		t.Fatalf("answer id %d, query id %d", a.Id, m.Id)
	}
	return a
}

func question(name string, qtype uint16) *mdns.Msg {
	m := &mdns.Msg{}
	m.SetQuestion(name, qtype)
	return m
}

// askA asks an A question over UDP from the LAN.
func askA(t testing.TB, f *testForwarder, name string) *mdns.Msg {
	t.Helper()
	return ask(t, f.addr, "udp", netip.Addr{}, question(name, mdns.TypeA))
}

func wantRcode(t testing.TB, a *mdns.Msg, rcode int) {
	t.Helper()
	if a.Rcode != rcode {
		t.Fatalf("rcode %s, want %s\n%v", mdns.RcodeToString[a.Rcode], mdns.RcodeToString[rcode], a)
	}
}

// wantA checks that a answers with exactly the address addr and TTL ttl
// (ttl 0: any).
func wantA(t testing.TB, a *mdns.Msg, addr string, ttl uint32) {
	t.Helper()
	wantRcode(t, a, mdns.RcodeSuccess)
	if len(a.Answer) != 1 {
		t.Fatalf("%d answers, want 1\n%v", len(a.Answer), a)
	}
	rr, ok := a.Answer[0].(*mdns.A)
	if !ok || rr.A.String() != addr || (ttl != 0 && rr.Hdr.Ttl != ttl) {
		t.Fatalf("answer %v, want A %s ttl %d", a.Answer[0], addr, ttl)
	}
}
