package modem

// The uplink's DHCP lease after it was bound: renewed at T1 with the
// server that gave it, rebound at T2 with any server, and when it runs out
// taken off the interface and sought anew (RFC 2131 §4.4.5). ECM modems
// hand out leases of an hour or less, so a sharing session lasting an
// afternoon depends on this.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/drivers/netns"
	"github.com/openmifi/openmifi/internal/clock"
)

// Reasons the uplink's addressing went away by itself, as PublicDown
// reports them.
const (
	ReasonLeaseExpired = "DHCP lease expired"
	ReasonLeaseRefused = "DHCP lease refused" // the server NAKed the renewal
	ReasonLeaseApply   = "DHCP address not applied"
)

const (
	// minLeaseRetry is the shortest wait between unanswered renewals or
	// rebinds; RFC 2131 §4.4.5 asks for 60 s. Nearer to T2 or expiry
	// than that, the next try is at T2, or the lease is gone.
	minLeaseRetry = time.Minute
	// infiniteLease is option 51's "forever" (0xffffffff s).
	infiniteLease = time.Duration(0xffffffff) * time.Second
)

// AddrChange is a change of the uplink's addressing that came after Up
// without being asked for: a renewed lease with another address, a lease
// lost, a lease got again.
type AddrChange struct {
	Iface string
	// Addressing is what the interface carries now; empty when Lost.
	Addressing Addressing
	// Lost says why the interface has no address any more ("" when it
	// has one).
	Lost string
}

// Watcher is an Addresser that keeps what Up configured up to date by
// itself, as Netlink keeps a DHCP lease. The driver follows Changes while
// it runs and calls Close when it stops.
type Watcher interface {
	Addresser
	// Changes delivers each AddrChange; the channel is the same for
	// the Watcher's life and is never closed.
	Changes() <-chan AddrChange
	// Close stops the upkeep Up started and waits for it, leaving the
	// interface as it is.
	Close()
}

// dhcpClient is the DHCP exchanges a lease needs; nclient is the real one,
// tests script their own.
type dhcpClient interface {
	// Discover gets a new lease: DISCOVER, OFFER, REQUEST, ACK.
	Discover(ctx context.Context) (*nclient4.Lease, error)
	// Renew asks the server that gave l for more time, by unicast.
	Renew(ctx context.Context, l *nclient4.Lease) (*nclient4.Lease, error)
	// Rebind asks any server for more time on l, by broadcast.
	Rebind(ctx context.Context, l *nclient4.Lease) (*nclient4.Lease, error)
	// Release gives l back.
	Release(l *nclient4.Lease) error
}

// nclient is the dhcpClient of the device: nclient4 with a socket opened
// for each exchange inside the namespace, so that an interface that went
// away and came back is found again.
type nclient struct {
	ns      int
	iface   string
	timeout time.Duration
	// seeded waits for the kernel's random numbers, which each
	// exchange's transaction ID needs (see random.go).
	seeded func(context.Context) error
}

// ready waits for the kernel's random numbers; with no seeded, silently.
func (c nclient) ready(ctx context.Context) error {
	if c.seeded == nil {
		return kernelRandom.wait(ctx, slog.New(slog.DiscardHandler))
	}
	return c.seeded(ctx)
}

func (c nclient) opts(o ...nclient4.ClientOpt) []nclient4.ClientOpt {
	return append([]nclient4.ClientOpt{nclient4.WithTimeout(c.timeout), nclient4.WithRetry(3)}, o...)
}

// Discover runs on a packet socket: the interface has no address yet.
func (c nclient) Discover(ctx context.Context) (*nclient4.Lease, error) {
	if err := c.ready(ctx); err != nil {
		return nil, fmt.Errorf("DHCP on %s: %w", c.iface, err)
	}
	var l *nclient4.Lease
	err := netns.Do(c.ns, func() error {
		cl, err := nclient4.New(c.iface, c.opts()...)
		if err != nil {
			return fmt.Errorf("DHCP client on %s: %w", c.iface, err)
		}
		defer cl.Close()
		l, err = cl.Request(ctx)
		return err
	})
	return l, err
}

