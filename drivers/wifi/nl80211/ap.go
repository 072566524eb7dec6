package nl80211

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/wifi"
	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/drivers/netns"
	"github.com/openmifi/openmifi/internal/clock"
)

// AP is one access point interface on one radio. Its methods may be
// called from several goroutines.
type AP struct {
	log     *slog.Logger
	clk     clock.Clock
	netns   int
	t       transport
	s       *sockets // nil in tests
	pae     *pae     // nil when EAPOL goes over nl80211
	phy     PHY
	ifindex int
	ifname  string
	addr    net.HardwareAddr
	owned   bool // we created the interface: Close deletes it
	q       *queue
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu      sync.Mutex
	started bool
	closed  bool
	// deleting counts our DEL_STATIONs per station whose notification
	// is still to come: those are not EventStationGone.
	deleting map[string]int
	// keyed stations have a pairwise key: EAPOL to them is encrypted.
	keyed map[string]bool
}

// iface is what GET_INTERFACE says of a wireless interface.
type iface struct {
	index  int
	name   string
	wiphy  int
	iftype uint32
	mac    net.HardwareAddr
}

// Open takes the AP interface cfg.Interface on a radio that supports AP
// mode, creating it if it does not exist, brings it up and starts
// receiving the management frames an access point answers. The AP does
// not beacon until StartAP.
func Open(cfg Config) (*AP, error) {
	if cfg.Interface == "" {
		return nil, errors.New("open Wi-Fi AP: no interface name")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	var a *AP
	err := netns.Do(cfg.NetNS, func() error {
		var err error
		a, err = open(cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open Wi-Fi AP %s: %w", cfg.Interface, err)
	}
	return a, nil
}

func open(cfg Config) (a *AP, err error) {
	s, g, err := dialSockets()
	if err != nil {
		return nil, err
	}
	a = newAP(cfg, s)
	a.s = s
	defer func() {
		if err != nil {
			a.abandon()
		}
	}()
	ctx := context.Background()
	phys, err := a.PHYs()
	if err != nil {
		return nil, err
	}
	ifs, err := a.interfaces(ctx)
	if err != nil {
		return nil, err
	}
	var existing *iface
	for i := range ifs {
		if ifs[i].name == cfg.Interface {
			existing = &ifs[i]
		}
	}
	phyName := cfg.PHY
	if phyName == "" && existing != nil {
		for _, p := range phys {
			if p.Index == existing.wiphy {
				phyName = p.Name
			}
		}
	}
	a.phy, err = choosePHY(phys, phyName)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		if existing.wiphy != a.phy.Index {
			return nil, fmt.Errorf("interface %s belongs to another radio than %s", cfg.Interface, a.phy.Name)
		}
		if err := a.takeOver(ctx, *existing); err != nil {
			return nil, err
		}
	} else if err := a.create(ctx, cfg.Interface, cfg.MAC); err != nil {
		return nil, err
	}
	for _, ft := range registeredFrames {
		if _, err := a.t.own(ctx, unix.NL80211_CMD_REGISTER_FRAME, registerFrameAttrs(a.ifindex, ft)); err != nil {
			return nil, fmt.Errorf("register for management frames %#02x: %w", ft, err)
		}
	}
	for _, id := range []uint32{g.mlme, g.config} {
		if id == 0 {
			return nil, errors.New("nl80211 has no mlme or config multicast group")
		}
		if err := s.owner.JoinGroup(id); err != nil {
			return nil, fmt.Errorf("join nl80211 multicast group %d: %w", id, err)
		}
	}
	if len(cfg.Country) != 2 && cfg.Country != "" {
		a.log.Warn("regulatory country is not two letters; the radio keeps its own", "country", cfg.Country)
	} else if cfg.Country != "" {
		if err := a.SetCountry(ctx, cfg.Country); err != nil {
			a.log.Warn("setting the regulatory country failed; the radio keeps its own", "country", cfg.Country, "err", err)
		}
	}
	if err := setLinkUp(a.ifindex, true); err != nil {
		return nil, fmt.Errorf("bring %s up: %w", a.ifname, err)
	}
	if !a.phy.ControlPort {
		if a.pae, err = openPAE(a.ifindex); err != nil {
			return nil, err
		}
	}
	a.log.Info("Wi-Fi AP interface ready", "phy", a.phy.Name, "interface", a.ifname, "bssid", a.addr.String(),
		"created", a.owned, "eapol_over_nl80211", a.phy.ControlPort)
	a.run()
	return a, nil
}

// SetCountry asks for the regulatory domain of a country (a user hint:
// the kernel intersects it with what the radio allows).
func (a *AP) SetCountry(ctx context.Context, country string) error {
	_, err := a.t.do(ctx, unix.NL80211_CMD_REQ_SET_REG, false, regAttrs(country))
	return err
}

func newAP(cfg Config, t transport) *AP {
	return &AP{
		log:      cfg.Logger,
		clk:      cfg.Clock,
		netns:    cfg.NetNS,
		t:        t,
		ifname:   cfg.Interface,
		q:        newQueue(),
		deleting: map[string]int{},
		keyed:    map[string]bool{},
	}
}

// run starts the goroutines that feed Events.
func (a *AP) run() {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.q.run(ctx)
	}()
	if a.s != nil {
		a.s.reading.Store(true)
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := a.s.read(a.handle); err != nil {
				a.log.Error("reading nl80211 events failed; the AP is deaf", "interface", a.ifname, "err", err)
				a.q.push(Event{Kind: EventStopped, Time: a.clk.Now()})
			}
		}()
	}
	if a.pae != nil {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.readPAE(ctx)
		}()
	}
}

