package ap

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openmifi/openmifi/drivers/wifi/nl80211"
	"github.com/openmifi/openmifi/internal/sharing"
)

// The test below needs a kernel with Wi-Fi: the QEMU guest with
// mac80211_hwsim and wpa_supplicant (rootfs/qemutest runs this package's
// test binary there). Our AP runs on the first radio, real wpa_supplicant
// clients on the others.

// hwsimRadios skips unless the radios and tools are here, and returns the
// AP's radio and the clients' radio names.
func hwsimRadios(t *testing.T) (nl80211.PHY, []string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root (nl80211 AP control): runs in the QEMU guest with mac80211_hwsim")
	}
	ents, err := os.ReadDir("/sys/class/ieee80211")
	if err != nil || len(ents) < 2 {
		t.Skip("fewer than two Wi-Fi radios in /sys/class/ieee80211: runs in the QEMU guest with mac80211_hwsim")
	}
	for _, name := range []string{"wpa_supplicant", "iw"} {
		if tool(name) == "" {
			t.Skipf("%s not installed: runs in the Wi-Fi test image", name)
		}
	}
	phys, err := nl80211.ListPHYs(0)
	if err != nil {
		t.Fatalf("list radios: %v", err)
	}
	var ap *nl80211.PHY
	var clients []string
	for i := range phys {
		if ap == nil && phys[i].APMode {
			ap = &phys[i]
		} else {
			clients = append(clients, phys[i].Name)
		}
	}
	if ap == nil || len(clients) == 0 {
		t.Skipf("need an AP radio and a client radio, have %d radios", len(phys))
	}
	return *ap, clients
}

// tool finds a program in PATH or where the test image puts it.
func tool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// hwsimChannel is a 2.4 GHz channel our AP may use on phy.
func hwsimChannel(t *testing.T, phy nl80211.PHY) int {
	for _, ch := range []int{6, 1, 11} {
		if _, _, err := pickChannel(phy, band24, ch); err == nil {
			return ch
		}
	}
	t.Fatalf("no usable 2.4 GHz channel on %s", phy.Name)
	return 0
}

// client is wpa_supplicant on its own managed interface of a radio.
type client struct {
	t     *testing.T
	iface string
	mac   net.HardwareAddr
	cmd   *exec.Cmd
	lines chan string
	log   strings.Builder
}

func newClient(t *testing.T, phy, iface string) *client {
	t.Helper()
	exec.Command(tool("iw"), "dev", iface, "del").Run()
	if out, err := exec.Command(tool("iw"), "phy", phy, "interface", "add", iface, "type", "managed").CombinedOutput(); err != nil {
		t.Fatalf("iw interface add %s: %v: %s", iface, err, out)
	}
	c := &client{t: t, iface: iface}
	t.Cleanup(func() {
		c.stop()
		exec.Command(tool("iw"), "dev", iface, "del").Run()
	})
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	c.mac = ifi.HardwareAddr
	return c
}

// join starts wpa_supplicant for the network.
func (c *client) join(ssid, pass string, freq int) {
	c.t.Helper()
	c.stop()
	dir := c.t.TempDir()
	conf := filepath.Join(dir, "wpa.conf")
	text := fmt.Sprintf("ctrl_interface=%s\nnetwork={\n ssid=%q\n psk=%q\n key_mgmt=WPA-PSK\n proto=RSN\n pairwise=CCMP\n group=CCMP\n scan_freq=%d\n}\n",
		filepath.Join(dir, "ctrl"), ssid, pass, freq)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.cmd = exec.Command(tool("wpa_supplicant"), "-t", "-D", "nl80211", "-i", c.iface, "-c", conf)
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	c.cmd.Stderr = c.cmd.Stdout
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	lines := make(chan string, 256)
	c.lines = lines
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody waits: the line is only for the record
			}
		}
	}()
}

// wait returns the first line matching ok or fail, "" after timeout.
func (c *client) wait(ok, fail string, timeout time.Duration) (string, bool) {
	okRE, failRE := regexp.MustCompile(ok), regexp.MustCompile(fail)
	deadline := time.After(timeout)
	for {
		select {
		case l, open := <-c.lines:
			if !open {
				return "", false
			}
			c.log.WriteString(l + "\n")
			if okRE.MatchString(l) {
				return l, true
			}
			if failRE.MatchString(l) {
				return l, false
			}
		case <-deadline:
			return "", false
		}
	}
}

