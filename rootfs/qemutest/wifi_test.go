package qemutest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openmifi/openmifi/rootfs"
)

// wifiPackages are the packages whose tests run inside the guest, where
// the hwsim radios are (this machine's kernel has none).
var wifiPackages = []string{"./drivers/wifi/..."}

// testImage is the Wi-Fi test image, built once per test binary run and
// shared by the tests that boot it.
var testImage struct {
	once  sync.Once
	img   *Image
	err   error
	took  time.Duration
	log   bytes.Buffer
	guard sync.Mutex // log is written by the build, read by the tests
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// wifiImage skips unless the Wi-Fi test image can be built and booted
// here, and returns it.
func wifiImage(t *testing.T) *Image {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU; not in -short")
	}
	if os.Getuid() != 0 {
		t.Skip("Wi-Fi tests run as root (as make test does on CI): the image build may fetch Debian packages")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skipf("qemu-system-x86_64 not installed (apt-get install qemu-system-x86): %v", err)
	}
	testImage.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		start := time.Now()
		testImage.img, testImage.err = BuildImage(ctx, ImageOptions{
			TestTools: true,
			GoTests:   wifiPackages,
			Log:       slog.New(slog.NewTextHandler(lockedWriter{&testImage.guard, &testImage.log}, nil)),
		})
		testImage.took = time.Since(start)
	})
	if errors.Is(testImage.err, rootfs.ErrNotFetched) {
		t.Skipf("Wi-Fi test image: %v", testImage.err)
	}
	if testImage.err != nil {
		testImage.guard.Lock()
		t.Logf("image build log:\n%s", testImage.log.String())
		testImage.guard.Unlock()
		t.Fatal(testImage.err)
	}
	t.Logf("Wi-Fi test image: %d bytes, built in %v (once per run)", testImage.img.Size, testImage.took.Round(time.Millisecond))
	return testImage.img
}

// bootGuest boots img for t; the guest is closed when t ends, and its
// console kept in .cache/qemu/BOARD/NAME.log.
func bootGuest(ctx context.Context, t *testing.T, img *Image, opts BootOptions) *Guest {
	t.Helper()
	opts.Dir = t.TempDir()
	g, err := Boot(ctx, img, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Close()
		if t.Failed() {
			t.Logf("qemu %s\nconsole transcript:\n%s", g.QEMUArgs(), g.Transcript())
			if logs := g.CellularLogs(); logs != "" {
				t.Logf("cellular network:\n%s", logs)
			}
		}
		dir := filepath.Join(img.Repo, ".cache", "qemu", img.Board.Name)
		if os.MkdirAll(dir, 0o755) == nil {
			os.WriteFile(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "-")+".log"), []byte(g.Transcript()), 0o644)
		}
	})
	t.Logf("booted with %s in %v", g.Accel, g.Booted.Round(100*time.Millisecond))
	return g
}

// TestWiFiHostapd proves the Wi-Fi tooling with Debian's hostapd as the
// AP, the baseline our own AP is compared with (see apScenario).
func TestWiFiHostapd(t *testing.T) {
	img := wifiImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	g := bootGuest(ctx, t, img, BootOptions{})
	// Not on the first radio: hotspotd holds it.
	apScenario(ctx, t, g, func(maxUsers int) AP { return &Hostapd{Iface: HostapdIface, MaxStations: maxUsers} })
}

// TestWiFiHotspotd is the same scenario with hotspotd's own AP, driven
// with hotspotctl.
func TestWiFiHotspotd(t *testing.T) {
	img := wifiImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	// The modem and the cellular network: sharing starts only with a
	// public connection to share.
	g := bootGuest(ctx, t, img, BootOptions{Cellular: true})
	// A defer, not a cleanup: QEMU goes with ctx.
	defer func() {
		if t.Failed() {
			log, _, err := g.Run(ctx, 30*time.Second, "hotspotd-log | tail -n 150; ip addr; ip route show table all")
			t.Logf("hotspotd's log and the guest's addresses and routes (%v):\n%s", err, log)
		}
	}()
	apScenario(ctx, t, g, func(maxUsers int) AP { return &Hotspotd{MaxUsers: maxUsers} })
}

