// Package route puts the LAN side of internet sharing into the kernel's
// routing: the router's address on the LAN interface, and policy routing that
// sends the clients' traffic out of one uplink only (the dedicated
// connection) while the device's own traffic keeps using the main table and
// with it the default connection.
//
// In ip(8) terms, with the defaults:
//
//	ip addr replace 192.168.43.1/24 brd + dev wlan0 label wlan0:om
//	ip route replace unreachable default metric 4294967295 table 43
//	ip route replace 192.168.43.0/24 dev wlan0 src 192.168.43.1 table 43
//	ip route replace default [via <gateway>] dev <uplink> table 43
//	ip rule add pref 1000 from 192.168.43.0/24 iif wlan0 lookup 43
//
// The rule matches on iif so that only forwarded client traffic consults the
// table: the device's own packets, even those sourced from the LAN address
// (replies to clients, the DNS forwarder), have no input interface and stay
// in the main table. The unreachable default is what keeps client traffic
// from leaking: a lookup that finds nothing in the table falls through to the
// next rule and the main table's default route, so the table must always
// answer, and when the uplink goes down (the kernel then deletes its routes)
// the answer is "unreachable". For the same reason the table is always filled
// before the rule points at it and emptied only after the rule is gone.
//
// The Router owns its table and every IPv4 rule that points at it: Start and
// Stop remove whatever they find there, which is how leftovers of a crashed
// run (kill -9) are replaced instead of duplicated. The LAN address carries
// the label "<LAN>:om", so that a later run can tell an address that openmifi
// added from one configured by someone else, which Stop leaves alone.
//
// It is IPv4 only: the LAN is IPv4 and served by DHCPv4.
//
// It speaks rtnetlink through github.com/jsimonetti/rtnetlink/v2, which sits
// on github.com/mdlayher/netlink like openmifi's other netlink users
// (google/nftables, mdlayher/genetlink, mdlayher/wifi): one netlink stack in
// the binary instead of two, so a smaller firmware image.
package route

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

const (
	defaultTable    = 43
	defaultPriority = 1000

	// mainRulePriority is the kernel's rule for the main table; a rule at or
	// behind it would never see traffic the main table routes.
	mainRulePriority = 32766

	// unreachableMetric keeps the unreachable default behind any real
	// default route in the table.
	unreachableMetric = math.MaxUint32

	// labelSuffix marks the LAN address as ours; see the package comment.
	labelSuffix = ":om"
)

// Config says where the LAN is and where its routing goes.
type Config struct {
	LAN      string       // LAN interface name
	Address  netip.Prefix // the router's LAN address with the LAN prefix length, e.g. 192.168.43.1/24
	Table    uint32       // routing table for shared (LAN) traffic; 0 means 43
	Priority uint32       // priority of the policy rule; 0 means 1000
	NetNS    int          // network namespace fd for the netlink socket; 0 = the current one (tests use this)
}

// Router programs the LAN address and the policy routing of one LAN.
type Router struct {
	cfg    Config
	prefix netip.Prefix // cfg.Address masked: the LAN
	label  string       // "" when the LAN name leaves no room for the suffix

	mu      sync.Mutex
	c       *rtnetlink.Conn
	started bool
	// added records that Start added the LAN address, for when there is
	// no label to tell.
	added bool
}

