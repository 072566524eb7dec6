package ieee80211

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
)

// Subtype is a management frame subtype.
type Subtype uint8

// Management frame subtypes.
const (
	SubtypeAssocRequest    Subtype = 0
	SubtypeAssocResponse   Subtype = 1
	SubtypeReassocRequest  Subtype = 2
	SubtypeReassocResponse Subtype = 3
	SubtypeProbeRequest    Subtype = 4
	SubtypeProbeResponse   Subtype = 5
	SubtypeBeacon          Subtype = 8
	SubtypeATIM            Subtype = 9
	SubtypeDisassoc        Subtype = 10
	SubtypeAuth            Subtype = 11
	SubtypeDeauth          Subtype = 12
	SubtypeAction          Subtype = 13
)

var subtypeNames = [16]string{
	SubtypeAssocRequest:    "association request",
	SubtypeAssocResponse:   "association response",
	SubtypeReassocRequest:  "reassociation request",
	SubtypeReassocResponse: "reassociation response",
	SubtypeProbeRequest:    "probe request",
	SubtypeProbeResponse:   "probe response",
	SubtypeBeacon:          "beacon",
	SubtypeATIM:            "ATIM",
	SubtypeDisassoc:        "disassociation",
	SubtypeAuth:            "authentication",
	SubtypeDeauth:          "deauthentication",
	SubtypeAction:          "action",
}

func (s Subtype) String() string {
	if int(s) < len(subtypeNames) && subtypeNames[s] != "" {
		return subtypeNames[s]
	}
	return fmt.Sprintf("management subtype %d", uint8(s))
}

// FrameControl returns the first two octets of a management frame of
// this subtype as a little-endian value, the form in which nl80211's
// frame registrations (NL80211_ATTR_FRAME_TYPE) name it.
func (s Subtype) FrameControl() uint16 { return uint16(s&0x0f) << 4 }

// Frame control flags (the second octet).
const (
	FlagToDS      = 1 << 0
	FlagFromDS    = 1 << 1
	FlagMoreFrag  = 1 << 2
	FlagRetry     = 1 << 3
	FlagPowerMgmt = 1 << 4
	FlagMoreData  = 1 << 5
	FlagProtected = 1 << 6
	FlagOrder     = 1 << 7 // on a management frame: an HT Control field follows the header
)

// Capability is the capability information field of beacons, probe
// responses and association frames.
type Capability uint16

// Capability bits.
const (
	CapESS              Capability = 1 << 0
	CapIBSS             Capability = 1 << 1
	CapPrivacy          Capability = 1 << 4
	CapShortPreamble    Capability = 1 << 5
	CapSpectrumMgmt     Capability = 1 << 8
	CapQoS              Capability = 1 << 9
	CapShortSlotTime    Capability = 1 << 10
	CapRadioMeasurement Capability = 1 << 12
)

// Addr is a MAC address.
type Addr [6]byte

// Broadcast is the broadcast address.
var Broadcast = Addr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// AddrFrom converts a net.HardwareAddr, which must be six octets long.
func AddrFrom(hw net.HardwareAddr) (Addr, error) {
	if len(hw) != 6 {
		return Addr{}, fmt.Errorf("hardware address %v: want 6 octets", hw)
	}
	return Addr(hw), nil
}

// HardwareAddr returns a as a net.HardwareAddr.
func (a Addr) HardwareAddr() net.HardwareAddr { return net.HardwareAddr(a[:]) }

func (a Addr) String() string { return a.HardwareAddr().String() }

// HeaderLen is the length of a management frame header.
const HeaderLen = 24

// Header is the 24-octet management frame header.
type Header struct {
	// Subtype is what ParseMgmt found; Marshal writes the subtype of
	// the body instead.
	Subtype  Subtype
	Flags    uint8
	Duration uint16
	DA       Addr   // address 1: the receiver
	SA       Addr   // address 2: the transmitter
	BSSID    Addr   // address 3
	Seq      uint16 // sequence control: sequence number << 4 | fragment number
}

