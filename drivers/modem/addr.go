package modem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/internal/clock"
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
// through rtnetlink, the DHCPv4 client of github.com/insomniacslk/dhcp. It
// is a Watcher: a DHCP lease is kept after Up (see lease.go).
type Netlink struct {
	NetNS int // network namespace fd; 0: the current one
	Log   *slog.Logger
	// DHCPTimeout bounds each DHCP exchange; 0 means 5 s.
	DHCPTimeout time.Duration
	// Clock times the lease's renewals; nil: the wall clock.
	Clock clock.Clock

	mu      sync.Mutex
	changes chan AddrChange
	keep    *keeper // the lease's upkeep; nil: none
	stop    context.CancelFunc
	done    chan struct{}
}

// Changes delivers what the lease's upkeep changed on the interface.
func (n *Netlink) Changes() <-chan AddrChange {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changesLocked()
}

func (n *Netlink) changesLocked() chan AddrChange {
	if n.changes == nil {
		n.changes = make(chan AddrChange)
	}
	return n.changes
}

// Close stops keeping the lease, which stays on the interface.
func (n *Netlink) Close() { n.stopKeeping(false) }

// stopKeeping ends the lease's upkeep and waits for it; release gives the
// lease back to the server.
func (n *Netlink) stopKeeping(release bool) {
	n.mu.Lock()
	k, stop, done := n.keep, n.stop, n.done
	n.keep, n.stop, n.done = nil, nil, nil
	n.mu.Unlock()
	if k == nil {
		return
	}
	stop()
	<-done
	if release && k.cur != nil {
		// Best effort: the modem may be gone with the context.
		if err := k.client.Release(k.cur); err != nil {
			n.log().Debug("modem: DHCP release", "interface", k.iface, "err", err)
		} else {
			n.log().Info("modem: DHCP lease released", "interface", k.iface, "address", k.cur.ACK.YourIPAddr)
		}
	}
}

func (n *Netlink) log() *slog.Logger {
	if n.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return n.Log
}

// Up brings iface up and addresses it. A DHCP lease's router and address
// replace the modem's; its DNS servers are used only when the modem gave
// none. The lease is then kept (renewed, rebound, sought again when lost)
// until Down, Close, the next Up, or the end of ctx.
func (n *Netlink) Up(ctx context.Context, iface, mode string, want Addressing) (Addressing, error) {
	// A new context is addressed afresh; the modem's server gives the
	// same lease again, so the old one is not released.
	n.stopKeeping(false)
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
	if mode != AddressingDHCP {
		if err := configure(c, idx, want); err != nil {
			return Addressing{}, fmt.Errorf("%s: %w", iface, err)
		}
		return want, nil
	}
	k := &keeper{
		iface:  iface,
		client: n.client(iface),
		clk:    n.Clock,
		log:    n.log().With("driver", "modem"),
		dns:    want.DNS,
		apply:  func(a Addressing) error { return n.configure(iface, a) },
		remove: func() error { return n.unaddress(iface) },
	}
	if k.clk == nil {
		k.clk = clock.Real{}
	}
	l, err := k.client.Discover(ctx)
	if err != nil {
		return Addressing{}, fmt.Errorf("DHCP on %s: %w", iface, err)
	}
	// The modem's IPv6 address is not the interface's on ECM: the modem
	// routes IPv6 by router advertisements, which the kernel takes by
	// itself.
	a, err := k.addressing(l)
	if err != nil {
		return Addressing{}, fmt.Errorf("DHCP on %s: %w", iface, err)
	}
	_, _, lt := leaseTimes(l.ACK)
	n.log().Info("modem: DHCP lease", "interface", iface, "address", a.Addrs[0], "router", a.Gateway, "lease", lt)
	if err := configure(c, idx, a); err != nil {
		return Addressing{}, fmt.Errorf("%s: %w", iface, err)
	}
	kctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	k.cur = l
	n.mu.Lock()
	k.out = n.changesLocked()
	n.keep, n.stop, n.done = k, stop, done
	n.mu.Unlock()
	go func() {
		defer close(done)
		k.run(kctx, l, a)
	}()
	return a, nil
}

func (n *Netlink) client(iface string) nclient {
	log := n.log()
	c := nclient{ns: n.NetNS, iface: iface, timeout: n.DHCPTimeout,
		seeded: func(ctx context.Context) error { return kernelRandom.wait(ctx, log) }}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	return c
}

// Down releases a DHCP lease and removes the interface's addresses (and
// with them its routes).
func (n *Netlink) Down(ctx context.Context, iface string) error {
	n.stopKeeping(true)
	return n.unaddress(iface)
}

// unaddress removes iface's addresses.
func (n *Netlink) unaddress(iface string) error {
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

// configure puts a, and only a, on iface.
func (n *Netlink) configure(iface string, a Addressing) error {
	c, err := rtnetlink.Dial(&netlink.Config{NetNS: n.NetNS})
	if err != nil {
		return fmt.Errorf("dial rtnetlink: %w", err)
	}
	defer c.Close()
	idx, err := linkIndex(c, iface)
	if err != nil {
		return err
	}
	if err := configure(c, idx, a); err != nil {
		return fmt.Errorf("%s: %w", iface, err)
	}
	return nil
}

func configure(c *rtnetlink.Conn, idx uint32, a Addressing) error {
	if err := flush(c, idx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	for _, p := range a.Addrs {
		if err := addAddr(c, idx, p); err != nil {
			return fmt.Errorf("add %v: %w", p, err)
		}
	}
	if err := defaultRoute(c, idx, a); err != nil {
		return fmt.Errorf("default route: %w", err)
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
