package nl80211

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mdlayher/wifi"
	"golang.org/x/sys/unix"
)

// The tests below need a kernel with Wi-Fi: the QEMU guest with
// mac80211_hwsim (rootfs/qemutest runs this package's test binary there).

// hwsimPHY skips unless a radio that can be an AP is here, and returns it.
func hwsimPHY(t *testing.T) PHY {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root (nl80211 interface and AP control)")
	}
	ents, err := os.ReadDir("/sys/class/ieee80211")
	if err != nil || len(ents) == 0 {
		t.Skip("no Wi-Fi radio in /sys/class/ieee80211: this runs in the QEMU guest with mac80211_hwsim")
	}
	phys, err := ListPHYs(0)
	if err != nil {
		t.Fatalf("list radios: %v", err)
	}
	for _, p := range phys {
		if p.APMode {
			return p
		}
	}
	t.Skipf("none of the %d radios supports AP mode", len(phys))
	return PHY{}
}

// usableFreq is a 2.4 GHz channel the regulatory domain lets an AP use.
func usableFreq(t *testing.T, p PHY) int {
	t.Helper()
	for _, b := range p.Bands {
		for _, c := range b.Channels {
			if b.ID == unix.NL80211_BAND_2GHZ && !c.Disabled && !c.NoIR && !c.Radar {
				return c.FreqMHz
			}
		}
	}
	t.Fatalf("no usable 2.4 GHz channel on %s: %+v", p.Name, p.Bands)
	return 0
}

