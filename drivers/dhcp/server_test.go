package dhcp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/ratelog"
)

// These tests drive the server's packet handling with a fake clock and a
// recorder instead of sockets: hours of lease life in microseconds.

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type sent struct {
	msg *dhcpv4.DHCPv4
	dst destination
}

// recorder stands in for the sockets. check, when set, runs before each
// send, to see what the disk holds when a reply leaves.
type recorder struct {
	mu    sync.Mutex
	sent  []sent
	check func(*dhcpv4.DHCPv4)
}

func (r *recorder) send(b []byte, dst destination) error {
	m, err := dhcpv4.FromBytes(b)
	if err != nil {
		return fmt.Errorf("server sent an unparsable reply: %w", err)
	}
	if r.check != nil {
		r.check(m)
	}
	r.mu.Lock()
	r.sent = append(r.sent, sent{m, dst})
	r.mu.Unlock()
	return nil
}

func (r *recorder) take() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sent
	r.sent = nil
	return s
}

type harness struct {
	t     testing.TB
	s     *Server
	clock *clock.Fake
	rec   *recorder
	file  string
	logs  *bytes.Buffer
}

func newHarness(t testing.TB, max int, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: clock.NewFake(t0), rec: &recorder{}, file: filepath.Join(t.TempDir(), "leases"), logs: &bytes.Buffer{}}
	h.start(max, mod)
	return h
}