// withUDP runs f with a client on a UDP socket on port 68 of the
// interface: renewals, rebinds and releases come from the leased address
// (RFC 2131 §4.4.5), and their answers come to it, or broadcast.
func (c nclient) withUDP(server *net.UDPAddr, f func(*nclient4.Client) error) error {
	return netns.Do(c.ns, func() error {
		ifi, err := net.InterfaceByName(c.iface)
		if err != nil {
			return err
		}
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = errors.Join(
					unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, c.iface),
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1),
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1))
			})
			return errors.Join(err, serr)
		}}
		pc, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf(":%d", nclient4.ClientPort))
		if err != nil {
			return fmt.Errorf("DHCP socket on %s: %w", c.iface, err)
		}
		cl, err := nclient4.NewWithConn(pc, ifi.HardwareAddr, c.opts(nclient4.WithServerAddr(server))...)
		if err != nil {
			pc.Close()
			return fmt.Errorf("DHCP client on %s: %w", c.iface, err)
		}
		defer cl.Close()
		return f(cl)
	})
}

func serverOf(l *nclient4.Lease) (*net.UDPAddr, error) {
	id := l.ACK.ServerIdentifier()
	if id == nil {
		id = l.Offer.ServerIdentifier()
	}
	if id == nil || id.To4() == nil {
		return nil, errors.New("the lease names no server")
	}
	return &net.UDPAddr{IP: id, Port: nclient4.ServerPort}, nil
}

func (c nclient) Renew(ctx context.Context, l *nclient4.Lease) (*nclient4.Lease, error) {
	if err := c.ready(ctx); err != nil {
		return nil, fmt.Errorf("DHCP on %s: %w", c.iface, err)
	}
	srv, err := serverOf(l)
	if err != nil {
		return nil, err
	}
	var nl *nclient4.Lease
	err = c.withUDP(srv, func(cl *nclient4.Client) error {
		nl, err = cl.Renew(ctx, l, newXID()...)
		return err
	})
	return nl, err
}

// Rebind is Renew's request broadcast, and an answer from any server
// taken: nclient4's Renew only takes the first server's.
func (c nclient) Rebind(ctx context.Context, l *nclient4.Lease) (*nclient4.Lease, error) {
	if err := c.ready(ctx); err != nil {
		return nil, fmt.Errorf("DHCP on %s: %w", c.iface, err)
	}
	mods := append([]dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(nclient4.MaxMessageSize))}, newXID()...)
	req, err := dhcpv4.NewRenewFromAck(l.ACK, mods...)
	if err != nil {
		return nil, fmt.Errorf("rebind request: %w", err)
	}
	var nl *nclient4.Lease
	err = c.withUDP(nclient4.DefaultServers, func(cl *nclient4.Client) error {
		resp, err := cl.SendAndRead(ctx, nclient4.DefaultServers, req,
			nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak))
		if err != nil {
			return err
		}
		if resp.MessageType() == dhcpv4.MessageTypeNak {
			return &nclient4.ErrNak{Offer: l.Offer, Nak: resp}
		}
		nl = &nclient4.Lease{Offer: l.Offer, ACK: resp, CreationTime: time.Now()}
		return nil
	})
	return nl, err
}

// newXID gives a request built from an ACK a transaction of its own:
// otherwise it takes the ACK's.
func newXID() []dhcpv4.Modifier {
	xid, err := dhcpv4.GenerateTransactionID()
	if err != nil {
		return nil
	}
	return []dhcpv4.Modifier{dhcpv4.WithTransactionID(xid)}
}

func (c nclient) Release(l *nclient4.Lease) error {
	srv, err := serverOf(l)
	if err != nil {
		return err
	}
	return c.withUDP(srv, func(cl *nclient4.Client) error { return cl.Release(l) })
}

