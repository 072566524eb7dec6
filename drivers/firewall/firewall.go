// Package firewall programs hotspotd's NAT and filter rules with nftables:
// one table, "inet openmifi", built and replaced in a single netlink batch,
// so that no half-built ruleset is ever live, and removed when sharing
// stops.
//
// The ruleset:
//
//	input    policy drop: established/related, loopback, IPv6 neighbour
//	         discovery, and from the LAN only ICMP, DHCP, DNS and the
//	         device's management ports.
//	forward  policy drop: established/related first, invalid dropped, a
//	         client's SYN gets its MSS clamped to the route's MTU (the
//	         smaller of both directions'; cellular links often run below
//	         1500), new connections from the LAN prefix to the uplink
//	         accepted, the rest counted and dropped. What is accepted goes
//	         through "counted": per-client bytes and packets, up and down,
//	         in two dynamic sets keyed by client address. The per-packet
//	         path of a running connection is the first rule and those two,
//	         in the one base chain on the forward hook.
//	nat      masquerade on the uplink.
//
// IP forwarding is switched on while the table is installed and restored
// afterwards; the value to restore is kept in a file under RunDir, so that
// it survives a crash of hotspotd.
//
// Per-client counters live in the kernel's sets. A change of uplink
// rewrites only the rules and keeps them. nftables cannot load counter
// values into set elements, so when hotspotd starts over a table left by a
// crashed run, it reads the old counters and adds them on top of the new
// table's in memory; a second crash before the next stop loses those
// carried totals. Stop deletes the table and with it every counter: a
// sharing session's totals end with the session.
package firewall

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/drivers/netns"
	"github.com/openmifi/openmifi/internal/sharing"
)

// TableName is the nftables table hotspotd owns, in family inet.
const TableName = "openmifi"

// Config says what the rules protect.
type Config struct {
	LAN       string       // LAN interface
	LANPrefix netip.Prefix // addresses the LAN's clients use, e.g. 192.168.43.0/24
	// ManagementPorts are TCP ports of services the device offers the LAN
	// besides DHCP and DNS.
	ManagementPorts []uint16
	// RunDir keeps the forwarding state to restore; "" means /run/openmifi.
	RunDir string
	// NetNS is a network namespace file descriptor to work in; 0 is the
	// current one. Tests run the router in a namespace of their own.
	NetNS int
	Log   *slog.Logger
}

// NAT is the nftables side of sharing.
type NAT struct {
	cfg  Config
	log  *slog.Logger
	conn *nftables.Conn

	mu     sync.Mutex
	uplink string
	table  *nftables.Table
	up     *nftables.Set
	down   *nftables.Set
	base   map[netip.Addr]sharing.Counters // carried over from a crashed run's table
}

// New opens the nftables connection (in cfg.NetNS when set).
func New(cfg Config) (*NAT, error) {
	if cfg.RunDir == "" {
		cfg.RunDir = "/run/openmifi"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if !cfg.LANPrefix.IsValid() || !cfg.LANPrefix.Addr().Is4() {
		return nil, fmt.Errorf("firewall: LAN prefix %v is not an IPv4 prefix", cfg.LANPrefix)
	}
	if cfg.LAN == "" || len(cfg.LAN) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("firewall: bad LAN interface name %q", cfg.LAN)
	}
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if cfg.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(cfg.NetNS))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("firewall: nftables: %w", err)
	}
	return &NAT{cfg: cfg, log: cfg.Log, conn: conn, base: map[netip.Addr]sharing.Counters{}}, nil
}

// Close releases the netlink connection; the rules stay as they are.
func (n *NAT) Close() error { return n.conn.CloseLasting() }

// Start installs the table, replacing one left by an earlier run, and
// switches forwarding on. On error the kernel is left as it was.
func (n *NAT) Start(uplink string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := checkIfname(uplink); err != nil {
		return err
	}
	// A table left by a crashed run: keep its counts before replacing it.
	old := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	if _, err := n.conn.ListTableOfFamily(TableName, nftables.TableFamilyINet); err == nil {
		base, err := n.readCounters(old)
		if err != nil {
			n.log.Warn("firewall: counters of the earlier run are lost", "err", err)
		}
		for a, c := range base {
			n.base[a] = n.base[a].Add(c)
		}
		n.log.Info("firewall: replacing the table of an earlier run")
	}

	// Before anything is queued: a failure here must leave no batch behind.
	saved, created, err := n.saveForwarding()
	if err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	undoSaved := func() {
		if created {
			os.Remove(n.savedPath())
		}
	}

	// add + delete + add: one batch replaces whatever is there, or creates.
	n.conn.AddTable(old)
	n.conn.DelTable(old)
	t := n.conn.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: TableName})
	up := &nftables.Set{Table: t, Name: "clients_up", KeyType: nftables.TypeIPAddr, Dynamic: true, Size: 1024}
	down := &nftables.Set{Table: t, Name: "clients_down", KeyType: nftables.TypeIPAddr, Dynamic: true, Size: 1024}
	for _, s := range []*nftables.Set{up, down} {
		if err := n.conn.AddSet(s, nil); err != nil {
			// AddSet fails before queueing only for a malformed set.
			undoSaved()
			return fmt.Errorf("firewall: %w", err)
		}
	}
	n.addInput(t)
	n.addCounted(t, up, down)
	chains := n.addUplinkChains(t)
	n.addUplinkRules(chains, uplink)

	if err := n.conn.Flush(); err != nil {
		undoSaved()
		return fmt.Errorf("firewall: install table: %w", describe(err))
	}
	if err := n.writeForwarding("1"); err != nil {
		n.conn.DelTable(t)
		n.conn.Flush()
		n.restoreForwarding(saved)
		return fmt.Errorf("firewall: enable forwarding: %w", err)
	}
	n.table, n.up, n.down, n.uplink = t, up, down, uplink
	return nil
}