// quiet drops the server's log lines, for runs too long to keep them.
func quiet(c *Config) { c.Log = slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start creates a server over h's lease file, as a restart of hotspotd
// would.
func (h *harness) start(max int, mod func(*Config)) {
	h.t.Helper()
	cfg := Config{
		Interface: "lan-test",
		LeaseFile: h.file,
		Clock:     h.clock,
		Log:       slog.New(slog.NewTextHandler(&lockedWriter{w: h.logs}, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := s.load(max); err != nil {
		h.t.Fatal(err)
	}
	s.mu.Lock()
	s.tx, s.mtu = h.rec, 1500
	s.mu.Unlock()
	h.s = s
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// send hands the server one packet and returns every reply it sent,
// committed ones included.
func (h *harness) send(m *dhcpv4.DHCPv4) []sent {
	h.t.Helper()
	h.s.receive([][]byte{m.ToBytes()})
	h.s.commit()
	return h.rec.take()
}

// one sends m and expects exactly one reply of type want (0: none).
func (h *harness) one(m *dhcpv4.DHCPv4, want dhcpv4.MessageType) sent {
	h.t.Helper()
	got := h.send(m)
	if want == 0 {
		if len(got) != 0 {
			h.t.Fatalf("%s got %d replies, want none: %s", m.MessageType(), len(got), got[0].msg.Summary())
		}
		return sent{}
	}
	if len(got) != 1 {
		h.t.Fatalf("%s got %d replies, want one %s", m.MessageType(), len(got), want)
	}
	if got[0].msg.MessageType() != want {
		h.t.Fatalf("%s got %s (%s), want %s", m.MessageType(), got[0].msg.MessageType(), got[0].msg.Message(), want)
	}
	if got[0].msg.TransactionID != m.TransactionID {
		h.t.Fatalf("reply has xid %s, want %s", got[0].msg.TransactionID, m.TransactionID)
	}
	return got[0]
}

type client struct {
	mac  net.HardwareAddr
	id   []byte // client identifier, nil for none
	host string
	addr netip.Addr
}

func newClient(n int) *client {
	return &client{mac: net.HardwareAddr{0x02, 0, 0, 0, byte(n >> 8), byte(n)}, host: fmt.Sprintf("host%d", n)}
}

func (c *client) msg(typ dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{
		dhcpv4.WithHwAddr(c.mac),
		dhcpv4.WithMessageType(typ),
	}, mods...)...)
	if err != nil {
		panic(err)
	}
	if c.id != nil {
		m.UpdateOption(dhcpv4.OptClientIdentifier(c.id))
	}
	if c.host != "" {
		m.UpdateOption(dhcpv4.OptHostName(c.host))
	}
	return m
}

func (c *client) discover() *dhcpv4.DHCPv4 { return c.msg(dhcpv4.MessageTypeDiscover) }

func (c *client) selecting(addr netip.Addr) *dhcpv4.DHCPv4 {
	return c.msg(dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(addr.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(DefaultServerAddr.AsSlice())))
}

func (c *client) initReboot(addr netip.Addr) *dhcpv4.DHCPv4 {
	return c.msg(dhcpv4.MessageTypeRequest, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(addr.AsSlice())))
}

func (c *client) renewing() *dhcpv4.DHCPv4 {
	return c.msg(dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(c.addr.AsSlice()))
}

func (c *client) release() *dhcpv4.DHCPv4 {
	return c.msg(dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(c.addr.AsSlice()),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(DefaultServerAddr.AsSlice())))
}

func addrOf(m *dhcpv4.DHCPv4) netip.Addr {
	a, _ := netip.AddrFromSlice(m.YourIPAddr.To4())
	return a
}

// bind runs DISCOVER, OFFER, REQUEST, ACK and returns the address.
func (h *harness) bind(c *client) netip.Addr {
	h.t.Helper()
	offer := h.one(c.discover(), dhcpv4.MessageTypeOffer)
	ack := h.one(c.selecting(addrOf(offer.msg)), dhcpv4.MessageTypeAck)
	if addrOf(ack.msg) != addrOf(offer.msg) {
		h.t.Fatalf("ACK for %v, offered %v", addrOf(ack.msg), addrOf(offer.msg))
	}
	c.addr = addrOf(ack.msg)
	return c.addr
}

func TestOfferAndAckCarryTheOptions(t *testing.T) {
	h := newHarness(t, 5, nil)
	c := newClient(1)
	offer := h.one(c.discover(), dhcpv4.MessageTypeOffer)
	a := addrOf(offer.msg)
	if a != netip.MustParseAddr("192.168.43.10") {
		t.Errorf("first offer is %v, want the pool's first address", a)
	}
	// No broadcast flag: the offer goes to the client's hardware address.
	if offer.dst.mac.String() != c.mac.String() || offer.dst.ip != a || offer.dst.port != 68 {
		t.Errorf("offer sent to %+v, want %v at %v:68", offer.dst, c.mac, a)
	}
	ack := h.one(c.selecting(a), dhcpv4.MessageTypeAck)
	for _, m := range []*dhcpv4.DHCPv4{offer.msg, ack.msg} {
		checkOptions(t, m, time.Hour)
	}
	ls := h.s.Leases()
	if len(ls) != 1 || ls[0].Addr != a || ls[0].Hostname != "host1" || ls[0].MAC.String() != c.mac.String() || !ls[0].Expires.Equal(t0.Add(time.Hour)) {
		t.Errorf("Leases() = %+v", ls)
	}
	// With the broadcast flag, replies are broadcast.
	c2 := newClient(2)
	m := c2.discover()
	m.SetBroadcast()
	if o := h.one(m, dhcpv4.MessageTypeOffer); o.dst.mac.String() != broadcastMAC.String() || o.dst.ip != netip.MustParseAddr("255.255.255.255") {
		t.Errorf("broadcast offer sent to %+v", o.dst)
	}
}

func checkOptions(t *testing.T, m *dhcpv4.DHCPv4, lease time.Duration) {
	t.Helper()
	server := net.IP(DefaultServerAddr.AsSlice())
	if !m.ServerIdentifier().Equal(server) {
		t.Errorf("%s: server identifier %v", m.MessageType(), m.ServerIdentifier())
	}
	if r := m.Router(); len(r) != 1 || !r[0].Equal(server) {
		t.Errorf("%s: router %v", m.MessageType(), r)
	}
	if d := m.DNS(); len(d) != 1 || !d[0].Equal(server) {
		t.Errorf("%s: DNS %v", m.MessageType(), d)
	}
	if mask := m.SubnetMask(); net.IP(mask).String() != "255.255.255.0" {
		t.Errorf("%s: mask %v", m.MessageType(), net.IP(mask))
	}
	if d := m.DomainName(); d != "lan" {
		t.Errorf("%s: domain %q", m.MessageType(), d)
	}
	if mtu := m.Options.Get(dhcpv4.OptionInterfaceMTU); !bytes.Equal(mtu, []byte{5, 220}) {
		t.Errorf("%s: MTU option %v", m.MessageType(), mtu)
	}
	if lt := m.IPAddressLeaseTime(0); lt != lease {
		t.Errorf("%s: lease time %v, want %v", m.MessageType(), lt, lease)
	}
	if t1 := m.IPAddressRenewalTime(0); t1 != lease/2 {
		t.Errorf("%s: T1 %v", m.MessageType(), t1)
	}
	if t2 := m.IPAddressRebindingTime(0); t2 != lease*7/8 {
		t.Errorf("%s: T2 %v", m.MessageType(), t2)
	}
}

func TestClientGetsItsAddressBack(t *testing.T) {
	h := newHarness(t, 5, nil)
	a, b := newClient(1), newClient(2)
	addrA := h.bind(a)
	h.bind(b)
	h.one(a.release(), 0)
	if len(h.s.Leases()) != 1 {
		t.Fatalf("after RELEASE: %v", h.s.Leases())
	}
	// New clients take other addresses, even long after the release.
	h.clock.Advance(3 * time.Hour)
	for i := 3; i < 8; i++ {
		if got := h.bind(newClient(i)); got == addrA {
			t.Fatalf("client %d got %v, the address remembered for another client", i, got)
		}
	}
	h.clock.Advance(3 * time.Hour)
	if got := h.bind(a); got != addrA {
		t.Errorf("returning client got %v, want %v", got, addrA)
	}
	// A client identifier is the client, not the hardware address.
	c1, c2 := newClient(20), newClient(20)
	c1.id, c2.id = []byte{1, 2, 3}, []byte{4, 5, 6}
	if h.bind(c1) == h.bind(c2) {
		t.Error("two client identifiers on one hardware address share an address")
	}
}

func TestMaxLeases(t *testing.T) {
	h := newHarness(t, 3, nil)
	cs := []*client{newClient(1), newClient(2), newClient(3)}
	for _, c := range cs {
		h.bind(c)
	}
	fourth := newClient(4)
	h.one(fourth.discover(), 0)
	h.one(fourth.initReboot(netip.MustParseAddr("192.168.43.99")), dhcpv4.MessageTypeNak)
	if st := h.s.Stats(); st.PoolFull != 2 {
		t.Errorf("PoolFull = %d, want 2", st.PoolFull)
	}
	if !strings.Contains(h.logs.String(), "pool full") {
		t.Errorf("no log line for the refused DISCOVER:\n%s", h.logs)
	}
	// The three renew as usual.
	for _, c := range cs {
		h.one(c.renewing(), dhcpv4.MessageTypeAck)
	}
	h.one(cs[1].release(), 0)
	h.bind(fourth)
	h.one(cs[1].discover(), 0)
	if n := len(h.s.Leases()); n != 3 {
		t.Errorf("%d leases, want 3", n)
	}
}

func TestOfferReservesASlotBriefly(t *testing.T) {
	h := newHarness(t, 1, nil)
	a, b := newClient(1), newClient(2)
	h.one(a.discover(), dhcpv4.MessageTypeOffer)
	h.one(b.discover(), 0)
	h.clock.Advance(offerHold)
	offer := h.one(b.discover(), dhcpv4.MessageTypeOffer)
	h.one(b.selecting(addrOf(offer.msg)), dhcpv4.MessageTypeAck)
	// a's offer lapsed, so its REQUEST finds the pool full.
	h.one(a.selecting(netip.MustParseAddr("192.168.43.10")), dhcpv4.MessageTypeNak)
}

func TestLeaseExpires(t *testing.T) {
	h := newHarness(t, 1, nil)
	a, b := newClient(1), newClient(2)
	h.bind(a)
	h.clock.Advance(59 * time.Minute)
	h.one(b.discover(), 0)
	h.one(a.renewing(), dhcpv4.MessageTypeAck)
	h.clock.Advance(59 * time.Minute)
	h.one(b.discover(), 0)
	h.clock.Advance(time.Minute)
	if len(h.s.Leases()) != 0 {
		t.Fatalf("expired lease still listed: %v", h.s.Leases())
	}
	if got := h.bind(b); got == a.addr {
		t.Errorf("b got a's address %v though other addresses are free", got)
	}
	// a's lease expired and its slot is taken: its renewal is refused.
	h.one(a.renewing(), dhcpv4.MessageTypeNak)
}

func TestRequestStates(t *testing.T) {
	h := newHarness(t, 5, nil)
	a, b := newClient(1), newClient(2)
	h.bind(a)
	h.bind(b)

	// RENEWING: unicast to the client's address, through the kernel.
	ack := h.one(a.renewing(), dhcpv4.MessageTypeAck)
	if ack.dst.mac != nil || ack.dst.ip != a.addr || ack.dst.port != 68 || addrOf(ack.msg) != a.addr || !ack.msg.ClientIPAddr.Equal(a.addr.AsSlice()) {
		t.Errorf("renewal ACK %v sent to %+v", addrOf(ack.msg), ack.dst)
	}
	// REBINDING looks the same to the server (broadcast flag aside).
	m := a.renewing()
	m.SetBroadcast()
	h.one(m, dhcpv4.MessageTypeAck)

	// INIT-REBOOT: its own address is confirmed, another client's or
	// one from another network is refused, by broadcast.
	h.one(a.initReboot(a.addr), dhcpv4.MessageTypeAck)
	nak := h.one(a.initReboot(b.addr), dhcpv4.MessageTypeNak)
	if nak.dst.mac.String() != broadcastMAC.String() {
		t.Errorf("NAK sent to %+v, want broadcast", nak.dst)
	}
	h.one(a.initReboot(netip.MustParseAddr("10.0.0.7")), dhcpv4.MessageTypeNak)
	h.one(a.initReboot(DefaultServerAddr), dhcpv4.MessageTypeNak)

	// SELECTING for another server: no reply, and our offer is free.
	c := newClient(3)
	offer := h.one(c.discover(), dhcpv4.MessageTypeOffer)
	other := c.msg(dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 1, 1, 5))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 1, 1, 1))))
	h.one(other, 0)
	h.s.mu.Lock()
	i, _ := h.s.tab.index(addrOf(offer.msg))
	held := h.s.tab.holdsSlot(i, h.clock.Now())
	h.s.mu.Unlock()
	if held {
		t.Error("offer still held after the client chose another server")
	}

	// A client the server has no record of keeps a free address it
	// renews (the server is authoritative for its LAN).
	d := newClient(4)
	d.addr = netip.MustParseAddr("192.168.43.200")
	h.one(d.renewing(), dhcpv4.MessageTypeAck)
	// A client moving to another free address gives up its old one.
	h.one(d.initReboot(netip.MustParseAddr("192.168.43.201")), dhcpv4.MessageTypeAck)
	if n := len(h.s.Leases()); n != 3 {
		t.Errorf("%d leases after the move, want 3: %v", n, h.s.Leases())
	}
	// A REQUEST without any address is dropped.
	h.one(d.msg(dhcpv4.MessageTypeRequest), 0)
}