func (a *AP) readPAE(ctx context.Context) {
	buf := make([]byte, 4096)
	for {
		n, from, err := a.pae.recv(buf)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Error("reading EAPOL failed", "interface", a.ifname, "err", err)
			}
			return
		}
		if from == nil {
			continue
		}
		a.q.push(Event{Kind: EventEAPOL, MAC: from, Frame: append([]byte(nil), buf[:n]...), Time: a.clk.Now()})
	}
}

// handle turns what the kernel tells the owner socket into Events.
func (a *AP) handle(cmd uint8, attrs []byte) {
	n, err := parseNotification(cmd, attrs)
	if err != nil || n.ifindex != a.ifindex {
		return
	}
	e, ok := n.event()
	if !ok {
		return
	}
	switch e.Kind {
	case EventStationGone:
		key := e.MAC.String()
		a.mu.Lock()
		delete(a.keyed, key)
		ours := a.deleting[key] > 0 || !a.started
		if a.deleting[key] > 0 {
			a.deleting[key]--
			if a.deleting[key] == 0 {
				delete(a.deleting, key)
			}
		}
		a.mu.Unlock()
		if ours {
			return
		}
	case EventStopped:
		a.mu.Lock()
		ours := (!a.started && cmd == unix.NL80211_CMD_STOP_AP) || a.closed
		a.started = false
		a.mu.Unlock()
		if ours {
			return
		}
		a.log.Warn("Wi-Fi AP stopped by the kernel", "interface", a.ifname)
	}
	e.Time = a.clk.Now()
	if !a.q.push(e) {
		a.log.Debug("management frame dropped: the AP logic is behind", "interface", a.ifname)
	}
}

func choosePHY(phys []PHY, name string) (PHY, error) {
	for _, p := range phys {
		if name != "" && p.Name != name {
			continue
		}
		if !p.APMode {
			if name != "" {
				return PHY{}, fmt.Errorf("radio %s cannot be an access point", name)
			}
			continue
		}
		return p, nil
	}
	if name != "" {
		return PHY{}, fmt.Errorf("no radio %s", name)
	}
	return PHY{}, errors.New("no radio can be an access point")
}

// create makes a new AP interface owned by the owner socket, so that the
// kernel removes it if we die.
func (a *AP) create(ctx context.Context, name string, mac net.HardwareAddr) error {
	replies, err := a.t.own(ctx, unix.NL80211_CMD_NEW_INTERFACE, newInterfaceAttrs(a.phy.Index, name, unix.NL80211_IFTYPE_AP, mac))
	if err != nil {
		return fmt.Errorf("create AP interface on %s: %w", a.phy.Name, err)
	}
	a.owned = true
	for _, r := range replies {
		if ifc, err := parseInterface(r); err == nil && ifc.index != 0 {
			a.ifindex, a.addr = ifc.index, ifc.mac
		}
	}
	if a.ifindex == 0 {
		return fmt.Errorf("create AP interface on %s: the kernel did not say its index", a.phy.Name)
	}
	return nil
}

