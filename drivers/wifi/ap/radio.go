package ap

import (
	"context"
	"net"

	"github.com/openmifi/openmifi/drivers/wifi/nl80211"
)

// Radio is the kernel side of the access point: the method set of
// *nl80211.AP, so that tests can drive the AP with a fake radio.
type Radio interface {
	StartAP(ctx context.Context, cfg nl80211.StartConfig) error
	StopAP(ctx context.Context) error
	SetBeacon(ctx context.Context, head, tail []byte) error
	SendFrame(ctx context.Context, frame []byte, freqMHz int, noAck bool) (cookie uint64, err error)
	SendEAPOL(ctx context.Context, to net.HardwareAddr, frame []byte) error
	NewStation(ctx context.Context, p nl80211.StationParams) error
	SetAuthorized(ctx context.Context, mac net.HardwareAddr, authorized bool) error
	DelStation(ctx context.Context, mac net.HardwareAddr, reason uint16) error
	// SetPairwiseKey installs a CCMP pairwise key with key index 0.
	SetPairwiseKey(ctx context.Context, mac net.HardwareAddr, tk []byte) error
	// SetGroupKey installs a CCMP group key and makes it the default.
	SetGroupKey(ctx context.Context, idx int, gtk []byte, rsc []byte) error
	Events() <-chan nl80211.Event
	// Addr is the AP interface's address, the BSSID.
	Addr() net.HardwareAddr
}

// countrySetter is a radio that can set the regulatory country, which
// the user may change between starts.
type countrySetter interface {
	SetCountry(ctx context.Context, alpha2 string) error
}
