package route

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// target stands for the internet: every upstream namespace has it on its
// loopback, so the packet counters tell which uplink a packet took.
const target = "10.99.99.99"

// lab is a client on the LAN interface wlan0 of a router, and one upstream
// namespace behind each uplink of the router.
type lab struct {
	router, client netns
	upstream       map[string]netns
}

func newLab(t *testing.T, uplinks ...string) *lab {
	t.Helper()
	l := &lab{
		router:   newNetns(t, "r"),
		client:   newNetns(t, "c"),
		upstream: make(map[string]netns),
	}
	// Strict reverse-path filtering: replies that come in by a dedicated
	// uplink must pass it (the kernel checks them with the LAN interface
	// as input, which the rule matches).
	l.router.exec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1",
		"net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.default.rp_filter=1")
	// wlan0 stays down: Start must bring it up.
	veth(t, l.router, "wlan0", l.client, "eth0")
	l.client.ip(t, "addr", "add", "192.168.43.10/24", "dev", "eth0")
	l.client.ip(t, "link", "set", "eth0", "up")
	l.client.ip(t, "route", "add", "default", "via", "192.168.43.1")
	for i, name := range uplinks {
		u := newNetns(t, fmt.Sprintf("u%d", i))
		mine, theirs := fmt.Sprintf("10.%d.0.2", i+1), fmt.Sprintf("10.%d.0.1", i+1)
		veth(t, l.router, name, u, "eth0")
		l.router.ip(t, "addr", "add", mine+"/24", "dev", name)
		l.router.ip(t, "link", "set", name, "up")
		u.ip(t, "addr", "add", theirs+"/24", "dev", "eth0")
		u.ip(t, "link", "set", "eth0", "up")
		u.ip(t, "addr", "add", target+"/32", "dev", "lo")
		// No NAT here: the upstream routes replies to the LAN back.
		u.ip(t, "route", "add", "192.168.43.0/24", "via", mine)
		l.upstream[name] = u
	}
	return l
}