// takeOver switches an existing interface to AP mode, which needs it down.
func (a *AP) takeOver(ctx context.Context, ifc iface) error {
	a.ifindex, a.addr = ifc.index, ifc.mac
	if ifc.iftype == unix.NL80211_IFTYPE_AP {
		return nil
	}
	if err := setLinkUp(ifc.index, false); err != nil {
		return fmt.Errorf("bring %s down: %w", ifc.name, err)
	}
	if _, err := a.t.do(ctx, unix.NL80211_CMD_SET_INTERFACE, false, setInterfaceAPAttrs(ifc.index)); err != nil {
		return fmt.Errorf("switch %s to AP mode: %w", ifc.name, err)
	}
	return nil
}

func setLinkUp(ifindex int, up bool) error {
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return err
	}
	defer c.Close()
	var flags uint32
	if up {
		flags = unix.IFF_UP
	}
	return c.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(ifindex), Flags: flags, Change: unix.IFF_UP})
}

func (a *AP) interfaces(ctx context.Context) ([]iface, error) {
	msgs, err := a.t.do(ctx, unix.NL80211_CMD_GET_INTERFACE, true, nil)
	if err != nil {
		return nil, fmt.Errorf("list wireless interfaces: %w", err)
	}
	var out []iface
	for _, m := range msgs {
		ifc, err := parseInterface(m)
		if err != nil {
			return nil, fmt.Errorf("list wireless interfaces: %w", err)
		}
		out = append(out, ifc)
	}
	return out, nil
}

func parseInterface(b []byte) (iface, error) {
	var ifc iface
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return ifc, err
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NL80211_ATTR_IFINDEX:
			ifc.index = int(ad.Uint32())
		case unix.NL80211_ATTR_IFNAME:
			ifc.name = ad.String()
		case unix.NL80211_ATTR_WIPHY:
			ifc.wiphy = int(ad.Uint32())
		case unix.NL80211_ATTR_IFTYPE:
			ifc.iftype = ad.Uint32()
		case unix.NL80211_ATTR_MAC:
			if d := ad.Bytes(); len(d) == 6 {
				ifc.mac = net.HardwareAddr(d)
			}
		}
	}
	return ifc, ad.Err()
}

// PHYs lists the radios (GET_WIPHY split dump).
func (a *AP) PHYs() ([]PHY, error) {
	msgs, err := a.t.do(context.Background(), unix.NL80211_CMD_GET_WIPHY, true, encode(func(ae *netlink.AttributeEncoder) {
		ae.Flag(unix.NL80211_ATTR_SPLIT_WIPHY_DUMP, true)
	}))
	if err != nil {
		return nil, fmt.Errorf("list radios: %w", err)
	}
	return parseWiphyDump(msgs)
}

// ListPHYs lists the radios of network namespace netnsFD (0: this one)
// without taking any.
func ListPHYs(netnsFD int) ([]PHY, error) {
	var phys []PHY
	err := netns.Do(netnsFD, func() error {
		s, _, err := dialSockets()
		if err != nil {
			return err
		}
		defer s.close()
		phys, err = newAP(Config{}, s).PHYs()
		return err
	})
	return phys, err
}

// PHY is the radio the AP runs on: its bands, channels, rates and HT
// capabilities are what the beacon may announce.
func (a *AP) PHY() PHY { return a.phy }

// Interface is the AP interface's name.
func (a *AP) Interface() string { return a.ifname }

// Addr is the AP interface's address, the BSSID.
func (a *AP) Addr() net.HardwareAddr { return append(net.HardwareAddr(nil), a.addr...) }

// Events delivers frames and what the kernel did on its own, until Close
// closes the channel.
func (a *AP) Events() <-chan Event { return a.q.out }

// StartAP starts beaconing (START_AP). The owner socket sends it, so the
// AP stops if hotspotd dies and EAPOL over nl80211 comes to us.
func (a *AP) StartAP(ctx context.Context, cfg StartConfig) error {
	if len(cfg.BeaconHead) < 24 || cfg.FreqMHz == 0 || cfg.BeaconInterval <= 0 || cfg.DTIMPeriod <= 0 || len(cfg.SSID) == 0 {
		return errors.New("start AP: incomplete configuration (beacon head, frequency, beacon interval, DTIM period, SSID)")
	}
	if _, err := a.t.own(ctx, unix.NL80211_CMD_START_AP, startAPAttrs(a.ifindex, cfg, a.phy.ControlPort)); err != nil {
		return fmt.Errorf("start AP on %s at %d MHz: %w", a.ifname, cfg.FreqMHz, err)
	}
	a.mu.Lock()
	a.started = true
	a.mu.Unlock()
	a.log.Info("Wi-Fi AP beaconing", "interface", a.ifname, "ssid", string(cfg.SSID), "freq_mhz", cfg.FreqMHz, "hidden", cfg.Hidden, "wpa2", cfg.Privacy)
	return nil
}

