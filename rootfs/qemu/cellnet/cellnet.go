// Package cellnet is the host side of a QEMU board's cellular
// connection: the simulated operator network behind the board's uplink
// NIC, and the modem simulator its modem port talks to.
//
// The network is a network namespace of its own, named per run
// (omcell-PID), holding the tap device QEMU attaches the uplink NIC to,
// with the operator's gateway address on it; dnsmasq answering the
// guest's DHCP (always the same address, the one the modem simulator
// reports for the data context) and DNS (a test name, and nothing else:
// it forwards nowhere); and an HTTP test server. The namespace has no
// route and no link to any other: what the guest sends ends there. QEMU
// runs inside it (Network.Command), so that it finds the tap.
package cellnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/openmifi/openmifi/drivers/netns"
)

// The simulated operator network's addresses: a carrier-grade NAT range
// (RFC 6598), as operators give their subscribers.
var (
	// Gateway is the tap's address: the guest's default gateway, DNS
	// server and test server.
	Gateway = netip.MustParsePrefix("100.64.0.1/24")
	// GuestAddr is the address DHCP gives the guest's uplink NIC, and
	// the modem simulator's context address.
	GuestAddr = netip.MustParseAddr("100.64.0.2")
)

const (
	// GuestMAC is the uplink NIC's MAC address (QEMU's 52:54:00
	// prefix), which the DHCP server knows.
	GuestMAC = "52:54:00:6f:6d:01"
	// TapName is the tap device inside the namespace.
	TapName = "omtap0"
	// TestName is the name the network's DNS server answers, with
	// Gateway's address.
	TestName = "server." + testDomain
	// testDomain is the DNS domain the network's server owns.
	testDomain = "cell.test"
	// TestPage is what the test server answers to any GET.
	TestPage = "openmifi simulated cellular network: test server\n"
	// nsPrefix starts every namespace this package creates; the rest
	// is the creating process's PID, which is how a stale one is
	// recognized.
	nsPrefix = "omcell-"
	// stopGrace is how long dnsmasq gets to exit after SIGTERM.
	stopGrace = 5 * time.Second
)

// Config is one simulated network.
type Config struct {
	// Name is the namespace's name; "" is omcell-PID of this process.
	Name string
	// Dir holds dnsmasq's lease file and log.
	Dir string
	Log *slog.Logger
}

// Network is a running simulated network; Close removes it.
type Network struct {
	// Name is the network namespace's name (ip netns).
	Name string
	// Tap is the tap device QEMU attaches to (TapName).
	Tap string

	log     *slog.Logger
	dnsmasq *exec.Cmd
	dnsDone chan error
	http    *http.Server
}

// Start creates the namespace, its tap, dnsmasq and the test server. It
// needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for the namespace). On an
// error, whatever it made is removed again.
func Start(ctx context.Context, cfg Config) (n *Network, err error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Name == "" {
		cfg.Name = nsPrefix + strconv.Itoa(os.Getpid())
	}
	if cfg.Dir == "" {
		return nil, errors.New("cellular network: no directory for dnsmasq's leases and log")
	}
	dnsmasq, err := exec.LookPath("dnsmasq")
	if err != nil {
		return nil, fmt.Errorf("cellular network: dnsmasq: %w (Debian: apt-get install dnsmasq-base)", err)
	}
	removeStale(ctx, cfg.Log)
	if err := ip(ctx, "netns", "add", cfg.Name); err != nil {
		return nil, fmt.Errorf("cellular network: %w", err)
	}
	n = &Network{Name: cfg.Name, Tap: TapName, log: cfg.Log}
	defer func() {
		if err != nil {
			n.Close()
			n = nil
		}
	}()
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		// A persistent tap: it exists before QEMU opens it, so the
		// address and dnsmasq can be set up first.
		{"tuntap", "add", "dev", TapName, "mode", "tap"},
		{"addr", "add", Gateway.String(), "dev", TapName},
		{"link", "set", TapName, "up"},
	} {
		if err := ip(ctx, append([]string{"-n", n.Name}, args...)...); err != nil {
			return n, fmt.Errorf("cellular network %s: %w", n.Name, err)
		}
	}
	if err := n.startDNSMasq(dnsmasq, cfg.Dir); err != nil {
		return n, err
	}
	if err := n.startHTTP(); err != nil {
		return n, err
	}
	n.log.Info("cellular network up", "netns", n.Name, "tap", n.Tap, "gateway", Gateway,
		"guest", GuestAddr, "test", "http://"+Gateway.Addr().String()+"/ "+TestName)
	return n, nil
}