// New checks cfg and dials rtnetlink (in cfg.NetNS when set).
func New(cfg Config) (*Router, error) {
	if cfg.Table == 0 {
		cfg.Table = defaultTable
	}
	if cfg.Priority == 0 {
		cfg.Priority = defaultPriority
	}
	if cfg.LAN == "" || len(cfg.LAN) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("route: invalid LAN interface name %q", cfg.LAN)
	}
	a := cfg.Address
	if !a.IsValid() || !a.Addr().Is4() || a.Bits() == 0 || a.Bits() > 30 {
		return nil, fmt.Errorf("route: LAN address %v: want an IPv4 address with a prefix length of 1 to 30, e.g. 192.168.43.1/24", a)
	}
	if a.Addr() == a.Masked().Addr() || a.Addr() == broadcast(a) {
		return nil, fmt.Errorf("route: LAN address %v is the network's own or broadcast address", a)
	}
	// Start and Stop empty the table, so it must not be one the kernel
	// itself depends on.
	if cfg.Table >= unix.RT_TABLE_COMPAT && cfg.Table <= unix.RT_TABLE_LOCAL {
		return nil, fmt.Errorf("route: table %d is reserved by the kernel", cfg.Table)
	}
	if cfg.Priority >= mainRulePriority {
		return nil, fmt.Errorf("route: rule priority %d must be below %d, the main table's rule", cfg.Priority, mainRulePriority)
	}
	c, err := rtnetlink.Dial(&netlink.Config{NetNS: cfg.NetNS})
	if err != nil {
		return nil, fmt.Errorf("route: dial rtnetlink: %w", err)
	}
	r := &Router{cfg: cfg, prefix: a.Masked(), c: c}
	if len(cfg.LAN)+len(labelSuffix) < unix.IFNAMSIZ {
		r.label = cfg.LAN + labelSuffix
	}
	return r, nil
}

// Close closes the netlink socket. It leaves the kernel as it is.
func (r *Router) Close() error {
	return r.c.Close()
}

// Start puts the LAN address on the LAN interface, fills the table and adds
// the rule, with the table's default route pointing at uplink ("" for none:
// the LAN then reaches nothing beyond the device). Calling it again, also
// from a new process after a crash, replaces the earlier state. On error it
// undoes what it did.
//
// ctx is checked before any change; the rtnetlink requests themselves do not
// wait on anything but the kernel.
func (r *Router) Start(ctx context.Context, uplink string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("route: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.start(uplink); err != nil {
		return fmt.Errorf("route: %w", err)
	}
	slog.Info("route: sharing LAN", "lan", r.cfg.LAN, "address", r.cfg.Address, "uplink", uplink, "table", r.cfg.Table)
	return nil
}

func (r *Router) start(uplink string) (err error) {
	// Everything that can be checked without changing the kernel comes
	// first, so that the common errors leave nothing to undo.
	lan, err := r.link(r.cfg.LAN)
	if err != nil {
		return err
	}
	dflt, err := r.defaultRoute(uplink)
	if err != nil {
		return err
	}
	present, _, err := r.address(lan.Index)
	if err != nil {
		return err
	}

	var undo []func() error
	defer func() {
		if err == nil || len(undo) == 0 {
			return
		}
		// Whatever an earlier Start set up is gone now too.
		r.started = false
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				slog.Error("route: undoing a failed start", "err", uerr)
			}
		}
	}()

	if lan.Flags&unix.IFF_UP == 0 {
		if err := r.setUp(lan.Index, true); err != nil {
			return fmt.Errorf("set %s up: %w", r.cfg.LAN, err)
		}
		undo = append(undo, func() error { return r.setUp(lan.Index, false) })
	}
	if err := r.replaceAddress(lan.Index); err != nil {
		return fmt.Errorf("add address %v to %s: %w", r.cfg.Address, r.cfg.LAN, err)
	}
	if !present {
		undo = append(undo, func() error { return r.deleteAddress(lan.Index) })
	}

	// A failed start removes the table and the rule entirely, leftovers of
	// an earlier run included: half of them would be worse than none.
	undo = append(undo, r.clear)
	// The unreachable default goes in first: from then on a lookup in the
	// table never falls through, whatever else is still missing.
	want := []*rtnetlink.RouteMessage{r.unreachableRoute(), r.lanRoute(lan.Index)}
	for _, m := range want {
		if err := r.c.Route.Replace(m); err != nil {
			return fmt.Errorf("add %s: %w", r.describe(m), err)
		}
	}
	if dflt != nil {
		if err := r.c.Route.Replace(dflt); err != nil {
			return fmt.Errorf("add default route via %s: %w", uplink, err)
		}
		want = append(want, dflt)
	}
	if err := r.prune(want); err != nil {
		return err
	}
	if err := r.ensureRule(); err != nil {
		return err
	}

	r.started = true
	if !present {
		r.added = true
	}
	return nil
}

