package modem

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openmifi/openmifi/drivers/dhcp"
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
// the modem's), and keeps the modem's DNS servers over the lease's.
func TestNetlinkDHCP(t *testing.T) {
	host, mdm := newNetns(t, "host"), newNetns(t, "modem")
	sh(t, "ip", "link", "add", "usb0", "netns", string(host), "type", "veth", "peer", "name", "eth0", "netns", string(mdm))
	mdm.ip(t, "addr", "add", "192.168.225.1/24", "dev", "eth0")
	mdm.ip(t, "link", "set", "eth0", "up")
	srv, err := dhcp.New(dhcp.Config{
		Interface:  "eth0",
		ServerAddr: netip.MustParseAddr("192.168.225.1"),
		Prefix:     netip.MustParsePrefix("192.168.225.0/24"),
		LeaseFile:  filepath.Join(t.TempDir(), "leases"),
		NetNS:      mdm.open(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx, 8); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())

	n := &Netlink{NetNS: host.open(t)}
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
}