func (c *client) stop() {
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
	c.cmd = nil
}

// chanReporter hands reports to the test.
type chanReporter chan string

func (r chanReporter) StationJoined(s sharing.Station) { r <- "joined " + s.MAC.String() }
func (r chanReporter) StationLeft(mac string)          { r <- "left " + mac }

func (r chanReporter) next(t *testing.T, timeout time.Duration) string {
	select {
	case s := <-r:
		return s
	case <-time.After(timeout):
		return ""
	}
}

func TestHwsimJoin(t *testing.T) {
	phy, clients := hwsimRadios(t)
	ch := hwsimChannel(t, phy)
	freq, _, _ := channelFreq(band24, ch)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	radio, err := nl80211.Open(nl80211.Config{PHY: phy.Name, Interface: "aptest0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer radio.Close()
	rep := make(chanReporter, 16)
	// A short group key lifetime, to see a real station take new keys.
	a, err := New(Config{Radio: radio, Reporter: rep, PHY: radio.PHY(), Log: log, GroupRekey: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	cfg := sharing.APConfig{SSID: "openmifi-aptest", Passphrase: "openmifi-aptest-pass", Band: band24, Channel: ch, MaxStations: 1}
	start := time.Now()
	if err := a.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Logf("AP started on %s channel %d in %v", phy.Name, ch, time.Since(start))
	defer a.Stop(context.Background())

	c1 := newClient(t, clients[0], "apcl0")
	start = time.Now()
	c1.join(cfg.SSID, cfg.Passphrase, freq)
	if line, ok := c1.wait("CTRL-EVENT-CONNECTED", "CTRL-EVENT-SSID-TEMP-DISABLED|CTRL-EVENT-ASSOC-REJECT|CTRL-EVENT-AUTH-REJECT", 30*time.Second); !ok {
		t.Fatalf("client did not connect (%q):\n%s", line, c1.log.String())
	}
	t.Logf("client connected in %v", time.Since(start))
	if got := rep.next(t, 5*time.Second); got != "joined "+c1.mac.String() {
		t.Fatalf("report %q, want joined %s", got, c1.mac)
	}

	if line, ok := c1.wait("Group rekeying completed", "CTRL-EVENT-DISCONNECTED", 15*time.Second); !ok {
		t.Errorf("no group rekey (%q):\n%s", line, c1.log.String())
	}

	if len(clients) > 1 {
		// MaxStations is 1: the second client is refused.
		c2 := newClient(t, clients[1], "apcl1")
		c2.join(cfg.SSID, cfg.Passphrase, freq)
		line, ok := c2.wait("CTRL-EVENT-CONNECTED", "CTRL-EVENT-AUTH-REJECT|CTRL-EVENT-ASSOC-REJECT", 30*time.Second)
		if ok || !strings.Contains(line, "status_code=17") {
			t.Errorf("second client with MaxStations 1: %q", line)
		}
		c2.stop()
		// A wrong passphrase never connects, once there is room.
		if err := a.SetMaxStations(ctx, 2); err != nil {
			t.Fatal(err)
		}
		c2.join(cfg.SSID, "not-the-passphrase", freq)
		line, ok = c2.wait("CTRL-EVENT-CONNECTED", "CTRL-EVENT-SSID-TEMP-DISABLED", 40*time.Second)
		if ok || !strings.Contains(line, "WRONG_KEY") {
			t.Errorf("client with the wrong passphrase: %q\n%s", line, c2.log.String())
		}
		c2.stop()
	}

	// Stopping disconnects the client and reports it gone.
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rep.next(t, 5*time.Second); got != "left "+c1.mac.String() {
		t.Errorf("report %q, want left %s", got, c1.mac)
	}
	if line, ok := c1.wait("CTRL-EVENT-DISCONNECTED", "^$^", 10*time.Second); !ok {
		t.Errorf("client not disconnected (%q):\n%s", line, c1.log.String())
	}
}