// apScenario is the acceptance test for an AP: with the right
// passphrase a client connects and pings the AP; with a wrong one it
// never connects; stopping the AP (sharing) disconnects every client;
// with at most one user the second client is refused. newAP makes the AP,
// with a user limit (0: none).
func apScenario(ctx context.Context, t *testing.T, g *Guest, newAP func(maxUsers int) AP) {
	t.Helper()
	sh := g.Console
	if out, err := g.Check(ctx, 10*time.Second, "ls /sys/class/ieee80211"); err != nil || strings.Count(out, "phy") != TestRadios {
		t.Fatalf("want %d hwsim radios: %v\n%s", TestRadios, err, out)
	}
	n := Network{SSID: "openmifi-test", Passphrase: "correct horse battery", Channel: 6}
	ap := newAP(0)
	if err := ap.Start(ctx, sh, n); err != nil {
		if strings.Contains(err.Error(), "no access point driver") {
			t.Skipf("%s has no AP yet: %v", ap.Name(), err)
		}
		t.Fatal(err)
	}
	c1, err := NewClient(ctx, sh, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close(ctx)
	c2, err := NewClient(ctx, sh, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)

	connect := func(c *Client, n Network) {
		t.Helper()
		res, err := c.Connect(ctx, ap, n, 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Connected {
			log, _ := c.ReadLog(ctx)
			t.Fatalf("client %d with the right passphrase did not connect (%q):\n%s", c.N, res.Event, log)
		}
		t.Logf("client %d connected to %s, has %s and pinged %s", c.N, ap.Name(), res.Addr, APAddress.Addr())
		checkListed(ctx, t, sh, ap, c, res.Addr)
	}
	refused := func(c *Client, n Network, what string) {
		t.Helper()
		res, err := c.Join(ctx, n, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if log, _ := c.ReadLog(ctx); res.Connected || strings.Contains(log, "CTRL-EVENT-CONNECTED") {
			t.Errorf("client %d %s connected:\n%s", c.N, what, log)
		} else {
			t.Logf("client %d %s: %q", c.N, what, res.Event)
		}
		if err := c.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}

	connect(c1, n)
	wrong := n
	wrong.Passphrase = "not the passphrase"
	refused(c2, wrong, "with a wrong passphrase")
	connect(c2, n)

	if err := ap.Stop(ctx, sh); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{c1, c2} {
		if ok, err := c.WaitDisconnected(ctx, 20*time.Second); err != nil {
			t.Fatal(err)
		} else if !ok {
			t.Errorf("client %d still connected after %s stopped", c.N, ap.Name())
		}
		if err := c.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}

	full := newAP(1)
	if err := full.Start(ctx, sh, n); err != nil {
		t.Fatal(err)
	}
	defer full.Stop(ctx, sh)
	connect(c1, n)
	refused(c2, n, "beyond one user")
}

// clientLister is an AP that lists its clients (hotspotd).
type clientLister interface {
	Clients(ctx context.Context, sh Shell) (string, error)
}

// checkListed checks that an AP that lists its clients lists c, with the
// address it gave it.
func checkListed(ctx context.Context, t *testing.T, sh Shell, ap AP, c *Client, addr netip.Prefix) {
	t.Helper()
	l, ok := ap.(clientLister)
	if !ok {
		return
	}
	mac, err := c.MAC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The station is reported as the handshake completes, its address
	// with the DHCP lease: both are done by now.
	out, err := l.Clients(ctx, sh)
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, mac) {
			line = l
		}
	}
	switch {
	case line == "":
		t.Errorf("%s clients does not list client %d (%s):\n%s", ap.Name(), c.N, mac, out)
	case addr.IsValid() && !strings.Contains(line, addr.Addr().String()):
		t.Errorf("%s clients lists client %d without its address %s:\n%s", ap.Name(), c.N, addr.Addr(), out)
	default:
		t.Logf("%s clients: %s", ap.Name(), strings.TrimSpace(line))
	}
}

// TestWiFiGuestPackages runs the tests of the Wi-Fi driver packages in
// the guest, where the radios are, and fails with them.
func TestWiFiGuestPackages(t *testing.T) {
	img := wifiImage(t)
	var bins []GoTestBinary
	for _, b := range img.GoTests {
		if b.BuildErr != nil {
			t.Errorf("%s: tests do not build for the guest: %v", b.Package, b.BuildErr)
			continue
		}
		bins = append(bins, b)
	}
	if len(bins) == 0 {
		t.Skipf("no package matching %v has tests yet", wifiPackages)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	g := bootGuest(ctx, t, img, BootOptions{})
	for _, b := range bins {
		t.Run(strings.TrimPrefix(b.Package, "github.com/openmifi/openmifi/"), func(t *testing.T) {
			res, err := RunGoTest(ctx, g.Console, b, 2*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("in the guest: %d passed, %d skipped, %d failed", len(res.Passed), len(res.Skipped), len(res.Failed))
			if !res.Ok {
				t.Errorf("exit %d, failed: %v\n%s", res.ExitCode, res.Failed, res.Output)
			}
		})
	}
}

func TestParseGoTestOutput(t *testing.T) {
	for _, tc := range []struct {
		name, out              string
		ok                     bool
		passed, failed, skippd int
	}{
		{"pass", "=== RUN   TestA\n--- PASS: TestA (0.00s)\n=== RUN   TestB\n    x_test.go:1: no radio\n--- SKIP: TestB (0.00s)\nPASS\n", true, 1, 0, 1},
		{"fail", "=== RUN   TestA\n    a_test.go:9: boom\n--- FAIL: TestA (0.01s)\n=== RUN   TestA/sub\n    --- PASS: TestA/sub (0.00s)\nFAIL\n", false, 1, 1, 0},
		{"panic", "=== RUN   TestA\npanic: nil map\n\ngoroutine 1 [running]:\n", false, 0, 0, 0},
		{"cut off", "=== RUN   TestA\n--- PASS: TestA (0.00s)\n", false, 1, 0, 0},
		{"crlf", "--- PASS: TestA (0.00s)\r\nPASS\r\n", true, 1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := ParseGoTestOutput(tc.out)
			if res.Ok != tc.ok || len(res.Passed) != tc.passed || len(res.Failed) != tc.failed || len(res.Skipped) != tc.skippd {
				t.Errorf("got ok=%v passed=%v failed=%v skipped=%v", res.Ok, res.Passed, res.Failed, res.Skipped)
			}
		})
	}
}

func FuzzParseGoTestOutput(f *testing.F) {
	f.Add("--- PASS: TestA (0.00s)\nPASS\n")
	f.Add("--- FAIL: TestA (0.00s)\nFAIL\n")
	f.Add("--- SKIP: \n")
	f.Fuzz(func(t *testing.T, out string) {
		res := ParseGoTestOutput(out)
		if res.Ok && len(res.Failed) > 0 {
			t.Errorf("ok with failures: %+v", res)
		}
	})
}

func TestTimestamp(t *testing.T) {
	log := "1764765600.000100: Successfully initialized wpa_supplicant\n" +
		"1764765600.250000: wlan1: SME: Trying to authenticate with 02:00:00:00:00:00 (SSID='x' freq=2437 MHz)\n" +
		"1764765600.420500: wlan1: WPA: Key negotiation completed with 02:00:00:00:00:00 [PTK=CCMP GTK=CCMP]\n" +
		"garbage: CTRL-EVENT-CONNECTED\n" +
		"1764765600.421: wlan1: CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:00:00 completed\n"
	a, ok1 := Timestamp(log, "SME: Trying to authenticate")
	b, ok2 := Timestamp(log, "Key negotiation completed")
	c, ok3 := Timestamp(log, "CTRL-EVENT-CONNECTED")
	if !ok1 || !ok2 || !ok3 {
		t.Fatal("a line not found")
	}
	if d := b.Sub(a); d != 170500*time.Microsecond {
		t.Errorf("auth to key: %v", d)
	}
	if d := c.Sub(a); d != 171*time.Millisecond {
		t.Errorf("auth to connected: %v", d)
	}
	if _, ok := Timestamp(log, "CTRL-EVENT-DISCONNECTED"); ok {
		t.Error("found a line that is not there")
	}
	if t0, ok := ParseSeconds("1764765599.999999999\n"); !ok || a.Sub(t0) != 250000001*time.Nanosecond {
		t.Errorf("stamp: %v %v", t0, ok)
	}
}

func FuzzParseSeconds(f *testing.F) {
	f.Add("1764765600.000100")
	f.Add("12")
	f.Add(".5")
	f.Add("1.-5")
	f.Fuzz(func(t *testing.T, s string) {
		if tm, ok := ParseSeconds(s); ok && tm.Before(time.Unix(0, 0)) {
			t.Errorf("%q: %v before 1970", s, tm)
		}
		_, _ = Timestamp(s, ":")
	})
}

// TestQuote: what the guest's shell gets back is what was quoted.
func TestQuote(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, s := range []string{"plain", "it's", `a"b$c\d`, "", "x' ; echo pwned '"} {
		out, err := exec.Command(sh, "-c", "printf %s "+Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("Quote(%q): %q %v", s, out, err)
		}
	}
}