// StopAP deauthenticates every station (mac80211 does not tell them) and
// stops beaconing. Stopping a stopped AP is not an error.
func (a *AP) StopAP(ctx context.Context) error {
	a.mu.Lock()
	a.started = false
	clear(a.keyed)
	a.mu.Unlock()
	// Reason 3: deauthenticated because the AP is leaving.
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if _, err := a.SendFrame(ctx, deauthFrame(bcast, a.addr, 3), 0, true); err != nil {
		a.log.Debug("broadcast deauthentication not sent", "interface", a.ifname, "err", err)
	}
	if _, err := a.t.do(ctx, unix.NL80211_CMD_STOP_AP, false, ifindexAttrs(a.ifindex)); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("stop AP on %s: %w", a.ifname, err)
	}
	a.log.Info("Wi-Fi AP stopped", "interface", a.ifname)
	return nil
}

// SetBeacon replaces the beacon of a running AP.
func (a *AP) SetBeacon(ctx context.Context, head, tail []byte) error {
	if _, err := a.t.do(ctx, unix.NL80211_CMD_SET_BEACON, false, setBeaconAttrs(a.ifindex, head, tail)); err != nil {
		return fmt.Errorf("set beacon on %s: %w", a.ifname, err)
	}
	return nil
}

// SendFrame transmits a management frame. Unless noAck, an EventTxStatus
// with the returned cookie says whether the station acked it.
func (a *AP) SendFrame(ctx context.Context, frame []byte, freqMHz int, noAck bool) (uint64, error) {
	replies, err := a.t.do(ctx, unix.NL80211_CMD_FRAME, false, frameAttrs(a.ifindex, frame, freqMHz, noAck))
	if err != nil {
		return 0, fmt.Errorf("send management frame on %s: %w", a.ifname, err)
	}
	for _, r := range replies {
		if n, err := parseNotification(unix.NL80211_CMD_FRAME, r); err == nil && n.cookie != 0 {
			return n.cookie, nil
		}
	}
	return 0, nil
}

// SendEAPOL sends an 802.1X frame (from its version byte on) to a
// station: unencrypted until the station has a pairwise key.
func (a *AP) SendEAPOL(ctx context.Context, to net.HardwareAddr, frame []byte) error {
	if a.pae != nil {
		if err := a.pae.send(to, frame); err != nil {
			return fmt.Errorf("send EAPOL to %s: %w", to, err)
		}
		return nil
	}
	a.mu.Lock()
	keyed := a.keyed[to.String()]
	a.mu.Unlock()
	if _, err := a.t.do(ctx, unix.NL80211_CMD_CONTROL_PORT_FRAME, false, controlPortAttrs(a.ifindex, to, frame, !keyed)); err != nil {
		return fmt.Errorf("send EAPOL to %s: %w", to, err)
	}
	return nil
}

// NewStation adds an associated station, not yet authorized.
func (a *AP) NewStation(ctx context.Context, p StationParams) error {
	if len(p.MAC) != 6 || p.AID < 1 || p.AID > 2007 || len(p.Rates) == 0 {
		return fmt.Errorf("add station %s: bad parameters (AID %d, %d rates)", p.MAC, p.AID, len(p.Rates))
	}
	a.mu.Lock()
	delete(a.keyed, p.MAC.String())
	a.mu.Unlock()
	if _, err := a.t.do(ctx, unix.NL80211_CMD_NEW_STATION, false, newStationAttrs(a.ifindex, p, a.phy.FullAPClientState)); err != nil {
		return fmt.Errorf("add station %s: %w", p.MAC, err)
	}
	return nil
}

// SetAuthorized opens (or closes) the 802.1X port of a station: data
// frames pass only when it is authorized.
func (a *AP) SetAuthorized(ctx context.Context, mac net.HardwareAddr, authorized bool) error {
	if _, err := a.t.do(ctx, unix.NL80211_CMD_SET_STATION, false, setAuthorizedAttrs(a.ifindex, mac, authorized)); err != nil {
		return fmt.Errorf("set station %s authorized=%v: %w", mac, authorized, err)
	}
	return nil
}

