package qemutest

import (
	"context"
	"strings"
	"testing"
	"time"
)

// fakeShell answers commands with the first reply whose key the command
// contains, and keeps the commands.
type fakeShell struct {
	replies []reply
	cmds    []string
}

type reply struct {
	contains string
	out      string
	rc       int
}

func (f *fakeShell) Run(_ context.Context, cmd string) (string, int, error) {
	f.cmds = append(f.cmds, cmd)
	for _, r := range f.replies {
		if strings.Contains(cmd, r.contains) {
			return r.out, r.rc, nil
		}
	}
	return "", 0, nil
}

func (f *fakeShell) ran(substr string) bool {
	for _, c := range f.cmds {
		if strings.Contains(c, substr) {
			return true
		}
	}
	return false
}

func TestWaitLog(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		out  string
		rc   int
		line string
		ok   bool
	}{
		{"connected amid console noise",
			"hotspotd: time=x level=WARN msg=\"cannot open the modem port\"\n\n1796302551.7: wlan1: CTRL-EVENT-CONNECTED - Connection\n", 0,
			"1796302551.7: wlan1: CTRL-EVENT-CONNECTED - Connection", true},
		{"wrong key",
			"1796302551.765175: wlan2: CTRL-EVENT-SSID-TEMP-DISABLED id=0 reason=WRONG_KEY\n", 0,
			"1796302551.765175: wlan2: CTRL-EVENT-SSID-TEMP-DISABLED id=0 reason=WRONG_KEY", false},
		{"timeout", "", 1, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh := &fakeShell{replies: []reply{{"grep", tc.out, tc.rc}}}
			line, ok, err := waitLog(ctx, sh, "/tmp/c1.log", "CTRL-EVENT-CONNECTED", joinFailures, 5*time.Second)
			if err != nil || line != tc.line || ok != tc.ok {
				t.Errorf("got %q %v %v", line, ok, err)
			}
			if !strings.Contains(sh.cmds[0], "+5))") {
				t.Errorf("the guest's wait is not bounded by 5 s: %s", sh.cmds[0])
			}
		})
	}
}

