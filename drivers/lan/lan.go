// Package lan puts the services the device offers its LAN together for the
// sharing state machine: the DHCP server and the DNS forwarder start and
// stop as one sharing.DHCPServer, and follow the uplink and the stations.
package lan

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/openmifi/openmifi/drivers/dhcp"
	"github.com/openmifi/openmifi/drivers/dns"
	"github.com/openmifi/openmifi/internal/sharing"
)

// Services are the DHCP server and the DNS forwarder of the LAN.
type Services struct {
	DHCP *dhcp.Server
	DNS  *dns.Forwarder
}

var _ sharing.DHCPServer = (*Services)(nil)

// Start starts DNS first: a client that gets its lease asks it next.
func (s *Services) Start(ctx context.Context, maxLeases int) error {
	if err := s.DNS.Start(ctx); err != nil {
		return err
	}
	if err := s.DHCP.Start(ctx, maxLeases); err != nil {
		return errors.Join(err, s.DNS.Stop(context.WithoutCancel(ctx)))
	}
	return nil
}

func (s *Services) Stop(ctx context.Context) error {
	return errors.Join(s.DHCP.Stop(ctx), s.DNS.Stop(ctx))
}

func (s *Services) SetMaxLeases(ctx context.Context, n int) error { return s.DHCP.SetMaxLeases(ctx, n) }

func (s *Services) Leases() []sharing.Lease { return s.DHCP.Leases() }

// UplinkChanged gives the forwarder the uplink's DNS servers; without an
// uplink it answers SERVFAIL at once instead of waiting on servers that
// cannot be reached.
func (s *Services) UplinkChanged(u sharing.UplinkStatus) { s.DNS.SetUpstreams(upstreams(u)) }

// StationChanged lets the DHCP server reclaim the lease of a station that
// left.
func (s *Services) StationChanged(mac net.HardwareAddr, present bool) {
	s.DHCP.StationChanged(mac, present)
}

func upstreams(u sharing.UplinkStatus) []netip.AddrPort {
	if !u.Up {
		return nil
	}
	var out []netip.AddrPort
	for _, a := range u.DNS {
		out = append(out, netip.AddrPortFrom(a, 53))
	}
	return out
}
