package qemutest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/openmifi/openmifi/rootfs"
)

// The Wi-Fi tests run in a test image (ImageOptions.TestTools): the AP
// on the first mac80211_hwsim radio (phy0, wlan0, the board's LAN
// interface), client N on radio phyN moved into network namespace cN,
// where Debian's wpa_supplicant drives it. hwsim carries frames between
// its radios whatever namespace they are in.

// Shell runs a command in the guest: a *Console, or anything that types
// into one.
type Shell interface {
	Run(ctx context.Context, cmd string) (string, int, error)
}

// Tool paths in a test image.
var (
	IPTool         = rootfs.TestToolDir + "/ip"
	IWTool         = rootfs.TestToolDir + "/iw"
	HostapdTool    = rootfs.TestToolDir + "/hostapd"
	SupplicantTool = rootfs.TestToolDir + "/wpa_supplicant"
	// StampTool writes the time to a file and execs a program: its
	// start on the clock of the -t logs (rootfs/qemutest/stamp).
	StampTool = rootfs.TestDir + "/stamp"
)

// APAddress is the AP's address on every board's LAN.
var APAddress = netip.MustParsePrefix("192.168.43.1/24")

// Network is what the AP offers and a client asks for.
type Network struct {
	SSID       string
	Passphrase string
	Channel    int // 2.4 GHz; 0 is 6
}

func (n Network) channel() int {
	if n.Channel == 0 {
		return 6
	}
	return n.Channel
}

// AP is the access point under test: hostapd (the baseline) or hotspotd.
type AP interface {
	Name() string
	// Start brings the AP up on n and returns once it beacons.
	Start(ctx context.Context, sh Shell, n Network) error
	// Stop takes it down, which disconnects every client.
	Stop(ctx context.Context, sh Shell) error
	// DHCP reports whether clients get their address from the AP's
	// network, or must set one themselves.
	DHCP() bool
}

// check runs cmd and fails on a non-zero exit.
func check(ctx context.Context, sh Shell, cmd string) (string, error) {
	out, rc, err := sh.Run(ctx, cmd)
	if err != nil {
		return out, err
	}
	if rc != 0 {
		return out, fmt.Errorf("guest: %s: exit %d: %s", cmd, rc, strings.TrimSpace(out))
	}
	return out, nil
}

// writeFile writes lines to a guest file, one short command per line:
// the console's line editor cuts long command lines.
func writeFile(ctx context.Context, sh Shell, name string, lines []string) error {
	op := ">"
	for _, l := range lines {
		if _, err := check(ctx, sh, "echo "+Quote(l)+" "+op+" "+name); err != nil {
			return err
		}
		op = ">>"
	}
	return nil
}

// waitLog waits in the guest, up to timeout, for a line of file matching
// ok or fail (extended regular expressions) and returns the first such
// line and whether it was ok; a timeout returns "" and false. The loop
// runs in the guest so that the console carries one command, not one per
// poll.
func waitLog(ctx context.Context, sh Shell, file, ok, fail string, timeout time.Duration) (string, bool, error) {
	secs := int(timeout.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	cmd := fmt.Sprintf(`end=$(($(date +%%s)+%d)); while [ $(date +%%s) -lt $end ]; do grep -qE %s %s 2>/dev/null && break; usleep 50000; done; grep -m1 -E %s %s 2>/dev/null`,
		secs, Quote(ok+"|"+fail), file, Quote(ok+"|"+fail), file)
	wctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	out, rc, err := sh.Run(wctx, cmd)
	if err != nil {
		return "", false, err
	}
	if rc != 0 {
		return "", false, nil
	}
	// The console may interleave the init's echo of daemon warnings.
	okRE, err := regexp.Compile(ok)
	if err != nil {
		return "", false, err
	}
	failRE, err := regexp.Compile(fail)
	if err != nil {
		return "", false, err
	}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case okRE.MatchString(line):
			return line, true, nil
		case failRE.MatchString(line):
			return line, false, nil
		}
	}
	return "", false, nil
}

// Hostapd is Debian's hostapd as the AP, WPA2-PSK with CCMP: the
// baseline our own AP is compared with.
type Hostapd struct {
	// Iface is the AP's interface; "" is wlan0.
	Iface string
	// MaxStations refuses associations beyond it (max_num_sta); 0 is
	// hostapd's default.
	MaxStations int
}

// Hostapd's files in the guest; its log has -t timestamps.
const (
	HostapdConf = "/tmp/hostapd.conf"
	HostapdLog  = "/tmp/hostapd.log"
	HostapdT0   = "/tmp/hostapd.t0" // when hostapd was started (StampTool)
	hostapdPID  = "/tmp/hostapd.pid"
)

