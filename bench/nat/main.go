// Command nat benchmarks hotspotd's nftables ruleset (drivers/firewall)
// against plain forwarding and against an OpenWrt firewall4-style ruleset
// (fw4.nft): iperf3 TCP download throughput and 64-byte UDP packet rate
// from a client through a router namespace to an upstream host.
//
//	client c0 192.168.43.10 ── lan0 192.168.43.1 router wan0 10.99.0.1 ── up0 10.99.0.2 upstream
//
// The upstream has no route back to the LAN, so every configuration must
// masquerade: "plain" is forwarding plus a one-rule masquerade table, and
// conntrack and NAT are in every number. The machine is noisy, so the
// configurations are interleaved, in a rotating order each round, and
// compared by per-round paired ratios.
//
// Run as root (needs iproute2, nftables, iperf3, iputils-ping):
//
//	go run ./bench/nat [-rounds 5] [-duration 5] [-extra name=rules.nft]
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/openmifi/openmifi/drivers/firewall"
)

//go:embed fw4.nft
var fw4Ruleset string

// plainRuleset is the least that works here: masquerade on the uplink.
const plainRuleset = `table ip natbench {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" masquerade
	}
}
`

const (
	clientAddr   = "192.168.43.10"
	upstreamAddr = "10.99.0.2"
	iperfPort    = "5201"
	cmdTimeout   = 10 * time.Second // every command but iperf3
)

// netns is a network namespace made with "ip netns add".
type netns struct {
	name string
	file *os.File // for firewall.Config.NetNS
}

// command runs argv inside the namespace.
func (n *netns) command(ctx context.Context, argv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name}, argv...)...)
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// run runs argv (inside n unless n is nil) with a timeout, feeding it
// stdin, and returns its output.
func run(ctx context.Context, n *netns, stdin string, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	var cmd *exec.Cmd
	if n != nil {
		cmd = n.command(ctx, argv...)
	} else {
		cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	}
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// config is one ruleset under test, installed in the router namespace.
type config struct {
	name     string
	up, down func(context.Context) error
}

type bench struct {
	client, router, upstream *netns
	nat                      *firewall.NAT
	runDir                   string
	counters                 string // openmifi's accounting at the end of its last run
}

// sample is one configuration's numbers in one round.
type sample struct {
	tcp, tcpCPU float64 // TCP download: bit/s at the client, and per CPU-second of the sender (server)
	udp, udpCPU float64 // UDP-64 upload: packets/s received by the server, and per CPU-second of the sender (client)
	starved     bool    // a sender had < 90% of a core: other load took CPU time
}

type round struct {
	order []string
	by    map[string]sample
}

func main() {
	rounds := flag.Int("rounds", 5, "rounds; each runs every configuration once")
	secs := flag.Int("duration", 5, "seconds per iperf3 test")
	extra := flag.String("extra", "", "name=rules.nft: one more ruleset to compare, e.g. a variant under study")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runBench(ctx, *rounds, *secs, *extra)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("interrupted, namespaces removed (%w)", err)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/nat:", err)
		os.Exit(1)
	}
}

func runBench(ctx context.Context, rounds, secs int, extra string) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: network namespaces, nftables")
	}
	for _, tool := range []string{"ip", "ss", "nft", "iperf3", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("needs %s (Debian: iproute2, nftables, iperf3, iputils-ping): %w", tool, err)
		}
	}
	if rounds < 1 || secs < 1 {
		return errors.New("-rounds and -duration must be at least 1")
	}
	b := &bench{}
	defer b.cleanup()
	if err := b.setup(ctx); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	configs := []config{
		{"plain", b.load(plainRuleset), b.flush},
		{"openmifi", b.startOpenmifi, b.stopOpenmifi},
		{"fw4", b.load(fw4Ruleset), b.flush},
	}
	if extra != "" {
		name, file, _ := strings.Cut(extra, "=")
		rules, err := os.ReadFile(file)
		if err != nil || name == "" {
			return fmt.Errorf("-extra %q: want name=rules.nft: %v", extra, err)
		}
		configs = append(configs, config{name, b.load(string(rules)), b.flush})
	}

	printHeader(rounds, secs, configs)
	// An unrecorded pass first: whatever runs first after setup is slower.
	for _, c := range configs {
		fmt.Fprintf(os.Stderr, "warm-up: %s\n", c.name)
		if _, err := b.measure(ctx, c, 1); err != nil {
			return fmt.Errorf("warm-up, %s: %w", c.name, err)
		}
	}
	var res []round
	for r := range rounds {
		rr := round{by: map[string]sample{}}
		for i := range configs {
			c := configs[(i+r)%len(configs)]
			fmt.Fprintf(os.Stderr, "round %d/%d: %s\n", r+1, rounds, c.name)
			s, err := b.measure(ctx, c, secs)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, c.name, err)
			}
			rr.order, rr.by[c.name] = append(rr.order, c.name), s
		}
		res = append(res, rr)
	}
	printReport(res, configs, b.counters)
	return nil
}

