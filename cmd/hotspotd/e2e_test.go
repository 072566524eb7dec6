package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openmifi/openmifi/internal/ctl"
	"github.com/openmifi/openmifi/internal/daemon"
	"github.com/openmifi/openmifi/internal/sharing"
	"github.com/openmifi/openmifi/internal/sharing/sharingtest"
)

// TestSharingEndToEnd runs hotspotd's real LAN and NAT drivers, as main
// wires them, in a router namespace; the modem and the access point are
// fakes (their drivers have not landed). A client namespace on the LAN gets
// a lease from busybox udhcpc, and reaches an upstream host that has no
// route back to the LAN: only hotspotd's NAT brings the replies home.
func TestSharingEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	for _, tool := range []string{"ip", "busybox", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make test installs it)", tool)
		}
	}
	router, client, upstream := newNS(t, "r"), newNS(t, "c"), newNS(t, "u")
	sh(t, "ip", "link", "add", "wlan0", "netns", router.name, "type", "veth", "peer", "name", "eth0", "netns", client.name)
	sh(t, "ip", "link", "add", "wwan0", "netns", router.name, "type", "veth", "peer", "name", "eth0", "netns", upstream.name)
	router.sh(t, "ip", "addr", "add", "10.99.0.1/24", "dev", "wwan0")
	router.sh(t, "ip", "link", "set", "wwan0", "up")
	router.sh(t, "ip", "route", "add", "default", "via", "10.99.0.2")
	upstream.sh(t, "ip", "addr", "add", "10.99.0.2/24", "dev", "eth0")
	upstream.sh(t, "ip", "link", "set", "eth0", "up")
	client.sh(t, "ip", "link", "set", "eth0", "up")

	dir, err := os.MkdirTemp("", "e2e")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	prov := filepath.Join(dir, "provisioning.xml")
	os.WriteFile(prov, []byte(`<Settings Path="HotSpot">
  <Setting Name="Enabled" Value="1" />
  <Setting Name="EntitlementRequired" Value="0" />
  <Setting Name="MaxUsers" Value="3" />
</Settings>`), 0o644)

	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	defer func() {
		if t.Failed() {
			t.Logf("hotspotd log:\n%s", logBuf.String())
		}
	}()
	drv, closeDrivers := driversIn(router.fd, log, "wlan0", netip.MustParsePrefix("192.168.43.1/24"), filepath.Join(dir, "run"), filepath.Join(dir, "state"))
	defer closeDrivers()
	if drv.Firewall == nil || drv.DHCP == nil {
		t.Fatalf("drivers missing: %+v", drv)
	}
	fakes := sharingtest.New()
	drv.Uplink, drv.AP = fakes.Uplink, fakes.AP

	socket := filepath.Join(dir, "ctl.sock")
	d, err := daemon.New(daemon.Config{
		Provisioning: []string{prov},
		StateDir:     filepath.Join(dir, "state"),
		Socket:       socket,
		StringsDir:   filepath.Join(dir, "strings"),
		KeysDir:      filepath.Join(dir, "keys"),
		Log:          log,
	}, drv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	hotspotctl := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := ctl.Main(append([]string{"-socket", socket, "-timeout", "30s"}, args...), &out, &errOut)
		return code, out.String() + errOut.String()
	}

	// The modem driver reports the cellular connection.
	d.Machine().PublicUp(sharing.UplinkInfo{Interface: "wwan0", Operator: "Contoso", Technology: "LTE",
		DNS: []netip.Addr{netip.MustParseAddr("10.99.0.2")}})
	if code, out := hotspotctl("on"); code != 0 || !strings.Contains(out, "sharing:  on") {
		t.Fatalf("hotspotctl on: %d\n%s", code, out)
	}

	script := filepath.Join(dir, "udhcpc.sh")
	os.WriteFile(script, []byte(`#!/bin/sh
case "$1" in
bound|renew)
	ip addr replace "$ip/$mask" dev "$interface"
	ip route replace default via "${router%% *}"
	echo "lease $ip router $router dns $dns lease $lease" ;;
esac
`), 0o755)
	out := client.sh(t, "busybox", "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "1", "-i", "eth0", "-s", script)
	if !strings.Contains(out, "router 192.168.43.1 dns 192.168.43.1 lease 3600") {
		t.Fatalf("udhcpc:\n%s", out)
	}
	if !client.try("ping", "-c2", "-i0.2", "-W2", "10.99.0.2") {
		t.Fatal("the client does not reach the upstream through hotspotd")
	}
	code, clients := hotspotctl("clients")
	if code != 0 || !strings.Contains(clients, "192.168.43.") {
		t.Errorf("hotspotctl clients: %d\n%s", code, clients)
	}

	if code, out := hotspotctl("off"); code != 0 || !strings.Contains(out, "off (user)") {
		t.Fatalf("hotspotctl off: %d\n%s", code, out)
	}
	if client.try("ping", "-c1", "-W1", "10.99.0.2") {
		t.Error("the client still reaches the upstream after off")
	}
	if rs := router.sh(t, "nft", "list", "ruleset"); strings.Contains(rs, "openmifi") {
		t.Errorf("ruleset left after off:\n%s", rs)
	}
}

type ns struct {
	name string
	fd   int
}

func newNS(t *testing.T, role string) *ns {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	name := "e2e-" + role + "-" + hex.EncodeToString(b[:])
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	f, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	n := &ns{name: name, fd: int(f.Fd())}
	n.sh(t, "ip", "link", "set", "lo", "up")
	return n
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (n *ns) sh(t *testing.T, args ...string) string {
	t.Helper()
	return sh(t, append([]string{"ip", "netns", "exec", n.name}, args...)...)
}

func (n *ns) try(args ...string) bool {
	return exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...).Run() == nil
}
