package nl80211

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The builders below are pure, so that tests check each message's
// attributes against what nl80211 expects without a kernel.

// Suite selectors (00-0F-AC:n) as nl80211 wants them: one u32 each.
const (
	cipherCCMP = 0x000fac04
	akmPSK     = 0x000fac02
	ethPAE     = 0x888e
)

// Management frame subtypes, as the frame control field carries them
// (type 0, subtype in bits 4-7): what REGISTER_FRAME takes.
const (
	stypeAssocReq   = 0x00
	stypeReassocReq = 0x20
	stypeProbeReq   = 0x40
	stypeDisassoc   = 0xa0
	stypeAuth       = 0xb0
	stypeDeauth     = 0xc0
	stypeAction     = 0xd0
)

// registeredFrames are the management frames the kernel hands us instead
// of answering them: all of the AP's MLME is ours.
var registeredFrames = []uint16{
	stypeAuth, stypeAssocReq, stypeReassocReq, stypeDisassoc,
	stypeDeauth, stypeProbeReq, stypeAction,
}

func encode(f func(ae *netlink.AttributeEncoder)) []byte {
	ae := netlink.NewAttributeEncoder()
	f(ae)
	b, err := ae.Encode()
	if err != nil {
		// Only nested encoders report errors, and ours do not.
		panic(fmt.Sprintf("nl80211: encode attributes: %v", err))
	}
	return b
}

func u32s(vs ...uint32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.NativeEndian.PutUint32(b[4*i:], v)
	}
	return b
}

// staFlags is struct nl80211_sta_flag_update.
func staFlags(mask, set uint32) []byte { return u32s(mask, set) }

func newInterfaceAttrs(wiphy int, name string, iftype uint32, mac net.HardwareAddr) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_WIPHY, uint32(wiphy))
		ae.String(unix.NL80211_ATTR_IFNAME, name)
		ae.Uint32(unix.NL80211_ATTR_IFTYPE, iftype)
		if len(mac) == 6 {
			ae.Bytes(unix.NL80211_ATTR_MAC, mac)
		}
		// The kernel deletes the interface if we die without Close.
		ae.Flag(unix.NL80211_ATTR_SOCKET_OWNER, true)
	})
}

func setInterfaceAPAttrs(ifindex int) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Uint32(unix.NL80211_ATTR_IFTYPE, unix.NL80211_IFTYPE_AP)
	})
}

func ifindexAttrs(ifindex int) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
	})
}

func registerFrameAttrs(ifindex int, frameType uint16) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Uint16(unix.NL80211_ATTR_FRAME_TYPE, frameType)
		// An empty match takes every frame of the subtype.
		ae.Bytes(unix.NL80211_ATTR_FRAME_MATCH, nil)
	})
}

func regAttrs(country string) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.String(unix.NL80211_ATTR_REG_ALPHA2, country)
	})
}

