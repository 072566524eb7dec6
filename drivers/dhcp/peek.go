package dhcp

import (
	"errors"
	"net/netip"
)

// BOOTP/DHCP fixed header layout (RFC 2131 §2).
const (
	offOp      = 0
	offHtype   = 1
	offHlen    = 2
	offFlags   = 10
	offCiaddr  = 12
	offGiaddr  = 24
	offChaddr  = 28
	offCookie  = 236
	headerLen  = 240 // fixed fields and the magic cookie
	maxMessage = 1500
)

// DHCP message types (RFC 2132 §9.6).
const (
	msgDiscover = 1
	msgOffer    = 2
	msgRequest  = 3
	msgDecline  = 4
	msgAck      = 5
	msgNak      = 6
	msgRelease  = 7
	msgInform   = 8
)

// Option codes the pre-parser looks at.
const (
	optPad         = 0
	optRequestedIP = 50
	optMessageType = 53
	optServerID    = 54
	optClientID    = 61
	optEnd         = 255
)

// Reasons a packet is dropped before any state is looked at. Each is a
// category of the rate-limited log.
var (
	errTruncated    = errors.New("truncated packet")
	errOversized    = errors.New("oversized packet")
	errNotRequest   = errors.New("not a BOOTREQUEST")
	errHardware     = errors.New("hardware type is not Ethernet")
	errCookie       = errors.New("no DHCP magic cookie")
	errOptionLength = errors.New("option runs past the end of the packet")
	errMessageType  = errors.New("missing or malformed message type")
	errOptionValue  = errors.New("option with an impossible length")
)

// peeked is what the server needs to know about a packet before deciding
// whether to spend more work on it. Slices point into the packet.
type peeked struct {
	msgType   byte
	broadcast bool   // the client cannot receive unicast before it is configured
	chaddr    []byte // 6 bytes
	clientID  []byte // option 61, nil if absent
	ciaddr    netip.Addr
	giaddr    netip.Addr
	reqIP     netip.Addr // option 50, invalid if absent
	serverID  netip.Addr // option 54, invalid if absent
}

// peek checks the framing of a client message and extracts the fields that
// decide who the client is and what it wants, without allocating: under a
// flood most packets go no further than this.
func peek(pkt []byte) (peeked, error) {
	var p peeked
	if len(pkt) > maxMessage {
		return p, errOversized
	}
	if len(pkt) < headerLen {
		return p, errTruncated
	}
	if pkt[offOp] != 1 {
		return p, errNotRequest
	}
	// Wi-Fi and Ethernet clients both use htype 1, hlen 6; the server
	// answers by hardware address, so nothing else can be served.
	if pkt[offHtype] != 1 || pkt[offHlen] != 6 {
		return p, errHardware
	}
	if pkt[offCookie] != 99 || pkt[offCookie+1] != 130 || pkt[offCookie+2] != 83 || pkt[offCookie+3] != 99 {
		return p, errCookie
	}
	p.broadcast = pkt[offFlags]&0x80 != 0
	p.chaddr = pkt[offChaddr : offChaddr+6]
	p.ciaddr = netip.AddrFrom4([4]byte(pkt[offCiaddr : offCiaddr+4]))
	p.giaddr = netip.AddrFrom4([4]byte(pkt[offGiaddr : offGiaddr+4]))
	opts := pkt[headerLen:]
	seenType := false
	for i := 0; i < len(opts); {
		code := opts[i]
		if code == optPad {
			i++
			continue
		}
		if code == optEnd {
			break
		}
		if i+1 >= len(opts) {
			return p, errOptionLength
		}
		n := int(opts[i+1])
		if i+2+n > len(opts) {
			return p, errOptionLength
		}
		v := opts[i+2 : i+2+n]
		i += 2 + n
		// Options may be split and concatenated (RFC 3396); none of
		// these is ever long enough for a client to split it, so a
		// repeated one is treated as malformed.
		switch code {
		case optMessageType:
			if n != 1 || seenType {
				return p, errMessageType
			}
			p.msgType, seenType = v[0], true
		case optClientID:
			if n < 1 || p.clientID != nil {
				return p, errOptionValue
			}
			p.clientID = v
		case optRequestedIP:
			if n != 4 || p.reqIP.IsValid() {
				return p, errOptionValue
			}
			p.reqIP = netip.AddrFrom4([4]byte(v))
		case optServerID:
			if n != 4 || p.serverID.IsValid() {
				return p, errOptionValue
			}
			p.serverID = netip.AddrFrom4([4]byte(v))
		}
	}
	if !seenType {
		return p, errMessageType
	}
	return p, nil
}

// keyOf returns the client's identity: its client identifier when it sends
// one (RFC 2131 §4.2), else its hardware address. The first byte keeps the
// two kinds apart. It is written into buf so that a map lookup with
// string(keyOf(...)) does not allocate.
func keyOf(buf []byte, clientID, chaddr []byte) []byte {
	if clientID != nil {
		return append(append(buf[:0], 'i'), clientID...)
	}
	return append(append(buf[:0], 'h'), chaddr...)
}