// upChains are the chains whose rules name the uplink.
type upChains struct{ forward, nat *nftables.Chain }

func (n *NAT) addUplinkChains(t *nftables.Table) upChains {
	policyDrop := nftables.ChainPolicyDrop
	return upChains{
		forward: n.conn.AddChain(&nftables.Chain{Table: t, Name: "forward", Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &policyDrop}),
		nat: n.conn.AddChain(&nftables.Chain{Table: t, Name: "nat", Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}),
	}
}

// toCounted: goto counted
func toCounted() []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictGoto, Chain: "counted"}}
}

// addUplinkRules queues the rules that depend on the uplink; uplink ""
// (no public connection) leaves LAN traffic nowhere to go.
func (n *NAT) addUplinkRules(c upChains, uplink string) {
	add := func(ch *nftables.Chain, e ...[]expr.Any) {
		n.conn.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: join(e...)})
	}
	add(c.forward, ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), toCounted())
	add(c.forward, ctState(expr.CtStateBitINVALID), drop())
	if uplink != "" {
		// Past the established rule: only a client's SYN, opening a
		// connection, gets here and has its MSS clamped.
		add(c.forward, iifname(n.cfg.LAN), tcpSyn(), mssToRoute())
		add(c.forward, iifname(n.cfg.LAN), oifname(uplink), nfproto(unix.NFPROTO_IPV4), ipSaddrIn(n.cfg.LANPrefix), toCounted())
		add(c.nat, nfproto(unix.NFPROTO_IPV4), oifname(uplink), []expr.Any{&expr.Masq{}})
	}
	add(c.forward, counted(drop()))
}

// addCounted queues the chain every accepted forwarded packet ends in.
// The reply direction is already de-NATed there, so its destination is
// the client. Only IPv4 is ever accepted into it.
func (n *NAT) addCounted(t *nftables.Table, up, down *nftables.Set) {
	ch := n.conn.AddChain(&nftables.Chain{Table: t, Name: "counted"})
	add := func(e ...[]expr.Any) { n.conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: join(e...)}) }
	add(iifname(n.cfg.LAN), count(up, 12), accept())
	add(oifname(n.cfg.LAN), count(down, 16), accept())
	add(accept())
}

func (n *NAT) addInput(t *nftables.Table) {
	policyDrop := nftables.ChainPolicyDrop
	in := n.conn.AddChain(&nftables.Chain{Table: t, Name: "input", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policyDrop})
	add := func(e ...[]expr.Any) { n.conn.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: join(e...)}) }
	lan := n.cfg.LAN
	add(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept())
	add(ctState(expr.CtStateBitINVALID), drop())
	add(iifname("lo"), accept())
	// Router solicitation/advertisement and neighbour discovery: IPv6 on
	// an Ethernet-like uplink does not work without them.
	add(icmpv6Type(133, 136), accept())
	add(iifname(lan), l4proto(unix.IPPROTO_ICMP), accept())
	add(iifname(lan), l4proto(unix.IPPROTO_ICMPV6), accept())
	add(iifname(lan), dport(unix.IPPROTO_UDP, 67), accept())
	add(iifname(lan), dport(unix.IPPROTO_UDP, 53), accept())
	add(iifname(lan), dport(unix.IPPROTO_TCP, 53), accept())
	for _, p := range n.cfg.ManagementPorts {
		add(iifname(lan), dport(unix.IPPROTO_TCP, p), accept())
	}
	add(counted(drop()))
}