func TestStationLeft(t *testing.T) {
	grace := time.Minute
	h := newHarness(t, 1, func(c *Config) { c.StationGrace = grace })
	a, b := newClient(1), newClient(2)
	addrA := h.bind(a)

	// A station that left and came back within the grace period keeps
	// its slot.
	h.s.StationChanged(a.mac, false)
	h.clock.Advance(grace / 2)
	h.s.StationChanged(a.mac, true)
	h.clock.Advance(grace)
	h.one(b.discover(), 0)

	h.s.StationLeft(a.mac)
	h.clock.Advance(grace - time.Second)
	h.one(b.discover(), 0)
	if len(h.s.Leases()) != 1 {
		t.Fatal("lease of a station within its grace period not listed")
	}
	h.clock.Advance(time.Second)
	if len(h.s.Leases()) != 0 {
		t.Fatal("lease of a station gone past its grace period still listed")
	}
	if got := h.bind(b); got == addrA {
		t.Fatalf("b got %v, still a's until its lease expires", got)
	}
	// a is back: the slot is b's now.
	h.one(a.discover(), 0)
	h.one(a.renewing(), dhcpv4.MessageTypeNak)
	h.one(b.release(), 0)
	if got := h.bind(a); got != addrA {
		t.Errorf("a came back to %v, want %v", got, addrA)
	}
}

