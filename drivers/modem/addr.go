package modem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/drivers/netns"
)

// Addressing modes of the uplink interface, as the board says.
const (
	// AddressingDHCP: the modem is an Ethernet device (ECM) with a DHCP
	// server of its own.
	AddressingDHCP = "dhcp"
	// AddressingStatic: a raw IP interface, addressed from +CGPADDR and
	// +CGCONTRDP.
	AddressingStatic = "static"
	// AddressingNone: someone else configures the interface (a test, or
	// a board whose modem does it by itself); the driver only reports.
	AddressingNone = "none"
)

// Addressing is what the uplink interface is configured with, and what
// was configured.
type Addressing struct {
	Addrs   []netip.Prefix
	Gateway netip.Addr // IPv4; invalid: a device route
	DNS     []netip.Addr
}

// Addresser configures the uplink interface once a context is up. Tests
// give the driver a fake.
type Addresser interface {
	// Up configures iface in mode (AddressingDHCP or AddressingStatic)
	// with want, the modem's view, and returns what is in use.
	Up(ctx context.Context, iface, mode string, want Addressing) (Addressing, error)
	// Down removes what Up configured.
	Down(ctx context.Context, iface string) error
}

// Netlink is the Addresser of the device: addresses and the default route
// through rtnetlink, the DHCPv4 client of github.com/insomniacslk/dhcp.
type Netlink struct {
	NetNS int // network namespace fd; 0: the current one
	Log   *slog.Logger
	// DHCPTimeout bounds each DHCP exchange; 0 means 5 s.
	DHCPTimeout time.Duration
}

// Up brings iface up and addresses it. A DHCP lease's router and address
// replace the modem's; its DNS servers are used only when the modem gave
// none. The lease is not renewed: ECM modems hand out leases that outlive
// the context, and a new context is addressed afresh.
func (n *Netlink) Up(ctx context.Context, iface, mode string, want Addressing) (Addressing, error) {
	c, err := rtnetlink.Dial(&netlink.Config{NetNS: n.NetNS})
	if err != nil {
		return Addressing{}, fmt.Errorf("dial rtnetlink: %w", err)
	}
	defer c.Close()
	idx, err := linkIndex(c, iface)
	if err != nil {
		return Addressing{}, err
	}
	if err := c.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: idx, Flags: unix.IFF_UP, Change: unix.IFF_UP}); err != nil {
		return Addressing{}, fmt.Errorf("set %s up: %w", iface, err)
	}
	if mode == AddressingDHCP {
		lease, err := n.dhcp(ctx, iface)
		if err != nil {
			return Addressing{}, err
		}
		if len(want.DNS) > 0 {
			lease.DNS = want.DNS
		}
		// The modem's IPv6 address is not the interface's on ECM: the
		// modem routes IPv6 by router advertisements, which the kernel
		// takes by itself.
		want = lease
	}
	if err := flush(c, idx); err != nil {
		return Addressing{}, fmt.Errorf("flush %s: %w", iface, err)
	}
	for _, p := range want.Addrs {
		if err := addAddr(c, idx, p); err != nil {
			return Addressing{}, fmt.Errorf("add %v to %s: %w", p, iface, err)
		}
	}
	if err := defaultRoute(c, idx, want); err != nil {
		return Addressing{}, fmt.Errorf("default route on %s: %w", iface, err)
	}
	return want, nil
}

// Down removes the interface's addresses (and with them its routes).
func (n *Netlink) Down(ctx context.Context, iface string) error {
	c, err := rtnetlink.Dial(&netlink.Config{NetNS: n.NetNS})
	if err != nil {
		return fmt.Errorf("dial rtnetlink: %w", err)
	}
	defer c.Close()
	idx, err := linkIndex(c, iface)
	if err != nil {
		return err
	}
	if err := flush(c, idx); err != nil {
		return fmt.Errorf("flush %s: %w", iface, err)
	}
	return nil
}

func linkIndex(c *rtnetlink.Conn, name string) (uint32, error) {
	links, err := c.Link.List()
	if err != nil {
		return 0, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if l.Attributes != nil && l.Attributes.Name == name {
			return l.Index, nil
		}
	}
	return 0, fmt.Errorf("uplink interface %s: not found", name)
}

