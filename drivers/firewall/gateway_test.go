package firewall

import (
	"context"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/openmifi/openmifi/drivers/route"
)

// probe counts the IPv4 packets to dst that leave ns by dev (the link's own
// counters also see IPv6 neighbour discovery after link changes).
type probe struct {
	n        *ns
	dev, dst string
}

func newProbe(t *testing.T, n *ns, dev, dst string) *probe {
	t.Helper()
	n.sh(t, "nft", "add table ip probe; add chain ip probe post { type filter hook postrouting priority 300; }; "+
		"add rule ip probe post oifname "+dev+" ip daddr "+dst+" counter")
	return &probe{n, dev, dst}
}

func (p *probe) packets(t *testing.T) uint64 {
	t.Helper()
	m := regexp.MustCompile(`counter packets (\d+)`).FindStringSubmatch(p.n.sh(t, "nft", "list", "table", "ip", "probe"))
	if m == nil {
		t.Fatal("no probe counter")
	}
	v, _ := strconv.ParseUint(m[1], 10, 64)
	return v
}

// TestDedicatedConnectionDownDoesNotLeak runs the whole gateway: the
// device's own default connection is wan0, sharing is dedicated to wan1.
// Both upstreams answer for the same internet address, so only the
// counters tell which way a packet went.
func TestDedicatedConnectionDownDoesNotLeak(t *testing.T) {
	n := newTestNet(t)
	dedicated := newNS(t, "d")
	n.router.veth(t, "wan1", "10.98.0.1/24", dedicated, "up1", "10.98.0.2/24")
	const internet = "10.77.77.77"
	n.upstream.sh(t, "ip", "addr", "add", internet+"/32", "dev", "lo")
	dedicated.sh(t, "ip", "link", "set", "lo", "up")
	dedicated.sh(t, "ip", "addr", "add", internet+"/32", "dev", "lo")

	routes, err := route.New(route.Config{LAN: "lan0", Address: netip.MustParsePrefix("192.168.43.1/24"), NetNS: n.router.fd})
	if err != nil {
		t.Fatal(err)
	}
	defer routes.Close()
	gw := &Gateway{Routes: routes, NAT: newNAT(t, n, t.TempDir())}
	ctx := context.Background()
	if err := gw.Start(ctx, "wan1"); err != nil {
		t.Fatal(err)
	}
	defer gw.Stop(ctx)

	leak := newProbe(t, n.router, "wan0", internet)
	if !n.client.try("ping", "-c3", "-i0.2", "-W2", internet) {
		t.Fatal("client cannot reach the internet through the dedicated connection")
	}
	if !n.router.try("ping", "-c1", "-W2", internet) {
		t.Error("the device's own traffic lost its default connection")
	}
	if got := leak.packets(t); got != 1 { // the router's own ping
		t.Errorf("%d packets left by the default connection, want only the router's own", got)
	}

	n.router.sh(t, "ip", "link", "set", "wan1", "down")
	before := leak.packets(t)
	if n.client.try("ping", "-c3", "-i0.2", "-W1", internet) {
		t.Error("client reached the internet with the dedicated connection down")
	}
	if got := leak.packets(t) - before; got != 0 {
		t.Errorf("%d packets leaked through the default connection", got)
	}

	// Back up: the modem reports it, the state machine re-applies it.
	n.router.sh(t, "ip", "link", "set", "wan1", "up")
	if err := gw.SetUplink(ctx, "wan1"); err != nil {
		t.Fatal(err)
	}
	if !n.client.try("ping", "-c1", "-W2", internet) {
		t.Error("no traffic once the dedicated connection is back")
	}
	c, err := gw.Counters()
	if err != nil || c[netip.MustParseAddr("192.168.43.10")].UpPackets < 4 {
		t.Errorf("counters %+v %v", c, err)
	}
}

func TestGatewayRefusesUnknownInterfaces(t *testing.T) {
	n := newTestNet(t)
	before := n.ruleset(t)
	routes, err := route.New(route.Config{LAN: "lan0", Address: netip.MustParsePrefix("192.168.43.1/24"), NetNS: n.router.fd})
	if err != nil {
		t.Fatal(err)
	}
	defer routes.Close()
	gw := &Gateway{Routes: routes, NAT: newNAT(t, n, t.TempDir())}
	if err := gw.Start(context.Background(), "wwan9"); err == nil || !strings.Contains(err.Error(), "wwan9") {
		t.Errorf("Start on a missing uplink: %v", err)
	}
	if got := n.ruleset(t); got != before {
		t.Errorf("ruleset changed:\n%s", got)
	}
	if got := n.forwarding(t); got != "0" {
		t.Errorf("ip_forward %s", got)
	}
}
