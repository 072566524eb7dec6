package cellnet

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openmifi/openmifi/drivers/netns"
)

func TestDNSMasqArgs(t *testing.T) {
	line := strings.Join(dnsmasqArgs("/run/x/leases"), " ")
	for _, want := range []string{
		"--conf-file=/dev/null", "--interface=omtap0 --bind-interfaces", "--no-resolv", "--no-hosts",
		"--dhcp-range=100.64.0.2,100.64.0.5,255.255.255.0,1h",
		"--dhcp-host=52:54:00:6f:6d:01,100.64.0.2",
		"--dhcp-option=option:router,100.64.0.1", "--dhcp-option=option:dns-server,100.64.0.1",
		"--host-record=server.cell.test,100.64.0.1", "--dhcp-leasefile=/run/x/leases",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("dnsmasq args lack %q: %s", want, line)
		}
	}
	// Nothing is forwarded anywhere.
	if strings.Contains(line, "--server") {
		t.Errorf("dnsmasq forwards: %s", line)
	}
}

func TestModemArgs(t *testing.T) {
	got := strings.Join(modemArgs(ModemConfig{Socket: "/run/m.sock", Dialect: "generic", Hook: "/run/hook", Scenario: "coverage-flap"}), " ")
	want := "-dialect generic -unix /run/m.sock -addr 100.64.0.2/24 -gw 100.64.0.1 -dns 100.64.0.1 -scenario coverage-flap -hook /run/hook"
	if got != want {
		t.Errorf("modemsim args\n got %s\nwant %s", got, want)
	}
}

func repoRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Skipf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// TestModem builds and runs the modem simulator the way the QEMU
// launcher does and talks AT to it over its socket, as QEMU's chardev
// does.
func TestModem(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/modemsim; not in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := BuildModemsim(ctx, repoRoot(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "modem.sock")
	m, err := StartModem(ctx, ModemConfig{Bin: bin, Socket: sock, Dialect: "generic", Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, "ATE0\r")
	io.WriteString(conn, "AT+CGCONTRDP=1\r")
	var got []string
	sc := bufio.NewScanner(conn)
	for oks := 0; oks < 2 && sc.Scan(); {
		line := strings.TrimSpace(sc.Text())
		got = append(got, line)
		if line == "OK" || strings.Contains(line, "ERROR") {
			oks++
		}
	}
	conn.Close()
	if !strings.Contains(strings.Join(got, "|"), "OK") {
		t.Errorf("modem answered %q", got)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Stat(sock); err == nil {
		t.Error("socket left behind")
	}
	if _, err := StartModem(ctx, ModemConfig{Bin: bin, Socket: sock, Dialect: "klingon"}); err == nil {
		t.Error("a modemsim that refuses its flags counted as started")
	}
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestNetwork brings the simulated network up and asks its test server
// and its DNS server from inside the namespace, then takes it down.
func TestNetwork(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("creates a network namespace: run as root")
	}
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Skip("dnsmasq not installed (apt-get install dnsmasq-base)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	n, err := Start(ctx, Config{Dir: dir, Log: slog.New(slog.NewTextHandler(testLog{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			n.Close()
		}
	}()
	if out, err := n.Command(ctx, "ip", "-br", "addr", "show", "dev", TapName).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "100.64.0.1/24") {
		t.Errorf("tap in the namespace: %v\n%s", err, out)
	}
	// Nothing routes out: the only routes are the tap's own subnet.
	if out, _ := n.Command(ctx, "ip", "route", "show", "default").CombinedOutput(); strings.TrimSpace(string(out)) != "" {
		t.Errorf("the namespace has a default route: %s", out)
	}

	f, err := os.Open("/run/netns/" + n.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Dialled from inside the namespace, where the tap's address is.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := netns.Do(int(f.Fd()), func() error {
			var d net.Dialer
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	client := &http.Client{Transport: &http.Transport{DialContext: dial}}
	resp, err := client.Get("http://100.64.0.1/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != TestPage {
		t.Errorf("test server said %q", body)
	}

	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial(ctx, network, "100.64.0.1:53")
	}}
	var addrs []string
	// dnsmasq may still be binding its sockets.
	for ctx.Err() == nil {
		qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
		addrs, err = res.LookupHost(qctx, TestName)
		qcancel()
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(addrs) != 1 || addrs[0] != "100.64.0.1" {
		t.Errorf("%s resolves to %v, %v; log:\n%s", TestName, addrs, err, readFile(filepath.Join(dir, "dnsmasq.log")))
	}
	// Both families asked, as busybox's nslookup does: an answer, not
	// a refusal, for the name that has no IPv6 address.
	if addrs, err := res.LookupIPAddr(ctx, TestName); err != nil || len(addrs) != 1 {
		t.Errorf("%s: %v, %v", TestName, addrs, err)
	}
	if _, err := res.LookupHost(ctx, "example.com"); err == nil {
		t.Error("the network's DNS answered a name from the outside")
	}

	closed = true
	if err := n.Close(); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat("/run/netns/" + n.Name); err == nil {
		t.Errorf("namespace %s left behind", n.Name)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
