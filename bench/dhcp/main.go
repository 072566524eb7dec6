// Command dhcp benchmarks hotspotd's DHCP server (drivers/dhcp) against
// dnsmasq --no-ping on the same veth LAN, in network namespaces it creates
// and removes. As root:
//
//	go run ./bench/dhcp
//
// It measures, for each server in turn, interleaved over several rounds so
// that drift on the machine hits both alike:
//
//   - lease latency: from starting udhcpc or dhclient to the client being
//     bound, a new client (fresh hardware address) each time;
//   - perfdhcp's DORA exchange rate with 200 simulated clients;
//   - during a flood of DISCOVERs from random hardware addresses against a
//     full pool (one lease allowed, one held): the server's CPU use, and the
//     time from a renewal REQUEST to its ACK, measured by a client of its
//     own;
//
// and prints medians and the ratios openmifi/dnsmasq. Both servers keep
// their lease files on the same file system, in a temporary directory, and
// log to a file there; dnsmasq with its default logging, ours with its
// rate-limited one.
//
// With -serve the program is instead the DHCP server process of the
// benchmark (it runs inside the LAN namespace).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/drivers/dhcp"
)

var (
	serve     = flag.Bool("serve", false, "run as the benchmark's DHCP server (internal)")
	leaseFile = flag.String("leasefile", "", "lease file for -serve")
	maxLeases = flag.Int("max", 1, "lease limit for -serve")
	cpuProf   = flag.String("cpuprofile", "", "with -serve: write a CPU profile here")

	rounds    = flag.Int("rounds", 3, "rounds; each measures both servers, in alternating order")
	leases    = flag.Int("leases", 5, "lease latency samples per client program, server and round")
	perfTime  = flag.Int("perf", 4, "seconds of perfdhcp exchanges per server and round")
	floodRate = flag.Int("flood", 5000, "DISCOVERs per second in the flood")
	renewals  = flag.Int("renewals", 200, "renewals timed during each flood")
)

