package nl80211

import (
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// FuzzParseWiphy feeds GET_WIPHY messages to the dump parser: one
// message, or two when the first byte says where to split, so that
// merging parts of a radio is fuzzed too.
func FuzzParseWiphy(f *testing.F) {
	dump := hwsimDump()
	for _, m := range dump {
		f.Add(m)
	}
	f.Add(append([]byte{byte(len(dump[1]))}, append(dump[1], dump[3]...)...))
	for i, m := range loadDump(f, "testdata/wiphy-hwsim.b64") {
		if i%16 == 0 { // a sample of the real thing
			f.Add(m)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs := [][]byte{b}
		if len(b) > 1 && int(b[0]) < len(b) {
			msgs = [][]byte{b[1 : 1+int(b[0])], b[1+int(b[0]):]}
		}
		phys, err := parseWiphyDump(msgs)
		if err != nil {
			return
		}
		for _, p := range phys {
			for _, band := range p.Bands {
				for _, c := range band.Channels {
					if c.FreqMHz == 0 {
						t.Fatalf("channel without a frequency: %+v", c)
					}
				}
			}
		}
	})
}

// FuzzParseNotification feeds the event parser what the kernel could
// send on the owner socket.
func FuzzParseNotification(f *testing.F) {
	auth := make([]byte, 30)
	auth[0] = stypeAuth
	f.Add(uint8(unix.NL80211_CMD_FRAME), note(7, func(ae *netlink.AttributeEncoder) { ae.Bytes(unix.NL80211_ATTR_FRAME, auth) }))
	f.Add(uint8(unix.NL80211_CMD_CONTROL_PORT_FRAME), note(7, func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.NL80211_ATTR_MAC, staMAC)
		ae.Uint16(unix.NL80211_ATTR_CONTROL_PORT_ETHERTYPE, 0x888e)
		ae.Bytes(unix.NL80211_ATTR_FRAME, []byte{2, 3, 0, 0})
	}))
	f.Add(uint8(unix.NL80211_CMD_DEL_STATION), note(7, func(ae *netlink.AttributeEncoder) { ae.Bytes(unix.NL80211_ATTR_MAC, staMAC) }))
	f.Add(uint8(unix.NL80211_CMD_FRAME_TX_STATUS), note(7, func(ae *netlink.AttributeEncoder) { ae.Uint64(unix.NL80211_ATTR_COOKIE, 1) }))
	f.Fuzz(func(t *testing.T, cmd uint8, b []byte) {
		n, err := parseNotification(cmd, b)
		if err != nil {
			return
		}
		e, ok := n.event()
		if !ok {
			return
		}
		if (e.Kind == EventFrame || e.Kind == EventEAPOL || e.Kind == EventStationGone) && len(e.MAC) != 6 {
			t.Fatalf("event %v with address %v", e.Kind, e.MAC)
		}
	})
}
