package modem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"

	"github.com/openmifi/openmifi/internal/clock"
)

// testLease is a lease of ip/24 from 10.0.0.1 for lt; t1 and t2 are sent
// when set.
func testLease(t *testing.T, ip string, lt, t1, t2 time.Duration) *nclient4.Lease {
	t.Helper()
	ack, err := testACK(ip, lt, t1, t2)
	if err != nil {
		t.Fatal(err)
	}
	return &nclient4.Lease{Offer: ack, ACK: ack}
}

func testACK(ip string, lt, t1, t2 time.Duration) (*dhcpv4.DHCPv4, error) {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(net.ParseIP(ip)),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.ParseIP("10.0.0.1"))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.0.0.1"))),
		dhcpv4.WithOption(dhcpv4.OptDNS(net.ParseIP("10.0.0.1"))),
	}
	if lt > 0 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(lt)))
	}
	if t1 > 0 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(t1)))
	}
	if t2 > 0 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(t2)))
	}
	return dhcpv4.New(mods...)
}

func TestLeaseTimes(t *testing.T) {
	for _, c := range []struct {
		lt, t1, t2             time.Duration
		want1, want2, wantLife time.Duration
	}{
		{time.Hour, 0, 0, 30 * time.Minute, 52*time.Minute + 30*time.Second, time.Hour},
		{time.Hour, 10 * time.Minute, 20 * time.Minute, 10 * time.Minute, 20 * time.Minute, time.Hour},
		// T2 beyond the lease and T1 beyond T2 are the server's mistakes.
		{time.Hour, 50 * time.Minute, 2 * time.Hour, 50 * time.Minute, 52*time.Minute + 30*time.Second, time.Hour},
		{time.Hour, 40 * time.Minute, 35 * time.Minute, 30 * time.Minute, 35 * time.Minute, time.Hour},
		{time.Hour, 0, 20 * time.Minute, 20 * time.Minute, 20 * time.Minute, time.Hour},
		{0, 0, 0, infiniteLease / 2, infiniteLease / 8 * 7, infiniteLease},
	} {
		t1, t2, lt := leaseTimes(testLease(t, "10.0.0.2", c.lt, c.t1, c.t2).ACK)
		if t1 != c.want1 || t2 != c.want2 || lt != c.wantLife {
			t.Errorf("lease %v T1 %v T2 %v: got %v %v %v, want %v %v %v", c.lt, c.t1, c.t2, t1, t2, lt, c.want1, c.want2, c.wantLife)
		}
	}
}

// armClock is a fake clock that says when a timer is armed, so that a test
// moves it on only once the keeper waits.
type armClock struct {
	*clock.Fake
	armed chan time.Duration
}

func (c armClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := c.Fake.AfterFunc(d, f)
	c.armed <- d
	return t
}

type dhcpCall struct {
	op string
	at time.Duration // since epoch
}

type dhcpAnswer struct {
	l   *nclient4.Lease
	err error
}

// fakeDHCP is a DHCP server the test answers for, one exchange at a time.
type fakeDHCP struct {
	clk      clock.Clock
	calls    chan dhcpCall
	answers  chan dhcpAnswer
	mu       sync.Mutex
	released []string
}

func (f *fakeDHCP) do(ctx context.Context, op string) (*nclient4.Lease, error) {
	select {
	case f.calls <- dhcpCall{op, f.clk.Now().Sub(epoch)}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case a := <-f.answers:
		return a.l, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *fakeDHCP) Discover(ctx context.Context) (*nclient4.Lease, error) {
	return f.do(ctx, "discover")
}

func (f *fakeDHCP) Renew(ctx context.Context, _ *nclient4.Lease) (*nclient4.Lease, error) {
	return f.do(ctx, "renew")
}

func (f *fakeDHCP) Rebind(ctx context.Context, _ *nclient4.Lease) (*nclient4.Lease, error) {
	return f.do(ctx, "rebind")
}

func (f *fakeDHCP) Release(l *nclient4.Lease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, l.ACK.YourIPAddr.String())
	return nil
}

var errNoAnswer = errors.New("no answer (test)")

// keeperRig runs a keeper on a fake clock and a fake server.
type keeperRig struct {
	t      *testing.T
	clk    armClock
	srv    *fakeDHCP
	k      *keeper
	out    chan AddrChange
	mu     sync.Mutex
	ops    []string // apply and remove, in order
	cancel context.CancelFunc
	done   chan struct{}
}