func TestDeclineQuarantines(t *testing.T) {
	h := newHarness(t, 5, nil)
	a := newClient(1)
	bad := h.bind(a)
	h.one(a.msg(dhcpv4.MessageTypeDecline,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(bad.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(DefaultServerAddr.AsSlice()))), 0)
	if len(h.s.Leases()) != 0 {
		t.Fatal("declined lease still listed")
	}
	if got := h.bind(a); got == bad {
		t.Fatal("declined address offered again at once")
	}
	b := newClient(2)
	h.one(b.initReboot(bad), dhcpv4.MessageTypeNak)
	h.clock.Advance(declineHold)
	h.one(b.initReboot(bad), dhcpv4.MessageTypeAck)
	// A DECLINE for an address the client does not have is ignored.
	h.one(a.msg(dhcpv4.MessageTypeDecline, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(bad.AsSlice()))), 0)
	if len(h.s.Leases()) != 2 {
		t.Errorf("leases after a bogus DECLINE: %v", h.s.Leases())
	}
}

func TestInform(t *testing.T) {
	h := newHarness(t, 5, nil)
	c := newClient(1)
	c.addr = netip.MustParseAddr("192.168.43.5")
	ack := h.one(c.msg(dhcpv4.MessageTypeInform, dhcpv4.WithClientIP(c.addr.AsSlice())), dhcpv4.MessageTypeAck)
	if ack.dst.ip != c.addr || ack.dst.mac != nil || !ack.msg.YourIPAddr.IsUnspecified() {
		t.Errorf("INFORM's ACK for %v sent to %+v", ack.msg.YourIPAddr, ack.dst)
	}
	if ack.msg.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
		t.Error("INFORM's ACK carries a lease time")
	}
	if r := ack.msg.Router(); len(r) != 1 {
		t.Errorf("INFORM's ACK without router: %v", r)
	}
	if len(h.s.Leases()) != 0 {
		t.Error("INFORM created a lease")
	}
	c.addr = netip.MustParseAddr("10.0.0.5")
	h.one(c.msg(dhcpv4.MessageTypeInform, dhcpv4.WithClientIP(c.addr.AsSlice())), 0)
}