func TestClientJoin(t *testing.T) {
	ctx := context.Background()
	sh := &fakeShell{replies: []reply{
		{IWTool + " dev", "phy#1\n\tInterface wlan1\n\t\tifindex 4\n", 0},
		{"grep", "1796302551.7: wlan1: CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:00:00 completed\n", 0},
	}}
	c, err := NewClient(ctx, sh, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Iface != "wlan1" || c.NS != "c1" || c.Phy != "phy1" {
		t.Errorf("client %+v", c)
	}
	for _, want := range []string{IPTool + " netns add c1", IWTool + " phy phy1 set netns name c1", IPTool + " netns exec c1 " + IPTool + " link set wlan1 up"} {
		if !sh.ran(want) {
			t.Errorf("no %q in %q", want, sh.cmds)
		}
	}
	res, err := c.Join(ctx, Network{SSID: "it's", Passphrase: "pass phrase", Channel: 11}, time.Second)
	if err != nil || !res.Connected {
		t.Fatalf("join: %+v %v", res, err)
	}
	for _, want := range []string{`echo 'ssid="it'\''s"' >> /tmp/c1.conf`, "scan_freq=2462", IPTool + " netns exec c1 " + StampTool + " /tmp/c1.t0 " + SupplicantTool + " -t -D nl80211 -i wlan1 -c /tmp/c1.conf"} {
		if !sh.ran(want) {
			t.Errorf("no %q in %q", want, sh.cmds)
		}
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !sh.ran(IWTool+" phy phy1 set netns 1") || !sh.ran(IPTool+" netns del c1") {
		t.Errorf("Close left the namespace: %q", sh.cmds)
	}
}

func TestConnectStatic(t *testing.T) {
	ctx := context.Background()
	sh := &fakeShell{replies: []reply{
		{IWTool + " dev", "\tInterface wlan2\n", 0},
		{"grep", "1.0: wlan2: CTRL-EVENT-CONNECTED\n", 0},
	}}
	c, err := NewClient(ctx, sh, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect(ctx, &Hostapd{}, Network{SSID: "s", Passphrase: "12345678"}, time.Second); err != nil {
		t.Fatal(err)
	}
	if !sh.ran("addr replace 192.168.43.12/24 dev wlan2") || !sh.ran("ping -c 3 -w 10 192.168.43.1") {
		t.Errorf("no static address or ping: %q", sh.cmds)
	}
}

func TestHotspotdStartFailure(t *testing.T) {
	ctx := context.Background()
	sh := &fakeShell{replies: []reply{
		{"^uplink", "sharing:  off\nuplink:   up on eth0, Test PLMN 1-1 LTE\n    inet 100.64.0.2/24 scope global eth0\n", 0},
		{"hotspotctl on", "hotspotd: time=x level=ERROR msg=\"sharing failed to start\"\n", 1},
		{"hotspotctl status", "sharing:  off (start failure)\nerror:    start access point: no access point driver on this device\n", 0},
	}}
	err := (&Hotspotd{MaxUsers: 1}).Start(ctx, sh, Network{SSID: "s", Passphrase: "p a s s"})
	if err == nil || !strings.Contains(err.Error(), "sharing did not start: start access point: no access point driver") {
		t.Errorf("got %v", err)
	}
	if !sh.ran("hotspotctl set ssid='s' passphrase='p a s s' band=2.4GHz channel=6 max_users=1") {
		t.Errorf("settings: %q", sh.cmds)
	}
}

func TestWaitUplink(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, status string
		ok           bool
	}{
		{"up", "sharing:  off\nuplink:   up on eth0, Test PLMN 1-1 LTE\n2: eth0: <UP>\n    inet 100.64.0.2/24 scope global eth0\n", true},
		{"up without an address", "sharing:  off\nuplink:   up on eth0, Test PLMN 1-1 LTE\n", false},
		{"down", "sharing:  off\nuplink:   down (no public connection)\n", false},
		{"warning before", "hotspotd: level=WARN msg=\"uplink: up\"\nuplink:   down\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh := &fakeShell{replies: []reply{{"hotspotctl status", tc.status, 0}}}
			_, err := WaitUplink(ctx, sh, 3*time.Second)
			if (err == nil) != tc.ok {
				t.Errorf("got %v", err)
			}
			if !strings.Contains(sh.cmds[0], "+3))") {
				t.Errorf("the guest's wait is not bounded by 3 s: %s", sh.cmds[0])
			}
		})
	}
	// No uplink, no hotspotctl on.
	sh := &fakeShell{replies: []reply{{"hotspotctl status", "uplink:   down\n", 0}}}
	if err := (&Hotspotd{}).Start(ctx, sh, Network{SSID: "s", Passphrase: "12345678"}); err == nil || sh.ran("hotspotctl on") {
		t.Errorf("started without an uplink: %v %q", err, sh.cmds)
	}
}

func TestClientMAC(t *testing.T) {
	ctx := context.Background()
	sh := &fakeShell{replies: []reply{
		{IWTool + " dev", "\tInterface wlan1\n", 0},
		{"/address", "hotspotd: noise 02:00:00:00:00:00 x\n02:00:00:00:01:00\n", 0},
	}}
	c, err := NewClient(ctx, sh, 1)
	if err != nil {
		t.Fatal(err)
	}
	if mac, err := c.MAC(ctx); err != nil || mac != "02:00:00:00:01:00" {
		t.Errorf("got %q %v", mac, err)
	}
	if !sh.ran(IPTool + " netns exec c1 cat /sys/class/net/wlan1/address") {
		t.Errorf("not read in the namespace: %q", sh.cmds)
	}
}

func TestClientDHCP(t *testing.T) {
	ctx := context.Background()
	sh := &fakeShell{replies: []reply{
		{IWTool + " dev", "\tInterface wlan1\n", 0},
		{"udhcpc -i", "udhcpc: started, v1.35.0\nudhcpc: broadcasting select for 192.168.43.10, server 192.168.43.1\n" +
			"udhcpc: lease of 192.168.43.10 obtained from 192.168.43.1, lease time 3600\nlease 192.168.43.10/24\n", 0},
	}}
	c, err := NewClient(ctx, sh, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c.DHCP(ctx); err != nil || p.String() != "192.168.43.10/24" {
		t.Errorf("got %v %v", p, err)
	}
}