// SetUplink re-points the table's default route at uplink ("" for none). It
// must also be called when the same uplink comes back after going down: the
// kernel deletes the routes of a device that goes down. It leaves the LAN
// address and the rule alone.
func (r *Router) SetUplink(ctx context.Context, uplink string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("route: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return errors.New("route: SetUplink before Start")
	}
	if err := r.setUplink(uplink); err != nil {
		return fmt.Errorf("route: %w", err)
	}
	slog.Info("route: uplink changed", "lan", r.cfg.LAN, "uplink", uplink)
	return nil
}

func (r *Router) setUplink(uplink string) error {
	dflt, err := r.defaultRoute(uplink)
	if err != nil {
		return err
	}
	if dflt != nil {
		// One replace, so that there is no moment without a default route.
		if err := r.c.Route.Replace(dflt); err != nil {
			return fmt.Errorf("add default route via %s: %w", uplink, err)
		}
		return nil
	}
	routes, err := r.tableRoutes()
	if err != nil {
		return err
	}
	for _, m := range routes {
		if m.DstLength == 0 && m.Type == unix.RTN_UNICAST {
			if err := r.deleteRoute(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stop removes the rule, every route in the table, and the LAN address if
// it is ours. Stopping a stopped Router is fine.
func (r *Router) Stop(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("route: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.stop(); err != nil {
		return fmt.Errorf("route: %w", err)
	}
	slog.Info("route: stopped", "lan", r.cfg.LAN)
	return nil
}

func (r *Router) stop() error {
	if err := r.clear(); err != nil {
		return err
	}
	r.started = false
	lan, err := r.link(r.cfg.LAN)
	if err != nil {
		// The address went away with its interface.
		r.added = false
		return nil
	}
	present, labelled, err := r.address(lan.Index)
	if err != nil {
		return err
	}
	if present && (labelled || r.added) {
		if err := r.deleteAddress(lan.Index); err != nil {
			return fmt.Errorf("remove address %v from %s: %w", r.cfg.Address, r.cfg.LAN, err)
		}
	}
	r.added = false
	return nil
}

// clear removes every IPv4 rule that points at the table and then every
// route in it, in that order so that the rule never sends traffic into an
// empty table.
func (r *Router) clear() error {
	for {
		err := r.c.Rule.Delete(&rtnetlink.RuleMessage{
			Family: unix.AF_INET,
			Table:  r.headerTable(),
			Attributes: &rtnetlink.RuleAttributes{
				Table: &r.cfg.Table,
			},
		})
		if errors.Is(err, unix.ENOENT) {
			break
		}
		if err != nil {
			return fmt.Errorf("remove rule for table %d: %w", r.cfg.Table, err)
		}
	}
	return r.prune(nil)
}

// ensureRule adds the rule unless it is there already, and then removes any
// other rule pointing at the table (a duplicate, or one from an earlier run
// with another configuration). Adding first means that client traffic is
// never without a rule.
func (r *Router) ensureRule() error {
	want := r.rule()
	err := r.c.Rule.Add(want)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add rule %s: %w", r.describeRule(), err)
	}
	msgs, err := r.c.Execute(&rtnetlink.RuleMessage{Family: unix.AF_INET}, unix.RTM_GETRULE, netlink.Request|netlink.Dump)
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	kept := false
	var stale []*rtnetlink.RuleMessage
	for _, msg := range msgs {
		m, ok := msg.(*rtnetlink.RuleMessage)
		if !ok || m.Attributes == nil || ruleTable(m) != r.cfg.Table {
			continue
		}
		if !kept && r.isOurRule(m) {
			kept = true
			continue
		}
		stale = append(stale, m)
	}
	// Should the kernel ever report our rule in a form we do not
	// recognize, deleting "the others" would delete it too.
	if !kept {
		return fmt.Errorf("rule %s not listed after adding it", r.describeRule())
	}
	for _, m := range stale {
		if err := r.c.Rule.Delete(m); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove stale rule for table %d: %w", r.cfg.Table, err)
		}
	}
	return nil
}

func (r *Router) rule() *rtnetlink.RuleMessage {
	src := net.IP(r.prefix.Addr().AsSlice())
	return &rtnetlink.RuleMessage{
		Family:    unix.AF_INET,
		SrcLength: uint8(r.prefix.Bits()),
		Table:     r.headerTable(),
		Action:    unix.FR_ACT_TO_TBL,
		Attributes: &rtnetlink.RuleAttributes{
			Src:      &src,
			IIFName:  &r.cfg.LAN,
			Priority: &r.cfg.Priority,
			Table:    &r.cfg.Table,
		},
	}
}

func (r *Router) isOurRule(m *rtnetlink.RuleMessage) bool {
	a := m.Attributes
	if m.Action != unix.FR_ACT_TO_TBL || m.SrcLength != uint8(r.prefix.Bits()) || m.DstLength != 0 || m.TOS != 0 {
		return false
	}
	if a.Priority == nil || *a.Priority != r.cfg.Priority || a.IIFName == nil || *a.IIFName != r.cfg.LAN {
		return false
	}
	// A further selector makes it some other rule, which has to go.
	if a.OIFName != nil || a.FwMark != nil || a.IPProto != nil || a.SPortRange != nil || a.DPortRange != nil || a.UIDRange != nil {
		return false
	}
	if a.Src == nil {
		return false
	}
	src, ok := netip.AddrFromSlice(*a.Src)
	return ok && src.Unmap() == r.prefix.Addr()
}

func ruleTable(m *rtnetlink.RuleMessage) uint32 {
	if m.Attributes != nil && m.Attributes.Table != nil {
		return *m.Attributes.Table
	}
	return uint32(m.Table)
}

func (r *Router) describeRule() string {
	return fmt.Sprintf("pref %d from %v iif %s lookup %d", r.cfg.Priority, r.prefix, r.cfg.LAN, r.cfg.Table)
}

// defaultRoute returns the table's default route via uplink: with the
// gateway of the main table's default route on that interface if it has one
// (an Ethernet-like uplink such as ECM), else as a device route (a
// point-to-point or raw-IP uplink). It returns nil for uplink "".
func (r *Router) defaultRoute(uplink string) (*rtnetlink.RouteMessage, error) {
	if uplink == "" {
		return nil, nil
	}
	link, err := r.link(uplink)
	if err != nil {
		return nil, err
	}
	routes, err := r.routes()
	if err != nil {
		return nil, err
	}
	var gw net.IP
	best := uint32(math.MaxUint32)
	for _, m := range routes {
		if routeTable(m) != unix.RT_TABLE_MAIN || m.DstLength != 0 || m.Type != unix.RTN_UNICAST {
			continue
		}
		a := m.Attributes
		if a.OutIface != link.Index || a.Gateway == nil || (gw != nil && a.Priority >= best) {
			continue
		}
		gw, best = a.Gateway, a.Priority
	}
	m := &rtnetlink.RouteMessage{
		Family:   unix.AF_INET,
		Table:    r.headerTable(),
		Protocol: unix.RTPROT_STATIC,
		Scope:    unix.RT_SCOPE_LINK,
		Type:     unix.RTN_UNICAST,
		Attributes: rtnetlink.RouteAttributes{
			OutIface: link.Index,
			Table:    r.cfg.Table,
		},
	}
	if gw != nil {
		m.Scope = unix.RT_SCOPE_UNIVERSE
		m.Attributes.Gateway = gw
	}
	return m, nil
}

func (r *Router) unreachableRoute() *rtnetlink.RouteMessage {
	return &rtnetlink.RouteMessage{
		Family:   unix.AF_INET,
		Table:    r.headerTable(),
		Protocol: unix.RTPROT_STATIC,
		Scope:    unix.RT_SCOPE_UNIVERSE,
		Type:     unix.RTN_UNREACHABLE,
		Attributes: rtnetlink.RouteAttributes{
			Priority: unreachableMetric,
			Table:    r.cfg.Table,
		},
	}
}

// lanRoute keeps client-to-client traffic that the device forwards (an AP
// with client isolation hairpins it) on the LAN instead of the uplink.
func (r *Router) lanRoute(index uint32) *rtnetlink.RouteMessage {
	return &rtnetlink.RouteMessage{
		Family:    unix.AF_INET,
		DstLength: uint8(r.prefix.Bits()),
		Table:     r.headerTable(),
		Protocol:  unix.RTPROT_STATIC,
		Scope:     unix.RT_SCOPE_LINK,
		Type:      unix.RTN_UNICAST,
		Attributes: rtnetlink.RouteAttributes{
			Dst:      net.IP(r.prefix.Addr().AsSlice()),
			Src:      net.IP(r.cfg.Address.Addr().AsSlice()),
			OutIface: index,
			Table:    r.cfg.Table,
		},
	}
}

// routeKey is what the kernel tells routes of one table apart by, and so
// what a replace replaces.
type routeKey struct {
	dst    string
	bits   uint8
	tos    uint8
	metric uint32
}

func keyOf(m *rtnetlink.RouteMessage) routeKey {
	return routeKey{m.Attributes.Dst.String(), m.DstLength, m.Tos, m.Attributes.Priority}
}

// prune removes every route in the table but the first of each key in want.
func (r *Router) prune(want []*rtnetlink.RouteMessage) error {
	keep := make(map[routeKey]bool)
	for _, m := range want {
		keep[keyOf(m)] = true
	}
	routes, err := r.tableRoutes()
	if err != nil {
		return err
	}
	for _, m := range routes {
		if k := keyOf(m); keep[k] {
			delete(keep, k)
			continue
		}
		if err := r.deleteRoute(m); err != nil {
			return err
		}
	}
	return nil
}

func (r *Router) deleteRoute(m *rtnetlink.RouteMessage) error {
	// Sent back as the kernel listed it, so that it matches this route
	// and no other; only the state flags (linkdown, ...) are no selector.
	del := *m
	del.Flags = 0
	err := r.c.Route.Delete(&del)
	if err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", r.describe(m), err)
	}
	return nil
}

// routes lists the IPv4 routes of all tables.
func (r *Router) routes() ([]*rtnetlink.RouteMessage, error) {
	msgs, err := r.c.Execute(&rtnetlink.RouteMessage{Family: unix.AF_INET}, unix.RTM_GETROUTE, netlink.Request|netlink.Dump)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var routes []*rtnetlink.RouteMessage
	for _, msg := range msgs {
		if m, ok := msg.(*rtnetlink.RouteMessage); ok && m.Family == unix.AF_INET {
			routes = append(routes, m)
		}
	}
	return routes, nil
}

func (r *Router) tableRoutes() ([]*rtnetlink.RouteMessage, error) {
	routes, err := r.routes()
	if err != nil {
		return nil, err
	}
	var in []*rtnetlink.RouteMessage
	for _, m := range routes {
		if routeTable(m) == r.cfg.Table {
			in = append(in, m)
		}
	}
	return in, nil
}

func routeTable(m *rtnetlink.RouteMessage) uint32 {
	if m.Attributes.Table != 0 {
		return m.Attributes.Table
	}
	return uint32(m.Table)
}

// headerTable is the table for the 8-bit field of rule and route headers;
// tables above 255 exist only in the attribute.
func (r *Router) headerTable() uint8 {
	if r.cfg.Table > math.MaxUint8 {
		return unix.RT_TABLE_UNSPEC
	}
	return uint8(r.cfg.Table)
}

// describe names a route for an error message, in ip(8) terms.
func (r *Router) describe(m *rtnetlink.RouteMessage) string {
	s := "default"
	if m.DstLength != 0 {
		s = fmt.Sprintf("%v/%d", m.Attributes.Dst, m.DstLength)
	}
	if m.Type == unix.RTN_UNREACHABLE {
		s = "unreachable " + s
	}
	if m.Attributes.Gateway != nil {
		s += fmt.Sprintf(" via %v", m.Attributes.Gateway)
	}
	if m.Attributes.OutIface != 0 {
		s += fmt.Sprintf(" dev %s", r.name(m.Attributes.OutIface))
	}
	return fmt.Sprintf("route %s table %d", s, routeTable(m))
}

func (r *Router) link(name string) (*rtnetlink.LinkMessage, error) {
	links, err := r.c.Link.List()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	for i := range links {
		if links[i].Attributes != nil && links[i].Attributes.Name == name {
			return &links[i], nil
		}
	}
	return nil, fmt.Errorf("interface %s does not exist", name)
}

// name returns the name of interface index, or the index when that fails:
// it is only for messages.
func (r *Router) name(index uint32) string {
	l, err := r.c.Link.Get(index)
	if err != nil || l.Attributes == nil {
		return fmt.Sprintf("#%d", index)
	}
	return l.Attributes.Name
}

func (r *Router) setUp(index uint32, up bool) error {
	var flags uint32
	if up {
		flags = unix.IFF_UP
	}
	return r.c.Link.Set(&rtnetlink.LinkMessage{
		Family: unix.AF_UNSPEC,
		Index:  index,
		Flags:  flags,
		Change: unix.IFF_UP,
	})
}

// address reports whether the LAN address is on the interface, and whether
// it carries our label.
func (r *Router) address(index uint32) (present, labelled bool, err error) {
	addrs, err := r.c.Address.List()
	if err != nil {
		return false, false, fmt.Errorf("list addresses: %w", err)
	}
	for _, m := range addrs {
		if m.Family != unix.AF_INET || m.Index != index || m.Attributes == nil || int(m.PrefixLength) != r.cfg.Address.Bits() {
			continue
		}
		if ip, ok := netip.AddrFromSlice(m.Attributes.Local); ok && ip.Unmap() == r.cfg.Address.Addr() {
			return true, r.label != "" && m.Attributes.Label == r.label, nil
		}
	}
	return false, false, nil
}

// replaceAddress adds the LAN address, or leaves it as it is when it is
// there already (the kernel then keeps its label too).
func (r *Router) replaceAddress(index uint32) error {
	ip := net.IP(r.cfg.Address.Addr().AsSlice())
	_, err := r.c.Execute(&rtnetlink.AddressMessage{
		Family:       unix.AF_INET,
		PrefixLength: uint8(r.cfg.Address.Bits()),
		Scope:        unix.RT_SCOPE_UNIVERSE,
		Index:        index,
		Attributes: &rtnetlink.AddressAttributes{
			Address:   ip,
			Local:     ip,
			Broadcast: net.IP(broadcast(r.cfg.Address).AsSlice()),
			Label:     r.label,
		},
	}, unix.RTM_NEWADDR, netlink.Request|netlink.Create|netlink.Replace|netlink.Acknowledge)
	return err
}

func (r *Router) deleteAddress(index uint32) error {
	ip := net.IP(r.cfg.Address.Addr().AsSlice())
	err := r.c.Address.Delete(&rtnetlink.AddressMessage{
		Family:       unix.AF_INET,
		PrefixLength: uint8(r.cfg.Address.Bits()),
		Index:        index,
		Attributes: &rtnetlink.AddressAttributes{
			Address: ip,
			Local:   ip,
		},
	})
	if errors.Is(err, unix.EADDRNOTAVAIL) {
		return nil
	}
	return err
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(a)
}