func TestRelay(t *testing.T) {
	h := newHarness(t, 5, nil)
	c := newClient(1)
	relay := netip.MustParseAddr("192.168.43.2")
	m := c.discover()
	m.GatewayIPAddr = relay.AsSlice()
	o := h.one(m, dhcpv4.MessageTypeOffer)
	if o.dst.ip != relay || o.dst.port != 67 || o.dst.mac != nil || !o.msg.GatewayIPAddr.Equal(relay.AsSlice()) {
		t.Errorf("relayed offer sent to %+v", o.dst)
	}
	m.GatewayIPAddr = net.IPv4(10, 0, 0, 1)
	h.one(m, 0)
}

func TestAckLeavesOnlyOnceOnDisk(t *testing.T) {
	h := newHarness(t, 5, nil)
	c := newClient(1)
	offer := h.one(c.discover(), dhcpv4.MessageTypeOffer)
	h.rec.check = func(m *dhcpv4.DHCPv4) {
		data, err := os.ReadFile(h.file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(`"`+addrOf(m).String()+`"`)) {
			t.Errorf("%s for %v sent before the lease file has it:\n%s", m.MessageType(), addrOf(m), data)
		}
	}
	pkt := c.selecting(addrOf(offer.msg)).ToBytes()
	h.s.receive([][]byte{pkt})
	if got := h.rec.take(); len(got) != 0 {
		t.Fatalf("ACK sent before the commit: %v", got[0].msg.Summary())
	}
	// The read loop reuses its buffers while the ACK waits.
	clear(pkt)
	h.s.commit()
	got := h.rec.take()
	if len(got) != 1 {
		t.Fatalf("%d replies after the commit, want the ACK", len(got))
	}
	if got[0].dst.mac.String() != c.mac.String() {
		t.Errorf("ACK sent to %v, want %v", got[0].dst.mac, c.mac)
	}
}