func (l *lab) newRouter(t *testing.T, lan string) *Router {
	t.Helper()
	r, err := New(Config{
		LAN:     lan,
		Address: netip.MustParsePrefix("192.168.43.1/24"),
		NetNS:   l.router.open(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// rules returns the router's IPv4 rules that point at table 43.
func (l *lab) rules(t *testing.T) []string {
	t.Helper()
	var rules []string
	for line := range strings.Lines(l.router.ip(t, "-4", "rule")) {
		if strings.Contains(line, "lookup 43") {
			rules = append(rules, strings.TrimSpace(line))
		}
	}
	return rules
}

// table returns the routes of table 43, sorted.
func (l *lab) table(t *testing.T) []string {
	t.Helper()
	var routes []string
	for line := range strings.Lines(l.router.ip(t, "-4", "route", "show", "table", "43")) {
		routes = append(routes, strings.TrimSpace(line))
	}
	slices.Sort(routes)
	return routes
}

// lanAddress returns the router's IPv4 addresses on wlan0.
func (l *lab) lanAddress(t *testing.T) string {
	t.Helper()
	return l.router.ip(t, "-4", "-o", "addr", "show", "dev", "wlan0")
}

// kernel is everything of the router's IPv4 configuration that Start may
// touch.
func (l *lab) kernel(t *testing.T) string {
	t.Helper()
	return l.router.ip(t, "-4", "addr") + l.router.ip(t, "-4", "rule") +
		l.router.ip(t, "-4", "route", "show", "table", "all") + l.router.ip(t, "-br", "link")
}

const (
	ourRule     = "1000:\tfrom 192.168.43.0/24 iif wlan0 lookup 43"
	lanRoute    = "192.168.43.0/24 dev wlan0 proto static scope link src 192.168.43.1"
	unreachable = "unreachable default proto static metric 4294967295"
)

func wantTable(t *testing.T, l *lab, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := l.table(t); !slices.Equal(got, want) {
		t.Errorf("table 43:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func wantRules(t *testing.T, l *lab, want ...string) {
	t.Helper()
	if got := l.rules(t); !slices.Equal(got, want) {
		t.Errorf("rules for table 43: %q, want %q", got, want)
	}
}

func wantUnreachable(t *testing.T, l *lab) {
	t.Helper()
	err := l.client.ping(target)
	if err == nil || !strings.Contains(err.Error(), "Unreachable") {
		t.Errorf("client reached %s, or not with an ICMP unreachable: %v", target, err)
	}
}

func TestStart(t *testing.T) {
	l := newLab(t, "wwan0")
	r := l.newRouter(t, "wlan0")
	if err := r.Start(t.Context(), "wwan0"); err != nil {
		t.Fatal(err)
	}

	const addr = "inet 192.168.43.1/24 brd 192.168.43.255 scope global wlan0:om"
	if got := l.lanAddress(t); !strings.Contains(got, addr) {
		t.Errorf("wlan0 addresses: %s, want %s", got, addr)
	}
	if got := l.router.ip(t, "-o", "link", "show", "wlan0"); !strings.Contains(got, ",UP,") {
		t.Errorf("wlan0 is not up: %s", got)
	}
	wantRules(t, l, ourRule)
	wantTable(t, l, lanRoute, unreachable, "default dev wwan0 proto static scope link")

	tx := l.router.txPackets(t, "wwan0")
	l.client.mustPing(t, target)
	if got := l.router.txPackets(t, "wwan0"); got <= tx {
		t.Errorf("wwan0 sent no packets for the client's ping (tx %d, then %d)", tx, got)
	}
}

// twoUplinks is the router with its default connection wwan0, which the
// main table's default route uses, and a dedicated connection wwan1 for the
// LAN.
func twoUplinks(t *testing.T) (*lab, *Router) {
	t.Helper()
	l := newLab(t, "wwan0", "wwan1")
	l.router.ip(t, "route", "add", "default", "dev", "wwan0")
	r := l.newRouter(t, "wlan0")
	if err := r.Start(t.Context(), "wwan1"); err != nil {
		t.Fatal(err)
	}
	return l, r
}

// sent returns how many packets each uplink sends during fn.
func (l *lab) sent(t *testing.T, fn func()) (wwan0, wwan1 uint64) {
	t.Helper()
	tx0, tx1 := l.router.txPackets(t, "wwan0"), l.router.txPackets(t, "wwan1")
	fn()
	return l.router.txPackets(t, "wwan0") - tx0, l.router.txPackets(t, "wwan1") - tx1
}

func TestDedicatedUplink(t *testing.T) {
	l, _ := twoUplinks(t)
	wantTable(t, l, lanRoute, unreachable, "default dev wwan1 proto static scope link")

	tx0, tx1 := l.sent(t, func() { l.client.mustPing(t, target) })
	if tx0 != 0 || tx1 == 0 {
		t.Errorf("client's ping: wwan0 sent %d packets, wwan1 %d; want only wwan1", tx0, tx1)
	}

	// The device's own traffic keeps the default connection, also when
	// it comes from the LAN address like the DNS forwarder's.
	for _, args := range [][]string{nil, {"-I", "192.168.43.1"}} {
		tx0, tx1 := l.sent(t, func() { l.router.mustPing(t, target, args...) })
		if tx0 == 0 || tx1 != 0 {
			t.Errorf("router's ping %q: wwan0 sent %d packets, wwan1 %d; want only wwan0", args, tx0, tx1)
		}
	}
}

func TestUplinkDown(t *testing.T) {
	l, r := twoUplinks(t)
	l.client.mustPing(t, target)

	l.router.ip(t, "link", "set", "wwan1", "down")
	tx0, _ := l.sent(t, func() { wantUnreachable(t, l) })
	if tx0 != 0 {
		t.Errorf("with wwan1 down, %d packets left by wwan0", tx0)
	}
	wantTable(t, l, lanRoute, unreachable)
	// The LAN side still works.
	l.client.mustPing(t, "192.168.43.1")

	l.router.ip(t, "link", "set", "wwan1", "up")
	// The kernel does not bring routes back with the link.
	wantUnreachable(t, l)
	if err := r.SetUplink(t.Context(), "wwan1"); err != nil {
		t.Fatal(err)
	}
	tx0, tx1 := l.sent(t, func() { l.client.mustPing(t, target) })
	if tx0 != 0 || tx1 == 0 {
		t.Errorf("client's ping: wwan0 sent %d packets, wwan1 %d; want only wwan1", tx0, tx1)
	}
}

func TestSetUplink(t *testing.T) {
	l, r := twoUplinks(t)
	rules, addr := l.router.ip(t, "rule"), l.lanAddress(t)
	unchanged := func() {
		t.Helper()
		if got := l.router.ip(t, "rule"); got != rules {
			t.Errorf("rules changed from\n%s\nto\n%s", rules, got)
		}
		if got := l.lanAddress(t); got != addr {
			t.Errorf("wlan0 addresses changed from\n%s\nto\n%s", addr, got)
		}
	}

	if err := r.SetUplink(t.Context(), "wwan0"); err != nil {
		t.Fatal(err)
	}
	wantTable(t, l, lanRoute, unreachable, "default dev wwan0 proto static scope link")
	tx0, tx1 := l.sent(t, func() { l.client.mustPing(t, target) })
	if tx0 == 0 || tx1 != 0 {
		t.Errorf("client's ping: wwan0 sent %d packets, wwan1 %d; want only wwan0", tx0, tx1)
	}
	unchanged()

	err := r.SetUplink(t.Context(), "wwan9")
	if err == nil || err.Error() != "route: interface wwan9 does not exist" {
		t.Errorf("SetUplink(wwan9) = %v, want interface wwan9 does not exist", err)
	}
	wantTable(t, l, lanRoute, unreachable, "default dev wwan0 proto static scope link")

	if err := r.SetUplink(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	wantTable(t, l, lanRoute, unreachable)
	wantUnreachable(t, l)
	unchanged()
}

func TestECMUplink(t *testing.T) {
	l := newLab(t, "usb0")
	// Answering ARP only for its own address on the link makes the
	// upstream a router that a device route could not reach through.
	l.upstream["usb0"].exec(t, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1")
	l.router.ip(t, "route", "add", "default", "via", "10.1.0.1", "dev", "usb0")
	r := l.newRouter(t, "wlan0")
	if err := r.Start(t.Context(), "usb0"); err != nil {
		t.Fatal(err)
	}
	wantTable(t, l, lanRoute, unreachable, "default via 10.1.0.1 dev usb0 proto static")
	l.client.mustPing(t, target)
}

func TestStartTwice(t *testing.T) {
	l, r := twoUplinks(t)
	if err := r.Start(t.Context(), "wwan1"); err != nil {
		t.Fatal(err)
	}
	wantRules(t, l, ourRule)
	wantTable(t, l, lanRoute, unreachable, "default dev wwan1 proto static scope link")
	l.client.mustPing(t, target)
}

func TestStartAfterCrash(t *testing.T) {
	l, crashed := twoUplinks(t)
	crashed.Close()
	// More debris than our own run leaves: a rule and a route of another
	// configuration.
	l.router.ip(t, "rule", "add", "pref", "999", "from", "192.168.0.0/16", "lookup", "43")
	l.router.ip(t, "route", "add", "10.5.0.0/16", "dev", "wwan0", "table", "43")

	r := l.newRouter(t, "wlan0")
	if err := r.Start(t.Context(), "wwan1"); err != nil {
		t.Fatal(err)
	}
	wantRules(t, l, ourRule)
	wantTable(t, l, lanRoute, unreachable, "default dev wwan1 proto static scope link")
	l.client.mustPing(t, target)

	// The label tells the new process that the address is its own.
	if err := r.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := l.lanAddress(t); got != "" {
		t.Errorf("wlan0 addresses after Stop: %s", got)
	}
}

func TestStartErrors(t *testing.T) {
	l := newLab(t, "wwan0", "wwan1")
	l.router.ip(t, "route", "add", "default", "dev", "wwan0")
	// A netlink error half-way: wwan1 is there but down, so its default
	// route fails after the address and the LAN route went in.
	l.router.ip(t, "link", "set", "wwan1", "down")
	before := l.kernel(t)

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tt := range []struct {
		ctx         context.Context
		lan, uplink string
		want        string
	}{
		{t.Context(), "wlan9", "wwan0", "route: interface wlan9 does not exist"},
		{t.Context(), "wlan0", "wwan9", "route: interface wwan9 does not exist"},
		{t.Context(), "wlan0", "wwan1", "route: add default route via wwan1: "},
		{cancelled, "wlan0", "wwan0", "route: context canceled"},
	} {
		r := l.newRouter(t, tt.lan)
		err := r.Start(tt.ctx, tt.uplink)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Start(%s, %s) = %v, want %s…", tt.lan, tt.uplink, err, tt.want)
		}
		if got := l.kernel(t); got != before {
			t.Errorf("Start(%s, %s) changed the kernel from\n%s\nto\n%s", tt.lan, tt.uplink, before, got)
		}
	}
}

func TestStop(t *testing.T) {
	l, r := twoUplinks(t)
	for range 2 {
		if err := r.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		wantRules(t, l)
		wantTable(t, l)
		if got := l.lanAddress(t); got != "" {
			t.Errorf("wlan0 addresses after Stop: %s", got)
		}
	}
	if err := r.SetUplink(t.Context(), "wwan1"); err == nil {
		t.Error("SetUplink after Stop succeeded")
	}

	// An address that was there before Start is someone else's.
	l.router.ip(t, "addr", "add", "192.168.43.1/24", "dev", "wlan0")
	if err := r.Start(t.Context(), "wwan1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := l.lanAddress(t); !strings.Contains(got, "inet 192.168.43.1/24 scope global wlan0") {
		t.Errorf("Stop removed an address it did not add: %q", got)
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []Config{
		{LAN: "", Address: netip.MustParsePrefix("192.168.43.1/24")},
		{LAN: "wlan0", Address: netip.MustParsePrefix("fd00::1/64")},
		{LAN: "wlan0", Address: netip.MustParsePrefix("192.168.43.0/24")},
		{LAN: "wlan0", Address: netip.MustParsePrefix("192.168.43.255/24")},
		{LAN: "wlan0", Address: netip.MustParsePrefix("192.168.43.1/32")},
		{LAN: "wlan0", Address: netip.MustParsePrefix("192.168.43.1/24"), Table: 254},
		{LAN: "wlan0", Address: netip.MustParsePrefix("192.168.43.1/24"), Priority: 32766},
	} {
		if r, err := New(cfg); err == nil {
			r.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