// Body is the part of a management frame after the header: one of
// *AssocRequest, *AssocResponse, *ProbeRequest, *ProbeResponse, *Beacon,
// *Auth, *Deauth, *Disassoc and *Raw (any other subtype).
type Body interface {
	// Subtype is the frame subtype this body is sent as.
	Subtype() Subtype
	appendTo(b []byte) ([]byte, error)
}

// Mgmt is a management frame.
type Mgmt struct {
	Header
	Body Body
}

// ErrNotMgmt is wrapped when a frame is not a management frame.
var ErrNotMgmt = errors.New("not a management frame")

// ParseMgmt parses a management frame (without FCS). Protected frames and
// frames with an HT Control field are refused: we offer neither management
// frame protection nor anything that would make a station send them.
// Element bodies in the result alias b.
func ParseMgmt(b []byte) (*Mgmt, error) {
	if len(b) < HeaderLen {
		return nil, fmt.Errorf("management header: %d octets: %w", len(b), ErrTruncated)
	}
	if v := b[0] & 3; v != 0 {
		return nil, fmt.Errorf("protocol version %d: %w", v, ErrNotMgmt)
	}
	if t := b[0] >> 2 & 3; t != 0 {
		return nil, fmt.Errorf("frame type %d: %w", t, ErrNotMgmt)
	}
	h := Header{
		Subtype:  Subtype(b[0] >> 4),
		Flags:    b[1],
		Duration: binary.LittleEndian.Uint16(b[2:]),
		DA:       Addr(b[4:10]),
		SA:       Addr(b[10:16]),
		BSSID:    Addr(b[16:22]),
		Seq:      binary.LittleEndian.Uint16(b[22:]),
	}
	if h.Flags&FlagProtected != 0 {
		return nil, fmt.Errorf("%v: protected management frames are not supported", h.Subtype)
	}
	if h.Flags&FlagOrder != 0 {
		return nil, fmt.Errorf("%v: HT Control field is not supported", h.Subtype)
	}
	body, err := parseBody(h.Subtype, b[HeaderLen:])
	if err != nil {
		return nil, fmt.Errorf("%v from %v: %w", h.Subtype, h.SA, err)
	}
	return &Mgmt{Header: h, Body: body}, nil
}

// Marshal returns the frame's wire form, with the subtype of its body.
func (m *Mgmt) Marshal() ([]byte, error) {
	if m.Body == nil {
		return nil, errors.New("management frame without body")
	}
	st := m.Body.Subtype()
	if st > 15 {
		return nil, fmt.Errorf("subtype %d out of range", uint8(st))
	}
	b := make([]byte, HeaderLen, 256)
	binary.LittleEndian.PutUint16(b, st.FrameControl()|uint16(m.Flags)<<8)
	binary.LittleEndian.PutUint16(b[2:], m.Duration)
	copy(b[4:], m.DA[:])
	copy(b[10:], m.SA[:])
	copy(b[16:], m.BSSID[:])
	binary.LittleEndian.PutUint16(b[22:], m.Seq)
	b, err := m.Body.appendTo(b)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", st, err)
	}
	return b, nil
}

// reader takes fixed fields off a frame body.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("%s: want %d octets, have %d: %w", what, n, len(r.b), ErrTruncated)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u16(what string) uint16 {
	if v := r.take(2, what); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if v := r.take(8, what); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (r *reader) addr(what string) Addr {
	if v := r.take(6, what); v != nil {
		return Addr(v)
	}
	return Addr{}
}

// elements parses the rest of the body as elements.
func (r *reader) elements() Elements {
	if r.err != nil {
		return nil
	}
	es, err := ParseElements(r.b)
	if err != nil {
		r.err = err
		return nil
	}
	r.b = nil
	return es
}

