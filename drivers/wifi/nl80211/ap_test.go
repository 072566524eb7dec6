package nl80211

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/internal/clock"
)

type call struct {
	cmd   uint8
	owner bool
	dump  bool
	attrs []byte
}

// recorder is a transport that records commands and answers from a
// script.
type recorder struct {
	mu      sync.Mutex
	calls   []call
	replies map[uint8][][]byte
	errs    map[uint8]error
}

func (r *recorder) answer(c call) ([][]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
	return r.replies[c.cmd], r.errs[c.cmd]
}

func (r *recorder) do(_ context.Context, cmd uint8, dump bool, attrs []byte) ([][]byte, error) {
	return r.answer(call{cmd: cmd, dump: dump, attrs: attrs})
}

func (r *recorder) own(_ context.Context, cmd uint8, attrs []byte) ([][]byte, error) {
	return r.answer(call{cmd: cmd, owner: true, attrs: attrs})
}

func (r *recorder) take() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func cmds(cs []call) []uint8 {
	var out []uint8
	for _, c := range cs {
		out = append(out, c.cmd)
	}
	return out
}

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testAP is an AP on a recorder, its event queue running.
func testAP(t *testing.T, controlPort bool) (*AP, *recorder) {
	t.Helper()
	r := &recorder{replies: map[uint8][][]byte{}, errs: map[uint8]error{}}
	a := newAP(Config{Interface: "wlan0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock.NewFake(epoch)}, r)
	a.ifindex, a.addr = 7, apMAC
	a.phy = PHY{Index: 0, Name: "phy0", APMode: true, ControlPort: controlPort, FullAPClientState: true}
	a.run()
	t.Cleanup(func() { a.Close() })
	return a, r
}

func TestStartStopAP(t *testing.T) {
	a, r := testAP(t, true)
	ctx := context.Background()
	if err := a.StartAP(ctx, StartConfig{}); err == nil {
		t.Error("StartAP took an empty configuration")
	}
	if err := a.StartAP(ctx, testStartConfig()); err != nil {
		t.Fatal(err)
	}
	cs := r.take()
	if len(cs) != 1 || cs[0].cmd != unix.NL80211_CMD_START_AP || !cs[0].owner {
		t.Fatalf("StartAP sent %+v, want START_AP on the owner socket", cmds(cs))
	}
	if err := a.SetBeacon(ctx, []byte{1}, []byte{2}); err != nil {
		t.Fatal(err)
	}
	if cs := r.take(); len(cs) != 1 || cs[0].cmd != unix.NL80211_CMD_SET_BEACON {
		t.Fatalf("SetBeacon sent %v", cmds(cs))
	}

	r.errs[unix.NL80211_CMD_STOP_AP] = unix.ENOENT // already stopped: fine
	if err := a.StopAP(ctx); err != nil {
		t.Fatal(err)
	}
	cs = r.take()
	if len(cs) != 2 || cs[0].cmd != unix.NL80211_CMD_FRAME || cs[1].cmd != unix.NL80211_CMD_STOP_AP {
		t.Fatalf("StopAP sent %v, want FRAME (broadcast deauth) then STOP_AP", cmds(cs))
	}
	m := attrs(t, cs[0].attrs)
	wantBytes(t, m, unix.NL80211_ATTR_FRAME, deauthFrame(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, apMAC, 3))
	wantFlag(t, m, unix.NL80211_ATTR_DONT_WAIT_FOR_ACK)

	r.errs[unix.NL80211_CMD_STOP_AP] = unix.EBUSY
	if err := a.StopAP(ctx); !errors.Is(err, unix.EBUSY) {
		t.Errorf("StopAP error = %v, want EBUSY wrapped", err)
	}
}

func TestStations(t *testing.T) {
	a, r := testAP(t, true)
	ctx := context.Background()
	p := StationParams{MAC: staMAC, AID: 1, ListenInterval: 5, Rates: []byte{0x82}}
	if err := a.NewStation(ctx, StationParams{MAC: staMAC}); err == nil {
		t.Error("NewStation took AID 0 and no rates")
	}
	if err := a.NewStation(ctx, p); err != nil {
		t.Fatal(err)
	}
	if cs := r.take(); len(cs) != 1 || cs[0].cmd != unix.NL80211_CMD_NEW_STATION {
		t.Fatalf("NewStation sent %v", cmds(cs))
	}
	if err := a.SetAuthorized(ctx, staMAC, true); err != nil {
		t.Fatal(err)
	}
	if cs := r.take(); len(cs) != 1 || cs[0].cmd != unix.NL80211_CMD_SET_STATION {
		t.Fatalf("SetAuthorized sent %v", cmds(cs))
	}
	if err := a.DelStation(ctx, staMAC, 5); err != nil {
		t.Fatal(err)
	}
	cs := r.take()
	if len(cs) != 2 || cs[0].cmd != unix.NL80211_CMD_FRAME || cs[1].cmd != unix.NL80211_CMD_DEL_STATION {
		t.Fatalf("DelStation sent %v, want FRAME (deauth) then DEL_STATION", cmds(cs))
	}
	wantBytes(t, attrs(t, cs[0].attrs), unix.NL80211_ATTR_FRAME, deauthFrame(staMAC, apMAC, 5))
	wantU16(t, attrs(t, cs[1].attrs), unix.NL80211_ATTR_REASON_CODE, 5)

	// Reason 0: silently.
	if err := a.DelStation(ctx, staMAC, 0); err != nil {
		t.Fatal(err)
	}
	if cs := r.take(); len(cs) != 1 || cs[0].cmd != unix.NL80211_CMD_DEL_STATION {
		t.Fatalf("silent DelStation sent %v, want DEL_STATION alone", cmds(cs))
	}

	r.errs[unix.NL80211_CMD_DEL_STATION] = unix.ENOENT
	if err := a.DelStation(ctx, staMAC, 3); err != nil {
		t.Errorf("removing a station that is gone: %v", err)
	}
	a.mu.Lock()
	n := len(a.deleting)
	a.mu.Unlock()
	if n != 1 { // the notifications of the first two are still due
		t.Errorf("%d stations awaiting their DEL_STATION notification, want 1", n)
	}
}

func TestKeysAndEAPOLEncryption(t *testing.T) {
	a, r := testAP(t, true)
	ctx := context.Background()
	eapol := []byte{2, 3, 0, 0}
	noEncrypt := func() bool {
		t.Helper()
		cs := r.take()
		if len(cs) != 1 || cs[0].cmd != unix.NL80211_CMD_CONTROL_PORT_FRAME {
			t.Fatalf("SendEAPOL sent %v", cmds(cs))
		}
		_, ok := attrs(t, cs[0].attrs)[unix.NL80211_ATTR_CONTROL_PORT_NO_ENCRYPT]
		return ok
	}
	if err := a.SendEAPOL(ctx, staMAC, eapol); err != nil {
		t.Fatal(err)
	}
	if !noEncrypt() {
		t.Error("EAPOL before the pairwise key is encrypted")
	}
	if err := a.SetPairwiseKey(ctx, staMAC, make([]byte, 5)); err == nil {
		t.Error("a 5-byte CCMP key was taken")
	}
	if err := a.SetPairwiseKey(ctx, staMAC, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if cs := r.take(); len(cs) != 1 || cs[0].cmd != unix.NL80211_CMD_NEW_KEY {
		t.Fatalf("SetPairwiseKey sent %v", cmds(cs))
	}
	if err := a.SendEAPOL(ctx, staMAC, eapol); err != nil {
		t.Fatal(err)
	}
	if noEncrypt() {
		t.Error("EAPOL after the pairwise key is not encrypted")
	}

	if err := a.SetGroupKey(ctx, 0, make([]byte, 16), nil); err == nil {
		t.Error("group key index 0 taken")
	}
	if err := a.SetGroupKey(ctx, 1, make([]byte, 16), make([]byte, 6)); err != nil {
		t.Fatal(err)
	}
	cs := r.take()
	if len(cs) != 2 || cs[0].cmd != unix.NL80211_CMD_NEW_KEY || cs[1].cmd != unix.NL80211_CMD_SET_KEY {
		t.Fatalf("SetGroupKey sent %v, want NEW_KEY then SET_KEY", cmds(cs))
	}

	// A new association of the same station starts unkeyed.
	if err := a.NewStation(ctx, StationParams{MAC: staMAC, AID: 1, Rates: []byte{2}}); err != nil {
		t.Fatal(err)
	}
	r.take()
	if err := a.SendEAPOL(ctx, staMAC, eapol); err != nil {
		t.Fatal(err)
	}
	if !noEncrypt() {
		t.Error("EAPOL to a re-associated station is encrypted")
	}
}

func TestSendFrameCookie(t *testing.T) {
	a, r := testAP(t, true)
	r.replies[unix.NL80211_CMD_FRAME] = [][]byte{encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, 7)
		ae.Uint64(unix.NL80211_ATTR_COOKIE, 0x1234)
	})}
	cookie, err := a.SendFrame(context.Background(), []byte{0xb0}, 0, false)
	if err != nil || cookie != 0x1234 {
		t.Fatalf("SendFrame = %#x, %v; want cookie 0x1234", cookie, err)
	}
	r.errs[unix.NL80211_CMD_FRAME] = unix.EINVAL
	if _, err := a.SendFrame(context.Background(), []byte{0xb0}, 0, false); !errors.Is(err, unix.EINVAL) {
		t.Errorf("SendFrame error = %v", err)
	}
}