// dnsmasqArgs is dnsmasq's command line: DHCP and DNS on the tap only,
// the guest's MAC always given GuestAddr, the test name answered, no
// configuration file, no upstream servers, no /etc/hosts.
func dnsmasqArgs(leases string) []string {
	gw := Gateway.Addr().String()
	first, last := GuestAddr.String(), GuestAddr.Next().Next().Next().String()
	mask := net.IP(net.CIDRMask(Gateway.Bits(), 32)).String()
	return []string{
		"--no-daemon", "--conf-file=/dev/null", "--log-facility=-",
		"--interface=" + TapName, "--bind-interfaces",
		"--no-resolv", "--no-hosts", "--no-poll",
		"--dhcp-range=" + first + "," + last + "," + mask + ",1h",
		"--dhcp-host=" + GuestMAC + "," + first,
		"--dhcp-option=option:router," + gw,
		"--dhcp-option=option:dns-server," + gw,
		"--dhcp-authoritative",
		"--host-record=" + TestName + "," + gw,
		// The test domain is the network's own: its other names and
		// types are answered (no such name, no such address) instead
		// of refused for want of an upstream server.
		"--local=/" + testDomain + "/",
		"--dhcp-leasefile=" + leases,
		"--log-dhcp",
	}
}

func (n *Network) startDNSMasq(bin, dir string) error {
	logf, err := os.Create(filepath.Join(dir, "dnsmasq.log"))
	if err != nil {
		return fmt.Errorf("cellular network: dnsmasq log: %w", err)
	}
	defer logf.Close()
	cmd := n.Command(context.Background(), bin, dnsmasqArgs(filepath.Join(dir, "dnsmasq.leases"))...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = DieWithParent()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cellular network: dnsmasq: %w", err)
	}
	n.dnsmasq = cmd
	n.dnsDone = make(chan error, 1)
	go func() { n.dnsDone <- cmd.Wait() }()
	return nil
}

func (n *Network) startHTTP() error {
	fd, err := os.Open("/run/netns/" + n.Name)
	if err != nil {
		return fmt.Errorf("cellular network: %w", err)
	}
	defer fd.Close()
	var ln net.Listener
	// The socket belongs to the namespace it was made in, whichever
	// thread serves it later.
	err = netns.Do(int(fd.Fd()), func() error {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(Gateway.Addr(), 80).String())
		return err
	})
	if err != nil {
		return fmt.Errorf("cellular network: test server: %w", err)
	}
	n.http = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.log.Info("test server", "from", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, TestPage)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go n.http.Serve(ln)
	return nil
}

// DieWithParent makes a child get SIGTERM when its parent dies, so that
// a launcher killed with SIGKILL, which cannot clean up, leaves no QEMU,
// dnsmasq or modem simulator behind. (The kernel sends it when the
// forking thread ends; Go ends a thread only when a goroutine locked to
// it returns without unlocking, which netns.Do does only on an error.)
func DieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// Command is name run inside the namespace (ip netns exec).
func (n *Network) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Close stops the servers and removes the tap and the namespace.
func (n *Network) Close() error {
	var errs []error
	if n.http != nil {
		n.http.Close()
	}
	if n.dnsmasq != nil {
		n.dnsmasq.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.dnsDone:
		case <-time.After(stopGrace):
			n.dnsmasq.Process.Kill()
			<-n.dnsDone
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The tap goes explicitly: a persistent tap is not owned by any
	// process that could take it along.
	ip(ctx, "-n", n.Name, "link", "del", TapName)
	if err := ip(ctx, "netns", "del", n.Name); err != nil {
		errs = append(errs, fmt.Errorf("cellular network: %w", err))
	}
	n.log.Info("cellular network removed", "netns", n.Name)
	return errors.Join(errs...)
}

// removeStale deletes the namespaces of earlier runs whose process is
// gone (killed before it could clean up).
func removeStale(ctx context.Context, log *slog.Logger) {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		pid, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		if p, err := strconv.Atoi(pid); err != nil || syscall.Kill(p, 0) == nil || errors.Is(syscall.Kill(p, 0), syscall.EPERM) {
			continue
		}
		ip(ctx, "-n", e.Name(), "link", "del", TapName)
		if err := ip(ctx, "netns", "del", e.Name()); err == nil {
			log.Info("removed a stale cellular network", "netns", e.Name())
		}
	}
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