func (h *Hostapd) Name() string { return "hostapd" }

func (h *Hostapd) DHCP() bool { return false }

func (h *Hostapd) iface() string {
	if h.Iface == "" {
		return "wlan0"
	}
	return h.Iface
}

// Start writes the configuration, starts hostapd in the background and
// waits for AP-ENABLED: the kernel accepted the beacon and started
// beaconing. The AP address goes on the interface then.
func (h *Hostapd) Start(ctx context.Context, sh Shell, n Network) error {
	conf := []string{
		"interface=" + h.iface(),
		"driver=nl80211",
		"ctrl_interface=/run/hostapd",
		"ssid=" + n.SSID,
		"hw_mode=g",
		fmt.Sprintf("channel=%d", n.channel()),
		"wpa=2",
		"wpa_key_mgmt=WPA-PSK",
		"rsn_pairwise=CCMP",
		"wpa_passphrase=" + n.Passphrase,
	}
	if h.MaxStations > 0 {
		conf = append(conf, fmt.Sprintf("max_num_sta=%d", h.MaxStations))
	}
	if err := writeFile(ctx, sh, HostapdConf, conf); err != nil {
		return fmt.Errorf("hostapd: %w", err)
	}
	start := fmt.Sprintf("rm -f %s; %s %s %s -t %s > %s 2>&1 & echo $! > %s",
		HostapdLog, StampTool, HostapdT0, HostapdTool, HostapdConf, HostapdLog, hostapdPID)
	if _, err := check(ctx, sh, start); err != nil {
		return fmt.Errorf("hostapd: %w", err)
	}
	line, ok, err := waitLog(ctx, sh, HostapdLog, "AP-ENABLED", "AP-DISABLED|Could not|Failed to|Invalid|Line [0-9]+:|initialization failed", 30*time.Second)
	if err != nil {
		return fmt.Errorf("hostapd: %w", err)
	}
	if !ok {
		log, _, _ := sh.Run(ctx, "cat "+HostapdLog)
		return fmt.Errorf("hostapd did not start (%q):\n%s", line, log)
	}
	if _, err := check(ctx, sh, fmt.Sprintf("%s addr replace %s dev %s", IPTool, APAddress, h.iface())); err != nil {
		return fmt.Errorf("hostapd: %w", err)
	}
	return nil
}

// Stop ends hostapd, which deauthenticates its stations as it goes.
func (h *Hostapd) Stop(ctx context.Context, sh Shell) error {
	cmd := fmt.Sprintf(`p=$(cat %s 2>/dev/null) && kill $p 2>/dev/null; i=0; while [ -n "$p" ] && kill -0 $p 2>/dev/null && [ $i -lt 100 ]; do usleep 50000; i=$((i+1)); done; rm -f %s; %s addr flush dev %s`,
		hostapdPID, hostapdPID, IPTool, h.iface())
	_, err := check(ctx, sh, cmd)
	return err
}

// HotspotdT0 is when hotspotctl on was started (StampTool).
const HotspotdT0 = "/tmp/hotspotd.t0"

// Hotspotd is our own AP: hotspotd, driven with hotspotctl as a user
// does. Its DHCP server gives the clients their addresses.
type Hotspotd struct {
	// MaxUsers is set when not 0.
	MaxUsers int
}

func (h *Hotspotd) Name() string { return "hotspotd" }

func (h *Hotspotd) DHCP() bool { return true }

// UplinkTimeout bounds Hotspotd.Start's wait for the public connection:
// the modem registering and its context up, and the uplink NIC's DHCP,
// under TCG.
const UplinkTimeout = 2 * time.Minute

var uplinkUpRE = regexp.MustCompile(`(?m)^uplink:\s+up\b`)

// WaitUplink waits, up to timeout, for hotspotctl status to say the
// public connection is up (the guest booted with BootOptions.Cellular)
// and for its interface to have an IPv4 address, and returns the last
// status.
func WaitUplink(ctx context.Context, sh Shell, timeout time.Duration) (string, error) {
	secs := max(int(timeout/time.Second), 1)
	// The loop runs in the guest: one console command, not one per
	// poll.
	cmd := fmt.Sprintf(`end=$(($(date +%%s)+%d)); while :; do s=$(hotspotctl status 2>&1); i=$(echo "$s" | sed -n 's/^uplink: *up on \([^ ,]*\).*/\1/p'); [ -n "$i" ] && %s -4 addr show dev "$i" | grep -q inet && break; [ $(date +%%s) -ge $end ] && break; usleep 200000; done; echo "$s"; %s -4 addr show dev "$i"`, secs, IPTool, IPTool)
	wctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	out, _, err := sh.Run(wctx, cmd)
	if err != nil {
		return out, fmt.Errorf("hotspotd: waiting for the uplink: %w", err)
	}
	if !uplinkUpRE.MatchString(out) || !strings.Contains(out, "inet ") {
		return out, fmt.Errorf("hotspotd: no public connection after %v (boot with BootOptions.Cellular):\n%s", timeout, strings.TrimSpace(out))
	}
	return out, nil
}

