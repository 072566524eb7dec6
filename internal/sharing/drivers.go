package sharing

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/openmifi/openmifi/internal/entitlement"
	"github.com/openmifi/openmifi/internal/provision"
	"github.com/openmifi/openmifi/internal/usersettings"
)

// The interfaces below are what the state machine needs of the drivers. A
// driver and a test fake both satisfy them. Start and Stop of every driver
// must be idempotent: the machine stops everything after a failed or
// cancelled start without knowing how far it got.

// Uplink is the cellular side: the modem's packet data connections.
type Uplink interface {
	// Acquire asks for the connections sharing may use (nil: any available
	// one). It returns once the request is made; whether and when a
	// connection is up is reported through Machine.PublicUp and PublicDown.
	Acquire(ctx context.Context, conns []provision.Connection) error
	// Release gives the connections back; a modem limited to one data
	// connection restores the device's default one.
	Release(ctx context.Context) error
}

// UplinkInfo describes the public connection that is up.
type UplinkInfo struct {
	Connection string         `json:"connection,omitempty"` // provisioning name, if known
	Interface  string         `json:"interface,omitempty"`
	Addresses  []netip.Prefix `json:"addresses,omitempty"`
	DNS        []netip.Addr   `json:"dns,omitempty"`
	Operator   string         `json:"operator,omitempty"`
	Technology string         `json:"technology,omitempty"` // "LTE", "UMTS", …
	SignalDBm  int            `json:"signal_dbm,omitempty"`
	SignalBars int            `json:"signal_bars,omitempty"` // 0..5
}

// Identity is the modem's and the SIM's, told to the entitlement plugin.
type Identity struct {
	IMSI, ICCID, IMEI, MCC, MNC string
}

// APConfig is what the access point is started with.
type APConfig struct {
	SSID        string
	Passphrase  string
	Hidden      bool
	Band        string
	Channel     int
	Country     string
	MaxStations int
}

// AccessPoint is the Wi-Fi side. Stations joining and leaving are reported
// through Machine.StationJoined and StationLeft.
type AccessPoint interface {
	Start(ctx context.Context, cfg APConfig) error
	Stop(ctx context.Context) error
	// SetMaxStations changes the station limit at run time, disconnecting
	// the newest stations above it.
	SetMaxStations(ctx context.Context, n int) error
}

// Lease is one DHCP lease, as shown in the client list.
type Lease struct {
	MAC      net.HardwareAddr
	Addr     netip.Addr
	Hostname string
	Expires  time.Time
}

// DHCPServer hands out LAN addresses, at most MaxLeases at once. Leases may
// be called from any goroutine.
type DHCPServer interface {
	Start(ctx context.Context, maxLeases int) error
	Stop(ctx context.Context) error
	SetMaxLeases(ctx context.Context, n int) error
	Leases() []Lease
}

// Counters count one client's or all clients' traffic. Up is from the
// clients towards the uplink.
type Counters struct {
	UpBytes     uint64 `json:"up_bytes"`
	DownBytes   uint64 `json:"down_bytes"`
	UpPackets   uint64 `json:"up_packets"`
	DownPackets uint64 `json:"down_packets"`
}

// Add returns the sum of c and o.
func (c Counters) Add(o Counters) Counters {
	return Counters{c.UpBytes + o.UpBytes, c.DownBytes + o.DownBytes, c.UpPackets + o.UpPackets, c.DownPackets + o.DownPackets}
}

// Firewall is NAT and filtering between the LAN and the uplink. Counters may
// be called from any goroutine.
type Firewall interface {
	// Start installs the rules; uplink is the interface to masquerade
	// on, "" while no public connection is up.
	Start(ctx context.Context, uplink string) error
	// SetUplink re-points NAT at another interface ("" for none).
	SetUplink(ctx context.Context, uplink string) error
	Stop(ctx context.Context) error
	Counters() (map[netip.Addr]Counters, error)
}

// Entitler runs the operator's entitlement check.
type Entitler interface {
	Check(ctx context.Context, plugin string, env entitlement.Env) (entitlement.Result, error)
}

// UserStore keeps the user's settings and on/off choice across reboots.
type UserStore interface {
	Get() usersettings.Settings
	Update(operatorMaxUsers int, f func(*usersettings.Settings) error) (usersettings.Settings, error)
}