func startAPAttrs(ifindex int, cfg StartConfig, controlPort bool) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_BEACON_HEAD, cfg.BeaconHead)
		ae.Bytes(unix.NL80211_ATTR_BEACON_TAIL, cfg.BeaconTail)
		ae.Uint32(unix.NL80211_ATTR_BEACON_INTERVAL, uint32(cfg.BeaconInterval))
		ae.Uint32(unix.NL80211_ATTR_DTIM_PERIOD, uint32(cfg.DTIMPeriod))
		ae.Bytes(unix.NL80211_ATTR_SSID, cfg.SSID)
		hidden := uint32(unix.NL80211_HIDDEN_SSID_NOT_IN_USE)
		if cfg.Hidden {
			hidden = unix.NL80211_HIDDEN_SSID_ZERO_LEN
		}
		ae.Uint32(unix.NL80211_ATTR_HIDDEN_SSID, hidden)
		ae.Uint32(unix.NL80211_ATTR_WIPHY_FREQ, uint32(cfg.FreqMHz))
		chanType := uint32(unix.NL80211_CHAN_NO_HT)
		if cfg.HT20 {
			chanType = unix.NL80211_CHAN_HT20
		}
		ae.Uint32(unix.NL80211_ATTR_WIPHY_CHANNEL_TYPE, chanType)
		ae.Uint32(unix.NL80211_ATTR_AUTH_TYPE, unix.NL80211_AUTHTYPE_OPEN_SYSTEM)
		if cfg.Privacy {
			ae.Flag(unix.NL80211_ATTR_PRIVACY, true)
			ae.Uint32(unix.NL80211_ATTR_WPA_VERSIONS, unix.NL80211_WPA_VERSION_2)
			ae.Bytes(unix.NL80211_ATTR_CIPHER_SUITES_PAIRWISE, u32s(cipherCCMP))
			ae.Uint32(unix.NL80211_ATTR_CIPHER_SUITE_GROUP, cipherCCMP)
			ae.Bytes(unix.NL80211_ATTR_AKM_SUITES, u32s(akmPSK))
		}
		ae.Flag(unix.NL80211_ATTR_CONTROL_PORT, true)
		ae.Uint16(unix.NL80211_ATTR_CONTROL_PORT_ETHERTYPE, ethPAE)
		if controlPort {
			// Over nl80211 each EAPOL frame says whether to encrypt
			// it. Over PF_PACKET this flag would leave group key
			// handshakes unencrypted, so it is left out there.
			ae.Flag(unix.NL80211_ATTR_CONTROL_PORT_NO_ENCRYPT, true)
			ae.Flag(unix.NL80211_ATTR_CONTROL_PORT_OVER_NL80211, true)
		}
		// The AP stops when our socket closes, and EAPOL over nl80211
		// comes to this socket.
		ae.Flag(unix.NL80211_ATTR_SOCKET_OWNER, true)
		if len(cfg.ProbeRespIEs) > 0 {
			ae.Bytes(unix.NL80211_ATTR_IE_PROBE_RESP, cfg.ProbeRespIEs)
		}
	})
}

func setBeaconAttrs(ifindex int, head, tail []byte) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_BEACON_HEAD, head)
		ae.Bytes(unix.NL80211_ATTR_BEACON_TAIL, tail)
	})
}

func frameAttrs(ifindex int, frame []byte, freqMHz int, noAck bool) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_FRAME, frame)
		if freqMHz != 0 {
			ae.Uint32(unix.NL80211_ATTR_WIPHY_FREQ, uint32(freqMHz))
		}
		if noAck {
			ae.Flag(unix.NL80211_ATTR_DONT_WAIT_FOR_ACK, true)
		}
	})
}

func controlPortAttrs(ifindex int, to net.HardwareAddr, frame []byte, noEncrypt bool) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_MAC, to)
		ae.Bytes(unix.NL80211_ATTR_FRAME, frame)
		ae.Uint16(unix.NL80211_ATTR_CONTROL_PORT_ETHERTYPE, ethPAE)
		if noEncrypt {
			ae.Flag(unix.NL80211_ATTR_CONTROL_PORT_NO_ENCRYPT, true)
		}
	})
}

func bit(n int) uint32 { return 1 << n }

// capShortPreamble is the Short Preamble bit of the Capability
// Information field.
const capShortPreamble = 0x0020

// newStationAttrs adds an associated station as a userspace AP SME does
// on mac80211: hostapd's sta_add moves a new station straight to
// authenticated and associated when the driver has FULL_AP_CLIENT_STATE,
// and otherwise leaves those flags out (such drivers add stations
// associated anyway). A new station is not authorized: SetAuthorized does
// that after the handshake.
func newStationAttrs(ifindex int, p StationParams, fullState bool) []byte {
	var set uint32
	if p.WMM {
		set |= bit(unix.NL80211_STA_FLAG_WME)
	}
	if p.Capability&capShortPreamble != 0 {
		set |= bit(unix.NL80211_STA_FLAG_SHORT_PREAMBLE)
	}
	if fullState {
		set |= bit(unix.NL80211_STA_FLAG_AUTHENTICATED) | bit(unix.NL80211_STA_FLAG_ASSOCIATED)
	}
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_MAC, p.MAC)
		ae.Uint16(unix.NL80211_ATTR_STA_AID, p.AID)
		ae.Uint16(unix.NL80211_ATTR_STA_LISTEN_INTERVAL, p.ListenInterval)
		ae.Bytes(unix.NL80211_ATTR_STA_SUPPORTED_RATES, p.Rates)
		ae.Uint16(unix.NL80211_ATTR_STA_CAPABILITY, p.Capability)
		if len(p.HTCapElement) == htCapLen {
			ae.Bytes(unix.NL80211_ATTR_HT_CAPABILITY, p.HTCapElement)
		}
		ae.Bytes(unix.NL80211_ATTR_STA_FLAGS2, staFlags(set, set))
	})
}