// flush removes the global addresses of idx: the interface is the
// modem's, and a context's addresses are gone with the context.
func flush(c *rtnetlink.Conn, idx uint32) error {
	addrs, err := c.Address.List()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if a.Index != idx || a.Scope != unix.RT_SCOPE_UNIVERSE || a.Attributes == nil {
			continue
		}
		m := &rtnetlink.AddressMessage{Family: a.Family, PrefixLength: a.PrefixLength, Index: idx,
			Attributes: &rtnetlink.AddressAttributes{Address: a.Attributes.Address, Local: a.Attributes.Local}}
		if err := c.Address.Delete(m); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return err
		}
	}
	return nil
}

func addAddr(c *rtnetlink.Conn, idx uint32, p netip.Prefix) error {
	fam := uint8(unix.AF_INET6)
	attrs := &rtnetlink.AddressAttributes{Address: p.Addr().AsSlice()}
	if p.Addr().Is4() {
		fam = unix.AF_INET
		attrs.Local = attrs.Address
	}
	return c.Address.New(&rtnetlink.AddressMessage{Family: fam, PrefixLength: uint8(p.Bits()),
		Scope: unix.RT_SCOPE_UNIVERSE, Index: idx, Attributes: attrs})
}

// defaultRoute points the main table's IPv4 default at the interface, via
// the gateway when it is on the link (ECM), else as a device route (raw
// IP has no link layer to resolve a gateway on).
func defaultRoute(c *rtnetlink.Conn, idx uint32, a Addressing) error {
	has4 := false
	onLink := false
	for _, p := range a.Addrs {
		if p.Addr().Is4() {
			has4 = true
			if a.Gateway.IsValid() && p.Masked().Contains(a.Gateway) && p.Bits() < 32 {
				onLink = true
			}
		}
	}
	if !has4 {
		return nil
	}
	m := &rtnetlink.RouteMessage{
		Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_STATIC,
		Scope: unix.RT_SCOPE_LINK, Type: unix.RTN_UNICAST,
		Attributes: rtnetlink.RouteAttributes{OutIface: idx},
	}
	if onLink {
		m.Scope = unix.RT_SCOPE_UNIVERSE
		m.Attributes.Gateway = a.Gateway.AsSlice()
	}
	return c.Route.Replace(m)
}

// dhcp asks the modem's DHCP server for a lease on iface.
func (n *Netlink) dhcp(ctx context.Context, iface string) (Addressing, error) {
	timeout := n.DHCPTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	var lease *nclient4.Lease
	err := netns.Do(n.NetNS, func() error {
		// The client's packet socket is made here, inside the namespace,
		// and stays there.
		cl, err := nclient4.New(iface, nclient4.WithTimeout(timeout), nclient4.WithRetry(3))
		if err != nil {
			return fmt.Errorf("DHCP client on %s: %w", iface, err)
		}
		defer cl.Close()
		lease, err = cl.Request(ctx)
		if err != nil {
			return fmt.Errorf("DHCP on %s: %w", iface, err)
		}
		return nil
	})
	if err != nil {
		return Addressing{}, err
	}
	ack := lease.ACK
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || ip.IsUnspecified() {
		return Addressing{}, fmt.Errorf("DHCP on %s: no address in the lease", iface)
	}
	bits := 32
	if m := ack.SubnetMask(); m != nil {
		bits, _ = net.IPMask(m).Size()
	}
	a := Addressing{Addrs: []netip.Prefix{netip.PrefixFrom(ip, bits)}}
	if rs := ack.Router(); len(rs) > 0 {
		if g, ok := netip.AddrFromSlice(rs[0].To4()); ok {
			a.Gateway = g
		}
	}
	for _, d := range ack.DNS() {
		if da, ok := netip.AddrFromSlice(d.To4()); ok {
			a.DNS = append(a.DNS, da)
		}
	}
	if n.Log != nil {
		n.Log.Info("modem: DHCP lease", "interface", iface, "address", a.Addrs[0], "router", a.Gateway, "lease", ack.IPAddressLeaseTime(0))
	}
	return a, nil
}
