package dns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/openmifi/openmifi/drivers/netns"
)

// The test network: a LAN client, the hotspot and an upstream DNS server,
// each in a network namespace of its own, on veth pairs.
//
//	client c0 192.168.43.10 ── lan0 192.168.43.1 hotspot wan0 10.99.0.1 ── up0 10.99.0.2 upstream DNS
//
// The upstream has a route to the LAN so that it can play a client from
// outside the LAN.

type nsHost struct {
	name string
	fd   int
}

func newNetNS(t *testing.T, role string) *nsHost {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	name := "dns-" + role + "-" + hex.EncodeToString(b[:])
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
	})
	f, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	n := &nsHost{name: name, fd: int(f.Fd())}
	n.run(t, "ip", "link", "set", "lo", "up")
	return n
}

func mustRun(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (n *nsHost) run(t *testing.T, args ...string) {
	t.Helper()
	mustRun(t, append([]string{"ip", "netns", "exec", n.name}, args...)...)
}

// link joins a and b with a veth pair, naming the ends ifA and ifB and
// giving them the addresses addrA and addrB.
func link(t *testing.T, a *nsHost, ifA, addrA string, b *nsHost, ifB, addrB string) {
	t.Helper()
	// Created in a, so that deleting the namespaces deletes the pair.
	a.run(t, "ip", "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", b.name)
	a.run(t, "ip", "addr", "add", addrA, "dev", ifA)
	b.run(t, "ip", "addr", "add", addrB, "dev", ifB)
	a.run(t, "ip", "link", "set", ifA, "up")
	b.run(t, "ip", "link", "set", ifB, "up")
}

// resolverIn is a Go resolver whose sockets are opened inside ns and go to
// server, whatever /etc/resolv.conf says.
func resolverIn(ns *nsHost, server string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var c net.Conn
			err := netns.Do(ns.fd, func() error {
				var d net.Dialer
				var err error
				c, err = d.DialContext(ctx, network, server)
				return err
			})
			return c, err
		},
	}
}

// askIn sends m over network from a socket inside ns.
func askIn(t *testing.T, ns *nsHost, network, server string, m *mdns.Msg) *mdns.Msg {
	t.Helper()
	var conn net.Conn
	err := netns.Do(ns.fd, func() error {
		var err error
		conn, err = net.DialTimeout(network, server, 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	c := &mdns.Conn{Conn: conn}
	if err := c.WriteMsg(m); err != nil {
		t.Fatalf("send %v: %v", m.Question, err)
	}
	a, err := c.ReadMsg()
	if err != nil {
		t.Fatalf("receive %v: %v", m.Question, err)
	}
	return a
}

func TestNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
	}
	hotspot := newNetNS(t, "srv")
	client := newNetNS(t, "cli")
	upNS := newNetNS(t, "up")
	link(t, hotspot, "lan0", "192.168.43.1/24", client, "c0", "192.168.43.10/24")
	link(t, hotspot, "wan0", "10.99.0.1/24", upNS, "up0", "10.99.0.2/24")
	upNS.run(t, "ip", "route", "add", "192.168.43.0/24", "via", "10.99.0.1")

	up := startUpstream(t, upNS.fd, "10.99.0.2", 53, func(q mdns.Question, _ bool) *mdns.Msg {
		m := &mdns.Msg{}
		switch {
		case !strings.HasSuffix(strings.ToLower(q.Name), "example.test."):
			m.Rcode = mdns.RcodeNameError
			m.Ns = []mdns.RR{testSOA(60, 60)}
		case q.Qtype == mdns.TypeA:
			m.Answer = []mdns.RR{aRR(q.Name, 300, "198.51.100.7")}
		default:
			m.Ns = []mdns.RR{testSOA(60, 60)}
		}
		return m
	})

	f := New(Config{
		Listen:    netip.MustParseAddr("192.168.43.1"),
		LANPrefix: netip.MustParsePrefix("192.168.43.0/24"),
		LocalName: "hotspot.lan",
		Domain:    "lan",
		NetNS:     hotspot.fd,
		Log:       slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	const server = "192.168.43.1:53"

	// No uplink yet: SERVFAIL, which the Go resolver reports at once
	// as a temporary failure.
	start := time.Now()
	if _, err := resolverIn(client, server).LookupNetIP(ctx, "ip4", "example.test."); err == nil {
		t.Fatal("resolved without uplink")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("failing without uplink took %v", d)
	}

	f.SetUpstreams([]netip.AddrPort{up.addr})
	r := resolverIn(client, server)
	addrs, err := r.LookupNetIP(ctx, "ip4", "example.test.")
	if err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr("198.51.100.7") {
		t.Fatalf("example.test: %v %v, want 198.51.100.7", addrs, err)
	}
	addrs, err = r.LookupNetIP(ctx, "ip", "hotspot.lan.")
	if err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr("192.168.43.1") {
		t.Fatalf("hotspot.lan: %v %v, want 192.168.43.1", addrs, err)
	}
	names, err := r.LookupAddr(ctx, "192.168.43.1")
	if err != nil || len(names) != 1 || names[0] != "hotspot.lan." {
		t.Errorf("reverse of 192.168.43.1: %v %v", names, err)
	}

	// Over TCP, a name not cached yet, which goes upstream over TCP.
	tcpBefore := up.tcp.Load()
	a := askIn(t, client, "tcp", server, question("WWW.example.test.", mdns.TypeA))
	wantA(t, a, "198.51.100.7", 300)
	if up.tcp.Load() != tcpBefore+1 {
		t.Errorf("TCP query not forwarded over TCP")
	}

	// From outside the LAN: refused, over both transports.
	for _, network := range []string{"udp", "tcp"} {
		wantRcode(t, askIn(t, upNS, network, server, question("example.test.", mdns.TypeA)), mdns.RcodeRefused)
	}
	// The forwarder listens on the LAN address only.
	err = netns.Do(upNS.fd, func() error {
		c, err := net.DialTimeout("tcp", "10.99.0.1:53", 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err == nil {
		t.Error("the forwarder answers on the uplink address")
	}
}