// htCapLen is the size of the HT Capabilities element body, which is
// what NL80211_ATTR_HT_CAPABILITY must be exactly.
const htCapLen = 26

func setAuthorizedAttrs(ifindex int, mac net.HardwareAddr, authorized bool) []byte {
	var set uint32
	if authorized {
		set = bit(unix.NL80211_STA_FLAG_AUTHORIZED)
	}
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_MAC, mac)
		ae.Bytes(unix.NL80211_ATTR_STA_FLAGS2, staFlags(bit(unix.NL80211_STA_FLAG_AUTHORIZED), set))
	})
}

// delStationAttrs removes a station; reason 0 (nl80211 refuses it) leaves
// out the deauthentication that drivers with their own AP SME send.
func delStationAttrs(ifindex int, mac net.HardwareAddr, reason uint16) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_MAC, mac)
		if reason != 0 {
			ae.Uint8(unix.NL80211_ATTR_MGMT_SUBTYPE, stypeDeauth>>4)
			ae.Uint16(unix.NL80211_ATTR_REASON_CODE, reason)
		}
	})
}

func pairwiseKeyAttrs(ifindex int, mac net.HardwareAddr, tk []byte) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_MAC, mac)
		ae.Bytes(unix.NL80211_ATTR_KEY_DATA, tk)
		ae.Uint32(unix.NL80211_ATTR_KEY_CIPHER, cipherCCMP)
		ae.Uint8(unix.NL80211_ATTR_KEY_IDX, 0)
		ae.Uint32(unix.NL80211_ATTR_KEY_TYPE, unix.NL80211_KEYTYPE_PAIRWISE)
	})
}

func groupKeyAttrs(ifindex, idx int, gtk, rsc []byte) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_KEY_DATA, gtk)
		ae.Uint32(unix.NL80211_ATTR_KEY_CIPHER, cipherCCMP)
		ae.Uint8(unix.NL80211_ATTR_KEY_IDX, uint8(idx))
		if len(rsc) > 0 {
			ae.Bytes(unix.NL80211_ATTR_KEY_SEQ, rsc)
		}
		ae.Uint32(unix.NL80211_ATTR_KEY_TYPE, unix.NL80211_KEYTYPE_GROUP)
	})
}

func defaultGroupKeyAttrs(ifindex, idx int) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Uint8(unix.NL80211_ATTR_KEY_IDX, uint8(idx))
		ae.Flag(unix.NL80211_ATTR_KEY_DEFAULT, true)
		ae.Nested(unix.NL80211_ATTR_KEY_DEFAULT_TYPES, func(nae *netlink.AttributeEncoder) error {
			nae.Flag(unix.NL80211_KEY_DEFAULT_TYPE_MULTICAST, true)
			return nil
		})
	})
}

// deauthFrame builds a Deauthentication frame from bssid to da: mac80211
// removes stations (DEL_STATION) and stops the AP without telling them,
// so the frame is ours to send.
func deauthFrame(da, bssid net.HardwareAddr, reason uint16) []byte {
	f := make([]byte, 26)
	f[0] = stypeDeauth
	copy(f[4:10], da)
	copy(f[10:16], bssid)
	copy(f[16:22], bssid)
	binary.LittleEndian.PutUint16(f[24:], reason)
	return f
}