// Start sets the network, waits for the public connection (sharing needs
// the uplink) and turns sharing on; hotspotctl on returns once sharing is
// on (the AP beacons, the DHCP server and firewall run) or failed.
func (h *Hotspotd) Start(ctx context.Context, sh Shell, n Network) error {
	// Also the wait for hotspotd itself, just after a boot.
	if _, err := WaitUplink(ctx, sh, UplinkTimeout); err != nil {
		return err
	}
	set := fmt.Sprintf("hotspotctl set ssid=%s passphrase=%s band=2.4GHz channel=%d", Quote(n.SSID), Quote(n.Passphrase), n.channel())
	if h.MaxUsers > 0 {
		set += fmt.Sprintf(" max_users=%d", h.MaxUsers)
	}
	if _, err := check(ctx, sh, set); err != nil {
		return fmt.Errorf("hotspotd: %w", err)
	}
	return h.on(ctx, sh)
}

func (h *Hotspotd) on(ctx context.Context, sh Shell) error {
	out, rc, err := sh.Run(ctx, StampTool+" "+HotspotdT0+" hotspotctl on")
	if err != nil {
		return fmt.Errorf("hotspotd: %w", err)
	}
	if rc == 0 {
		return nil
	}
	// The reason is status's error line; on's output has the daemon's
	// log lines the console echoes too.
	status, _, _ := sh.Run(ctx, "hotspotctl status")
	if m := regexp.MustCompile(`(?m)^error:\s*(.*)$`).FindStringSubmatch(status); m != nil {
		return fmt.Errorf("hotspotd: sharing did not start: %s", strings.TrimSpace(m[1]))
	}
	return fmt.Errorf("hotspotd: hotspotctl on: exit %d: %s", rc, strings.TrimSpace(out))
}

// Stop turns sharing off.
func (h *Hotspotd) Stop(ctx context.Context, sh Shell) error {
	_, err := check(ctx, sh, "hotspotctl off")
	return err
}

// Clients is what hotspotctl clients says.
func (h *Hotspotd) Clients(ctx context.Context, sh Shell) (string, error) {
	return check(ctx, sh, "hotspotctl clients")
}

// Client is test client N: radio phyN in network namespace cN, with
// wpa_supplicant. Its files in the guest are /tmp/cN.*; the log has -t
// timestamps.
type Client struct {
	N     int
	NS    string // cN
	Phy   string // phyN
	Iface string // the radio's interface, in NS
	sh    Shell
}

// NewClient moves radio phyN into a new namespace cN and brings its
// interface up there. Close undoes it.
func NewClient(ctx context.Context, sh Shell, n int) (*Client, error) {
	c := &Client{N: n, NS: fmt.Sprintf("c%d", n), Phy: fmt.Sprintf("phy%d", n), sh: sh}
	setup := fmt.Sprintf("%s netns del %s 2>/dev/null; %s netns add %s && %s phy %s set netns name %s",
		IPTool, c.NS, IPTool, c.NS, IWTool, c.Phy, c.NS)
	if _, err := check(ctx, sh, setup); err != nil {
		return nil, fmt.Errorf("client %d: %w", n, err)
	}
	out, err := check(ctx, sh, c.in(IWTool+" dev"))
	if err != nil {
		c.Close(ctx)
		return nil, fmt.Errorf("client %d: %w", n, err)
	}
	m := regexp.MustCompile(`Interface (\S+)`).FindStringSubmatch(out)
	if m == nil {
		c.Close(ctx)
		return nil, fmt.Errorf("client %d: no interface of %s in %s:\n%s", n, c.Phy, c.NS, out)
	}
	c.Iface = m[1]
	if _, err := check(ctx, sh, c.in(IPTool+" link set lo up")+" && "+c.in(IPTool+" link set "+c.Iface+" up")); err != nil {
		c.Close(ctx)
		return nil, fmt.Errorf("client %d: %w", n, err)
	}
	return c, nil
}

