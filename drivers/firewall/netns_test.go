package firewall

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The test network: a client, the router and an upstream host, each in a
// network namespace of its own, on veth pairs. The upstream has no route
// back to the LAN, so only masquerading brings replies home.
//
//	client c0 192.168.43.10 ── lan0 192.168.43.1 router wan0 10.99.0.1 ── up0 10.99.0.2 upstream

type ns struct {
	name string
	fd   int
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	for _, tool := range []string{"ip", "nft", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make test installs it)", tool)
		}
	}
}

func newNS(t *testing.T, role string) *ns {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	name := "fw-" + role + "-" + hex.EncodeToString(b[:])
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

// try runs a command in the namespace and reports whether it succeeded.
func (n *ns) try(args ...string) bool {
	return exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...).Run() == nil
}

// do runs f on a thread inside the namespace: sockets f opens stay there.
func (n *ns) do(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// The thread is never unlocked: it dies with this goroutine
		// instead of going back to the scheduler in the wrong namespace.
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			t.Errorf("setns %s: %v", n.name, err)
			return
		}
		f()
	}()
	<-done
}

// veth links a in this namespace to b in other.
func (n *ns) veth(t *testing.T, a, addrA string, other *ns, b, addrB string) {
	t.Helper()
	sh(t, "ip", "link", "add", a, "netns", n.name, "type", "veth", "peer", "name", b, "netns", other.name)
	n.sh(t, "ip", "addr", "add", addrA, "dev", a)
	n.sh(t, "ip", "link", "set", a, "up")
	other.sh(t, "ip", "addr", "add", addrB, "dev", b)
	other.sh(t, "ip", "link", "set", b, "up")
}

type testNet struct {
	client, router, upstream *ns
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	needRoot(t)
	n := &testNet{client: newNS(t, "c"), router: newNS(t, "r"), upstream: newNS(t, "u")}
	n.client.veth(t, "c0", "192.168.43.10/24", n.router, "lan0", "192.168.43.1/24")
	n.router.veth(t, "wan0", "10.99.0.1/24", n.upstream, "up0", "10.99.0.2/24")
	n.client.sh(t, "ip", "route", "add", "default", "via", "192.168.43.1")
	n.router.sh(t, "ip", "route", "add", "default", "via", "10.99.0.2")
	n.router.sh(t, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	return n
}
