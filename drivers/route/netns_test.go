package route

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// netns is a network namespace that lives as long as the test that made it.
type netns string

func newNetns(t *testing.T, role string) netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	name := fmt.Sprintf("rt-%08x-%s", rand.Uint32(), role)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns := netns(name)
	// IPv6 autoconfiguration would put packets of its own on the links
	// and spoil the packet counts.
	ns.exec(t, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	ns.ip(t, "link", "set", "lo", "up")
	return ns
}

// ip runs ip(8) on the namespace and returns its output.
func (ns netns) ip(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"-n", string(ns)}, args...)...)
}

// exec runs a command inside the namespace.
func (ns netns) exec(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"netns", "exec", string(ns)}, args...)...)
}

// open returns a file descriptor of the namespace, closed with the test.
func (ns netns) open(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/var/run/netns/" + string(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// ping sends one echo request and waits a second for the reply.
func (ns netns) ping(dst string, args ...string) error {
	cmd := exec.Command("ip", append([]string{"netns", "exec", string(ns), "ping", "-n", "-c1", "-W1"}, append(args, dst)...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ping %s from %s: %v: %s", dst, ns, err, out)
	}
	return nil
}

// mustPing allows for a lost first packet on a busy machine.
func (ns netns) mustPing(t *testing.T, dst string, args ...string) {
	t.Helper()
	var err error
	for range 3 {
		if err = ns.ping(dst, args...); err == nil {
			return
		}
	}
	t.Fatal(err)
}

// txPackets is the number of packets dev has sent.
func (ns netns) txPackets(t *testing.T, dev string) uint64 {
	t.Helper()
	var links []struct {
		Stats64 struct {
			TX struct {
				Packets uint64 `json:"packets"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(ns.ip(t, "-s", "-j", "link", "show", "dev", dev)), &links); err != nil || len(links) != 1 {
		t.Fatalf("statistics of %s in %s: %v", dev, ns, err)
	}
	return links[0].Stats64.TX.Packets
}

// veth connects interface aName in a with interface bName in b.
func veth(t *testing.T, a netns, aName string, b netns, bName string) {
	t.Helper()
	a.ip(t, "link", "add", aName, "type", "veth", "peer", "name", bName, "netns", string(b))
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