func main() {
	flag.Parse()
	if *serve {
		if err := runServer(); err != nil {
			log.Fatal(err)
		}
		return
	}
	if os.Geteuid() != 0 {
		log.Fatal("needs root: network namespaces")
	}
	for _, tool := range []string{"ip", "busybox", "dhclient", "dnsmasq", "perfdhcp"} {
		if _, err := exec.LookPath(tool); err != nil {
			log.Fatalf("needs %s (Debian packages: iproute2 busybox isc-dhcp-client dnsmasq-base kea-admin)", tool)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := newBench()
	if err != nil {
		log.Fatal(err)
	}
	err = b.run(ctx)
	b.close()
	if err != nil {
		log.Fatal(err)
	}
}

// runServer is the -serve mode: our server on br0 until SIGTERM.
func runServer() error {
	logf, err := os.Create(*leaseFile + ".log")
	if err != nil {
		return err
	}
	defer logf.Close()
	s, err := dhcp.New(dhcp.Config{Interface: "br0", LeaseFile: *leaseFile, Log: slog.New(slog.NewTextHandler(logf, nil))})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := s.Start(ctx, *maxLeases); err != nil {
		return err
	}
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	fmt.Println("ready")
	<-ctx.Done()
	return s.Stop(context.Background())
}

// bench is the LAN: a server namespace with br0, a client namespace
// (programs and the renewal prober) and a perfdhcp namespace (a relay's
// address, 192.168.43.2).
type bench struct {
	dir                    string
	server, client, perf   string
	clientFD               int
	self                   string
	results                map[string]map[string][]float64 // metric -> server -> samples
	order                  []string
	macSeq                 int
	cleanups               []func()
	clientConf, clientScpt string
}

const (
	ours    = "openmifi"
	theirs  = "dnsmasq"
	serverA = "192.168.43.1"
)

func newBench() (*bench, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "dhcp-bench-")
	if err != nil {
		return nil, err
	}
	suffix := strconv.Itoa(os.Getpid())
	b := &bench{dir: dir, self: self, results: map[string]map[string][]float64{},
		server: "dhb-s-" + suffix, client: "dhb-c-" + suffix, perf: "dhb-p-" + suffix}
	b.cleanups = append(b.cleanups, func() { os.RemoveAll(dir) })
	for _, ns := range []string{b.server, b.client, b.perf} {
		if err := sh("ip", "netns", "add", ns); err != nil {
			b.close()
			return nil, err
		}
		b.cleanups = append(b.cleanups, func() { sh("ip", "netns", "del", ns) })
	}
	steps := [][]string{
		{"ip", "-n", b.server, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", b.server, "addr", "add", serverA + "/24", "dev", "br0"},
		{"ip", "-n", b.server, "link", "set", "br0", "up"},
		{"ip", "link", "add", "eth0", "netns", b.client, "type", "veth", "peer", "name", "pc", "netns", b.server},
		{"ip", "link", "add", "eth0", "netns", b.perf, "type", "veth", "peer", "name", "pp", "netns", b.server},
		{"ip", "-n", b.server, "link", "set", "pc", "master", "br0", "up"},
		{"ip", "-n", b.server, "link", "set", "pp", "master", "br0", "up"},
		{"ip", "-n", b.client, "link", "set", "eth0", "up"},
		{"ip", "-n", b.perf, "addr", "add", "192.168.43.2/24", "dev", "eth0"},
		{"ip", "-n", b.perf, "link", "set", "eth0", "up"},
	}
	for _, ns := range []string{b.server, b.client, b.perf} {
		steps = append(steps, []string{"ip", "-n", ns, "link", "set", "lo", "up"})
	}
	for _, s := range steps {
		if err := sh(s...); err != nil {
			b.close()
			return nil, err
		}
	}
	f, err := os.Open("/var/run/netns/" + b.client)
	if err != nil {
		b.close()
		return nil, err
	}
	b.cleanups = append(b.cleanups, func() { f.Close() })
	b.clientFD = int(f.Fd())
	b.clientScpt = filepath.Join(dir, "client-script")
	b.clientConf = filepath.Join(dir, "dhclient.conf")
	// The clients' script configures nothing: only the time to bound
	// counts, and nothing outside the namespace is touched.
	if err := os.WriteFile(b.clientScpt, []byte("#!/bin/sh\nexit 0\n"), 0o700); err != nil {
		b.close()
		return nil, err
	}
	if err := os.WriteFile(b.clientConf, []byte("request subnet-mask, routers, domain-name, domain-name-servers, interface-mtu;\n"), 0o600); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bench) close() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
}

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (b *bench) record(metric, server string, v float64) {
	if b.results[metric] == nil {
		b.results[metric] = map[string][]float64{}
		b.order = append(b.order, metric)
	}
	b.results[metric][server] = append(b.results[metric][server], v)
}

func (b *bench) run(ctx context.Context) error {
	for r := range *rounds {
		servers := []string{ours, theirs}
		if r%2 == 1 {
			slices.Reverse(servers)
		}
		for _, srv := range servers {
			fmt.Fprintf(os.Stderr, "round %d/%d: %s\n", r+1, *rounds, srv)
			if err := b.leasePhase(ctx, srv, r); err != nil {
				return fmt.Errorf("%s: %w", srv, err)
			}
			if err := b.floodPhase(ctx, srv, r); err != nil {
				return fmt.Errorf("%s: %w", srv, err)
			}
		}
	}
	b.print()
	return nil
}

// server is a running DHCP server process in the server namespace.
type server struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startServer starts ours or dnsmasq with a fresh lease file, allowing
// max leases, and waits until it answers.
func (b *bench) startServer(ctx context.Context, which string, max int, tag string) (*server, error) {
	dir := filepath.Join(b.dir, which+"-"+tag)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var args []string
	if which == ours {
		args = []string{b.self, "-serve", "-leasefile", filepath.Join(dir, "leases"), "-max", strconv.Itoa(max)}
	} else {
		args = []string{"dnsmasq", "--no-daemon", "-C", "/dev/null", "--port=0", "--no-resolv",
			"--interface=br0", "--bind-interfaces", "--no-ping", "--dhcp-authoritative",
			"--dhcp-range=192.168.43.10,192.168.43.254,255.255.255.0,1h",
			"--dhcp-lease-max=" + strconv.Itoa(max),
			"--dhcp-option=option:router," + serverA, "--dhcp-option=option:dns-server," + serverA,
			"--domain=lan", "--dhcp-leasefile=" + filepath.Join(dir, "leases"),
			"--log-facility=" + filepath.Join(dir, "log"), "--pid-file=" + filepath.Join(dir, "pid")}
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", b.server}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	out, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	// Ready once port 67 is bound in the namespace.
	deadline := time.Now().Add(5 * time.Second)
	for {
		o, _ := exec.Command("ip", "netns", "exec", b.server, "ss", "-Hlun", "sport", "= :67").Output()
		if len(strings.TrimSpace(string(o))) > 0 {
			return s, nil
		}
		select {
		case <-s.done:
			msg, _ := os.ReadFile(out.Name())
			return nil, fmt.Errorf("%s exited: %s", which, msg)
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s did not bind port 67", which)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killDaemon ends the dhclient that wrote pidfile. The daemon writes it
// after its parent returned, so it is waited for.
func killDaemon(pidfile string) {
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		data, err := os.ReadFile(pidfile)
		if err != nil {
			continue
		}
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
			return
		}
	}
	log.Printf("dhclient left no pid file %s: its daemon may still run", pidfile)
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// cpu returns the process's user and system time.
func (s *server) cpu() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th, in clock ticks of 1/100 s.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

func (b *bench) nextMAC() string {
	b.macSeq++
	return fmt.Sprintf("02:b0:%02x:%02x:%02x:%02x", rand.IntN(256), rand.IntN(256), b.macSeq>>8&0xff, b.macSeq&0xff)
}

// leasePhase times new clients of both programs, then perfdhcp.
func (b *bench) leasePhase(ctx context.Context, which string, round int) error {
	s, err := b.startServer(ctx, which, 245, fmt.Sprint("lease", round))
	if err != nil {
		return err
	}
	defer s.stop()
	lf := filepath.Join(b.dir, "dhclient.leases")
	pf := filepath.Join(b.dir, "dhclient.pid")
	for range *leases {
		for _, prog := range []string{"udhcpc", "dhclient"} {
			if err := sh("ip", "-n", b.client, "link", "set", "eth0", "address", b.nextMAC()); err != nil {
				return err
			}
			var args []string
			if prog == "udhcpc" {
				// -q: exit once bound; -n: exit if not.
				args = []string{"busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", b.clientScpt, "-t", "3", "-T", "1", "-O", "mtu"}
			} else {
				// dhclient returns once bound, leaving a daemon;
				// without a lease file it is a new client.
				os.Remove(lf)
				os.Remove(pf)
				args = []string{"dhclient", "-1", "-4", "-cf", b.clientConf, "-sf", b.clientScpt, "-lf", lf, "-pf", pf, "eth0"}
			}
			start := time.Now()
			err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", b.client}, args...)...).Run()
			took := time.Since(start)
			if prog == "dhclient" {
				killDaemon(pf)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", prog, err)
			}
			b.record(prog+" lease latency, ms (lower is better)", which, float64(took.Microseconds())/1000)
		}
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", b.perf, "perfdhcp", "-4", "-l", "192.168.43.2",
		"-r", "20000", "-R", "200", "-p", strconv.Itoa(*perfTime), serverA).CombinedOutput()
	// perfdhcp exits 3 when it counted drops, which it does at any
	// rate beyond the server's.
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) {
		return fmt.Errorf("perfdhcp: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Rate: ([0-9.]+) 4-way exchanges/second`).FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("perfdhcp printed no rate:\n%s", out)
	}
	rate, _ := strconv.ParseFloat(string(m[1]), 64)
	b.record("perfdhcp DORA exchanges/s, 200 clients (higher is better)", which, rate)
	return nil
}

// floodPhase holds the only lease allowed, floods the server with
// DISCOVERs from random hardware addresses, and times renewals meanwhile.
func (b *bench) floodPhase(ctx context.Context, which string, round int) error {
	s, err := b.startServer(ctx, which, 1, fmt.Sprint("flood", round))
	if err != nil {
		return err
	}
	defer s.stop()
	mac, _ := net.ParseMAC(b.nextMAC())
	if err := sh("ip", "-n", b.client, "link", "set", "eth0", "address", mac.String()); err != nil {
		return err
	}
	p, err := newProber(b.clientFD, mac)
	if err != nil {
		return err
	}
	defer p.close()
	addr, err := p.bind()
	if err != nil {
		return err
	}
	if err := sh("ip", "-n", b.client, "addr", "replace", addr.String()+"/24", "dev", "eth0"); err != nil {
		return err
	}
	defer sh("ip", "-n", b.client, "addr", "flush", "dev", "eth0")

	idle, err := p.renewMany(50)
	if err != nil {
		return fmt.Errorf("renewals without flood: %w", err)
	}
	b.record("renewal ACK latency idle, p50 ms", which, percentile(idle, 50))

	secs := float64(*renewals)*0.01 + 2
	flood := exec.CommandContext(ctx, "ip", "netns", "exec", b.perf, "perfdhcp", "-4", "-l", "192.168.43.2", "-i",
		"-r", strconv.Itoa(*floodRate), "-R", "1000000", "-p", strconv.Itoa(int(secs)+2), serverA)
	floodOut := &strings.Builder{}
	flood.Stdout, flood.Stderr = floodOut, floodOut
	if err := flood.Start(); err != nil {
		return err
	}
	defer func() { flood.Process.Signal(syscall.SIGTERM); flood.Wait() }()
	time.Sleep(time.Second)
	cpu0, err := s.cpu()
	if err != nil {
		return err
	}
	t0 := time.Now()
	during, err := p.renewMany(*renewals)
	if err != nil {
		return fmt.Errorf("renewals during the flood: %w", err)
	}
	cpu1, err := s.cpu()
	if err != nil {
		return err
	}
	share := float64(cpu1-cpu0) / float64(time.Since(t0)) * 100
	b.record(fmt.Sprintf("CPU during pool-full flood of %d DISCOVER/s, %% of a core", *floodRate), which, share)
	b.record("renewal ACK latency in flood, p50 ms", which, percentile(during, 50))
	b.record("renewal ACK latency in flood, p99 ms", which, percentile(during, 99))
	b.record("renewal ACK latency in flood, max ms", which, percentile(during, 100))
	return nil
}

func percentile(xs []float64, p float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func median(xs []float64) float64 { return percentile(xs, 50) }

func (b *bench) print() {
	fmt.Printf("\nDHCP server benchmark: openmifi drivers/dhcp vs dnsmasq --no-ping, veth LAN, %d rounds interleaved, medians\n\n", *rounds)
	fmt.Printf("| %-66s | %10s | %10s | %16s |\n", "metric", ours, theirs, "openmifi/dnsmasq")
	fmt.Printf("|%s|%s|%s|%s|\n", strings.Repeat("-", 68), strings.Repeat("-", 12), strings.Repeat("-", 12), strings.Repeat("-", 18))
	for _, m := range b.order {
		a, d := median(b.results[m][ours]), median(b.results[m][theirs])
		ratio := "-"
		if d > 0 {
			ratio = fmt.Sprintf("%.2f", a/d)
		}
		fmt.Printf("| %-66s | %10.2f | %10.2f | %16s |\n", m, a, d, ratio)
	}
	fmt.Printf("\n%d CPUs, Go %s; lease files in %s (removed).\n", runtime.NumCPU(), runtime.Version(), os.TempDir())
}

// prober is a DHCP client of the benchmark's own, in the client
// namespace: it takes a lease by broadcast, then times unicast renewals
// from request sent to ACK received.
type prober struct {
	conn *net.UDPConn
	mac  net.HardwareAddr
	addr netip.Addr
}

func newProber(nsfd int, mac net.HardwareAddr) (*prober, error) {
	type result struct {
		c   *net.UDPConn
		err error
	}
	rc := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies in the namespace
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			rc <- result{err: err}
			return
		}
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			c.Control(func(fd uintptr) {
				serr = errors.Join(
					unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "eth0"),
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1),
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1))
			})
			return serr
		}}
		pc, err := lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:68")
		if err != nil {
			rc <- result{err: err}
			return
		}
		rc <- result{c: pc.(*net.UDPConn)}
	}()
	r := <-rc
	if r.err != nil {
		return nil, fmt.Errorf("prober: %w", r.err)
	}
	return &prober{conn: r.c, mac: mac}, nil
}