// in is cmd run in the client's namespace.
func (c *Client) in(cmd string) string {
	return IPTool + " netns exec " + c.NS + " " + cmd
}

// Files of the client in the guest.
func (c *Client) Log() string  { return fmt.Sprintf("/tmp/c%d.log", c.N) }
func (c *Client) T0() string   { return fmt.Sprintf("/tmp/c%d.t0", c.N) }
func (c *Client) conf() string { return fmt.Sprintf("/tmp/c%d.conf", c.N) }
func (c *Client) pid() string  { return fmt.Sprintf("/tmp/c%d.pid", c.N) }

// JoinResult is how a join attempt ended.
type JoinResult struct {
	Connected bool
	// Event is the wpa_supplicant line that ended the wait, "" on a
	// timeout.
	Event string
	// Addr is the client's address once Connect gave it one.
	Addr netip.Prefix
}

// Events that end a join attempt without a connection: a wrong key, an
// AP that refuses authentication or association (a full AP), or a
// supplicant that could not start. A scan that missed the network is not
// one: wpa_supplicant scans again, and the timeout decides.
const joinFailures = `CTRL-EVENT-SSID-TEMP-DISABLED|CTRL-EVENT-ASSOC-REJECT|CTRL-EVENT-AUTH-REJECT|Failed to initialize|Failed to read`

// Join starts wpa_supplicant for n and waits, up to timeout, for
// CTRL-EVENT-CONNECTED or a failure. A timeout is a result (not
// connected), not an error. wpa_supplicant keeps running until Stop,
// retrying a network that failed; a supplicant of an earlier Join is
// stopped first.
func (c *Client) Join(ctx context.Context, n Network, timeout time.Duration) (JoinResult, error) {
	if err := c.Stop(ctx); err != nil {
		return JoinResult{}, fmt.Errorf("client %d: %w", c.N, err)
	}
	conf := []string{
		"ctrl_interface=/run/wpa_supplicant-" + c.NS,
		"network={",
		"ssid=\"" + n.SSID + "\"",
		"psk=\"" + n.Passphrase + "\"",
		"key_mgmt=WPA-PSK",
		"proto=RSN",
		"pairwise=CCMP",
		"group=CCMP",
		fmt.Sprintf("scan_freq=%d", 2407+5*n.channel()),
		"}",
	}
	if err := writeFile(ctx, c.sh, c.conf(), conf); err != nil {
		return JoinResult{}, fmt.Errorf("client %d: %w", c.N, err)
	}
	start := fmt.Sprintf("rm -f %s; %s > %s 2>&1 & echo $! > %s",
		c.Log(), c.in(StampTool+" "+c.T0()+" "+SupplicantTool+" -t -D nl80211 -i "+c.Iface+" -c "+c.conf()), c.Log(), c.pid())
	if _, err := check(ctx, c.sh, start); err != nil {
		return JoinResult{}, fmt.Errorf("client %d: %w", c.N, err)
	}
	line, ok, err := waitLog(ctx, c.sh, c.Log(), "CTRL-EVENT-CONNECTED", joinFailures, timeout)
	if err != nil {
		return JoinResult{}, fmt.Errorf("client %d: %w", c.N, err)
	}
	return JoinResult{Connected: ok, Event: line}, nil
}

// WaitDisconnected waits, up to timeout, for the connection to end.
func (c *Client) WaitDisconnected(ctx context.Context, timeout time.Duration) (bool, error) {
	_, ok, err := waitLog(ctx, c.sh, c.Log(), "CTRL-EVENT-DISCONNECTED", "CTRL-EVENT-TERMINATING", timeout)
	return ok, err
}

// SetAddress gives the client a static address (with hostapd, which has
// no DHCP server).
func (c *Client) SetAddress(ctx context.Context, p netip.Prefix) error {
	_, err := check(ctx, c.sh, c.in(fmt.Sprintf("%s addr replace %s dev %s", IPTool, p, c.Iface)))
	return err
}

const udhcpcScript = "/tmp/udhcpc.sh"

// DHCP gets an address with busybox udhcpc and returns it.
func (c *Client) DHCP(ctx context.Context) (netip.Prefix, error) {
	script := []string{
		"#!/bin/sh",
		`case "$1" in bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface"; echo "lease $ip/${mask:-24}";; esac`,
	}
	if err := writeFile(ctx, c.sh, udhcpcScript, script); err != nil {
		return netip.Prefix{}, err
	}
	out, err := check(ctx, c.sh, "chmod 755 "+udhcpcScript+" && "+c.in("udhcpc -i "+c.Iface+" -n -q -f -t 5 -T 2 -s "+udhcpcScript))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("client %d: %w", c.N, err)
	}
	// Anchored: udhcpc says "lease of ADDR obtained" too.
	m := regexp.MustCompile(`(?m)^lease ([0-9.]+/[0-9]+)\s*$`).FindStringSubmatch(out)
	if m == nil {
		return netip.Prefix{}, fmt.Errorf("client %d: udhcpc gave no lease:\n%s", c.N, out)
	}
	return netip.ParsePrefix(m[1])
}