func parseBody(st Subtype, b []byte) (Body, error) {
	r := &reader{b: b}
	var body Body
	switch st {
	case SubtypeAssocRequest, SubtypeReassocRequest:
		a := &AssocRequest{Reassoc: st == SubtypeReassocRequest}
		a.Capability = Capability(r.u16("capability"))
		a.ListenInterval = r.u16("listen interval")
		if a.Reassoc {
			a.CurrentAP = r.addr("current AP address")
		}
		a.Elements = r.elements()
		body = a
	case SubtypeAssocResponse, SubtypeReassocResponse:
		a := &AssocResponse{Reassoc: st == SubtypeReassocResponse}
		a.Capability = Capability(r.u16("capability"))
		a.Status = StatusCode(r.u16("status"))
		a.AID = r.u16("association ID") &^ aidFlags
		if a.AID > MaxAID && r.err == nil {
			return nil, fmt.Errorf("association ID %d above %d", a.AID, MaxAID)
		}
		a.Elements = r.elements()
		body = a
	case SubtypeProbeRequest:
		body = &ProbeRequest{Elements: r.elements()}
	case SubtypeBeacon, SubtypeProbeResponse:
		var bi BSSInfo
		bi.Timestamp = r.u64("timestamp")
		bi.Interval = r.u16("beacon interval")
		bi.Capability = Capability(r.u16("capability"))
		bi.Elements = r.elements()
		if st == SubtypeBeacon {
			body = &Beacon{BSSInfo: bi}
		} else {
			body = &ProbeResponse{BSSInfo: bi}
		}
	case SubtypeAuth:
		a := &Auth{
			Algorithm: AuthAlgorithm(r.u16("algorithm")),
			Seq:       r.u16("transaction sequence"),
			Status:    StatusCode(r.u16("status")),
		}
		if a.Algorithm.hasElements() {
			a.Elements = r.elements()
		} else if r.err == nil {
			a.Rest = r.b
			r.b = nil
		}
		body = a
	case SubtypeDeauth:
		d := &Deauth{Reason: ReasonCode(r.u16("reason"))}
		d.Elements = r.elements()
		body = d
	case SubtypeDisassoc:
		d := &Disassoc{Reason: ReasonCode(r.u16("reason"))}
		d.Elements = r.elements()
		body = d
	default:
		return &Raw{Kind: st, Data: b}, nil
	}
	if r.err != nil {
		return nil, r.err
	}
	return body, nil
}

// aidFlags are the two top bits an association ID carries on the wire.
const aidFlags = 0xc000

// MaxAID is the highest association ID.
const MaxAID = 2007

// AssocRequest is the body of an association or reassociation request.
type AssocRequest struct {
	Reassoc        bool
	Capability     Capability
	ListenInterval uint16 // in beacon intervals
	CurrentAP      Addr   // reassociation only: the AP the station leaves
	Elements       Elements
}

// Subtype implements Body.
func (a *AssocRequest) Subtype() Subtype {
	if a.Reassoc {
		return SubtypeReassocRequest
	}
	return SubtypeAssocRequest
}

func (a *AssocRequest) appendTo(b []byte) ([]byte, error) {
	b = binary.LittleEndian.AppendUint16(b, uint16(a.Capability))
	b = binary.LittleEndian.AppendUint16(b, a.ListenInterval)
	if a.Reassoc {
		b = append(b, a.CurrentAP[:]...)
	}
	return a.Elements.AppendTo(b)
}

// AssocResponse is the body of an association or reassociation response.
type AssocResponse struct {
	Reassoc    bool
	Capability Capability
	Status     StatusCode
	AID        uint16 // 1..MaxAID on success, 0 otherwise; the top bits are added on the wire
	Elements   Elements
}

// Subtype implements Body.
func (a *AssocResponse) Subtype() Subtype {
	if a.Reassoc {
		return SubtypeReassocResponse
	}
	return SubtypeAssocResponse
}

func (a *AssocResponse) appendTo(b []byte) ([]byte, error) {
	if a.AID > MaxAID {
		return nil, fmt.Errorf("association ID %d above %d", a.AID, MaxAID)
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(a.Capability))
	b = binary.LittleEndian.AppendUint16(b, uint16(a.Status))
	b = binary.LittleEndian.AppendUint16(b, a.AID|aidFlags)
	return a.Elements.AppendTo(b)
}

// ProbeRequest is the body of a probe request.
type ProbeRequest struct {
	Elements Elements
}

// Subtype implements Body.
func (*ProbeRequest) Subtype() Subtype { return SubtypeProbeRequest }

func (p *ProbeRequest) appendTo(b []byte) ([]byte, error) { return p.Elements.AppendTo(b) }