func startKeeper(t *testing.T, l *nclient4.Lease, modemDNS ...netip.Addr) *keeperRig {
	t.Helper()
	clk := armClock{clock.NewFake(epoch), make(chan time.Duration, 100)}
	r := &keeperRig{t: t, clk: clk, out: make(chan AddrChange, 100), done: make(chan struct{}),
		srv: &fakeDHCP{clk: clk, calls: make(chan dhcpCall), answers: make(chan dhcpAnswer)}}
	r.k = &keeper{
		iface: "usb0", client: r.srv, clk: clk, dns: modemDNS, out: r.out,
		log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		apply: func(a Addressing) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.ops = append(r.ops, fmt.Sprintf("apply %v gw %v dns %v", a.Addrs, a.Gateway, a.DNS))
			return nil
		},
		remove: func() error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.ops = append(r.ops, "remove")
			return nil
		},
		cur: l,
	}
	a, err := r.k.addressing(l)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.k.run(ctx, l, a)
	}()
	t.Cleanup(r.stop)
	return r
}

// stop ends the keeper and checks that it left no timer behind.
func (r *keeperRig) stop() {
	r.t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(waitLimit):
		r.t.Fatal("the keeper did not stop")
	}
	if n := r.clk.Pending(); n != 0 {
		r.t.Errorf("%d timers left armed", n)
	}
}

func (r *keeperRig) armed() time.Duration {
	r.t.Helper()
	select {
	case d := <-r.clk.armed:
		return d
	case <-time.After(waitLimit):
		r.t.Fatal("the keeper armed no timer")
		return 0
	}
}

// call is the next exchange, as "op at"; renewals and rebinds arm the
// timer that cuts them short just before, which is taken here.
func (r *keeperRig) call() string {
	r.t.Helper()
	select {
	case c := <-r.srv.calls:
		if c.op != "discover" {
			r.armed()
		}
		return fmt.Sprintf("%s %v", c.op, c.at)
	case <-time.After(waitLimit):
		r.t.Fatal("no DHCP exchange")
		return ""
	}
}

// next moves the clock to the keeper's next timer and returns the
// exchange that follows.
func (r *keeperRig) next() string {
	r.t.Helper()
	r.clk.Advance(r.armed())
	return r.call()
}

func (r *keeperRig) reply(l *nclient4.Lease, err error) {
	r.t.Helper()
	select {
	case r.srv.answers <- dhcpAnswer{l, err}:
	case <-time.After(waitLimit):
		r.t.Fatal("nobody waits for an answer")
	}
}

func (r *keeperRig) change() AddrChange {
	r.t.Helper()
	select {
	case c := <-r.out:
		return c
	case <-time.After(waitLimit):
		r.t.Fatal("no addressing change")
		return AddrChange{}
	}
}

func (r *keeperRig) applied() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ops...)
}

// TestLeaseRenewedAtT1: an hour's lease without T1 is renewed every half
// hour, and nothing changes on the interface.
func TestLeaseRenewedAtT1(t *testing.T) {
	l := testLease(t, "10.0.0.2", time.Hour, 0, 0)
	r := startKeeper(t, l)
	for i := 1; i <= 4; i++ {
		want := fmt.Sprintf("renew %v", time.Duration(i)*30*time.Minute)
		if got := r.next(); got != want {
			t.Fatalf("exchange %d: %s, want %s", i, got, want)
		}
		r.reply(testLease(t, "10.0.0.2", time.Hour, 0, 0), nil)
	}
	r.armed() // the fifth T1
	if ops := r.applied(); len(ops) != 0 {
		t.Errorf("the interface was touched: %q", ops)
	}
	if len(r.out) != 0 {
		t.Errorf("changes reported: %v", <-r.out)
	}
}

// TestLeaseRenewRebindExpire: nobody answers. Renewals from T1 (option
// 58) halve the time left to T2 down to a minute, rebinds from T2 (59)
// the time left to expiry; then the address goes, the loss is told, and
// discovery backs off until a server answers, with another address.
func TestLeaseRenewRebindExpire(t *testing.T) {
	l := testLease(t, "10.0.0.2", time.Hour, 20*time.Minute, 40*time.Minute)
	dns := netip.MustParseAddr("100.64.0.53")
	r := startKeeper(t, l, dns)
	var got []string
	for {
		c := r.next()
		got = append(got, c)
		if strings.HasPrefix(c, "discover") || len(got) > 20 {
			break
		}
		r.reply(nil, errNoAnswer)
	}
	want := []string{
		"renew 20m0s", "renew 30m0s", "renew 35m0s", "renew 37m30s", "renew 38m45s", "renew 39m45s",
		"rebind 40m0s", "rebind 50m0s", "rebind 55m0s", "rebind 57m30s", "rebind 58m45s", "rebind 59m45s",
		"discover 1h0m0s",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("exchanges\n got %v\nwant %v", got, want)
	}
	if c := r.change(); c.Lost != ReasonLeaseExpired || c.Iface != "usb0" || len(c.Addressing.Addrs) != 0 {
		t.Errorf("change %+v", c)
	}
	if ops := r.applied(); fmt.Sprint(ops) != "[remove]" {
		t.Errorf("interface: %q", ops)
	}
	r.reply(nil, errNoAnswer)
	if c := r.next(); c != "discover 1h0m1s" {
		t.Errorf("first retry: %s", c)
	}
	r.reply(nil, errNoAnswer)
	if c := r.next(); c != "discover 1h0m3s" {
		t.Errorf("second retry: %s", c)
	}
	r.reply(testLease(t, "10.0.0.9", time.Hour, 0, 0), nil)
	c := r.change()
	if c.Lost != "" || fmt.Sprint(c.Addressing.Addrs) != "[10.0.0.9/24]" || fmt.Sprint(c.Addressing.DNS) != "[100.64.0.53]" {
		t.Errorf("change %+v", c)
	}
	if ops := r.applied(); len(ops) != 2 || ops[1] != "apply [10.0.0.9/24] gw 10.0.0.1 dns [100.64.0.53]" {
		t.Errorf("interface: %q", ops)
	}
	// The new lease is kept in turn.
	if c := r.next(); c != "renew 1h30m3s" {
		t.Errorf("after the new lease: %s", c)
	}
	r.reply(testLease(t, "10.0.0.9", time.Hour, 0, 0), nil)
	r.armed()
}

