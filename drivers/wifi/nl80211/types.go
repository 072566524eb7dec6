// Package nl80211 speaks nl80211 over generic netlink to run a Wi-Fi
// access point whose management plane is ours: it finds a PHY that can do
// AP mode, owns the AP interface, starts and stops beaconing with the
// beacon we built, passes management and EAPOL frames between the kernel
// and the access point logic (drivers/wifi/ap), and adds, authorizes, keys
// and removes stations.
package nl80211

import (
	"log/slog"
	"net"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
)

// Config says which radio and interface Open takes.
type Config struct {
	// PHY is the radio's name ("phy0"); empty takes the radio of an
	// existing Interface, or else the first radio that can be an AP.
	PHY string
	// Interface is the AP interface's name ("wlan0"). An existing
	// interface of that name is taken over (switched to AP mode and left
	// behind on Close); otherwise Open creates it and Close deletes it.
	Interface string
	// MAC is the address (BSSID) of an interface Open creates; nil
	// lets the kernel pick the radio's own.
	MAC net.HardwareAddr
	// Country is the ISO 3166 alpha-2 regulatory country ("DE"); empty
	// leaves the regulatory domain alone. Setting it is best effort.
	Country string
	// NetNS is a network namespace file descriptor whose sockets Open
	// uses (0: the current namespace).
	NetNS  int
	Logger *slog.Logger
	Clock  clock.Clock // stamps Event.Time; nil is the wall clock
}

// PHY is what the access point needs to know of a radio.
type PHY struct {
	Index        int    // wiphy index
	Name         string // "phy0"
	APMode       bool   // supports NL80211_IFTYPE_AP
	Bands        []Band
	Ciphers      []uint32 // supported cipher suites (00-0F-AC:4 = 0x000FAC04 is CCMP)
	MaxScanSSIDs int
	// ControlPort is true when the driver can carry EAPOL over nl80211
	// (NL80211_EXT_FEATURE_CONTROL_PORT_OVER_NL80211); otherwise EAPOL
	// goes over a PF_PACKET socket with ETH_P_PAE.
	ControlPort bool
	// FullAPClientState is NL80211_FEATURE_FULL_AP_CLIENT_STATE: the
	// driver accepts the authenticated and associated station flags
	// (mac80211 does).
	FullAPClientState bool
}

// Band is one frequency band of a PHY.
type Band struct {
	ID       int // NL80211_BAND_2GHZ = 0, NL80211_BAND_5GHZ = 1
	Channels []Channel
	Rates    []int // bitrates in units of 100 kbit/s
	HT       *HTCapabilities
}

// Channel is one channel of a band.
type Channel struct {
	FreqMHz  int
	Number   int
	Disabled bool
	NoIR     bool // no initiating radiation (passive scan only): not for an AP
	Radar    bool // DFS required: not for our AP
	MaxPower int  // mBm
}

// HTCapabilities are a band's 802.11n capabilities, as the HT
// Capabilities element carries them.
type HTCapabilities struct {
	Info   uint16
	AMPDU  uint8 // A-MPDU parameters: factor | density<<2
	MCSSet [16]byte
}

// StartConfig is what START_AP gets.
type StartConfig struct {
	BeaconHead     []byte // 802.11 header up to (excluding) the TIM element
	BeaconTail     []byte // elements after the TIM
	ProbeRespIEs   []byte // extra IEs for driver-generated probe responses (may be nil)
	SSID           []byte
	Hidden         bool
	BeaconInterval int // TUs
	DTIMPeriod     int
	FreqMHz        int
	HT20           bool // channel type HT20 instead of NOHT
	// WPA2-PSK with CCMP for pairwise and group traffic.
	Privacy bool
}

// StationParams is what NEW_STATION gets for an associated station.
type StationParams struct {
	MAC            net.HardwareAddr
	AID            uint16
	ListenInterval uint16
	Capability     uint16
	Rates          []byte // supported rates as in the element (units of 500 kbit/s, basic bit set where basic)
	HTCapElement   []byte // body of the station's HT Capabilities element (26 bytes), nil if none
	WMM            bool   // station is QoS capable (sent WMM info)
}

// EventKind says what an Event is.
type EventKind int

const (
	// EventFrame is a management frame received for a registered
	// subtype (Frame holds the whole 802.11 frame).
	EventFrame EventKind = iota + 1
	// EventEAPOL is an EAPOL frame from station MAC (Frame holds the
	// 802.1X frame, starting with its version byte).
	EventEAPOL
	// EventTxStatus reports whether a frame we sent was acked
	// (Cookie, Ack).
	EventTxStatus
	// EventStationGone is the kernel removing a station by itself
	// (inactivity, or a DEL_STATION not from us).
	EventStationGone
	// EventStopped means the AP stopped without being asked (the
	// interface went away, radio killed).
	EventStopped
)

// Event is something the kernel told us about the AP.
type Event struct {
	Kind      EventKind
	MAC       net.HardwareAddr // source station (frames), the station (gone)
	Frame     []byte
	SignalDBm int
	Cookie    uint64
	Ack       bool
	Time      time.Time
}

// The access point logic (drivers/wifi/ap) drives the radio through this
// set of methods on *AP, which a fake in its tests also implements:
//
//	StartAP(ctx context.Context, cfg StartConfig) error
//	StopAP(ctx context.Context) error
//	SetBeacon(ctx context.Context, head, tail []byte) error
//	SendFrame(ctx context.Context, frame []byte, freqMHz int, noAck bool) (cookie uint64, err error)
//	SendEAPOL(ctx context.Context, to net.HardwareAddr, frame []byte) error
//	NewStation(ctx context.Context, p StationParams) error
//	SetAuthorized(ctx context.Context, mac net.HardwareAddr, authorized bool) error
//	DelStation(ctx context.Context, mac net.HardwareAddr, reason uint16) error
//	SetPairwiseKey(ctx context.Context, mac net.HardwareAddr, tk []byte) error   // CCMP, key index 0
//	SetGroupKey(ctx context.Context, idx int, gtk []byte, rsc []byte) error      // CCMP, made default
//	Events() <-chan Event
//	Addr() net.HardwareAddr // the AP interface's address (the BSSID)
