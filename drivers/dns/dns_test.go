package dns

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestForward(t *testing.T) {
	up := startUpstream(t, 0, "127.0.0.1", 0, exampleAnswers)
	f := startForwarder(t, nil)
	f.SetUpstreams([]netip.AddrPort{up.addr})

	a := askA(t, f, "example.test.")
	wantA(t, a, "192.0.2.1", 300)
	if !a.RecursionAvailable {
		t.Error("RA not set")
	}
	if up.udp.Load() != 1 || up.tcp.Load() != 0 {
		t.Errorf("upstream asked %d times over UDP, %d over TCP; want 1, 0", up.udp.Load(), up.tcp.Load())
	}

	// EDNS: the client's DO bit goes upstream, the OPT comes back.
	m := question("example.test.", mdns.TypeA)
	m.SetEdns0(4096, true)
	a = ask(t, f.addr, "udp", netip.Addr{}, m)
	wantA(t, a, "192.0.2.1", 0)
	if opt := a.IsEdns0(); opt == nil || !opt.Do() || opt.UDPSize() != ednsSize {
		t.Errorf("answer OPT %v, want DO and size %d", opt, ednsSize)
	}
}

func TestForwardedIDsAreRandom(t *testing.T) {
	up := startUpstream(t, 0, "127.0.0.1", 0, exampleAnswers)
	f := startForwarder(t, nil)
	f.SetUpstreams([]netip.AddrPort{up.addr})
	for i := range 8 {
		m := question("n"+strconv.Itoa(i)+".example.test.", mdns.TypeA)
		m.Id = 4242
		ask(t, f.addr, "udp", netip.Addr{}, m)
	}
	ids, _ := up.asked()
	seen := map[uint16]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	if len(seen) < 7 || seen[4242] && len(seen) == 1 {
		t.Errorf("forwarded IDs %v: want random ones, not the client's 4242", ids)
	}
}

func TestCacheHitAndExpiry(t *testing.T) {
	up := startUpstream(t, 0, "127.0.0.1", 0, exampleAnswers)
	f := startForwarder(t, nil)
	f.SetUpstreams([]netip.AddrPort{up.addr})

	wantA(t, askA(t, f, "example.test."), "192.0.2.1", 300)
	f.clock.Advance(100 * time.Second)
	// Another spelling of the same name (0x20 randomisation) is the
	// same entry, and the client gets its own spelling back.
	a := askA(t, f, "ExAmPlE.TeSt.")
	wantA(t, a, "192.0.2.1", 200)
	if a.Question[0].Name != "ExAmPlE.TeSt." {
		t.Errorf("question %q: the client's spelling must come back", a.Question[0].Name)
	}
	if up.queries() != 1 {
		t.Fatalf("upstream asked %d times; a cache hit must not ask it", up.queries())
	}
	// DO changes the answer, so it is another entry.
	m := question("example.test.", mdns.TypeA)
	m.SetEdns0(1232, true)
	ask(t, f.addr, "udp", netip.Addr{}, m)
	if up.queries() != 2 {
		t.Fatalf("upstream asked %d times; a DO query must not be served a non-DO answer", up.queries())
	}

	f.clock.Advance(199 * time.Second)
	wantA(t, askA(t, f, "example.test."), "192.0.2.1", 1)
	f.clock.Advance(time.Second)
	wantA(t, askA(t, f, "example.test."), "192.0.2.1", 300)
	if up.queries() != 3 {
		t.Errorf("upstream asked %d times; the entry expired after 300 s", up.queries())
	}
}