// leaseAddressing is what a lease configures.
func leaseAddressing(ack *dhcpv4.DHCPv4) (Addressing, error) {
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || ip.IsUnspecified() {
		return Addressing{}, errors.New("no address in the lease")
	}
	bits := 32
	if m := ack.SubnetMask(); m != nil {
		if b, _ := net.IPMask(m).Size(); b > 0 {
			bits = b
		}
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
	return a, nil
}

// leaseTimes are a lease's T1, T2 and length, counted from its ACK. Times
// the server gave that are out of order are replaced by RFC 2131's
// defaults, half and seven eighths of the lease.
func leaseTimes(ack *dhcpv4.DHCPv4) (t1, t2, lease time.Duration) {
	lease = ack.IPAddressLeaseTime(infiniteLease)
	t2 = ack.IPAddressRebindingTime(0)
	if t2 <= 0 || t2 > lease {
		t2 = lease / 8 * 7
	}
	t1 = ack.IPAddressRenewalTime(0)
	if t1 <= 0 || t1 > t2 {
		t1 = min(lease/2, t2)
	}
	return t1, t2, lease
}

// keeper holds one bound lease on the uplink until its context ends.
type keeper struct {
	iface  string
	client dhcpClient
	clk    clock.Clock
	log    *slog.Logger
	// dns, the modem's DNS servers, are used over the lease's.
	dns []netip.Addr
	// apply configures the interface with a lease's addressing; remove
	// takes it off.
	apply  func(Addressing) error
	remove func() error
	// out is where changes go; nobody may be reading while the driver
	// is busy, so sends give way to the context.
	out chan<- AddrChange

	backoff time.Duration   // before the next discovery
	cur     *nclient4.Lease // the lease held; read once run returned
}

// addressing is what lease l configures, with the modem's DNS servers.
func (k *keeper) addressing(l *nclient4.Lease) (Addressing, error) {
	a, err := leaseAddressing(l.ACK)
	if err == nil && len(k.dns) > 0 {
		a.DNS = k.dns
	}
	return a, err
}

// run keeps l, bound now and configured as a, until ctx ends.
func (k *keeper) run(ctx context.Context, l *nclient4.Lease, a Addressing) {
	for ctx.Err() == nil {
		if l == nil {
			if l = k.discover(ctx); l == nil {
				return
			}
			k.cur = l
		} else {
			nl, lost := k.hold(ctx, l)
			if ctx.Err() != nil {
				return
			}
			if nl == nil {
				k.drop(ctx, lost)
				a, l = Addressing{}, nil
				continue
			}
			l, k.cur, k.backoff = nl, nl, 0
		}
		na, _ := k.addressing(l) // checked by exchange and discover
		if reflect.DeepEqual(na, a) {
			continue
		}
		if len(a.Addrs) > 0 {
			k.log.Info("DHCP lease changed the uplink's addressing", "interface", k.iface, "from", a.Addrs, "to", na.Addrs, "router", na.Gateway, "dns", na.DNS)
		}
		// DNS servers are only reported; the interface is left alone
		// (and its connections with it) unless its own part changed.
		if !reflect.DeepEqual(na.Addrs, a.Addrs) || na.Gateway != a.Gateway {
			if err := k.apply(na); err != nil {
				k.log.Warn("apply the DHCP lease", "interface", k.iface, "err", err)
				k.drop(ctx, ReasonLeaseApply)
				a, l = Addressing{}, nil
				continue
			}
		}
		a = na
		if !k.send(ctx, AddrChange{Iface: k.iface, Addressing: a}) {
			return
		}
	}
}

// drop takes the lease's address off and says so.
func (k *keeper) drop(ctx context.Context, reason string) {
	k.cur = nil
	k.log.Warn("DHCP lease lost", "interface", k.iface, "reason", reason)
	if err := k.remove(); err != nil {
		k.log.Warn("remove the uplink addresses", "interface", k.iface, "err", err)
	}
	k.send(ctx, AddrChange{Iface: k.iface, Lost: reason})
}

func (k *keeper) send(ctx context.Context, c AddrChange) bool {
	select {
	case k.out <- c:
		return true
	case <-ctx.Done():
		return false
	}
}

// hold waits for T1 and renews l, then rebinds it from T2, until it has
// a new lease or l is lost; it returns the new lease, or nil and why l was
// lost. An infinite lease is held until ctx ends.
func (k *keeper) hold(ctx context.Context, l *nclient4.Lease) (*nclient4.Lease, string) {
	t1, t2, lease := leaseTimes(l.ACK)
	if lease >= infiniteLease {
		<-ctx.Done()
		return nil, ""
	}
	bound := k.clk.Now()
	k.log.Debug("DHCP lease bound", "interface", k.iface, "lease", lease, "t1", t1, "t2", t2)
	if !k.sleep(ctx, bound.Add(t1)) {
		return nil, ""
	}
	for _, phase := range []struct {
		name  string
		until time.Time
		f     func(context.Context, *nclient4.Lease) (*nclient4.Lease, error)
	}{
		{"renew", bound.Add(t2), k.client.Renew},
		{"rebind", bound.Add(lease), k.client.Rebind},
	} {
		for k.clk.Now().Before(phase.until) {
			nl, err := k.exchange(ctx, phase.until, phase.f, l)
			if err == nil {
				return nl, ""
			}
			if ctx.Err() != nil {
				return nil, ""
			}
			var nak *nclient4.ErrNak
			if errors.As(err, &nak) {
				return nil, ReasonLeaseRefused
			}
			k.log.Info("DHCP "+phase.name+" unanswered", "interface", k.iface, "err", err)
			left := phase.until.Sub(k.clk.Now())
			wait := left / 2
			if wait < minLeaseRetry {
				wait = min(minLeaseRetry, left)
			}
			if !k.sleep(ctx, k.clk.Now().Add(wait)) {
				return nil, ""
			}
		}
	}
	return nil, ReasonLeaseExpired
}

// exchange runs f, cut short at until on the clock.
func (k *keeper) exchange(ctx context.Context, until time.Time, f func(context.Context, *nclient4.Lease) (*nclient4.Lease, error), l *nclient4.Lease) (*nclient4.Lease, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := until.Sub(k.clk.Now())
	if d <= 0 {
		return nil, context.DeadlineExceeded
	}
	defer k.clk.AfterFunc(d, cancel).Stop()
	nl, err := f(ctx, l)
	if err != nil {
		return nil, err
	}
	if _, err := k.addressing(nl); err != nil {
		return nil, err
	}
	return nl, nil
}

// discover seeks a new lease, backing off from a second to a minute
// between tries; nil when ctx ended.
func (k *keeper) discover(ctx context.Context) *nclient4.Lease {
	for {
		if k.backoff > 0 && !k.sleep(ctx, k.clk.Now().Add(k.backoff)) {
			return nil
		}
		k.backoff = min(max(2*k.backoff, minRetry), maxRetry)
		l, err := k.client.Discover(ctx)
		if err == nil {
			_, err = k.addressing(l)
		}
		if err == nil {
			k.log.Info("DHCP lease got again", "interface", k.iface, "address", l.ACK.YourIPAddr)
			return l
		}
		if ctx.Err() != nil {
			return nil
		}
		k.log.Info("DHCP discovery failed", "interface", k.iface, "err", err, "retry_in", k.backoff)
	}
}

// sleep waits until t on the clock; false when ctx ended first.
func (k *keeper) sleep(ctx context.Context, t time.Time) bool {
	d := t.Sub(k.clk.Now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	ch := make(chan struct{})
	tm := k.clk.AfterFunc(d, func() { close(ch) })
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		tm.Stop()
		return false
	}
}

// addrChanged takes a change of the uplink's addressing that the
// Addresser made by itself.
func (s *session) addrChanged(c AddrChange) {
	if !s.up || c.Iface != s.d.cfg.Interface {
		return // a context went down since
	}
	if c.Lost != "" {
		s.addrLost = c.Lost
		s.lastInfo = nil
		if c.Lost != s.lastDown {
			s.log.Info("public connection down", "reason", c.Lost)
			s.r.PublicDown(c.Lost)
			s.lastDown = c.Lost
		}
		return
	}
	s.addrLost = ""
	s.addr = c.Addressing
	s.report()
}