// TestLeaseAddressChanged: a renewal with another address is applied and
// reported.
func TestLeaseAddressChanged(t *testing.T) {
	r := startKeeper(t, testLease(t, "10.0.0.2", time.Hour, 0, 0))
	if c := r.next(); c != "renew 30m0s" {
		t.Fatal(c)
	}
	r.reply(testLease(t, "10.0.0.7", time.Hour, 0, 0), nil)
	c := r.change()
	if c.Lost != "" || fmt.Sprint(c.Addressing.Addrs) != "[10.0.0.7/24]" || c.Addressing.Gateway != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("change %+v", c)
	}
	if ops := r.applied(); fmt.Sprint(ops) != "[apply [10.0.0.7/24] gw 10.0.0.1 dns [10.0.0.1]]" {
		t.Errorf("interface: %q", ops)
	}
	r.armed()
	if r.k.cur == nil {
		t.Error("no lease held")
	}
}

// TestLeaseNAK: a refused renewal loses the address at once.
func TestLeaseNAK(t *testing.T) {
	r := startKeeper(t, testLease(t, "10.0.0.2", time.Hour, 0, 0))
	if c := r.next(); c != "renew 30m0s" {
		t.Fatal(c)
	}
	nak, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeNak))
	r.reply(nil, fmt.Errorf("renew: %w", &nclient4.ErrNak{Nak: nak}))
	if c := r.change(); c.Lost != ReasonLeaseRefused {
		t.Errorf("change %+v", c)
	}
	if c := r.call(); c != "discover 30m0s" {
		t.Errorf("after the NAK: %s", c)
	}
}

// TestLeaseRenewalCutAtT2: a renewal still unanswered at T2 gives way to
// rebinding.
func TestLeaseRenewalCutAtT2(t *testing.T) {
	r := startKeeper(t, testLease(t, "10.0.0.2", time.Hour, 0, 0))
	r.clk.Advance(r.armed())
	select {
	case c := <-r.srv.calls:
		if c.op != "renew" {
			t.Fatal(c)
		}
	case <-time.After(waitLimit):
		t.Fatal("no renewal")
	}
	if d := r.armed(); d != 22*time.Minute+30*time.Second {
		t.Errorf("renewal cut after %v", d)
	}
	r.clk.Advance(22*time.Minute + 30*time.Second)
	if c := r.call(); c != "rebind 52m30s" {
		t.Errorf("after the cut: %s", c)
	}
}

// TestLeaseKeeperStops: the keeper ends with its context, whether it
// sleeps or waits for a server, and leaves no timer.
func TestLeaseKeeperStops(t *testing.T) {
	r := startKeeper(t, testLease(t, "10.0.0.2", time.Hour, 0, 0))
	r.armed()
	r.stop()

	r = startKeeper(t, testLease(t, "10.0.0.2", time.Hour, 0, 0))
	if c := r.next(); c != "renew 30m0s" {
		t.Fatal(c)
	}
	r.stop()

	// An infinite lease has nothing to renew.
	r = startKeeper(t, testLease(t, "10.0.0.2", 0, 0, 0))
	r.stop()
	if len(r.clk.armed) != 0 {
		t.Error("a timer for an infinite lease")
	}
}

// watchAddresser is a fakeAddresser whose changes the test makes.
type watchAddresser struct {
	fakeAddresser
	ch     chan AddrChange
	closed atomic.Bool
}