// SetUplink re-points forwarding and NAT at another uplink
// interface ("" for none) in one batch; the LAN side and the counters stay.
func (n *NAT) SetUplink(uplink string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.table == nil {
		return errors.New("firewall: not started")
	}
	if err := checkIfname(uplink); err != nil {
		return err
	}
	chains := n.addUplinkChains(n.table)
	for _, c := range []*nftables.Chain{chains.forward, chains.nat} {
		n.conn.FlushChain(c)
	}
	n.addUplinkRules(chains, uplink)
	if err := n.conn.Flush(); err != nil {
		return fmt.Errorf("firewall: re-point to %q: %w", uplink, describe(err))
	}
	n.uplink = uplink
	return nil
}

// Stop removes the table and restores forwarding. It is idempotent and also
// cleans up after a crashed run.
func (n *NAT) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	if _, err := n.conn.ListTableOfFamily(TableName, nftables.TableFamilyINet); err == nil {
		n.conn.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: TableName})
		if err := n.conn.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("firewall: delete table: %w", err))
		}
	}
	if saved, err := os.ReadFile(n.savedPath()); err == nil {
		if err := n.restoreForwarding(strings.TrimSpace(string(saved))); err != nil {
			errs = append(errs, err)
		}
	}
	n.table, n.up, n.down, n.uplink = nil, nil, nil, ""
	clear(n.base)
	return errors.Join(errs...)
}

// Counters returns bytes and packets per client address, up and down.
func (n *NAT) Counters() (map[netip.Addr]sharing.Counters, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[netip.Addr]sharing.Counters, len(n.base))
	for a, c := range n.base {
		out[a] = c
	}
	if n.table == nil {
		return out, nil
	}
	cur, err := n.readCounters(n.table)
	for a, c := range cur {
		out[a] = out[a].Add(c)
	}
	return out, err
}

func (n *NAT) readCounters(t *nftables.Table) (map[netip.Addr]sharing.Counters, error) {
	out := map[netip.Addr]sharing.Counters{}
	for _, dir := range []string{"clients_up", "clients_down"} {
		set, err := n.conn.GetSetByName(t, dir)
		if err != nil {
			return out, fmt.Errorf("firewall: set %s: %w", dir, err)
		}
		elems, err := n.conn.GetSetElements(set)
		if err != nil {
			return out, fmt.Errorf("firewall: elements of %s: %w", dir, err)
		}
		for _, e := range elems {
			addr, ok := netip.AddrFromSlice(e.Key)
			if !ok || e.Counter == nil {
				continue
			}
			c := out[addr]
			if dir == "clients_up" {
				c.UpBytes, c.UpPackets = e.Counter.Bytes, e.Counter.Packets
			} else {
				c.DownBytes, c.DownPackets = e.Counter.Bytes, e.Counter.Packets
			}
			out[addr] = c
		}
	}
	return out, nil
}

// checkIfname refuses names nftables would silently truncate.
func checkIfname(n string) error {
	if len(n) >= unix.IFNAMSIZ || strings.ContainsRune(n, 0) {
		return fmt.Errorf("firewall: bad interface name %q", n)
	}
	return nil
}

// describe turns the kernel's terse answers into what a user can act on.
func describe(err error) error {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EAFNOSUPPORT):
		return fmt.Errorf("%w (is the kernel built with nf_tables, nft_nat, nft_masq and nft_ct?)", err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w (needs CAP_NET_ADMIN)", err)
	}
	return err
}

const forwardingSysctl = "/proc/sys/net/ipv4/ip_forward"

func (n *NAT) savedPath() string { return filepath.Join(n.cfg.RunDir, "ip_forward.saved") }

// saveForwarding remembers the forwarding setting to restore at Stop,
// unless a crashed run already did (its value is the one from before any
// sharing). created says whether this call wrote the file.
func (n *NAT) saveForwarding() (saved string, created bool, err error) {
	if b, err := os.ReadFile(n.savedPath()); err == nil {
		return strings.TrimSpace(string(b)), false, nil
	}
	cur, err := n.readForwarding()
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(n.cfg.RunDir, 0o755); err != nil {
		return "", false, err
	}
	if err := os.WriteFile(n.savedPath(), []byte(cur+"\n"), 0o644); err != nil {
		return "", false, err
	}
	return cur, true, nil
}

func (n *NAT) restoreForwarding(v string) error {
	if _, err := strconv.Atoi(v); err != nil {
		v = "0"
	}
	if err := n.writeForwarding(v); err != nil {
		return fmt.Errorf("firewall: restore forwarding: %w", err)
	}
	return os.Remove(n.savedPath())
}

func (n *NAT) readForwarding() (string, error) {
	var b []byte
	err := netns.Do(n.cfg.NetNS, func() error {
		var err error
		b, err = os.ReadFile(forwardingSysctl)
		return err
	})
	return strings.TrimSpace(string(b)), err
}

func (n *NAT) writeForwarding(v string) error {
	return netns.Do(n.cfg.NetNS, func() error {
		return os.WriteFile(forwardingSysctl, []byte(v), 0o644)
	})
}
