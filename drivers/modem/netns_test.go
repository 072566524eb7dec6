package modem

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openmifi/openmifi/drivers/dhcp"
	"github.com/openmifi/openmifi/internal/clock"
)

// testNS is a network namespace that lives as long as the test that made it.
type testNS string

func newNetns(t *testing.T, role string) testNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	name := fmt.Sprintf("mdm-%08x-%s", rand.Uint32(), role)
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns := testNS(name)
	ns.ip(t, "link", "set", "lo", "up")
	return ns
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (ns testNS) ip(t *testing.T, args ...string) string {
	t.Helper()
	return sh(t, append([]string{"ip", "-n", string(ns)}, args...)...)
}

func (ns testNS) open(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/var/run/netns/" + string(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// TestNetlinkStatic addresses an interface (a veth, as not every kernel
// has the dummy driver) from the modem's view, then removes the addresses
// again.
func TestNetlinkStatic(t *testing.T) {
	ns := newNetns(t, "static")
	ns.ip(t, "link", "add", "wwan0", "type", "veth", "peer", "name", "peer0")
	ns.ip(t, "link", "set", "peer0", "up")
	n := &Netlink{NetNS: ns.open(t)}
	want := Addressing{
		Addrs:   []netip.Prefix{netip.MustParsePrefix("100.64.1.2/30"), netip.MustParsePrefix("2001:db8:0:1::2/64")},
		Gateway: netip.MustParseAddr("100.64.1.1"),
		DNS:     []netip.Addr{netip.MustParseAddr("100.64.0.53")},
	}
	ctx := context.Background()
	got, err := n.Up(ctx, "wwan0", AddressingStatic, want)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Up: %v, want %v", got, want)
	}
	addrs := ns.ip(t, "addr", "show", "dev", "wwan0")
	for _, a := range []string{"inet 100.64.1.2/30", "inet6 2001:db8:0:1::2/64"} {
		if !strings.Contains(addrs, a) {
			t.Errorf("no %s:\n%s", a, addrs)
		}
	}
	if r := ns.ip(t, "-4", "route", "show", "default"); !strings.Contains(r, "default via 100.64.1.1 dev wwan0") {
		t.Errorf("default route: %q", r)
	}
	// Up again (the context came back) replaces rather than adds.
	want.Addrs = want.Addrs[:1]
	want.Addrs[0] = netip.MustParsePrefix("100.64.1.6/32")
	if _, err := n.Up(ctx, "wwan0", AddressingStatic, want); err != nil {
		t.Fatal(err)
	}
	addrs = ns.ip(t, "addr", "show", "dev", "wwan0")
	if strings.Contains(addrs, "100.64.1.2") || !strings.Contains(addrs, "inet 100.64.1.6/32") {
		t.Errorf("after the second Up:\n%s", addrs)
	}
	if r := ns.ip(t, "-4", "route", "show", "default"); !strings.Contains(r, "default dev wwan0") {
		t.Errorf("default route without a gateway on the link: %q", r)
	}
	if err := n.Down(ctx, "wwan0"); err != nil {
		t.Fatal(err)
	}
	if addrs := ns.ip(t, "addr", "show", "dev", "wwan0"); strings.Contains(addrs, "100.64.") || strings.Contains(addrs, "2001:db8") {
		t.Errorf("after Down:\n%s", addrs)
	}
	if _, err := n.Up(ctx, "nope0", AddressingStatic, want); err == nil {
		t.Error("Up on a missing interface succeeded")
	}
}