func TestCloseDeletesOwnInterface(t *testing.T) {
	a, r := testAP(t, true)
	a.owned = true
	if err := a.StartAP(context.Background(), testStartConfig()); err != nil {
		t.Fatal(err)
	}
	r.take()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	want := []uint8{unix.NL80211_CMD_FRAME, unix.NL80211_CMD_STOP_AP, unix.NL80211_CMD_DEL_INTERFACE}
	if got := cmds(r.take()); !bytes.Equal(got, want) {
		t.Errorf("Close sent %v, want %v", got, want)
	}
	if _, ok := <-a.Events(); ok {
		t.Error("Events still open after Close")
	}
	if err := a.Close(); err != nil || len(r.take()) != 0 {
		t.Error("a second Close did something")
	}
}

// note builds a notification as the kernel sends it.
func note(ifindex int, f func(ae *netlink.AttributeEncoder)) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_WIPHY, 0)
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		f(ae)
	})
}

func next(t *testing.T, a *AP) Event {
	t.Helper()
	e, ok := <-a.Events()
	if !ok {
		t.Fatal("Events closed")
	}
	return e
}

func TestEvents(t *testing.T) {
	a, _ := testAP(t, true)
	if err := a.StartAP(context.Background(), testStartConfig()); err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 30)
	auth[0] = stypeAuth
	copy(auth[10:], staMAC)
	none := func(ae *netlink.AttributeEncoder) {}

	// Not for our interface, or nothing for the AP logic: dropped.
	a.handle(unix.NL80211_CMD_FRAME, note(99, func(ae *netlink.AttributeEncoder) { ae.Bytes(unix.NL80211_ATTR_FRAME, auth) }))
	a.handle(unix.NL80211_CMD_NEW_STATION, note(7, func(ae *netlink.AttributeEncoder) { ae.Bytes(unix.NL80211_ATTR_MAC, staMAC) }))
	a.handle(unix.NL80211_CMD_FRAME, note(7, func(ae *netlink.AttributeEncoder) { ae.Bytes(unix.NL80211_ATTR_FRAME, auth[:10]) }))

	a.handle(unix.NL80211_CMD_FRAME, note(7, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_WIPHY_FREQ, 2437)
		ae.Bytes(unix.NL80211_ATTR_FRAME, auth)
		ae.Uint32(unix.NL80211_ATTR_RX_SIGNAL_DBM, uint32(0xffffffd3)) // -45
	}))
	e := next(t, a)
	if e.Kind != EventFrame || !bytes.Equal(e.Frame, auth) || e.MAC.String() != staMAC.String() || e.SignalDBm != -45 || !e.Time.Equal(epoch) {
		t.Errorf("frame event = %+v", e)
	}

	a.handle(unix.NL80211_CMD_CONTROL_PORT_FRAME, note(7, func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.NL80211_ATTR_MAC, staMAC)
		ae.Uint16(unix.NL80211_ATTR_CONTROL_PORT_ETHERTYPE, 0x888e)
		ae.Bytes(unix.NL80211_ATTR_FRAME, []byte{2, 3, 0, 0})
		ae.Flag(unix.NL80211_ATTR_CONTROL_PORT_NO_ENCRYPT, true)
	}))
	if e := next(t, a); e.Kind != EventEAPOL || e.MAC.String() != staMAC.String() || !bytes.Equal(e.Frame, []byte{2, 3, 0, 0}) {
		t.Errorf("EAPOL event = %+v", e)
	}

	a.handle(unix.NL80211_CMD_FRAME_TX_STATUS, note(7, func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.NL80211_ATTR_FRAME, auth)
		ae.Uint64(unix.NL80211_ATTR_COOKIE, 42)
		ae.Flag(unix.NL80211_ATTR_ACK, true)
	}))
	if e := next(t, a); e.Kind != EventTxStatus || e.Cookie != 42 || !e.Ack {
		t.Errorf("tx status event = %+v", e)
	}

	// A station we remove is not news; one the kernel removes is.
	other := net.HardwareAddr{2, 0, 0, 0, 2, 0}
	if err := a.DelStation(context.Background(), staMAC, 3); err != nil {
		t.Fatal(err)
	}
	gone := func(mac net.HardwareAddr) []byte {
		return note(7, func(ae *netlink.AttributeEncoder) { ae.Bytes(unix.NL80211_ATTR_MAC, mac) })
	}
	a.handle(unix.NL80211_CMD_DEL_STATION, gone(staMAC))
	a.handle(unix.NL80211_CMD_DEL_STATION, gone(other))
	if e := next(t, a); e.Kind != EventStationGone || e.MAC.String() != other.String() {
		t.Errorf("station gone event = %+v, want %v", e, other)
	}
	a.handle(unix.NL80211_CMD_DEL_STATION, gone(staMAC)) // a second time: the kernel's doing
	if e := next(t, a); e.Kind != EventStationGone || e.MAC.String() != staMAC.String() {
		t.Errorf("station gone event = %+v, want %v", e, staMAC)
	}

	// The kernel stopping the AP is news; our StopAP is not.
	a.handle(unix.NL80211_CMD_STOP_AP, note(7, none))
	if e := next(t, a); e.Kind != EventStopped {
		t.Errorf("event = %+v, want EventStopped", e)
	}
	if err := a.StartAP(context.Background(), testStartConfig()); err != nil {
		t.Fatal(err)
	}
	if err := a.StopAP(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.handle(unix.NL80211_CMD_STOP_AP, note(7, none))
	a.handle(unix.NL80211_CMD_DEL_STATION, gone(other)) // flushed by STOP_AP
	a.handle(unix.NL80211_CMD_DEL_INTERFACE, note(7, none))
	if e := next(t, a); e.Kind != EventStopped {
		t.Errorf("event = %+v, want EventStopped for the interface going away", e)
	}
	select {
	case e := <-a.Events():
		t.Errorf("unexpected event %+v", e)
	default:
	}
}

func TestQueueKeepsStateEvents(t *testing.T) {
	q := newQueue()
	for i := 0; i < maxQueued; i++ {
		if !q.push(Event{Kind: EventFrame}) {
			t.Fatalf("frame %d dropped below the limit", i)
		}
	}
	if q.push(Event{Kind: EventFrame}) || q.push(Event{Kind: EventEAPOL}) {
		t.Error("frames queued beyond the limit")
	}
	if !q.push(Event{Kind: EventStationGone}) || !q.push(Event{Kind: EventStopped}) {
		t.Error("state events dropped")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		q.run(ctx)
		close(done)
	}()
	var last Event
	for i := 0; i < maxQueued+2; i++ {
		last = <-q.out
	}
	if last.Kind != EventStopped {
		t.Errorf("last event %v, want EventStopped", last.Kind)
	}
	cancel()
	<-done
	if _, ok := <-q.out; ok {
		t.Error("queue channel open after its context ended")
	}
}