func (w *watchAddresser) Changes() <-chan AddrChange { return w.ch }
func (w *watchAddresser) Close()                     { w.closed.Store(true) }

// TestDriverFollowsLease: the driver reports the connection down when the
// lease is lost and up again, with the new address, when it is back; no
// poll reports it up in between.
func TestDriverFollowsLease(t *testing.T) {
	m := &scriptModem{answers: defaultAnswers()}
	clk := clock.NewFake(epoch)
	wa := &watchAddresser{ch: make(chan AddrChange)}
	d := New(Config{
		Open: m.open, Clock: clk, ATTimeout: 24 * time.Hour,
		Log:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Interface: "usb0", Addressing: AddressingDHCP, Addresser: wa,
	})
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, rec) }()
	r := &rig{t: t, clk: clk, drv: d, rec: rec, addr: &wa.fakeAddresser}
	if got := r.expect("up", 0); !strings.HasPrefix(got, "up usb0 [10.20.30.40/32]") {
		t.Errorf("up: %s", got)
	}
	send := func(c AddrChange) {
		t.Helper()
		select {
		case wa.ch <- c:
		case <-time.After(waitLimit):
			t.Fatal("the driver does not take changes")
		}
	}
	send(AddrChange{Iface: "usb0", Lost: ReasonLeaseExpired})
	r.expect("down "+ReasonLeaseExpired, 0)
	// A poll while the lease is lost: the modem is asked for its signal,
	// and the connection stays down.
	polled := func() int { return strings.Count(strings.Join(m.commands(), "\n"), "AT+CSQ") }
	before := polled()
	clk.Advance(defaultSignalEvery)
	for deadline := time.Now().Add(waitLimit); polled() == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no poll")
		}
	}
	send(AddrChange{Iface: "usb0", Addressing: Addressing{Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.225.7/24")}}})
	if got := r.expect("up", 0); !strings.HasPrefix(got, "up usb0 [192.168.225.7/24]") {
		t.Errorf("after the new lease: %s", got)
	}
	if calls := wa.log(); len(calls) != 1 {
		t.Errorf("addresser calls %q: the context was not to be brought up again", calls)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v", err)
	}
	if !wa.closed.Load() {
		t.Error("the Watcher was not closed")
	}
}

// FuzzLease reads a server's ACK as the lease's upkeep does: timers in
// order, and an IPv4 address with a usable prefix or an error.
func FuzzLease(f *testing.F) {
	for _, seed := range []struct {
		ip         string
		lt, t1, t2 time.Duration
	}{
		{"10.0.0.2", time.Hour, 20 * time.Minute, 40 * time.Minute},
		{"192.168.225.10", 90 * time.Second, 2 * time.Hour, 0},
		{"0.0.0.0", 0, 0, 0},
	} {
		ack, err := testACK(seed.ip, seed.lt, seed.t1, seed.t2)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ack.ToBytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ack, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		t1, t2, lt := leaseTimes(ack)
		if t1 < 0 || t1 > t2 || t2 > lt {
			t.Errorf("T1 %v T2 %v lease %v", t1, t2, lt)
		}
		a, err := leaseAddressing(ack)
		if err != nil {
			return
		}
		if len(a.Addrs) != 1 || !a.Addrs[0].Addr().Is4() || a.Addrs[0].Bits() < 1 || a.Addrs[0].Bits() > 32 {
			t.Errorf("addresses %v", a.Addrs)
		}
	})
}

// TestLeaseDNSChanged: new DNS servers in a renewal are reported, and the
// interface is left alone.
func TestLeaseDNSChanged(t *testing.T) {
	r := startKeeper(t, testLease(t, "10.0.0.2", time.Hour, 0, 0))
	if c := r.next(); c != "renew 30m0s" {
		t.Fatal(c)
	}
	l := testLease(t, "10.0.0.2", time.Hour, 0, 0)
	l.ACK.UpdateOption(dhcpv4.OptDNS(net.ParseIP("10.0.0.53")))
	r.reply(l, nil)
	if c := r.change(); fmt.Sprint(c.Addressing.DNS) != "[10.0.0.53]" || fmt.Sprint(c.Addressing.Addrs) != "[10.0.0.2/24]" {
		t.Errorf("change %+v", c)
	}
	if ops := r.applied(); len(ops) != 0 {
		t.Errorf("the interface was touched: %q", ops)
	}
	r.armed()
}

func TestNetlinkDHCPTimeout(t *testing.T) {
	if c := (&Netlink{}).client("usb0"); c.timeout != 5*time.Second {
		t.Errorf("default DHCP timeout %v", c.timeout)
	}
	if c := (&Netlink{DHCPTimeout: time.Second}).client("usb0"); c.timeout != time.Second {
		t.Errorf("DHCP timeout %v", c.timeout)
	}
}