func (p *prober) close() { p.conn.Close() }

// exchange sends m to dst and returns the reply to it and the round trip.
func (p *prober) exchange(m *dhcpv4.DHCPv4, dst string) (*dhcpv4.DHCPv4, time.Duration, error) {
	buf := make([]byte, 1500)
	to := &net.UDPAddr{IP: net.ParseIP(dst), Port: 67}
	for try := 0; try < 3; try++ {
		start := time.Now()
		if _, err := p.conn.WriteToUDP(m.ToBytes(), to); err != nil {
			return nil, 0, err
		}
		p.conn.SetReadDeadline(start.Add(time.Second))
		for {
			n, _, err := p.conn.ReadFromUDP(buf)
			if err != nil {
				break // timed out: send again
			}
			r, err := dhcpv4.FromBytes(buf[:n])
			if err == nil && r.OpCode == dhcpv4.OpcodeBootReply && r.TransactionID == m.TransactionID {
				return r, time.Since(start), nil
			}
		}
	}
	return nil, 0, fmt.Errorf("no reply to %s", m.MessageType())
}

func (p *prober) bind() (netip.Addr, error) {
	d, err := dhcpv4.NewDiscovery(p.mac, dhcpv4.WithBroadcast(true))
	if err != nil {
		return netip.Addr{}, err
	}
	offer, _, err := p.exchange(d, "255.255.255.255")
	if err != nil {
		return netip.Addr{}, err
	}
	req, err := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithBroadcast(true))
	if err != nil {
		return netip.Addr{}, err
	}
	ack, _, err := p.exchange(req, "255.255.255.255")
	if err != nil {
		return netip.Addr{}, err
	}
	if ack.MessageType() != dhcpv4.MessageTypeAck {
		return netip.Addr{}, fmt.Errorf("got %s: %s", ack.MessageType(), ack.Message())
	}
	p.addr, _ = netip.AddrFromSlice(ack.YourIPAddr.To4())
	return p.addr, nil
}

// renewMany times n renewals, 10 ms apart.
func (p *prober) renewMany(n int) ([]float64, error) {
	var ms []float64
	for range n {
		m, err := dhcpv4.New(dhcpv4.WithHwAddr(p.mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
			dhcpv4.WithClientIP(p.addr.AsSlice()))
		if err != nil {
			return nil, err
		}
		r, rtt, err := p.exchange(m, serverA)
		if err != nil {
			return nil, err
		}
		if r.MessageType() != dhcpv4.MessageTypeAck {
			return nil, fmt.Errorf("renewal got %s: %s", r.MessageType(), r.Message())
		}
		ms = append(ms, float64(rtt.Microseconds())/1000)
		time.Sleep(10 * time.Millisecond)
	}
	return ms, nil
}
