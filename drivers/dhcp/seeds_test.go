package dhcp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var updateSeeds = flag.Bool("update-seeds", false, "capture real clients' packets into testdata/fuzz/FuzzReceive")

// TestCaptureSeeds records what udhcpc, dhclient, dhcpcd and perfdhcp send
// through a whole lease life (DISCOVER, REQUEST, renewal, RELEASE) and
// stores each packet as a seed of FuzzReceive:
//
//	go test -run TestCaptureSeeds ./drivers/dhcp/ -args -update-seeds
func TestCaptureSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("captures seeds only with -update-seeds")
	}
	needRoot(t, "busybox", "dhclient", "dhcpcd", "perfdhcp")
	l := newLAN(t)
	s := l.startServer(8, func(c *Config) { c.LeaseTime = 6 * time.Second })
	old, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzReceive", "*-*-*"))
	for _, f := range old {
		os.Remove(f)
	}
	var mu sync.Mutex
	var pkts [][]byte
	stop := capture(t, l.server, func(b []byte) {
		mu.Lock()
		pkts = append(pkts, b)
		mu.Unlock()
	})
	macs := map[string]net.HardwareAddr{}
	for i, name := range []string{"udhcpc", "dhclient", "dhcpcd", "perfdhcp"} {
		macs[name] = net.HardwareAddr{0x02, 0x5e, 0xed, 0, 0, byte(i + 1)}
	}
	gone := func(mac net.HardwareAddr) func() bool {
		return func() bool { _, _, ok := leaseOf(s, mac); return !ok }
	}
	take := func(client string) {
		mu.Lock()
		defer mu.Unlock()
		writeSeeds(t, client, pkts)
		pkts = nil
	}

	u := udhcpc(t, l.addHost("u", macs["udhcpc"]), "seed-u")
	_, seen := u.waitEvent(t, 0, 10*time.Second, "bound")
	u.signal(t, syscall.SIGUSR1)
	u.waitEvent(t, seen, 10*time.Second, "renew")
	u.signal(t, syscall.SIGUSR2)
	waitFor(t, 5*time.Second, "udhcpc's release", gone(macs["udhcpc"]))
	take("udhcpc")

	dn := l.addHost("d", macs["dhclient"])
	d, args := dhclient(t, dn, "seed-d")
	_, seen = d.waitEvent(t, 0, 15*time.Second, "BOUND")
	d.waitEvent(t, seen, 15*time.Second, "RENEW")
	dn.run(t, append([]string{"dhclient", "-r"}, args...)...)
	waitFor(t, 5*time.Second, "dhclient's release", gone(macs["dhclient"]))
	take("dhclient")

	c := dhcpcd(t, l.addHost("c", macs["dhcpcd"]), "seed-c")
	_, seen = c.waitEvent(t, 0, 15*time.Second, "BOUND")
	c.signal(t, syscall.SIGUSR1)
	c.waitEvent(t, seen, 10*time.Second, "RENEW")
	c.signal(t, syscall.SIGALRM)
	waitFor(t, 5*time.Second, "dhcpcd's release", gone(macs["dhcpcd"]))
	take("dhcpcd")

	p := l.addHost("p", macs["perfdhcp"])
	p.run(t, "ip", "addr", "add", "192.168.43.2/24", "dev", "eth0")
	// Two exchanges; perfdhcp exits non-zero when it counts a late
	// reply as lost, which does not matter here.
	exec.Command("ip", "netns", "exec", p.name, "perfdhcp", "-4", "-l", "192.168.43.2", "-n", "2", "-r", "2", "192.168.43.1").Run()
	take("perfdhcp")
	stop()
}

// capture reads the UDP packets to port 67 that reach br0 in n, until the
// returned function is called.
func capture(t *testing.T, n *nsHost, got func([]byte)) (stop func()) {
	t.Helper()
	fdc := make(chan int, 1)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies in n
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		ifi, err := net.InterfaceByName("br0")
		if err != nil {
			errc <- err
			return
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_IP)))
		if err != nil {
			errc <- err
			return
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifi.Index}); err != nil {
			errc <- err
			return
		}
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		fdc <- fd
		close(errc)
		buf := make([]byte, 2048)
		for {
			nr, _, err := unix.Recvfrom(fd, buf, 0)
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			if err != nil {
				return
			}
			b := buf[:nr]
			if len(b) < 28 || b[9] != unix.IPPROTO_UDP {
				continue
			}
			ihl := int(b[0]&0x0f) * 4
			if len(b) < ihl+8 || binary.BigEndian.Uint16(b[ihl+2:]) != 67 {
				continue
			}
			got(append([]byte(nil), b[ihl+8:]...))
		}
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	fd := <-fdc
	return func() { unix.Close(fd) }
}

// writeSeeds stores each distinct packet as a corpus file named after the
// client, the message type and the packet's hash.
func writeSeeds(t *testing.T, client string, pkts [][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", "FuzzReceive")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	names := map[byte]string{msgDiscover: "discover", msgRequest: "request", msgDecline: "decline", msgRelease: "release", msgInform: "inform"}
	for _, b := range pkts {
		typ := "unknown"
		if p, err := peek(b); err == nil && names[p.msgType] != "" {
			typ = names[p.msgType]
		}
		sum := sha256.Sum256(b)
		name := fmt.Sprintf("%s-%s-%s", client, typ, hex.EncodeToString(sum[:6]))
		data := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %s (%d bytes)", name, len(b))
	}
}