// TestNetlinkDHCP gets the address of an ECM-like interface from a DHCP
// server on the other end of a veth pair (openmifi's own, standing in for
// the modem's), and keeps the modem's DNS servers over the lease's. The
// lease's timers run on a fake clock: the hour's lease is renewed at T1
// with the real server, and the address kept; with the server gone it
// expires, the address goes, and it is got again when the server is back;
// Down releases it.
func TestNetlinkDHCP(t *testing.T) {
	host, mdm := newNetns(t, "host"), newNetns(t, "modem")
	sh(t, "ip", "link", "add", "usb0", "netns", string(host), "type", "veth", "peer", "name", "eth0", "netns", string(mdm))
	mdm.ip(t, "addr", "add", "192.168.225.1/24", "dev", "eth0")
	mdm.ip(t, "link", "set", "eth0", "up")
	srvCfg := dhcp.Config{
		Interface:  "eth0",
		ServerAddr: netip.MustParseAddr("192.168.225.1"),
		Prefix:     netip.MustParsePrefix("192.168.225.0/24"),
		LeaseFile:  filepath.Join(t.TempDir(), "leases"),
		NetNS:      mdm.open(t),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	startServer := func() *dhcp.Server {
		t.Helper()
		srv, err := dhcp.New(srvCfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(ctx, 8); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Stop(context.Background()) })
		return srv
	}
	srv := startServer()

	clk := armClock{clock.NewFake(epoch), make(chan time.Duration, 100)}
	armed := func() time.Duration {
		t.Helper()
		select {
		case d := <-clk.armed:
			return d
		case <-time.After(waitLimit):
			t.Fatal("no lease timer armed")
			return 0
		}
	}
	// Unanswered exchanges, with the server gone, end after 0.5+1+2 s.
	n := &Netlink{NetNS: host.open(t), Clock: clk, DHCPTimeout: 500 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))}
	defer n.Close()
	modemDNS := []netip.Addr{netip.MustParseAddr("100.64.0.53")}
	got, err := n.Up(ctx, "usb0", AddressingDHCP, Addressing{DNS: modemDNS})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Addrs) != 1 || !netip.MustParsePrefix("192.168.225.0/24").Contains(got.Addrs[0].Addr()) || got.Addrs[0].Bits() != 24 {
		t.Errorf("lease addresses %v", got.Addrs)
	}
	if got.Gateway != netip.MustParseAddr("192.168.225.1") || fmt.Sprint(got.DNS) != fmt.Sprint(modemDNS) {
		t.Errorf("lease %+v", got)
	}
	if a := host.ip(t, "addr", "show", "dev", "usb0"); !strings.Contains(a, "inet "+got.Addrs[0].String()) {
		t.Errorf("address not applied:\n%s", a)
	}
	if r := host.ip(t, "-4", "route", "show", "default"); !strings.Contains(r, "default via 192.168.225.1 dev usb0") {
		t.Errorf("default route: %q", r)
	}
	addr := got.Addrs[0].Addr()
	expires := func() time.Time {
		for _, l := range srv.Leases() {
			if l.Addr == addr {
				return l.Expires
			}
		}
		return time.Time{}
	}

	// T1, half the server's hour: renewed by the server, the address and
	// route kept, and the next T1 armed (an unanswered renewal would arm
	// a retry instead).
	acks, was := srv.Stats().Acks, expires()
	if d := armed(); d != 30*time.Minute {
		t.Fatalf("T1 in %v", d)
	}
	clk.Advance(30 * time.Minute)
	if d := armed(); d != 22*time.Minute+30*time.Second {
		t.Errorf("renewal cut at %v, want T2", d)
	}
	if d := armed(); d != 30*time.Minute {
		t.Fatalf("after the renewal, a timer in %v: not renewed", d)
	}
	if srv.Stats().Acks != acks+1 || !expires().After(was) {
		t.Errorf("the server did not renew: acks %d -> %d, expiry %v -> %v", acks, srv.Stats().Acks, was, expires())
	}
	if a := host.ip(t, "addr", "show", "dev", "usb0"); !strings.Contains(a, "inet "+got.Addrs[0].String()) {
		t.Errorf("address lost in the renewal:\n%s", a)
	}
	if r := host.ip(t, "-4", "route", "show", "default"); !strings.Contains(r, "default via 192.168.225.1 dev usb0") {
		t.Errorf("default route after the renewal: %q", r)
	}

	// The server goes; past the lease's end the address is gone.
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	change := func() AddrChange {
		t.Helper()
		for {
			select {
			case c := <-n.Changes():
				return c
			case d := <-clk.armed:
				clk.Advance(d)
			case <-time.After(waitLimit):
				t.Fatal("no addressing change")
			}
		}
	}
	if c := change(); c.Lost != ReasonLeaseExpired {
		t.Fatalf("change %+v", c)
	}
	if a := host.ip(t, "addr", "show", "dev", "usb0"); strings.Contains(a, "inet 192.168.225.") {
		t.Errorf("address kept after the lease expired:\n%s", a)
	}
	// The server is back: the next discovery gets a lease again.
	srv = startServer()
	c := change()
	if len(c.Addressing.Addrs) != 1 || !netip.MustParsePrefix("192.168.225.0/24").Contains(c.Addressing.Addrs[0].Addr()) ||
		fmt.Sprint(c.Addressing.DNS) != fmt.Sprint(modemDNS) {
		t.Fatalf("change %+v", c)
	}
	if a := host.ip(t, "addr", "show", "dev", "usb0"); !strings.Contains(a, "inet "+c.Addressing.Addrs[0].String()) {
		t.Errorf("new lease not applied:\n%s", a)
	}

	// Rebinding, which nothing above made happen, against the real
	// server: a broadcast REQUEST from the leased address is ACKed.
	cl := nclient{ns: n.NetNS, iface: "usb0", timeout: n.DHCPTimeout}
	l, err := cl.Discover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acks = srv.Stats().Acks
	if nl, err := cl.Rebind(ctx, l); err != nil || !nl.ACK.YourIPAddr.Equal(l.ACK.YourIPAddr) {
		t.Errorf("rebind: %v", err)
	} else if srv.Stats().Acks != acks+1 {
		t.Errorf("rebind: acks %d -> %d", acks, srv.Stats().Acks)
	}

	// Down gives the lease back and stops keeping it.
	addr = c.Addressing.Addrs[0].Addr()
	if err := n.Down(ctx, "usb0"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(waitLimit); !expires().IsZero(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the lease was not released")
		}
	}
	if n := clk.Pending(); n != 0 {
		t.Errorf("%d lease timers left after Down", n)
	}
	if a := host.ip(t, "addr", "show", "dev", "usb0"); strings.Contains(a, "inet 192.168.225.") {
		t.Errorf("address kept after Down:\n%s", a)
	}
}