func TestCacheTTLZeroAndErrorsNotCached(t *testing.T) {
	up := startUpstream(t, 0, "127.0.0.1", 0, func(q mdns.Question, _ bool) *mdns.Msg {
		m := &mdns.Msg{}
		switch q.Name {
		case "zero.test.":
			m.Answer = []mdns.RR{aRR(q.Name, 0, "192.0.2.2")}
		case "nosoa.test.":
			m.Rcode = mdns.RcodeNameError
		default:
			m.Rcode = mdns.RcodeServerFailure
		}
		return m
	})
	f := startForwarder(t, nil)
	f.SetUpstreams([]netip.AddrPort{up.addr})
	for range 2 {
		wantA(t, askA(t, f, "zero.test."), "192.0.2.2", 0)
		wantRcode(t, askA(t, f, "nosoa.test."), mdns.RcodeNameError)
		wantRcode(t, askA(t, f, "fail.test."), mdns.RcodeServerFailure)
	}
	if up.queries() != 6 {
		t.Errorf("upstream asked %d times, want 6: nothing here may be cached", up.queries())
	}
}

func TestNegativeCache(t *testing.T) {
	up := startUpstream(t, 0, "127.0.0.1", 0, func(q mdns.Question, _ bool) *mdns.Msg {
		m := &mdns.Msg{}
		switch q.Name {
		case "nx.test.":
			m.Rcode = mdns.RcodeNameError
			m.Ns = []mdns.RR{testSOA(3600, 60)} // negative TTL: 60
		case "nodata.test.":
			m.Ns = []mdns.RR{testSOA(86400, 86400)} // capped at 1 h
		}
		return m
	})
	f := startForwarder(t, nil)
	f.SetUpstreams([]netip.AddrPort{up.addr})

	wantRcode(t, askA(t, f, "nx.test."), mdns.RcodeNameError)
	wantRcode(t, askA(t, f, "nodata.test."), mdns.RcodeSuccess)
	f.clock.Advance(59 * time.Second)
	a := askA(t, f, "nx.test.")
	wantRcode(t, a, mdns.RcodeNameError)
	if len(a.Ns) != 1 || a.Ns[0].Header().Ttl != 1 {
		t.Errorf("cached NXDOMAIN authority %v: want the SOA with TTL 1", a.Ns)
	}
	a = askA(t, f, "nodata.test.")
	if a.Rcode != mdns.RcodeSuccess || len(a.Answer) != 0 {
		t.Errorf("cached NODATA: %v", a)
	}
	if up.queries() != 2 {
		t.Fatalf("upstream asked %d times, want 2", up.queries())
	}
	f.clock.Advance(time.Second)
	wantRcode(t, askA(t, f, "nx.test."), mdns.RcodeNameError)
	if up.queries() != 3 {
		t.Fatalf("upstream asked %d times, want 3: NXDOMAIN expires after the SOA minimum", up.queries())
	}
	f.clock.Advance(time.Hour - 61*time.Second)
	askA(t, f, "nodata.test.")
	if up.queries() != 3 {
		t.Fatalf("upstream asked %d times, want 3: NODATA kept for 1 h", up.queries())
	}
	f.clock.Advance(time.Second)
	askA(t, f, "nodata.test.")
	if up.queries() != 4 {
		t.Fatalf("upstream asked %d times, want 4: negative answers are capped at 1 h", up.queries())
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	up := startUpstream(t, 0, "127.0.0.1", 0, exampleAnswers)
	f := startForwarder(t, func(c *Config) { c.CacheSize = 2 })
	f.SetUpstreams([]netip.AddrPort{up.addr})
	askA(t, f, "a.test.")
	askA(t, f, "b.test.")
	askA(t, f, "a.test.") // a is now the most recent
	askA(t, f, "c.test.") // evicts b
	if up.queries() != 3 || f.cache.len() != 2 {
		t.Fatalf("upstream asked %d times, cache holds %d; want 3, 2", up.queries(), f.cache.len())
	}
	askA(t, f, "a.test.")
	if up.queries() != 3 {
		t.Fatalf("a was evicted")
	}
	askA(t, f, "b.test.")
	if up.queries() != 4 {
		t.Fatalf("b was not evicted")
	}
}

func TestUpstreamChangeFlushesCache(t *testing.T) {
	one := startUpstream(t, 0, "127.0.0.1", 0, exampleAnswers)
	two := startUpstream(t, 0, "127.0.0.1", 0, func(q mdns.Question, _ bool) *mdns.Msg {
		return &mdns.Msg{Answer: []mdns.RR{aRR(q.Name, 300, "192.0.2.99")}}
	})
	f := startForwarder(t, nil)
	f.SetUpstreams([]netip.AddrPort{one.addr})
	wantA(t, askA(t, f, "example.test."), "192.0.2.1", 0)
	f.SetUpstreams([]netip.AddrPort{one.addr}) // no change: cache kept
	wantA(t, askA(t, f, "example.test."), "192.0.2.1", 0)
	if one.queries() != 1 {
		t.Fatalf("setting the same upstreams flushed the cache")
	}
	f.SetUpstreams([]netip.AddrPort{two.addr})
	wantA(t, askA(t, f, "example.test."), "192.0.2.99", 0)
	if two.queries() != 1 {
		t.Fatalf("new upstream asked %d times", two.queries())
	}
}

func TestServfailWithoutUpstream(t *testing.T) {
	up := startUpstream(t, 0, "127.0.0.1", 0, exampleAnswers)
	f := startForwarder(t, nil)
	start := time.Now()
	wantRcode(t, askA(t, f, "example.test."), mdns.RcodeServerFailure)

	f.SetUpstreams([]netip.AddrPort{up.addr})
	wantA(t, askA(t, f, "example.test."), "192.0.2.1", 0)
	f.SetUpstreams(nil) // uplink lost: what was cached goes too
	start2 := time.Now()
	wantRcode(t, askA(t, f, "example.test."), mdns.RcodeServerFailure)
	if d := time.Since(start2); d > 500*time.Millisecond {
		t.Errorf("SERVFAIL without uplink took %v", d)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
	// Local names need no uplink.
	wantA(t, askA(t, f, "hotspot.lan."), "127.0.0.1", localTTL)
}

func TestLocalNames(t *testing.T) {
	up := startUpstream(t, 0, "127.0.0.1", 0, exampleAnswers)
	f := startForwarder(t, nil)
	f.SetUpstreams([]netip.AddrPort{up.addr})
	f.SetHosts(map[string]netip.Addr{
		"laptop":    netip.MustParseAddr("127.0.0.20"),
		"Phone.lan": netip.MustParseAddr("127.0.0.21"),
		"bad_name":  netip.MustParseAddr("127.0.0.22"),
		"outside":   netip.MustParseAddr("10.0.0.1"), // not in the LAN
		"hotspot":   netip.MustParseAddr("127.0.0.30"),
		"a.b":       netip.MustParseAddr("127.0.0.31"),
	})

	a := askA(t, f, "hotspot.lan.")
	wantA(t, a, "127.0.0.1", localTTL)
	if !a.Authoritative {
		t.Error("local answer not authoritative")
	}
	wantA(t, askA(t, f, "HotSpot.LAN."), "127.0.0.1", 0)
	a = ask(t, f.addr, "udp", netip.Addr{}, question("hotspot.lan.", mdns.TypeAAAA))
	wantRcode(t, a, mdns.RcodeSuccess)
	if len(a.Answer) != 0 || len(a.Ns) != 1 || a.Ns[0].Header().Rrtype != mdns.TypeSOA {
		t.Errorf("AAAA of the local name: want NODATA with the SOA, got %v", a)
	}
	a = ask(t, f.addr, "udp", netip.Addr{}, question("1.0.0.127.in-addr.arpa.", mdns.TypePTR))
	if len(a.Answer) != 1 || a.Answer[0].(*mdns.PTR).Ptr != "hotspot.lan." {
		t.Errorf("PTR of the LAN address: %v", a)
	}

	wantA(t, askA(t, f, "laptop.lan."), "127.0.0.20", 0)
	wantA(t, askA(t, f, "phone.lan."), "127.0.0.21", 0)
	a = ask(t, f.addr, "udp", netip.Addr{}, question("20.0.0.127.in-addr.arpa.", mdns.TypePTR))
	if len(a.Answer) != 1 || a.Answer[0].(*mdns.PTR).Ptr != "laptop.lan." {
		t.Errorf("PTR of a client: %v", a)
	}
	for _, name := range []string{"nosuch.lan.", "outside.lan.", "bad_name.lan.", "a.b.lan.", "x.hotspot.lan."} {
		a := askA(t, f, name)
		wantRcode(t, a, mdns.RcodeNameError)
		if len(a.Ns) != 1 {
			t.Errorf("%s: NXDOMAIN without SOA", name)
		}
	}
	wantRcode(t, ask(t, f.addr, "udp", netip.Addr{}, question("99.0.0.127.in-addr.arpa.", mdns.TypePTR)), mdns.RcodeNameError)
	a = ask(t, f.addr, "udp", netip.Addr{}, question("lan.", mdns.TypeSOA))
	if len(a.Answer) != 1 || a.Answer[0].Header().Rrtype != mdns.TypeSOA {
		t.Errorf("SOA of the domain: %v", a)
	}
	if _, names := up.asked(); len(names) != 0 {
		t.Errorf("upstream asked about local names %v", names)
	}
	f.SetHosts(nil)
	wantRcode(t, askA(t, f, "laptop.lan."), mdns.RcodeNameError)
}

func TestRefusedOutsideLAN(t *testing.T) {
	up := startUpstream(t, 0, "127.0.0.1", 0, exampleAnswers)
	f := startForwarder(t, nil)
	f.SetUpstreams([]netip.AddrPort{up.addr})
	for _, network := range []string{"udp", "tcp"} {
		wantRcode(t, ask(t, f.addr, network, testOutside, question("example.test.", mdns.TypeA)), mdns.RcodeRefused)
		wantRcode(t, ask(t, f.addr, network, testOutside, question("hotspot.lan.", mdns.TypeA)), mdns.RcodeRefused)
	}
	if up.queries() != 0 {
		t.Errorf("upstream asked %d times for a client outside the LAN", up.queries())
	}
	// Garbage from outside gets nothing at all.
	if b := rawExchange(t, f.addr, testOutside, []byte("0123456789abcdef"), 300*time.Millisecond); b != nil {
		t.Errorf("garbage from outside the LAN answered: %x", b)
	}
}

func TestTruncatedUpstreamRetriesOverTCP(t *testing.T) {
	up := startUpstream(t, 0, "127.0.0.1", 0, func(q mdns.Question, tcp bool) *mdns.Msg {
		m := &mdns.Msg{}
		if !tcp {
			m.Truncated = true
			return m
		}
		for i := range 60 {
			m.Answer = append(m.Answer, aRR(q.Name, 300, "192.0.2."+strconv.Itoa(i+1)))
		}
		return m
	})
	f := startForwarder(t, nil)
	f.SetUpstreams([]netip.AddrPort{up.addr})

	// A client without EDNS gets what fits in 512 bytes, and TC.
	a := askA(t, f, "big.test.")
	if !a.Truncated || len(a.Answer) == 0 || len(a.Answer) == 60 {
		t.Errorf("UDP answer: TC %v with %d records; want TC and part of them", a.Truncated, len(a.Answer))
	}
	if up.udp.Load() != 1 || up.tcp.Load() != 1 {
		t.Fatalf("upstream asked %d times over UDP, %d over TCP; want 1, 1", up.udp.Load(), up.tcp.Load())
	}
	// It retries over TCP and gets all (from the cache).
	a = ask(t, f.addr, "tcp", netip.Addr{}, question("big.test.", mdns.TypeA))
	if a.Truncated || len(a.Answer) != 60 {
		t.Errorf("TCP answer: TC %v with %d records; want all 60", a.Truncated, len(a.Answer))
	}
	// An EDNS client with a large buffer gets all in one datagram,
	// up to our ednsSize.
	m := question("big.test.", mdns.TypeA)
	m.SetEdns0(4096, false)
	a = ask(t, f.addr, "udp", netip.Addr{}, m)
	if a.Truncated || len(a.Answer) != 60 {
		t.Errorf("EDNS UDP answer: TC %v with %d records; want all 60", a.Truncated, len(a.Answer))
	}
}

func TestTCPClients(t *testing.T) {
	up := startUpstream(t, 0, "127.0.0.1", 0, exampleAnswers)
	f := startForwarder(t, nil)
	f.SetUpstreams([]netip.AddrPort{up.addr})

	wantA(t, ask(t, f.addr, "tcp", netip.Addr{}, question("example.test.", mdns.TypeA)), "192.0.2.1", 300)
	if up.tcp.Load() != 1 || up.udp.Load() != 0 {
		t.Errorf("upstream asked %d times over TCP, %d over UDP; a TCP query goes over TCP", up.tcp.Load(), up.udp.Load())
	}

	// Several queries on one connection (RFC 7766).
	conn, err := net.Dial("tcp", f.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	dc := &mdns.Conn{Conn: conn}
	for _, name := range []string{"one.test.", "hotspot.lan.", "two.test."} {
		q := question(name, mdns.TypeA)
		if err := dc.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
		a, err := dc.ReadMsg()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if a.Id != q.Id || len(a.Answer) != 1 {
			t.Errorf("%s: %v", name, a)
		}
	}

	// A length beyond any query closes the connection.
	c2, err := net.Dial("tcp", f.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	c2.Write([]byte{0xff, 0xff, 0, 0})
	if n, err := c2.Read(make([]byte, 10)); err == nil {
		t.Errorf("oversized TCP query answered with %d bytes", n)
	}
}

// rawExchange sends pkt over UDP from from (if valid) and returns the
// answer, or nil if none comes within wait.
func rawExchange(t *testing.T, server netip.AddrPort, from netip.Addr, pkt []byte, wait time.Duration) []byte {
	t.Helper()
	var laddr *net.UDPAddr
	if from.IsValid() {
		laddr = &net.UDPAddr{IP: from.AsSlice()}
	}
	c, err := net.DialUDP("udp4", laddr, net.UDPAddrFromAddrPort(server))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func pack(t *testing.T, m *mdns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMalformedQueries(t *testing.T) {
	up := startUpstream(t, 0, "127.0.0.1", 0, exampleAnswers)
	f := startForwarder(t, nil)
	f.SetUpstreams([]netip.AddrPort{up.addr})

	valid := pack(t, question("example.test.", mdns.TypeA))
	two := question("example.test.", mdns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	resp := question("example.test.", mdns.TypeA)
	resp.Response = true
	update := question("example.test.", mdns.TypeA)
	update.Opcode = mdns.OpcodeUpdate
	chaos := question("version.bind.", mdns.TypeTXT)
	chaos.Question[0].Qclass = mdns.ClassCHAOS
	edns1 := question("example.test.", mdns.TypeA)
	edns1.SetEdns0(1232, false)
	edns1.IsEdns0().SetVersion(1)
	// A name whose compression pointer points at itself.
	loop := append(append([]byte{}, valid[:headerLen]...), 0xc0, 12, 0, 1, 0, 1)

	for _, tc := range []struct {
		name  string
		pkt   []byte
		rcode int // -1: no answer
	}{
		{"short", valid[:5], -1},
		{"header only", valid[:headerLen], mdns.RcodeFormatError},
		{"cut question", valid[:len(valid)-3], mdns.RcodeFormatError},
		{"oversized", append(append([]byte{}, valid...), make([]byte, 2000)...), -1},
		{"response", pack(t, resp), -1},
		{"two questions", pack(t, two), mdns.RcodeFormatError},
		{"update", pack(t, update), mdns.RcodeNotImplemented},
		{"compression loop", loop, mdns.RcodeFormatError},
		{"chaos", pack(t, chaos), mdns.RcodeRefused},
		{"axfr", pack(t, question("test.", mdns.TypeAXFR)), mdns.RcodeRefused},
		{"edns version 1", pack(t, edns1), mdns.RcodeBadVers},
	} {
		wait := 5 * time.Second
		if tc.rcode < 0 {
			wait = 300 * time.Millisecond
		}
		b := rawExchange(t, f.addr, netip.Addr{}, tc.pkt, wait)
		if tc.rcode < 0 {
			if b != nil {
				t.Errorf("%s: answered %x", tc.name, b)
			}
			continue
		}
		var a mdns.Msg
		if err := a.Unpack(b); err != nil {
			t.Errorf("%s: answer %x: %v", tc.name, b, err)
			continue
		}
		if a.Rcode != tc.rcode || !a.Response || a.Id != binary.BigEndian.Uint16(tc.pkt) {
			t.Errorf("%s: answer %v, want rcode %s", tc.name, &a, mdns.RcodeToString[tc.rcode])
		}
	}
	if up.queries() != 0 {
		t.Errorf("upstream asked %d times", up.queries())
	}
	wantA(t, askA(t, f, "example.test."), "192.0.2.1", 0)
}

func TestUpstreamFailover(t *testing.T) {
	// dead: nothing listens (ICMP port unreachable, at once); silent:
	// takes queries and never answers (the timeout); good answers.
	dead := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t))
	silent, silentCount := silentUpstream(t)
	good := startUpstream(t, 0, "127.0.0.1", 0, exampleAnswers)
	f := startForwarder(t, nil)
	f.timeout = time.Second
	f.SetUpstreams([]netip.AddrPort{dead, silent, good.addr})

	wantA(t, askA(t, f, "one.test."), "192.0.2.1", 0)
	if silentCount() != 1 || good.queries() != 1 {
		t.Fatalf("silent asked %d times, good %d; want 1, 1", silentCount(), good.queries())
	}
	// The one that answered is asked first from now on.
	start := time.Now()
	wantA(t, askA(t, f, "two.test."), "192.0.2.1", 0)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("second query took %v: the answering upstream was not remembered", d)
	}
	if silentCount() != 1 || good.queries() != 2 {
		t.Errorf("silent asked %d times, good %d; want 1, 2", silentCount(), good.queries())
	}

	// An upstream answering SERVFAIL is passed over too.
	bad := startUpstream(t, 0, "127.0.0.1", 0, func(mdns.Question, bool) *mdns.Msg {
		return &mdns.Msg{MsgHdr: mdns.MsgHdr{Rcode: mdns.RcodeServerFailure}}
	})
	f.SetUpstreams([]netip.AddrPort{bad.addr, good.addr})
	wantA(t, askA(t, f, "three.test."), "192.0.2.1", 0)

	// All failing: SERVFAIL.
	f.SetUpstreams([]netip.AddrPort{dead, silent})
	wantRcode(t, askA(t, f, "four.test."), mdns.RcodeServerFailure)
}

// silentUpstream takes queries on UDP and never answers; it returns its
// address and a counter of the queries.
func silentUpstream(t *testing.T) (netip.AddrPort, func() int) {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := make(chan int, 1)
	n <- 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
			n <- <-n + 1
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return c.LocalAddr().(*net.UDPAddr).AddrPort(), func() int {
		v := <-n
		n <- v
		return v
	}
}

// TestSpoofedAnswersIgnored has an upstream send wrong answers before the
// right one: a wrong ID, a wrong question, a wrong source port. Only the
// right one may reach the client.
func TestSpoofedAnswersIgnored(t *testing.T) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	other, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			var q mdns.Msg
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			send := func(conn net.PacketConn, mod func(*mdns.Msg), addr string) {
				a := &mdns.Msg{}
				a.SetReply(&q)
				a.Answer = []mdns.RR{aRR(q.Question[0].Name, 300, addr)}
				mod(a)
				b, _ := a.Pack()
				conn.WriteTo(b, from)
			}
			send(c, func(a *mdns.Msg) { a.Id++ }, "192.0.2.66")
			send(c, func(a *mdns.Msg) { a.Question[0].Name = "evil.test." }, "192.0.2.67")
			send(c, func(a *mdns.Msg) { a.Question[0].Qtype = mdns.TypeMX }, "192.0.2.68")
			send(c, func(a *mdns.Msg) { a.Response = false }, "192.0.2.69")
			send(other, func(*mdns.Msg) {}, "192.0.2.70")
			c.WriteTo([]byte("garbage"), from)
			send(c, func(*mdns.Msg) {}, "192.0.2.1")
		}
	}()
	t.Cleanup(func() {
		c.Close()
		other.Close()
		<-done
	})
	f := startForwarder(t, nil)
	f.SetUpstreams([]netip.AddrPort{c.LocalAddr().(*net.UDPAddr).AddrPort()})
	wantA(t, askA(t, f, "example.test."), "192.0.2.1", 0)
}

func TestStopEndsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	silent, silentCount := silentUpstream(t)
	fc := startForwarder(t, nil)
	f := fc.Forwarder
	f.timeout = time.Minute
	f.SetUpstreams([]netip.AddrPort{silent})

	// A query being forwarded, and an idle TCP client.
	rawc, err := net.Dial("udp4", fc.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rawc.Close()
	rawc.Write(pack(t, question("example.test.", mdns.TypeA)))
	tcpc, err := net.Dial("tcp4", fc.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer tcpc.Close()
	for deadline := time.Now().Add(5 * time.Second); silentCount() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("query not forwarded")
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := f.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("stop took %v", d)
	}
	if err := f.Stop(ctx); err != nil {
		t.Errorf("second stop: %v", err)
	}
	// Stopped means the port is free again, and Start works again.
	if err := f.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := f.Start(ctx); err != nil {
		t.Fatalf("start of a running forwarder: %v", err)
	}
	wantA(t, askA(t, fc, "hotspot.lan."), "127.0.0.1", 0)
	if err := f.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// The silent upstream's reader is ours to count too.
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > before+1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Stop:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
	}
}

func TestStartErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Listen: netip.MustParseAddr("127.0.0.1")},
		{Listen: netip.MustParseAddr("127.0.0.1"), LANPrefix: netip.MustParsePrefix("10.0.0.0/8")},
		{Listen: netip.MustParseAddr("127.0.0.1"), LANPrefix: testLAN, Domain: "bad..name"},
	} {
		if err := New(cfg).Start(context.Background()); err == nil {
			t.Errorf("%+v: started", cfg)
		}
	}
	// An address the host does not have cannot be bound.
	f := New(Config{Listen: netip.MustParseAddr("192.0.2.1"), LANPrefix: netip.MustParsePrefix("192.0.2.0/24"), Port: freePort(t)})
	if err := f.Start(context.Background()); err == nil {
		f.Stop(context.Background())
		t.Error("started on an address the host does not have")
	}
}

func TestSetUpstreamsIgnoresSelf(t *testing.T) {
	f := startForwarder(t, nil)
	f.SetUpstreams([]netip.AddrPort{f.addr, {}, netip.MustParseAddrPort("0.0.0.0:53")})
	wantRcode(t, askA(t, f, "example.test."), mdns.RcodeServerFailure)
	f.SetUpstreams([]netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("::ffff:192.0.2.53"), 0)})
	f.mu.Lock()
	got := f.upstreams
	f.mu.Unlock()
	if len(got) != 1 || got[0] != netip.MustParseAddrPort("192.0.2.53:53") {
		t.Errorf("upstreams %v", got)
	}
}

func TestParseReverse(t *testing.T) {
	for name, want := range map[string]string{
		"1.43.168.192.in-addr.arpa.": "192.168.43.1",
		"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.": "4321:0:1:2:3:4:567:89ab",
		"43.168.192.in-addr.arpa.":     "",
		"01.43.168.192.in-addr.arpa.":  "",
		"256.43.168.192.in-addr.arpa.": "",
		"x.43.168.192.in-addr.arpa.":   "",
		"example.test.":                "",
	} {
		got, ok := parseReverse(name)
		if want == "" {
			if ok {
				t.Errorf("%s: %v, want none", name, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(want) {
			t.Errorf("%s: %v %v, want %s", name, got, ok, want)
		}
	}
}