func TestGroupCommit(t *testing.T) {
	h := newHarness(t, 50, nil)
	var pkts [][]byte
	for i := range 20 {
		c := newClient(i)
		offer := h.one(c.discover(), dhcpv4.MessageTypeOffer)
		pkts = append(pkts, c.selecting(addrOf(offer.msg)).ToBytes())
	}
	before := h.s.Stats().Commits
	h.s.receive(pkts)
	h.s.commit()
	if got := len(h.rec.take()); got != 20 {
		t.Fatalf("%d ACKs, want 20", got)
	}
	if n := h.s.Stats().Commits - before; n != 1 {
		t.Errorf("20 ACKs took %d syncs, want 1", n)
	}
}

func TestLeasesSurviveRestart(t *testing.T) {
	h := newHarness(t, 3, nil)
	cs := []*client{newClient(1), newClient(2), newClient(3)}
	cs[2].id = []byte{0xff, 1, 2, 3, 4}
	for _, c := range cs {
		h.bind(c)
	}
	before := h.s.Leases()
	h.clock.Advance(10 * time.Minute)
	h.start(3, nil)
	after := h.s.Leases()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("leases before the restart:\n%v\nafter:\n%v", before, after)
	}
	h.one(newClient(4).discover(), 0)
	for _, c := range cs {
		old := c.addr
		if got := h.bind(c); got != old {
			t.Errorf("client %v: %v after the restart, want %v", c.mac, got, old)
		}
	}
}