// setup builds the three namespaces and the two veth links.
func (b *bench) setup(ctx context.Context) error {
	for _, ns := range []struct {
		role string
		p    **netns
	}{{"client", &b.client}, {"router", &b.router}, {"upstream", &b.upstream}} {
		name := fmt.Sprintf("natbench-%s-%d", ns.role, os.Getpid())
		if _, err := run(ctx, nil, "", "ip", "netns", "add", name); err != nil {
			return err
		}
		*ns.p = &netns{name: name}
		f, err := os.Open(filepath.Join("/run/netns", name))
		if err != nil {
			return fmt.Errorf("open namespace: %w", err)
		}
		(*ns.p).file = f
	}
	// The client's default route is the router; the upstream gets none.
	script := strings.NewReplacer("{c}", b.client.name, "{r}", b.router.name, "{u}", b.upstream.name).Replace(`
		ip -n {r} link add lan0 type veth peer name c0 netns {c}
		ip -n {r} link add wan0 type veth peer name up0 netns {u}
		ip -n {c} addr add ` + clientAddr + `/24 dev c0
		ip -n {r} addr add 192.168.43.1/24 dev lan0
		ip -n {r} addr add 10.99.0.1/24 dev wan0
		ip -n {u} addr add ` + upstreamAddr + `/24 dev up0
		ip -n {c} link set lo up
		ip -n {c} link set c0 up
		ip -n {r} link set lo up
		ip -n {r} link set lan0 up
		ip -n {r} link set wan0 up
		ip -n {u} link set lo up
		ip -n {u} link set up0 up
		ip -n {c} route add default via 192.168.43.1`)
	for _, line := range strings.Split(strings.TrimSpace(script), "\n") {
		if _, err := run(ctx, nil, "", strings.Fields(line)...); err != nil {
			return err
		}
	}

	dir, err := os.MkdirTemp("", "natbench-")
	if err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	b.runDir = dir
	b.nat, err = firewall.New(firewall.Config{
		LAN:       "lan0",
		LANPrefix: netip.MustParsePrefix("192.168.43.0/24"),
		RunDir:    dir,
		NetNS:     int(b.router.file.Fd()),
	})
	return err
}

// cleanup removes whatever setup made; it runs on every exit path,
// including an interrupt (the context's cancellation has killed iperf3).
func (b *bench) cleanup() {
	ctx := context.Background()
	if b.nat != nil {
		if err := b.nat.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
		b.nat.Close()
	}
	for _, n := range []*netns{b.client, b.router, b.upstream} {
		if n == nil {
			continue
		}
		if n.file != nil {
			n.file.Close()
		}
		if _, err := run(ctx, nil, "", "ip", "netns", "del", n.name); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
	}
	if b.runDir != "" {
		os.RemoveAll(b.runDir)
	}
}

func (b *bench) forwarding(ctx context.Context, v string) error {
	_, err := run(ctx, b.router, "", "sysctl", "-qw", "net.ipv4.ip_forward="+v)
	return err
}

func (b *bench) flush(ctx context.Context) error {
	_, err := run(ctx, b.router, "", "nft", "flush", "ruleset")
	return err
}

// load returns a config's up: the ruleset in place of any other, and
// forwarding on.
func (b *bench) load(rules string) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := run(ctx, b.router, "flush ruleset\n"+rules, "nft", "-f", "-"); err != nil {
			return fmt.Errorf("load ruleset: %w", err)
		}
		return b.forwarding(ctx, "1")
	}
}

// startOpenmifi installs hotspotd's table as hotspotd does, with
// forwarding off before, as the driver has to switch it on.
func (b *bench) startOpenmifi(ctx context.Context) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	if err := b.forwarding(ctx, "0"); err != nil {
		return err
	}
	return b.nat.Start("wan0")
}

func (b *bench) stopOpenmifi(context.Context) error {
	if all, err := b.nat.Counters(); err == nil {
		c := all[netip.MustParseAddr(clientAddr)]
		b.counters = fmt.Sprintf("%d packets / %d MiB up, %d packets / %d MiB down",
			c.UpPackets, c.UpBytes>>20, c.DownPackets, c.DownBytes>>20)
	}
	return b.nat.Stop()
}

