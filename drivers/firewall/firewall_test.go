package firewall

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func newNAT(t *testing.T, n *testNet, runDir string) *NAT {
	t.Helper()
	nat, err := New(Config{
		LAN:       "lan0",
		LANPrefix: netip.MustParsePrefix("192.168.43.0/24"),
		RunDir:    runDir,
		NetNS:     n.router.fd,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nat.Close() })
	return nat
}

func (n *testNet) forwarding(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(n.router.sh(t, "sysctl", "-n", "net.ipv4.ip_forward"))
}

// ruleset is `nft list ruleset` without the counter values, which move.
func (n *testNet) ruleset(t *testing.T) string {
	t.Helper()
	out := n.router.sh(t, "nft", "list", "ruleset")
	return regexp.MustCompile(`counter packets \d+ bytes \d+`).ReplaceAllString(out, "counter")
}

// listen opens a TCP listener inside ns that sends size bytes to every
// client and records the address each came from.
func listen(t *testing.T, in *ns, addr string, size int) (net.Listener, chan string) {
	t.Helper()
	var ln net.Listener
	in.do(t, func() {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			t.Errorf("listen %s: %v", addr, err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	t.Cleanup(func() { ln.Close() })
	from := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			from <- c.RemoteAddr().String()
			go func() {
				defer c.Close()
				io.Copy(c, io.LimitReader(zeros{}, int64(size)))
			}()
		}
	}()
	return ln, from
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// dial connects from inside ns; a firewall that drops shows as a timeout.
func dial(t *testing.T, in *ns, network, addr string) (net.Conn, error) {
	t.Helper()
	var (
		c   net.Conn
		err error
	)
	in.do(t, func() { c, err = net.DialTimeout(network, addr, 2*time.Second) })
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func TestNATAndFilter(t *testing.T) {
	n := newTestNet(t)
	nat := newNAT(t, n, t.TempDir())
	if err := nat.Start("wan0"); err != nil {
		t.Fatal(err)
	}
	if got := n.forwarding(t); got != "1" {
		t.Errorf("ip_forward = %s while sharing", got)
	}

	t.Run("ping through NAT", func(t *testing.T) {
		if !n.client.try("ping", "-c1", "-W2", "10.99.0.2") {
			t.Error("client cannot ping the upstream")
		}
	})

	t.Run("download and counters", func(t *testing.T) {
		const size = 4 << 20
		_, from := listen(t, n.upstream, "10.99.0.2:8080", size)
		before, _ := nat.Counters()
		c, err := dial(t, n.client, "tcp", "10.99.0.2:8080")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.Copy(io.Discard, c)
		if err != nil || got != size {
			t.Fatalf("downloaded %d bytes, %v", got, err)
		}
		if src := <-from; !strings.HasPrefix(src, "10.99.0.1:") {
			t.Errorf("upstream saw %s, want the router's address (masquerade)", src)
		}
		after, err := nat.Counters()
		if err != nil {
			t.Fatal(err)
		}
		client := netip.MustParseAddr("192.168.43.10")
		down := after[client].DownBytes - before[client].DownBytes
		// TCP/IP headers on top of the payload: at most 5 %.
		if down < size || down > size*105/100 {
			t.Errorf("down counter grew by %d for a %d byte download", down, size)
		}
		if after[client].UpPackets == 0 || after[client].DownPackets == 0 {
			t.Errorf("packet counters %+v", after[client])
		}
		t.Logf("download %d bytes: counted %d bytes down (%.2f %% overhead), %+v", size, down, float64(down-size)*100/size, after[client])
	})

	t.Run("client reaches DHCP and DNS on the router and nothing else", func(t *testing.T) {
		listen(t, n.router, "0.0.0.0:53", 0)
		listen(t, n.router, "0.0.0.0:2222", 0)
		for _, port := range []string{"53", "67"} {
			var pc net.PacketConn
			n.router.do(t, func() { pc, _ = net.ListenPacket("udp4", "0.0.0.0:"+port) })
			if pc == nil {
				t.Fatalf("udp %s", port)
			}
			defer pc.Close()
			go func() {
				buf := make([]byte, 512)
				for {
					k, addr, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					pc.WriteTo(buf[:k], addr)
				}
			}()
			c, err := dial(t, n.client, "udp", "192.168.43.1:"+port)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			c.Write([]byte("hello"))
			buf := make([]byte, 16)
			if k, err := c.Read(buf); err != nil || string(buf[:k]) != "hello" {
				t.Errorf("udp %s from the LAN: %q %v", port, buf[:k], err)
			}
		}
		if _, err := dial(t, n.client, "tcp", "192.168.43.1:53"); err != nil {
			t.Errorf("tcp 53 from the LAN: %v", err)
		}
		if _, err := dial(t, n.client, "tcp", "192.168.43.1:2222"); err == nil {
			t.Error("tcp 2222 on the router reachable from the LAN")
		}
	})

	t.Run("nothing unsolicited from the uplink", func(t *testing.T) {
		// Give the upstream a way to the LAN: only the firewall stops it.
		n.upstream.sh(t, "ip", "route", "add", "192.168.43.0/24", "via", "10.99.0.1")
		defer n.upstream.sh(t, "ip", "route", "del", "192.168.43.0/24")
		listen(t, n.client, "192.168.43.10:9000", 0)
		if _, err := dial(t, n.upstream, "tcp", "192.168.43.10:9000"); err == nil {
			t.Error("upstream opened a connection to the client")
		}
		listen(t, n.router, "0.0.0.0:2223", 0)
		if _, err := dial(t, n.upstream, "tcp", "10.99.0.1:2223"); err == nil {
			t.Error("upstream opened a connection to the router")
		}
		if n.upstream.try("ping", "-c1", "-W1", "10.99.0.1") {
			t.Error("the router answers pings from the uplink")
		}
		if !strings.Contains(n.router.sh(t, "nft", "list", "chain", "inet", TableName, "forward"), "counter packets") {
			t.Error("no drop counter in forward")
		}
	})

	if err := nat.Stop(); err != nil {
		t.Fatal(err)
	}
	if rs := n.ruleset(t); strings.Contains(rs, TableName) {
		t.Errorf("table left after Stop:\n%s", rs)
	}
	if got := n.forwarding(t); got != "0" {
		t.Errorf("ip_forward = %s after Stop, want 0 as before", got)
	}
	if err := nat.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if n.client.try("ping", "-c1", "-W1", "10.99.0.2") {
		t.Error("client still reaches the upstream after Stop")
	}
}

func TestSetUplinkKeepsCounters(t *testing.T) {
	n := newTestNet(t)
	n.router.veth(t, "wan1", "10.98.0.1/24", n.upstream, "up1", "10.98.0.2/24")
	nat := newNAT(t, n, t.TempDir())
	if err := nat.Start("wan0"); err != nil {
		t.Fatal(err)
	}
	defer nat.Stop()
	if !n.client.try("ping", "-c3", "-i0.2", "-W2", "10.99.0.2") {
		t.Fatal("no traffic via wan0")
	}
	before, _ := nat.Counters()
	client := netip.MustParseAddr("192.168.43.10")
	if before[client].UpPackets < 3 {
		t.Fatalf("counters %+v", before[client])
	}
	n.router.sh(t, "ip", "route", "replace", "default", "via", "10.98.0.2")
	if err := nat.SetUplink("wan1"); err != nil {
		t.Fatal(err)
	}
	if !n.client.try("ping", "-c1", "-W2", "10.98.0.2") {
		t.Error("no traffic via wan1 after SetUplink")
	}
	after, _ := nat.Counters()
	if after[client].UpPackets < before[client].UpPackets+1 {
		t.Errorf("counters lost on SetUplink: %+v then %+v", before[client], after[client])
	}
	if rs := n.ruleset(t); strings.Contains(rs, `"wan0"`) {
		t.Errorf("wan0 still named after SetUplink:\n%s", rs)
	}
	if err := nat.SetUplink(""); err != nil {
		t.Fatal(err)
	}
	if n.client.try("ping", "-c1", "-W1", "10.98.0.2") {
		t.Error("traffic forwarded with no uplink")
	}
}

func TestStartTwiceAndAfterKill9(t *testing.T) {
	n := newTestNet(t)
	runDir := t.TempDir()
	nat := newNAT(t, n, runDir)
	if err := nat.Start("wan0"); err != nil {
		t.Fatal(err)
	}
	fresh := n.ruleset(t)
	if err := nat.Start("wan0"); err != nil {
		t.Fatal(err)
	}
	if got := n.ruleset(t); got != fresh {
		t.Errorf("after a second Start:\n%s\nwant\n%s", got, fresh)
	}
	if err := nat.Stop(); err != nil {
		t.Fatal(err)
	}

	// A hotspotd killed with SIGKILL while sharing.
	cmd := exec.Command("ip", "netns", "exec", n.router.name, os.Args[0], "-test.run=^TestHelperSharingProcess$")
	cmd.Env = append(os.Environ(), "FIREWALL_HELPER_RUNDIR="+runDir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- true
			}
		}
		close(ready)
	}()
	if !<-ready {
		t.Fatal("helper did not start")
	}
	n.client.sh(t, "ping", "-c2", "-i0.2", "-W2", "10.99.0.2")
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if got := n.forwarding(t); got != "1" {
		t.Fatalf("ip_forward %s after the kill", got)
	}

	restarted := newNAT(t, n, runDir)
	if err := restarted.Start("wan0"); err != nil {
		t.Fatal(err)
	}
	if got := n.ruleset(t); got != fresh {
		t.Errorf("after a start over a killed run:\n%s\nwant\n%s", got, fresh)
	}
	if c, _ := restarted.Counters(); c[netip.MustParseAddr("192.168.43.10")].UpPackets < 2 {
		t.Errorf("counters of the killed run not carried over: %+v", c)
	}
	if err := restarted.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := n.forwarding(t); got != "0" {
		t.Errorf("ip_forward %s after Stop, want the 0 from before the killed run", got)
	}
}

// TestHelperSharingProcess is the hotspotd that TestStartTwiceAndAfterKill9
// kills: it runs inside the router namespace and waits for its end.
func TestHelperSharingProcess(t *testing.T) {
	dir := os.Getenv("FIREWALL_HELPER_RUNDIR")
	if dir == "" {
		t.Skip("helper process for TestStartTwiceAndAfterKill9")
	}
	nat, err := New(Config{LAN: "lan0", LANPrefix: netip.MustParsePrefix("192.168.43.0/24"), RunDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := nat.Start("wan0"); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
}

func TestFailedStartLeavesTheKernelAlone(t *testing.T) {
	n := newTestNet(t)
	before := n.ruleset(t)
	// A run directory that cannot be created: Start fails before the batch.
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, nil, 0o644)
	nat := newNAT(t, n, filepath.Join(blocker, "run"))
	if err := nat.Start("wan0"); err == nil {
		t.Fatal("Start succeeded without a run directory")
	}
	if err := nat.Start("an-interface-name-far-too-long"); err == nil || !strings.Contains(err.Error(), "bad interface name") {
		t.Errorf("long name: %v", err)
	}
	if got := n.ruleset(t); got != before {
		t.Errorf("ruleset changed by failed starts:\n%s", got)
	}
	if got := n.forwarding(t); got != "0" {
		t.Errorf("ip_forward %s", got)
	}
	if err := nat.Stop(); err != nil {
		t.Errorf("Stop after failed Start: %v", err)
	}
}

func TestMSSClampedToTheUplinkMTU(t *testing.T) {
	n := newTestNet(t)
	n.router.sh(t, "ip", "link", "set", "wan0", "mtu", "1400")
	nat := newNAT(t, n, t.TempDir())
	if err := nat.Start("wan0"); err != nil {
		t.Fatal(err)
	}
	defer nat.Stop()

	var ln net.Listener
	n.upstream.do(t, func() { ln, _ = net.Listen("tcp", "10.99.0.2:8081") })
	if ln == nil {
		t.Fatal("listen")
	}
	defer ln.Close()
	mss := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			mss <- -1
			return
		}
		defer c.Close()
		raw, _ := c.(*net.TCPConn).SyscallConn()
		v := -1
		raw.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG) })
		mss <- v
	}()
	if _, err := dial(t, n.client, "tcp", "10.99.0.2:8081"); err != nil {
		t.Fatal(err)
	}
	// 1400 less 20 bytes of IP and 20 of TCP header; the client, on a
	// 1500 byte LAN, offered 1460.
	if got := <-mss; got <= 0 || got > 1360 {
		t.Errorf("upstream's MSS towards the client is %d, want at most 1360", got)
	}
}
