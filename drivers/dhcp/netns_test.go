package dhcp

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The namespace tests run the server on a bridge in a namespace of its
// own, and real clients each in another namespace on a veth port of that
// bridge. No packet leaves the namespaces, and the clients' scripts are
// ours: they touch nothing outside their namespace and temp directory.
//
//	client ns  eth0 ── pN ┐
//	client ns  eth0 ── pM ┼ br0 192.168.43.1/24  server ns
//	...                   ┘

func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	for _, tool := range append([]string{"ip", "unshare"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make test installs it)", tool)
		}
	}
}

type nsHost struct {
	name string
	fd   int
}

func newNetNS(t *testing.T, role string) *nsHost {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	name := "dh-" + role + "-" + hex.EncodeToString(b[:])
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	f, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	n := &nsHost{name: name, fd: int(f.Fd())}
	n.run(t, "ip", "link", "set", "lo", "up")
	return n
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (n *nsHost) run(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "netns", "exec", n.name}, args...)...)
}

// lanNet is a server namespace with the LAN bridge.
type lanNet struct {
	t      *testing.T
	server *nsHost
	ports  int
	dir    string
}

func newLAN(t *testing.T) *lanNet {
	t.Helper()
	l := &lanNet{t: t, server: newNetNS(t, "s"), dir: t.TempDir()}
	l.server.run(t, "ip", "link", "add", "br0", "type", "bridge")
	l.server.run(t, "ip", "addr", "add", "192.168.43.1/24", "dev", "br0")
	l.server.run(t, "ip", "link", "set", "br0", "up")
	return l
}

// addHost plugs a new namespace into the bridge; its interface is eth0
// with the given hardware address.
func (l *lanNet) addHost(role string, mac net.HardwareAddr) *nsHost {
	t := l.t
	t.Helper()
	n := newNetNS(t, role)
	l.ports++
	port := fmt.Sprintf("p%d", l.ports)
	run(t, "ip", "link", "add", "eth0", "netns", n.name, "type", "veth", "peer", "name", port, "netns", l.server.name)
	l.server.run(t, "ip", "link", "set", port, "master", "br0", "up")
	n.run(t, "ip", "link", "set", "eth0", "address", mac.String(), "up")
	return n
}

// startServer runs a server on br0 with its lease file in the LAN's
// directory, stopped at the end of the test.
func (l *lanNet) startServer(max int, mod func(*Config)) *Server {
	t := l.t
	t.Helper()
	cfg := Config{
		Interface: "br0",
		LeaseFile: filepath.Join(l.dir, "leases"),
		NetNS:     l.server.fd,
		Log:       slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background(), max); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// proc is a client process in a namespace, killed with its process group
// at the end of the test.
type proc struct {
	cmd    *exec.Cmd
	events string // the client script's log
	out    *strings.Builder
}

func (n *nsHost) start(t *testing.T, events string, args ...string) *proc {
	t.Helper()
	p := &proc{events: events, out: &strings.Builder{}}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", args[0], p.out)
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("%s events: %v", args[0], readEvents(events))
		}
	})
	return p
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// event is one line of a client script's log: the event, then key=value.
type event map[string]string

func readEvents(path string) []event {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var evs []event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		ev := event{"event": fields[0]}
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(f, "=")
			ev[k] = v
		}
		evs = append(evs, ev)
	}
	return evs
}