// measure installs c, checks that the client reaches the upstream, and
// runs both tests for secs seconds each.
func (b *bench) measure(ctx context.Context, c config, secs int) (s sample, err error) {
	if err := c.up(ctx); err != nil {
		return s, fmt.Errorf("install: %w", err)
	}
	defer func() {
		if derr := c.down(ctx); derr != nil && err == nil {
			err = fmt.Errorf("remove: %w", derr)
		}
	}()
	if _, err := run(ctx, b.client, "", "ping", "-c1", "-W2", upstreamAddr); err != nil {
		return s, fmt.Errorf("client cannot reach the upstream: %w", err)
	}
	// -A 0,1: client on CPU 0, server on CPU 1, so that sender and
	// receiver never share a core by chance (that alone moves the
	// numbers by 2x). The forwarding runs in the sender's softirq.
	cl, _, err := b.iperf(ctx, secs, "-R", "-A", "0,1")
	if err != nil {
		return s, fmt.Errorf("TCP: %w", err)
	}
	s.tcp, s.tcpCPU = cl.End.SumReceived.BitsPerSecond, perCPU(cl.End.SumReceived.BitsPerSecond, cl.End.CPU.RemoteTotal)
	s.starved = cl.End.CPU.RemoteTotal < 90
	// -w 4M: a receive buffer large enough that the server is not what
	// drops packets; the sending client, which also forwards, is the
	// bottleneck.
	cl, srv, err := b.iperf(ctx, secs, "-u", "-l", "64", "-b", "0", "-w", "4M", "-A", "0,1")
	if err != nil {
		return s, fmt.Errorf("UDP: %w", err)
	}
	if sum := srv.End.Sum; sum.Seconds > 0 {
		s.udp = (sum.Packets - sum.LostPackets) / sum.Seconds
	}
	s.udpCPU = perCPU(s.udp, cl.End.CPU.HostTotal)
	s.starved = s.starved || cl.End.CPU.HostTotal < 90
	if s.tcp <= 0 || s.udp <= 0 {
		return s, errors.New("iperf3 reported no traffic")
	}
	return s, nil
}

// report is what is read of an iperf3 -J report, client's or server's.
type report struct {
	Error string `json:"error"`
	End   struct {
		Sum struct {
			Seconds     float64 `json:"seconds"`
			Packets     float64 `json:"packets"`
			LostPackets float64 `json:"lost_packets"`
		} `json:"sum"`
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
		CPU struct {
			HostTotal   float64 `json:"host_total"`   // this side's iperf3, percent of a core
			RemoteTotal float64 `json:"remote_total"` // the other side's
		} `json:"cpu_utilization_percent"`
	} `json:"end"`
}

// iperf runs a one-off iperf3 server in the upstream and a client with
// args in the client namespace, and returns both reports.
func (b *bench) iperf(ctx context.Context, secs int, args ...string) (client, server report, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	srv := b.upstream.command(ctx, "iperf3", "-s", "-1", "-J", "-B", upstreamAddr, "-p", iperfPort)
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		return client, server, fmt.Errorf("start iperf3 server: %w", err)
	}
	waited := false
	defer func() { // a server whose client failed is still waiting
		if !waited {
			cancel()
			srv.Wait()
		}
	}()
	if err := b.waitListening(ctx); err != nil {
		return client, server, err
	}
	argv := append([]string{"iperf3", "-c", upstreamAddr, "-p", iperfPort, "-J", "-t", strconv.Itoa(secs)}, args...)
	out, err := b.client.command(ctx, argv...).Output()
	if jerr := json.Unmarshal(out, &client); err == nil {
		err = jerr
	}
	if err != nil {
		if client.Error != "" {
			err = fmt.Errorf("%w: %s", err, client.Error)
		}
		return client, server, fmt.Errorf("iperf3 client: %w", err)
	}
	waited = true
	if err := srv.Wait(); err != nil {
		return client, server, fmt.Errorf("iperf3 server: %w: %s", err, bytes.TrimSpace(srvOut.Bytes()))
	}
	if err := json.Unmarshal(srvOut.Bytes(), &server); err != nil {
		return client, server, fmt.Errorf("iperf3 server report: %w", err)
	}
	return client, server, nil
}

// waitListening polls until the iperf3 server listens (a test connection
// would use up the one-off server).
func (b *bench) waitListening(ctx context.Context) error {
	for range 100 {
		out, err := run(ctx, b.upstream, "", "ss", "-Hltn", "sport = :"+iperfPort)
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(out)) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("iperf3 server did not listen within 5s")
}

