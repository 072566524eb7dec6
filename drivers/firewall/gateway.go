package firewall

import (
	"context"
	"errors"
	"net/netip"

	"github.com/openmifi/openmifi/drivers/route"
	"github.com/openmifi/openmifi/internal/sharing"
)

// Gateway is what the sharing state machine calls its firewall: the LAN
// address and policy routing (drivers/route) and the nftables ruleset,
// started and stopped together.
type Gateway struct {
	Routes *route.Router
	NAT    *NAT
}

var _ sharing.Firewall = (*Gateway)(nil)

// Start routes first: it checks that both interfaces exist before anything
// changes, so a bad name fails with the kernel untouched.
func (g *Gateway) Start(ctx context.Context, uplink string) error {
	if err := g.Routes.Start(ctx, uplink); err != nil {
		return err
	}
	if err := g.NAT.Start(uplink); err != nil {
		return errors.Join(err, g.Routes.Stop(context.WithoutCancel(ctx)))
	}
	return nil
}

// SetUplink re-points NAT first: until routing follows, nothing is
// forwarded to the new interface anyway.
func (g *Gateway) SetUplink(ctx context.Context, uplink string) error {
	if err := g.NAT.SetUplink(uplink); err != nil {
		return err
	}
	return g.Routes.SetUplink(ctx, uplink)
}

// Stop removes the ruleset, which ends forwarding, before the routes.
func (g *Gateway) Stop(ctx context.Context) error {
	return errors.Join(g.NAT.Stop(), g.Routes.Stop(ctx))
}

func (g *Gateway) Counters() (map[netip.Addr]sharing.Counters, error) { return g.NAT.Counters() }