// waitEvent waits for the (after+1)th event and later ones to include one
// named in names, and returns it with the count of events seen.
func (p *proc) waitEvent(t *testing.T, after int, timeout time.Duration, names ...string) (event, int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		evs := readEvents(p.events)
		for i := after; i < len(evs); i++ {
			for _, n := range names {
				if evs[i]["event"] == n {
					return evs[i], i + 1
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %v event within %v; events: %v", names, timeout, evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
}

// udhcpc starts busybox udhcpc. Its script configures the address in the
// client's namespace, so renewals go out by unicast, and logs each event.
func udhcpc(t *testing.T, n *nsHost, host string) *proc {
	t.Helper()
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	script := filepath.Join(dir, "script")
	writeScript(t, script, `case "$1" in
bound|renew) ip addr replace "$ip/$subnet" dev "$interface" ;;
deconfig) ip addr flush dev "$interface" ;;
esac
echo "$1 ip=$ip router=$router dns=$dns lease=$lease domain=$domain mtu=$mtu subnet=$subnet serverid=$serverid" >> `+events+"\n")
	// -t 3 -T 1 -A 1: three DISCOVERs a second apart, then a second's
	// pause, over and over; -O mtu asks for the interface MTU.
	return n.start(t, events, "busybox", "udhcpc", "-f", "-i", "eth0", "-s", script,
		"-t", "3", "-T", "1", "-A", "1", "-O", "mtu", "-x", "hostname:"+host)
}

// dhclient starts ISC dhclient with our config, script, lease and pid
// files: it never touches the host's resolv.conf or routes.
func dhclient(t *testing.T, n *nsHost, host string) (*proc, []string) {
	t.Helper()
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	script := filepath.Join(dir, "script")
	conf := filepath.Join(dir, "dhclient.conf")
	writeScript(t, script, `case "$reason" in
PREINIT) ip link set "$interface" up ;;
BOUND|RENEW|REBIND|REBOOT) ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
EXPIRE|FAIL|RELEASE|STOP) [ -n "$old_ip_address" ] && ip addr del "$old_ip_address/$old_subnet_mask" dev "$interface" ;;
esac
echo "$reason ip=$new_ip_address router=$new_routers dns=$new_domain_name_servers lease=$new_dhcp_lease_time domain=$new_domain_name mtu=$new_interface_mtu" >> `+events+"\n")
	err := os.WriteFile(conf, []byte(`send host-name "`+host+`";
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, interface-mtu, dhcp-lease-time, dhcp-renewal-time, dhcp-rebinding-time;
initial-interval 1;
backoff-cutoff 2;
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"-4", "-cf", conf, "-sf", script, "-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid"), "eth0"}
	return n.start(t, events, append([]string{"dhclient", "-d", "-v"}, common...)...), common
}

// dhcpcd starts dhcpcd in a mount namespace of its own whose /run and
// /var/lib/dhcpcd are empty tmpfs: its pid files, control sockets, DUID
// and lease files stay there. Our script replaces its hooks, so it writes
// no resolv.conf.
func dhcpcd(t *testing.T, n *nsHost, host string) *proc {
	t.Helper()
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	script := filepath.Join(dir, "script")
	conf := filepath.Join(dir, "dhcpcd.conf")
	writeScript(t, script, `echo "$reason ip=$new_ip_address router=$new_routers dns=$new_domain_name_servers lease=$new_dhcp_lease_time domain=$new_domain_name mtu=$new_interface_mtu" >> `+events+"\n")
	if err := os.WriteFile(conf, []byte("option domain_name_servers, domain_name, interface_mtu\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return n.start(t, events, "unshare", "-m", "sh", "-c",
		"mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib/dhcpcd && exec dhcpcd -B -4 -d -f "+conf+" -c "+script+" -h "+host+" eth0")
}

// leaseOf returns the server's lease for mac, if any.
func leaseOf(s *Server, mac net.HardwareAddr) (netip.Addr, string, bool) {
	for _, l := range s.Leases() {
		if l.MAC.String() == mac.String() {
			return l.Addr, l.Hostname, true
		}
	}
	return netip.Addr{}, "", false
}

func checkBound(t *testing.T, s *Server, ev event, mac net.HardwareAddr, host string, lease time.Duration) netip.Addr {
	t.Helper()
	addr, gotHost, ok := leaseOf(s, mac)
	if !ok {
		t.Fatalf("server has no lease for %v after %v", mac, ev)
	}
	want := map[string]string{
		"ip":     addr.String(),
		"router": "192.168.43.1",
		"dns":    "192.168.43.1",
		"lease":  fmt.Sprint(int(lease.Seconds())),
		"domain": "lan",
		"mtu":    "1500",
	}
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("client's %s = %q, want %q (event %v)", k, ev[k], v, ev)
		}
	}
	if gotHost != host {
		t.Errorf("server recorded host name %q, want %q", gotHost, host)
	}
	return addr
}

func TestUdhcpc(t *testing.T) {
	needRoot(t, "busybox")
	t.Parallel()
	l := newLAN(t)
	s := l.startServer(5, nil)
	mac := net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}
	c := udhcpc(t, l.addHost("c", mac), "phone-u")
	ev, seen := c.waitEvent(t, 0, 10*time.Second, "bound")
	addr := checkBound(t, s, ev, mac, "phone-u", time.Hour)

	acks := s.Stats().Acks
	c.signal(t, syscall.SIGUSR1) // renew
	ev, _ = c.waitEvent(t, seen, 10*time.Second, "renew", "bound")
	if ev["ip"] != addr.String() {
		t.Errorf("renewed %s, want %v", ev["ip"], addr)
	}
	if s.Stats().Acks <= acks {
		t.Error("server sent no ACK for the renewal")
	}
	c.signal(t, syscall.SIGUSR2) // release
	waitFor(t, 5*time.Second, "the release", func() bool { _, _, ok := leaseOf(s, mac); return !ok })
}

func TestDhclient(t *testing.T) {
	needRoot(t, "dhclient")
	t.Parallel()
	// dhclient has no signal to renew: a short lease makes it renew at
	// T1 on its own.
	const lease = 6 * time.Second
	l := newLAN(t)
	s := l.startServer(5, func(c *Config) { c.LeaseTime = lease })
	mac := net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 1}
	n := l.addHost("c", mac)
	c, args := dhclient(t, n, "laptop-d")
	ev, seen := c.waitEvent(t, 0, 15*time.Second, "BOUND")
	addr := checkBound(t, s, ev, mac, "laptop-d", lease)

	ev, _ = c.waitEvent(t, seen, 3*lease, "RENEW")
	if ev["ip"] != addr.String() || ev["lease"] != "6" {
		t.Errorf("renewal: %v, want %v", ev, addr)
	}
	// dhclient -r stops the running dhclient and releases its lease.
	n.run(t, append([]string{"dhclient", "-r"}, args...)...)
	waitFor(t, 5*time.Second, "the release", func() bool { _, _, ok := leaseOf(s, mac); return !ok })
}

func TestDhcpcd(t *testing.T) {
	needRoot(t, "dhcpcd")
	t.Parallel()
	l := newLAN(t)
	s := l.startServer(5, nil)
	mac := net.HardwareAddr{0x02, 0xcc, 0, 0, 0, 1}
	c := dhcpcd(t, l.addHost("c", mac), "tablet-c")
	ev, seen := c.waitEvent(t, 0, 15*time.Second, "BOUND")
	addr := checkBound(t, s, ev, mac, "tablet-c", time.Hour)

	c.signal(t, syscall.SIGUSR1) // renew
	ev, _ = c.waitEvent(t, seen, 10*time.Second, "RENEW")
	if ev["ip"] != addr.String() {
		t.Errorf("renewed %s, want %v", ev["ip"], addr)
	}
	c.signal(t, syscall.SIGALRM) // release and exit
	waitFor(t, 5*time.Second, "the release", func() bool { _, _, ok := leaseOf(s, mac); return !ok })
}

// TestMaxUsersWithRealClients: three udhcpc get addresses, a fourth gets
// none until one of them releases; after a restart of the server the
// three keep their addresses.
func TestMaxUsersWithRealClients(t *testing.T) {
	needRoot(t, "busybox")
	t.Parallel()
	l := newLAN(t)
	s := l.startServer(3, nil)
	var cs []*proc
	var macs []net.HardwareAddr
	seen := make([]int, 4)
	addrs := make([]string, 4)
	for i := range 4 {
		mac := net.HardwareAddr{0x02, 0xdd, 0, 0, 0, byte(i + 1)}
		macs = append(macs, mac)
		cs = append(cs, udhcpc(t, l.addHost(fmt.Sprint("c", i), mac), fmt.Sprint("client", i)))
		if i < 3 {
			var ev event
			ev, seen[i] = cs[i].waitEvent(t, 0, 10*time.Second, "bound")
			addrs[i] = ev["ip"]
		}
	}
	// The fourth keeps asking, in vain.
	time.Sleep(3 * time.Second)
	for _, ev := range readEvents(cs[3].events) {
		if ev["event"] == "bound" {
			t.Fatalf("fourth client got %s with MaxUsers=3", ev["ip"])
		}
	}
	if st := s.Stats(); st.PoolFull == 0 {
		t.Error("no DISCOVER refused")
	}
	cs[1].signal(t, syscall.SIGUSR2) // release
	ev, n := cs[3].waitEvent(t, 0, 10*time.Second, "bound")
	seen[3], addrs[3] = n, ev["ip"]
	if len(s.Leases()) != 3 {
		t.Errorf("leases: %v", s.Leases())
	}

	// Restart: the three holders keep their addresses.
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = l.startServer(3, nil)
	for _, i := range []int{0, 2, 3} {
		if a, _, ok := leaseOf(s, macs[i]); !ok || a.String() != addrs[i] {
			t.Errorf("client %d: lease %v after the restart, want %s", i, a, addrs[i])
		}
		cs[i].signal(t, syscall.SIGUSR1)
		ev, _ := cs[i].waitEvent(t, seen[i], 10*time.Second, "renew", "bound")
		if ev["ip"] != addrs[i] {
			t.Errorf("client %d renewed %s after the restart, want %s", i, ev["ip"], addrs[i])
		}
	}
}

// TestStartStopLeavesNothing checks that Stop ends every goroutine Start
// began, and that the server starts again on the same LAN.
func TestStartStopLeavesNothing(t *testing.T) {
	needRoot(t)
	l := newLAN(t)
	before := runtime.NumGoroutine()
	for range 3 {
		s := l.startServer(2, nil)
		if err := s.Start(context.Background(), 3); err != nil {
			t.Fatalf("second Start: %v", err)
		}
		for range 2 {
			if err := s.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if s.Leases() != nil {
			t.Error("leases listed after Stop")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	s, err := New(Config{Interface: "no-such-if0", LeaseFile: filepath.Join(l.dir, "x"), NetNS: l.server.fd, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "no-such-if0") {
		t.Errorf("Start on a missing interface: %v", err)
	}
}

// TestRenewalDuringFlood: perfdhcp floods the full pool with DISCOVERs
// from made-up hardware addresses while a client renews again and again:
// every renewal succeeds, and the client keeps its address.
func TestRenewalDuringFlood(t *testing.T) {
	needRoot(t, "busybox", "perfdhcp")
	l := newLAN(t)
	s := l.startServer(1, nil)
	mac := net.HardwareAddr{0x02, 0xee, 0, 0, 0, 1}
	c := udhcpc(t, l.addHost("c", mac), "victim")
	ev, seen := c.waitEvent(t, 0, 10*time.Second, "bound")
	addr := ev["ip"]

	f := l.addHost("f", net.HardwareAddr{0x02, 0xee, 0, 0, 0, 2})
	f.run(t, "ip", "addr", "add", "192.168.43.2/24", "dev", "eth0")
	// perfdhcp speaks as a relay from 192.168.43.2; -i: DISCOVERs only,
	// -R: a new hardware address for (nearly) each one.
	flood := f.start(t, filepath.Join(l.dir, "none"), "perfdhcp", "-4", "-l", "192.168.43.2", "-i",
		"-r", "2000", "-R", "1000000", "-p", "4", "192.168.43.1")
	waitFor(t, 5*time.Second, "the flood", func() bool { return s.Stats().PoolFull > 1000 })
	var worst time.Duration
	renewals := 0
	for start := time.Now(); time.Since(start) < 2*time.Second; renewals++ {
		t0 := time.Now()
		c.signal(t, syscall.SIGUSR1)
		ev, seen = c.waitEvent(t, seen, 5*time.Second, "renew", "bound")
		if ev["ip"] != addr {
			t.Fatalf("renewal during the flood got %s, want %s", ev["ip"], addr)
		}
		worst = max(worst, time.Since(t0))
	}
	st := s.Stats()
	t.Logf("%d renewals during the flood, slowest %v; %+v", renewals, worst, st)
	if st.Offers != 1 {
		t.Errorf("%d offers: the flood got some", st.Offers)
	}
	flood.cmd.Process.Signal(syscall.SIGINT)
}