// testBeacon is a small WPA2-PSK beacon, built here so that this package
// tests alone.
func testBeacon(bssid net.HardwareAddr, ssid string, channel int) (head, tail []byte) {
	head = []byte{0x80, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	head = append(head, bssid...)
	head = append(head, bssid...)
	head = append(head, 0, 0)               // sequence control
	head = append(head, make([]byte, 8)...) // timestamp: the driver fills it
	head = binary.LittleEndian.AppendUint16(head, 100)
	head = binary.LittleEndian.AppendUint16(head, 0x0411) // ESS, privacy, short slot
	head = append(head, 0, byte(len(ssid)))
	head = append(head, ssid...)
	head = append(head, 1, 8, 0x82, 0x84, 0x8b, 0x96, 0x0c, 0x12, 0x18, 0x24)
	head = append(head, 3, 1, byte(channel))
	tail = []byte{0x30, 20, 1, 0, 0x00, 0x0f, 0xac, 4, 1, 0, 0x00, 0x0f, 0xac, 4, 1, 0, 0x00, 0x0f, 0xac, 2, 0, 0}
	return head, tail
}

func wifiInterface(t *testing.T, name string) *wifi.Interface {
	t.Helper()
	c, err := wifi.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ifs, err := c.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifi := range ifs {
		if ifi.Name == name {
			return ifi
		}
	}
	return nil
}

func TestHwsimAP(t *testing.T) {
	phy := hwsimPHY(t)
	freq := usableFreq(t, phy)
	bssid := net.HardwareAddr{0x02, 0x6e, 0x6c, 0x38, 0x30, 0x01}
	start := time.Now()
	a, err := Open(Config{PHY: phy.Name, Interface: "nltest0", MAC: bssid, Logger: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Open took %v", time.Since(start))
	defer a.Close()
	if !bytes.Equal(a.Addr(), bssid) {
		t.Errorf("Addr = %v, want %v", a.Addr(), bssid)
	}
	t.Logf("AP on %s (control port over nl80211: %v, full AP client state: %v)", phy.Name, phy.ControlPort, phy.FullAPClientState)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	head, tail := testBeacon(bssid, "openmifi-nltest", channelNumber(freq))
	cfg := StartConfig{BeaconHead: head, BeaconTail: tail, SSID: []byte("openmifi-nltest"),
		BeaconInterval: 100, DTIMPeriod: 2, FreqMHz: freq, HT20: false, Privacy: true}
	start = time.Now()
	if err := a.StartAP(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Logf("StartAP took %v", time.Since(start))
	ifi := wifiInterface(t, "nltest0")
	if ifi == nil || ifi.Type != wifi.InterfaceTypeAP || ifi.Frequency != freq {
		t.Fatalf("after START_AP the interface is %+v, want an AP on %d MHz", ifi, freq)
	}
	if err := a.SetBeacon(ctx, head, tail); err != nil {
		t.Error(err)
	}
	probeRequests(ctx, t, a, phy)

	// The country the radio has already: a real request, no change.
	if c, err := wifi.New(); err == nil {
		rd, err := c.GetRegulatoryDomain()
		c.Close()
		if err == nil {
			if err := a.SetCountry(ctx, rd.Region); err != nil {
				t.Errorf("REQ_SET_REG %q: %v", rd.Region, err)
			}
		}
	}

	// A station the kernel takes on our word, as after an association.
	sta := net.HardwareAddr{0x02, 0x6e, 0x6c, 0x38, 0x30, 0x99}
	if err := a.NewStation(ctx, StationParams{MAC: sta, AID: 1, ListenInterval: 10, Capability: 0x0431,
		Rates: []byte{0x82, 0x84, 0x8b, 0x96}, WMM: true}); err != nil {
		t.Fatal(err)
	}
	if err := a.SendEAPOL(ctx, sta, []byte{0x02, 0x03, 0x00, 0x00}); err != nil {
		t.Errorf("EAPOL to an unkeyed station: %v", err)
	}
	if err := a.SetPairwiseKey(ctx, sta, bytes.Repeat([]byte{0x11}, 16)); err != nil {
		t.Error(err)
	}
	if err := a.SetGroupKey(ctx, 1, bytes.Repeat([]byte{0x22}, 16), make([]byte, 6)); err != nil {
		t.Error(err)
	}
	if err := a.SetAuthorized(ctx, sta, true); err != nil {
		t.Error(err)
	}
	stas, err := a.StationInfo()
	if err != nil || len(stas) != 1 || !bytes.Equal(stas[0].HardwareAddr, sta) {
		t.Errorf("stations = %v, %v; want %v", stas, err, sta)
	}

	// Nobody is there to ack: the status says so, with our cookie.
	cookie, err := a.SendFrame(ctx, deauthFrame(sta, bssid, 1), 0, false)
	if err != nil || cookie == 0 {
		t.Fatalf("SendFrame = %d, %v", cookie, err)
	}
	for done := false; !done; {
		select {
		case e := <-a.Events():
			if e.Kind == EventTxStatus && e.Cookie == cookie {
				t.Logf("tx status for cookie %d: ack %v", cookie, e.Ack)
				done = true
			}
		case <-ctx.Done():
			t.Fatal("no tx status for our frame")
		}
	}

	if err := a.DelStation(ctx, sta, 3); err != nil {
		t.Error(err)
	}
	if stas, err := a.StationInfo(); err != nil || len(stas) != 0 {
		t.Errorf("stations after DelStation = %v, %v", stas, err)
	}
	if err := a.StopAP(ctx); err != nil {
		t.Fatal(err)
	}
	if ifi := wifiInterface(t, "nltest0"); ifi == nil || ifi.Frequency != 0 {
		t.Errorf("after STOP_AP the interface is %+v, want no channel", ifi)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if ifi := wifiInterface(t, "nltest0"); ifi != nil {
		t.Errorf("interface we created still there after Close: %+v", ifi)
	}
}

// newStationIface makes a station-mode interface on radio phy, deleted
// when t ends.
func newStationIface(t *testing.T, phy int, name string, mac net.HardwareAddr) iface {
	t.Helper()
	s, _, err := dialSockets()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	ctx := context.Background()
	replies, err := s.do(ctx, unix.NL80211_CMD_NEW_INTERFACE, false, newInterfaceAttrs(phy, name, unix.NL80211_IFTYPE_STATION, mac))
	if err != nil || len(replies) == 0 {
		t.Fatalf("create station interface %s: %v", name, err)
	}
	ifc, err := parseInterface(replies[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.do(ctx, unix.NL80211_CMD_DEL_INTERFACE, false, ifindexAttrs(ifc.index)) })
	return ifc
}

// probeRequests scans from another radio, if there is one here, and
// waits for its probe request to come to the AP as an EventFrame.
func probeRequests(ctx context.Context, t *testing.T, a *AP, apPHY PHY) {
	t.Helper()
	phys, err := ListPHYs(0)
	if err != nil {
		t.Fatal(err)
	}
	other := -1
	for _, p := range phys {
		if p.Index != apPHY.Index {
			other = p.Index
		}
	}
	if other < 0 {
		t.Log("no second radio in this namespace: probe request reception not checked")
		return
	}
	mac := net.HardwareAddr{0x02, 0x6e, 0x6c, 0x38, 0x30, 0x03}
	ifc := newStationIface(t, other, "nlscan0", mac)
	if err := setLinkUp(ifc.index, true); err != nil {
		t.Fatal(err)
	}
	c, err := wifi.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	scanned := make(chan error, 1)
	go func() { scanned <- c.Scan(ctx, &wifi.Interface{Index: ifc.index, Name: ifc.name, PHY: other}) }()
	for {
		select {
		case e := <-a.Events():
			if e.Kind == EventFrame && len(e.Frame) > 0 && e.Frame[0] == stypeProbeReq && bytes.Equal(e.MAC, mac) {
				t.Logf("probe request from %v at %d dBm", e.MAC, e.SignalDBm)
				if err := <-scanned; err != nil {
					t.Errorf("scan: %v", err)
				}
				return
			}
		case err := <-scanned:
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			scanned <- nil // done; keep waiting for the frame
		case <-ctx.Done():
			t.Fatal("no probe request from the scanning radio")
		}
	}
}

// TestHwsimTakeOver opens an interface that exists in station mode: Open
// switches it to AP mode and Close leaves it.
func TestHwsimTakeOver(t *testing.T) {
	phy := hwsimPHY(t)
	mac := net.HardwareAddr{0x02, 0x6e, 0x6c, 0x38, 0x30, 0x02}
	newStationIface(t, phy.Index, "nlsta0", mac)

	a, err := Open(Config{Interface: "nlsta0"})
	if err != nil {
		t.Fatal(err)
	}
	if a.PHY().Index != phy.Index || !bytes.Equal(a.Addr(), mac) {
		t.Errorf("took %s with address %v, want %s and %v", a.PHY().Name, a.Addr(), phy.Name, mac)
	}
	if ifi := wifiInterface(t, "nlsta0"); ifi == nil || ifi.Type != wifi.InterfaceTypeAP {
		t.Errorf("interface after Open: %+v, want AP mode", ifi)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if ifi := wifiInterface(t, "nlsta0"); ifi == nil {
		t.Error("Close deleted an interface it did not create")
	}
}

// TestHwsimStoppedByKernel takes the interface down under a running AP:
// the kernel stops it, and the AP logic hears EventStopped.
func TestHwsimStoppedByKernel(t *testing.T) {
	phy := hwsimPHY(t)
	freq := usableFreq(t, phy)
	bssid := net.HardwareAddr{0x02, 0x6e, 0x6c, 0x38, 0x30, 0x04}
	a, err := Open(Config{PHY: phy.Name, Interface: "nltest1", MAC: bssid})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	head, tail := testBeacon(bssid, "openmifi-nlstop", channelNumber(freq))
	if err := a.StartAP(ctx, StartConfig{BeaconHead: head, BeaconTail: tail, SSID: []byte("openmifi-nlstop"),
		BeaconInterval: 100, DTIMPeriod: 2, FreqMHz: freq, Privacy: true}); err != nil {
		t.Fatal(err)
	}
	if err := setLinkUp(a.ifindex, false); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case e := <-a.Events():
			if e.Kind == EventStopped {
				return
			}
		case <-ctx.Done():
			t.Fatal("no EventStopped after the interface went down")
		}
	}
}