// Ping sends up to three pings to addr from the client's namespace and
// succeeds at the first answer.
func (c *Client) Ping(ctx context.Context, addr netip.Addr) error {
	// busybox ping exits 0 once it had an answer.
	out, err := check(ctx, c.sh, c.in(fmt.Sprintf("ping -c 3 -w 10 %s", addr)))
	if err != nil {
		return fmt.Errorf("client %d: ping %s: %w %s", c.N, addr, err, out)
	}
	return nil
}

// Stop ends wpa_supplicant.
func (c *Client) Stop(ctx context.Context) error {
	cmd := fmt.Sprintf(`p=$(cat %s 2>/dev/null) && kill $p 2>/dev/null; i=0; while [ -n "$p" ] && kill -0 $p 2>/dev/null && [ $i -lt 100 ]; do usleep 50000; i=$((i+1)); done; rm -f %s`,
		c.pid(), c.pid())
	_, err := check(ctx, c.sh, cmd)
	return err
}

// Close stops wpa_supplicant, moves the radio back to the first
// namespace (PID 1's) and removes the client's namespace.
func (c *Client) Close(ctx context.Context) error {
	err := c.Stop(ctx)
	_, merr := check(ctx, c.sh, c.in(IWTool+" phy "+c.Phy+" set netns 1")+"; "+IPTool+" netns del "+c.NS)
	return errors.Join(err, merr)
}

// MAC is the client's radio's address.
func (c *Client) MAC(ctx context.Context) (string, error) {
	out, err := check(ctx, c.sh, c.in("cat /sys/class/net/"+c.Iface+"/address"))
	if err != nil {
		return "", fmt.Errorf("client %d: %w", c.N, err)
	}
	m := regexp.MustCompile(`(?m)^([0-9a-f]{2}(?::[0-9a-f]{2}){5})\s*$`).FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("client %d: no MAC address in %q", c.N, out)
	}
	return m[1], nil
}

// ReadLog returns the client's wpa_supplicant log.
func (c *Client) ReadLog(ctx context.Context) (string, error) {
	return check(ctx, c.sh, "cat "+c.Log())
}

// Connect is the whole client side of a test: start client N's
// supplicant for n, and once connected get an address (from the AP's
// DHCP server, or static .10+N with an AP that has none) and ping the
// AP. It returns the join result; a client that did not connect is no
// error.
func (c *Client) Connect(ctx context.Context, ap AP, n Network, timeout time.Duration) (JoinResult, error) {
	res, err := c.Join(ctx, n, timeout)
	if err != nil || !res.Connected {
		return res, err
	}
	if ap.DHCP() {
		if res.Addr, err = c.DHCP(ctx); err != nil {
			return res, err
		}
	} else {
		a := APAddress.Addr().As4()
		a[3] = byte(10 + c.N)
		res.Addr = netip.PrefixFrom(netip.AddrFrom4(a), APAddress.Bits())
		if err := c.SetAddress(ctx, res.Addr); err != nil {
			return res, err
		}
	}
	return res, c.Ping(ctx, APAddress.Addr())
}

// Timestamp finds the first line of a -t log (hostapd's or
// wpa_supplicant's: "SECONDS.MICROSECONDS: text") whose text contains
// substr and returns its time.
func Timestamp(log, substr string) (time.Time, bool) {
	for _, line := range strings.Split(log, "\n") {
		ts, text, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok || !strings.Contains(text, substr) {
			continue
		}
		if t, ok := ParseSeconds(ts); ok {
			return t, true
		}
	}
	return time.Time{}, false
}

// ParseSeconds reads "SECONDS.FRACTION": StampTool's, or a -t log's prefix.
func ParseSeconds(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	sec, frac, _ := strings.Cut(s, ".")
	if sec == "" || len(sec) > 12 || len(frac) > 9 {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, false
	}
	var ns int64
	if frac != "" {
		f, err := strconv.ParseInt(frac, 10, 64)
		if err != nil || f < 0 {
			return time.Time{}, false
		}
		ns = f
		for i := len(frac); i < 9; i++ {
			ns *= 10
		}
	}
	return time.Unix(n, ns), true
}