func TestJournalIsCompacted(t *testing.T) {
	h := newHarness(t, 5, nil)
	c := newClient(1)
	h.bind(c)
	renewals := 3 * journalSpace / 150
	for range renewals {
		h.clock.Advance(time.Second)
		h.one(c.renewing(), dhcpv4.MessageTypeAck)
	}
	fi, err := os.Stat(h.file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 2*journalSpace {
		t.Errorf("lease file is %d bytes after %d renewals", fi.Size(), renewals)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("lease file mode %v", fi.Mode())
	}
	want := h.s.Leases()
	h.start(5, nil)
	if fmt.Sprint(h.s.Leases()) != fmt.Sprint(want) {
		t.Errorf("after a restart: %v, want %v", h.s.Leases(), want)
	}
}

func TestTornJournal(t *testing.T) {
	h := newHarness(t, 5, nil)
	a, b := newClient(1), newClient(2)
	h.bind(a)
	h.bind(b)
	f, err := os.OpenFile(h.file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Lines that make no sense where the next record would go, then
	// one cut short.
	f.WriteAt([]byte("{\"addr\":\"10.0.0.1\",\"client\":\"hw:02\"}\nnot json\n{\"addr\":\"192.168.43."), h.s.jr.off)
	f.Close()
	h.start(5, nil)
	if n := len(h.s.Leases()); n != 2 {
		t.Fatalf("%d leases after a torn write, want 2", n)
	}
	if !strings.Contains(h.logs.String(), "line skipped") || !strings.Contains(h.logs.String(), "outside the pool") {
		t.Errorf("no warning for the bad lines:\n%s", h.logs)
	}
	data, _ := os.ReadFile(h.file)
	data, _, _ = bytes.Cut(data, []byte{0})
	if !bytes.HasSuffix(data, []byte("\n")) || bytes.Contains(data, []byte("not json")) {
		t.Errorf("lease file not rewritten clean at start:\n%s", data)
	}
	if got := h.bind(a); got != a.addr {
		t.Errorf("a got %v, want %v", got, a.addr)
	}
}

func TestSetMaxLeasesRevokesNewest(t *testing.T) {
	h := newHarness(t, 3, nil)
	cs := []*client{newClient(1), newClient(2), newClient(3)}
	for _, c := range cs {
		h.bind(c)
		h.clock.Advance(time.Minute)
	}
	if err := h.s.SetMaxLeases(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	h.s.commit()
	ls := h.s.Leases()
	if len(ls) != 1 || ls[0].Addr != cs[0].addr {
		t.Fatalf("after lowering to 1: %v, want the oldest %v", ls, cs[0].addr)
	}
	h.one(cs[2].renewing(), dhcpv4.MessageTypeNak)
	h.one(cs[0].renewing(), dhcpv4.MessageTypeAck)
	if err := h.s.SetMaxLeases(context.Background(), 0); err == nil {
		t.Error("SetMaxLeases(0) accepted")
	}
	if err := h.s.SetMaxLeases(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	h.one(cs[2].renewing(), dhcpv4.MessageTypeAck)
}

func TestBadPacketsAreDroppedAndLoggedSparingly(t *testing.T) {
	h := newHarness(t, 5, nil)
	good := newClient(1).discover().ToBytes()
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	bad := map[string][]byte{
		"empty":     {},
		"truncated": good[:100],
		"oversized": append(bytes.Clone(good), make([]byte, 1500)...),
		"reply":     mutate(func(b []byte) []byte { b[0] = 2; return b }),
		"htype":     mutate(func(b []byte) []byte { b[1] = 6; return b }),
		"cookie":    mutate(func(b []byte) []byte { b[236] = 0; return b }),
		"long option": mutate(func(b []byte) []byte {
			return append(b[:240], 12, 200, 'x')
		}),
		"no type":     append(bytes.Clone(good[:240]), 255),
		"type length": append(bytes.Clone(good[:240]), 53, 2, 1, 1, 255),
		"two types":   append(bytes.Clone(good[:240]), 53, 1, 1, 53, 1, 1, 255),
		"offer":       append(bytes.Clone(good[:240]), 53, 1, 2, 255),
		"unknown":     append(bytes.Clone(good[:240]), 53, 1, 99, 255),
		"no end":      append(bytes.Clone(good[:240]), 53, 1, 1),
		"short reqip": append(bytes.Clone(good[:240]), 53, 1, 1, 50, 3, 1, 2, 3, 255),
		"empty cid":   append(bytes.Clone(good[:240]), 53, 1, 1, 61, 0, 255),
	}
	for name, b := range bad {
		for range 100 {
			h.s.receive([][]byte{b})
		}
		if got := h.rec.take(); len(got) != 0 {
			t.Errorf("%s: answered with %s", name, got[0].msg.Summary())
		}
	}
	if st := h.s.Stats(); st.Dropped != uint64(100*len(bad)) {
		t.Errorf("Dropped = %d, want %d", st.Dropped, 100*len(bad))
	}
	lines := strings.Count(h.logs.String(), "\n")
	if lines == 0 || lines > len(bad) {
		t.Errorf("%d log lines for %d kinds of bad packets:\n%s", lines, len(bad), h.logs)
	}
	// Later, the next bad packet is logged with the count of those left out.
	h.clock.Advance(ratelog.Every)
	h.s.receive([][]byte{good[:10]})
	if !strings.Contains(h.logs.String(), "suppressed=199") {
		t.Errorf("no count of suppressed lines:\n%s", h.logs)
	}
	// Still serving.
	h.bind(newClient(2))
}

// TestFloodDoesNotEvict floods a full pool with DISCOVERs from made-up
// hardware addresses: no client loses its address, renewals succeed, and
// the cost per flood packet stays small.
func TestFloodDoesNotEvict(t *testing.T) {
	h := newHarness(t, 3, nil)
	cs := []*client{newClient(1), newClient(2)}
	for _, c := range cs {
		h.bind(c)
	}
	const rounds = 300
	offered := map[string]bool{}
	var took time.Duration
	for r := range rounds {
		batch := make([][]byte, 0, batchSize)
		for i := range batchSize - 1 {
			batch = append(batch, newClient(1000+r*batchSize+i).discover().ToBytes())
		}
		// The renewal comes last in the batch; known clients go
		// first.
		batch = append(batch, cs[r%2].renewing().ToBytes())
		start := time.Now()
		h.s.receive(batch)
		took += time.Since(start)
		h.s.commit()
		got := h.rec.take()
		acks := 0
		for _, g := range got {
			switch g.msg.MessageType() {
			case dhcpv4.MessageTypeAck:
				acks++
			case dhcpv4.MessageTypeOffer:
				offered[g.msg.ClientHWAddr.String()] = true
			}
		}
		if acks != 1 {
			t.Fatalf("renewal during the flood: %d ACKs", acks)
		}
		if len(got) > 2 {
			t.Fatalf("%d replies to a batch of flood", len(got))
		}
		h.clock.Advance(time.Second)
	}
	t.Logf("%v per packet, syncs excluded", took/(rounds*batchSize))
	// One slot is free: one flooding client per offerHold gets it.
	if max := rounds/int(offerHold/time.Second) + 1; len(offered) > max {
		t.Errorf("%d flooding clients got offers, want at most %d", len(offered), max)
	}
	for _, c := range cs {
		old := c.addr
		if got := h.bind(c); got != old {
			t.Errorf("client %v moved from %v to %v", c.mac, old, got)
		}
	}
	if lines := strings.Count(h.logs.String(), "pool full"); lines > rounds/int(ratelog.Every/time.Second)+2 {
		t.Errorf("%d log lines for the flood", lines)
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Interface: "x", Prefix: netip.MustParsePrefix("2001:db8::/64")},
		{Interface: "x", ServerAddr: netip.MustParseAddr("10.0.0.1")},
		{Interface: "x", PoolStart: netip.MustParseAddr("192.168.43.100"), PoolEnd: netip.MustParseAddr("192.168.43.50")},
		{Interface: "x", PoolStart: netip.MustParseAddr("192.168.43.1")},
		{Interface: "x", PoolEnd: netip.MustParseAddr("192.168.43.255")},
		{Interface: "x", LeaseTime: time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	s, err := New(Config{Interface: "x", Prefix: netip.MustParsePrefix("10.1.0.0/16"), ServerAddr: netip.MustParseAddr("10.1.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.PoolStart != netip.MustParseAddr("10.1.0.10") || s.cfg.PoolEnd != netip.MustParseAddr("10.1.255.254") {
		t.Errorf("default pool %v-%v", s.cfg.PoolStart, s.cfg.PoolEnd)
	}
}

// BenchmarkFloodDiscover is the cost of one DISCOVER from an unknown
// client while the pool is full: the path a flood takes.
func BenchmarkFloodDiscover(b *testing.B) {
	h := newHarness(b, 1, nil)
	c := newClient(1)
	offer := h.one(c.discover(), dhcpv4.MessageTypeOffer)
	h.one(c.selecting(addrOf(offer.msg)), dhcpv4.MessageTypeAck)
	batch := make([][]byte, batchSize)
	for i := range batch {
		batch[i] = newClient(1000 + i).discover().ToBytes()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.s.receive(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/packet")
}

// BenchmarkRenewal is the server's own work for a renewal up to the ACK
// ready to send, disk write excluded.
func BenchmarkRenewal(b *testing.B) {
	h := newHarness(b, 1, quiet)
	c := newClient(1)
	h.bind(c)
	pkt := [][]byte{c.renewing().ToBytes()}
	b.ReportAllocs()
	for b.Loop() {
		h.s.receive(pkt)
		h.s.mu.Lock()
		h.s.waiting, h.s.dirty = h.s.waiting[:0], h.s.dirty[:0]
		clear(h.s.isDirty)
		h.s.mu.Unlock()
	}
}