func printHeader(rounds, secs int, configs []config) {
	var names []string
	for _, c := range configs {
		names = append(names, c.name)
	}
	osrel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Printf(`NAT benchmark: client %s -> router lan0|wan0 -> upstream %s, veth, kernel %s
%d rounds x %d s per test; %s in a rotating order; iperf3 client on CPU 0, server on CPU 1
  plain    = ip_forward=1 + a masquerade-only table (one nat postrouting chain: oifname "wan0" masquerade);
             the upstream has no route back to the LAN, so nothing works here without NAT
  openmifi = hotspotd's table, installed by drivers/firewall
  fw4      = an OpenWrt firewall4-style ruleset for a default lan/wan router (bench/nat/fw4.nft)

`, clientAddr, upstreamAddr, strings.TrimSpace(string(osrel)), rounds, secs, strings.Join(names, ", "))
}

func printReport(res []round, configs []config, counters string) {
	tcp := table(res, configs, "TCP download (iperf3 -R), Gbit/s at the client", 1e-9,
		func(s sample) float64 { return s.tcp })
	tcpCPU := table(res, configs, "the same TCP, Gbit per CPU-second of the sender (less sensitive to other load)", 1e-9,
		func(s sample) float64 { return s.tcpCPU })
	udp := table(res, configs, "UDP 64-byte upload (iperf3 -u -l 64 -b 0), kpackets/s received by the server", 1e-3,
		func(s sample) float64 { return s.udp })
	udpCPU := table(res, configs, "the same UDP, kpackets per CPU-second of the sender (less sensitive to other load)", 1e-3,
		func(s sample) float64 { return s.udpCPU })

	// openmifi/fw4 in a round is the ratio of that round's two ratios.
	var rr, rrCPU []float64
	for _, r := range res {
		rr = append(rr, r.by["openmifi"].udp/r.by["fw4"].udp)
		rrCPU = append(rrCPU, r.by["openmifi"].udpCPU/r.by["fw4"].udpCPU)
	}
	verdict := map[bool]string{true: "PASS", false: "MISS"}
	row := func(label, measured, perCPU string) { fmt.Printf("%-50s %-16s %s\n", label, measured, perCPU) }
	pair := func(a, b float64) string { return fmt.Sprintf("%.3f / %.3f", a, b) }
	row("goals (medians of per-round paired ratios)", "measured", "per sender CPU-second")
	row("  TCP openmifi/plain ≥ 0.95", fmt.Sprintf("%.3f %s", tcp["openmifi"], verdict[tcp["openmifi"] >= 0.95]),
		fmt.Sprintf("%.3f", tcpCPU["openmifi"]))
	row("  UDP-64 openmifi ≥ fw4 (ratio of ratios ≥ 1.00)", fmt.Sprintf("%.3f %s", median(rr), verdict[median(rr) >= 1]),
		fmt.Sprintf("%.3f", median(rrCPU)))
	row("    UDP-64 openmifi/plain / fw4/plain", pair(udp["openmifi"], udp["fw4"]), pair(udpCPU["openmifi"], udpCPU["fw4"]))
	fmt.Println("\n* after a name in \"order\": one of its senders had < 90% of a core (other load on the machine);")
	fmt.Println("  the per-CPU-second tables discount that.")
	if counters != "" {
		fmt.Printf("openmifi's accounting for %s at the end of its last run: %s\n", clientAddr, counters)
	}
}

// table prints one metric per round and configuration with each
// configuration's ratio to plain, and returns the median ratios.
func table(res []round, configs []config, title string, scale float64, metric func(sample) float64) map[string]float64 {
	fmt.Println(title)
	fmt.Printf("%-7s", "round")
	for _, c := range configs {
		fmt.Printf("%10s", c.name)
	}
	for _, c := range configs[1:] {
		fmt.Printf("%16s", c.name+"/plain")
	}
	fmt.Println("   order")
	ratios := map[string][]float64{}
	for i, r := range res {
		fmt.Printf("%-7d", i+1)
		for _, c := range configs {
			fmt.Printf("%10.2f", metric(r.by[c.name])*scale)
		}
		for _, c := range configs[1:] {
			x := metric(r.by[c.name]) / metric(r.by["plain"])
			ratios[c.name] = append(ratios[c.name], x)
			fmt.Printf("%16.3f", x)
		}
		var order []string
		for _, name := range r.order {
			if r.by[name].starved {
				name += "*"
			}
			order = append(order, name)
		}
		fmt.Printf("   %s\n", strings.Join(order, ","))
	}
	med := map[string]float64{}
	fmt.Printf("%-7s%*s", "median", 10*len(configs), "")
	for _, c := range configs[1:] {
		med[c.name] = median(ratios[c.name])
		fmt.Printf("%16.3f", med[c.name])
	}
	fmt.Print("\n\n")
	return med
}

// perCPU is rate per CPU-second of a process that used cpu percent of a core.
func perCPU(rate, cpu float64) float64 {
	if cpu <= 0 {
		return 0
	}
	return rate / (cpu / 100)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	return (s[(len(s)-1)/2] + s[len(s)/2]) / 2
}