// Wants says whether an AP with the given SSID should answer the probe: it
// asks for that SSID, or for any (the wildcard, an empty SSID) and the AP
// is not hidden. A probe without a valid SSID element is not answered.
func (p *ProbeRequest) Wants(ssid []byte, hidden bool) bool {
	s, ok := p.Elements.SSID()
	if !ok {
		return false
	}
	if len(s) == 0 {
		return !hidden
	}
	return string(s) == string(ssid)
}

// BSSInfo is what beacons and probe responses share.
type BSSInfo struct {
	Timestamp  uint64 // µs; the driver fills it in when sending
	Interval   uint16 // beacon interval in TUs (1024 µs)
	Capability Capability
	Elements   Elements
}

func (bi *BSSInfo) appendTo(b []byte) ([]byte, error) {
	b = binary.LittleEndian.AppendUint64(b, bi.Timestamp)
	b = binary.LittleEndian.AppendUint16(b, bi.Interval)
	b = binary.LittleEndian.AppendUint16(b, uint16(bi.Capability))
	return bi.Elements.AppendTo(b)
}

// Beacon is the body of a beacon.
type Beacon struct{ BSSInfo }

// Subtype implements Body.
func (*Beacon) Subtype() Subtype { return SubtypeBeacon }

// ProbeResponse is the body of a probe response.
type ProbeResponse struct{ BSSInfo }

// Subtype implements Body.
func (*ProbeResponse) Subtype() Subtype { return SubtypeProbeResponse }

// AuthAlgorithm is an authentication algorithm number.
type AuthAlgorithm uint16

// Authentication algorithms.
const (
	AuthOpenSystem AuthAlgorithm = 0
	AuthSharedKey  AuthAlgorithm = 1
	AuthFT         AuthAlgorithm = 2
	AuthSAE        AuthAlgorithm = 3
)

// hasElements says whether the body after the fixed fields is elements;
// for the others (SAE, FILS, PASN…) its shape depends on the algorithm.
func (a AuthAlgorithm) hasElements() bool { return a <= AuthFT }

// Auth is the body of an authentication frame.
type Auth struct {
	Algorithm AuthAlgorithm
	Seq       uint16 // transaction sequence number: 1 from the station, 2 in reply (open system)
	Status    StatusCode
	// Elements follow the fixed fields for open system, shared key and
	// FT authentication; for other algorithms the rest of the body is in
	// Rest, unparsed.
	Elements Elements
	Rest     []byte
}

// Subtype implements Body.
func (*Auth) Subtype() Subtype { return SubtypeAuth }

func (a *Auth) appendTo(b []byte) ([]byte, error) {
	b = binary.LittleEndian.AppendUint16(b, uint16(a.Algorithm))
	b = binary.LittleEndian.AppendUint16(b, a.Seq)
	b = binary.LittleEndian.AppendUint16(b, uint16(a.Status))
	b, err := a.Elements.AppendTo(b)
	if err != nil {
		return nil, err
	}
	return append(b, a.Rest...), nil
}

// Deauth is the body of a deauthentication frame.
type Deauth struct {
	Reason   ReasonCode
	Elements Elements // vendor-specific elements, rarely present
}

// Subtype implements Body.
func (*Deauth) Subtype() Subtype { return SubtypeDeauth }

func (d *Deauth) appendTo(b []byte) ([]byte, error) {
	return d.Elements.AppendTo(binary.LittleEndian.AppendUint16(b, uint16(d.Reason)))
}

// Disassoc is the body of a disassociation frame.
type Disassoc struct {
	Reason   ReasonCode
	Elements Elements
}

// Subtype implements Body.
func (*Disassoc) Subtype() Subtype { return SubtypeDisassoc }

func (d *Disassoc) appendTo(b []byte) ([]byte, error) {
	return d.Elements.AppendTo(binary.LittleEndian.AppendUint16(b, uint16(d.Reason)))
}

// Raw is the body of any other subtype (action frames among them), kept
// as it came.
type Raw struct {
	Kind Subtype
	Data []byte
}

// Subtype implements Body.
func (r *Raw) Subtype() Subtype { return r.Kind }

func (r *Raw) appendTo(b []byte) ([]byte, error) { return append(b, r.Data...), nil }