// DelStation deauthenticates a station with reason and removes it; reason
// 0 removes it silently (it left by itself, or is joining again). The
// Deauthentication frame is sent here, since mac80211 removes stations
// without a word. Removing a station that is not there is not an error.
func (a *AP) DelStation(ctx context.Context, mac net.HardwareAddr, reason uint16) error {
	if reason != 0 {
		if _, err := a.SendFrame(ctx, deauthFrame(mac, a.addr, reason), 0, true); err != nil {
			a.log.Debug("deauthentication not sent", "station", mac.String(), "err", err)
		}
	}
	key := mac.String()
	a.mu.Lock()
	a.deleting[key]++
	delete(a.keyed, key)
	a.mu.Unlock()
	_, err := a.t.do(ctx, unix.NL80211_CMD_DEL_STATION, false, delStationAttrs(a.ifindex, mac, reason))
	if err != nil {
		a.mu.Lock()
		if a.deleting[key]--; a.deleting[key] <= 0 {
			delete(a.deleting, key)
		}
		a.mu.Unlock()
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("remove station %s: %w", mac, err)
	}
	return nil
}

// SetPairwiseKey installs a station's CCMP temporal key at index 0.
func (a *AP) SetPairwiseKey(ctx context.Context, mac net.HardwareAddr, tk []byte) error {
	if len(tk) != 16 {
		return fmt.Errorf("set pairwise key for %s: CCMP key of %d bytes", mac, len(tk))
	}
	if _, err := a.t.do(ctx, unix.NL80211_CMD_NEW_KEY, false, pairwiseKeyAttrs(a.ifindex, mac, tk)); err != nil {
		return fmt.Errorf("set pairwise key for %s: %w", mac, err)
	}
	a.mu.Lock()
	a.keyed[mac.String()] = true
	a.mu.Unlock()
	return nil
}

// SetGroupKey installs the CCMP group key at idx (1-3) with its receive
// sequence counter (6 bytes, or nil for zero) and makes it the default
// for multicast.
func (a *AP) SetGroupKey(ctx context.Context, idx int, gtk []byte, rsc []byte) error {
	if len(gtk) != 16 || idx < 1 || idx > 3 || len(rsc) > 16 {
		return fmt.Errorf("set group key %d: bad CCMP key (%d bytes) or RSC (%d bytes)", idx, len(gtk), len(rsc))
	}
	if _, err := a.t.do(ctx, unix.NL80211_CMD_NEW_KEY, false, groupKeyAttrs(a.ifindex, idx, gtk, rsc)); err != nil {
		return fmt.Errorf("set group key %d: %w", idx, err)
	}
	if _, err := a.t.do(ctx, unix.NL80211_CMD_SET_KEY, false, defaultGroupKeyAttrs(a.ifindex, idx)); err != nil {
		return fmt.Errorf("make group key %d the default: %w", idx, err)
	}
	return nil
}

// StationInfo reports the kernel's view of the associated stations
// (signal, rates, byte counters).
func (a *AP) StationInfo() ([]*wifi.StationInfo, error) {
	var out []*wifi.StationInfo
	err := netns.Do(a.netns, func() error {
		c, err := wifi.New()
		if err != nil {
			return err
		}
		defer c.Close()
		out, err = c.StationInfo(&wifi.Interface{Index: a.ifindex, Name: a.ifname, HardwareAddr: a.addr})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("station information of %s: %w", a.ifname, err)
	}
	return out, nil
}

// Close stops the AP, deletes the interface if Open created it, and
// closes Events. The interface Open took over stays, in AP mode.
func (a *AP) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	started := a.started
	a.closed = true
	a.mu.Unlock()
	ctx := context.Background()
	var errs []error
	if started {
		errs = append(errs, a.StopAP(ctx))
	}
	if a.owned {
		if _, err := a.t.do(ctx, unix.NL80211_CMD_DEL_INTERFACE, false, ifindexAttrs(a.ifindex)); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("delete interface %s: %w", a.ifname, err))
		}
	}
	a.abandon()
	return errors.Join(errs...)
}

// abandon stops the goroutines and closes the sockets.
func (a *AP) abandon() {
	if a.cancel != nil {
		a.cancel()
	}
	if a.s != nil {
		a.s.close()
	}
	if a.pae != nil {
		a.pae.close()
	}
	a.wg.Wait()
}
