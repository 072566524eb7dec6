package dhcp

import (
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// receive handles a batch of packets read together: those of known
// clients first, so that renewals are not queued behind a flood. Replies
// that need no disk write leave at once; ACKs wait for the committer.
func (s *Server) receive(pkts [][]byte) {
	var (
		peeks [batchSize]peeked
		errs  [batchSize]error
		known [batchSize]bool
		kbuf  [300]byte
		now   = s.cfg.Clock.Now()
		out   []outgoing
	)
	s.mu.Lock()
	if s.tab == nil {
		s.mu.Unlock()
		return
	}
	for len(pkts) > 0 {
		batch := pkts[:min(len(pkts), batchSize)]
		pkts = pkts[len(batch):]
		for i, pkt := range batch {
			s.stats.Received++
			peeks[i], errs[i] = peek(pkt)
			if errs[i] == nil {
				_, known[i] = s.tab.lookup(keyOf(kbuf[:0], peeks[i].clientID, peeks[i].chaddr))
			}
		}
		for _, first := range []bool{true, false} {
			for i, pkt := range batch {
				if known[i] != first {
					continue
				}
				if errs[i] != nil {
					s.drop(errs[i].Error(), "DHCP packet dropped", "reason", errs[i].Error(), "len", len(pkt))
					continue
				}
				if o, durable := s.handle(pkt, &peeks[i], now); o != nil {
					if durable {
						s.waiting = append(s.waiting, *o)
					} else {
						out = append(out, *o)
					}
				}
			}
		}
	}
	tx := s.tx
	s.signal()
	s.mu.Unlock()
	for _, o := range out {
		if err := tx.send(o.b, o.dst); err != nil {
			s.rl.Warn("send", "DHCP reply not sent", "dst", o.dst.ip, "err", err)
		}
	}
}

// drop counts a dropped packet and logs it, rate-limited by kind.
func (s *Server) drop(kind, msg string, args ...any) {
	s.stats.Dropped++
	s.rl.Warn(kind, msg, args...)
}

// handle answers one well-framed packet. The reply is durable when it must
// not leave before the lease file has the change.
func (s *Server) handle(pkt []byte, p *peeked, now time.Time) (o *outgoing, durable bool) {
	mac := net.HardwareAddr(p.chaddr)
	if p.giaddr != (netip.AddrFrom4([4]byte{})) && !s.cfg.Prefix.Contains(p.giaddr) {
		s.drop("relay", "DHCP packet dropped: relayed from outside the LAN", "giaddr", p.giaddr, "mac", macValue(mac))
		return nil, false
	}
	var kbuf [300]byte
	kb := keyOf(kbuf[:0], p.clientID, p.chaddr)
	// The cheap refusal comes before the full parse: this is the path
	// a DISCOVER flood from made-up addresses takes.
	if p.msgType == msgDiscover {
		if _, ok := s.tab.lookup(kb); !ok && !s.tab.roomFor(-1, now) {
			s.stats.PoolFull++
			if n, ok := s.rl.Allow("full"); ok {
				s.rl.Emit(slog.LevelWarn, n, "DHCP pool full: DISCOVER gets no offer", "max_leases", s.tab.max, "mac", macValue(mac))
			}
			return nil, false
		}
	}
	key := string(kb)
	m, err := dhcpv4.FromBytes(pkt)
	if err != nil {
		s.drop("parse", "DHCP packet dropped", "reason", err.Error(), "mac", macValue(mac))
		return nil, false
	}
	switch p.msgType {
	case msgDiscover:
		return s.discover(m, p, key, now), false
	case msgRequest:
		return s.request(m, p, key, now)
	case msgRelease:
		s.release(p, key, now)
	case msgDecline:
		s.decline(p, key, now)
	case msgInform:
		return s.inform(m, p), false
	default:
		s.drop("type", "DHCP packet dropped: not a client message", "type", p.msgType, "mac", macValue(mac))
	}
	return nil, false
}

func (s *Server) discover(m *dhcpv4.DHCPv4, p *peeked, key string, now time.Time) *outgoing {
	t := s.tab
	i, known := t.byKey[key]
	if known && !t.roomFor(i, now) {
		s.stats.PoolFull++
		s.rl.Warn("full", "DHCP pool full: DISCOVER gets no offer", "max_leases", t.max, "mac", macValue(p.chaddr))
		return nil
	}
	if !known {
		if i = t.choose(key, p.chaddr, p.reqIP, now); i < 0 {
			s.stats.PoolFull++
			s.rl.Warn("exhausted", "DHCP pool exhausted: every address is in use", "mac", macValue(p.chaddr))
			return nil
		}
	}
	s.markDirty(t.assign(i, key, p.chaddr, now))
	if l := &t.leases[i]; !l.bound(now) || t.gone(l, now) {
		t.offer(i, now)
	}
	s.stats.Offers++
	return s.reply(m, p, dhcpv4.MessageTypeOffer, t.addr(i), true)
}

// request answers the four kinds of DHCPREQUEST (RFC 2131 §4.3.2).
func (s *Server) request(m *dhcpv4.DHCPv4, p *peeked, key string, now time.Time) (*outgoing, bool) {
	t := s.tab
	mac := net.HardwareAddr(p.chaddr)
	i, known := t.byKey[key]
	if p.serverID.IsValid() && p.serverID != s.cfg.ServerAddr {
		// Another server's offer was taken: free ours.
		if known && !t.leases[i].bound(now) {
			t.leases[i].offerUntil = time.Time{}
		}
		return nil, false
	}
	var want netip.Addr
	switch {
	case p.serverID.IsValid(), p.reqIP.IsValid(): // SELECTING, INIT-REBOOT
		want = p.reqIP
	default: // RENEWING, REBINDING
		want = p.ciaddr
	}
	if !want.IsValid() || want.IsUnspecified() {
		s.drop("request", "DHCP REQUEST dropped: no address requested", "mac", macValue(mac))
		return nil, false
	}
	j, inPool := t.index(want)
	switch {
	case !s.cfg.Prefix.Contains(want):
		return s.nak(m, p, "address not on this network", "addr", want), false
	case !inPool:
		return s.nak(m, p, "address not in the pool", "addr", want), false
	}
	if !known || i != j {
		if t.busy(j, now) {
			return s.nak(m, p, "address in use", "addr", want), false
		}
		held := -1
		if known {
			held = i
		}
		if !t.roomFor(held, now) {
			s.stats.PoolFull++
			return s.nak(m, p, "pool full", "addr", want, "max_leases", t.max), false
		}
		s.markDirty(t.assign(j, key, p.chaddr, now))
	} else if !t.roomFor(j, now) {
		s.stats.PoolFull++
		return s.nak(m, p, "pool full", "addr", want, "max_leases", t.max), false
	}
	t.assign(j, key, p.chaddr, now) // a new hardware address for the same client
	t.bind(j, now, s.cfg.LeaseTime)
	if h := sanitizeHost(m.HostName()); h != "" {
		t.leases[j].host = h
	}
	s.markDirty(j)
	s.stats.Acks++
	return s.reply(m, p, dhcpv4.MessageTypeAck, want, true), true
}

func (s *Server) release(p *peeked, key string, now time.Time) {
	t := s.tab
	i, known := t.byKey[key]
	if !known || t.addr(i) != p.ciaddr || (p.serverID.IsValid() && p.serverID != s.cfg.ServerAddr) {
		s.drop("release", "DHCP RELEASE dropped: no such lease", "addr", p.ciaddr, "mac", macValue(p.chaddr))
		return
	}
	t.release(i, now)
	s.markDirty(i)
	s.stats.Releases++
	s.log.Debug("DHCP lease released", "addr", p.ciaddr, "mac", macValue(p.chaddr))
}

func (s *Server) decline(p *peeked, key string, now time.Time) {
	t := s.tab
	i, known := t.byKey[key]
	if !known || t.addr(i) != p.reqIP || (p.serverID.IsValid() && p.serverID != s.cfg.ServerAddr) {
		s.drop("decline", "DHCP DECLINE dropped: no such lease", "addr", p.reqIP, "mac", macValue(p.chaddr))
		return
	}
	t.forget(i, now)
	t.leases[i].quarantine = now.Add(declineHold)
	s.markDirty(i)
	s.stats.Declines++
	s.rl.Warn("declined", "DHCP address declined: another host uses it", "addr", p.reqIP, "mac", macValue(p.chaddr), "quarantine", declineHold)
}

// inform answers a client configured by hand (RFC 2131 §4.3.5).
func (s *Server) inform(m *dhcpv4.DHCPv4, p *peeked) *outgoing {
	if !s.cfg.Prefix.Contains(p.ciaddr) {
		s.drop("inform", "DHCP INFORM dropped: client address not on the LAN", "addr", p.ciaddr, "mac", macValue(p.chaddr))
		return nil
	}
	return s.reply(m, p, dhcpv4.MessageTypeAck, netip.Addr{}, false)
}

func (s *Server) nak(m *dhcpv4.DHCPv4, p *peeked, why string, args ...any) *outgoing {
	s.stats.Naks++
	s.rl.Warn("nak-"+why, "DHCP NAK: "+why, append(args, "mac", macValue(p.chaddr))...)
	r := s.header(m)
	r.Options.Update(dhcpv4.OptMessageType(dhcpv4.MessageTypeNak))
	r.Options.Update(dhcpv4.OptServerIdentifier(s.cfg.ServerAddr.AsSlice()))
	r.Options.Update(dhcpv4.OptMessage(why))
	dst := destination{ip: netip.AddrFrom4([4]byte{255, 255, 255, 255}), port: 68, mac: broadcastMAC}
	if p.giaddr != (netip.AddrFrom4([4]byte{})) {
		// The relay must broadcast it (RFC 2131 §4.3.2).
		r.SetBroadcast()
		dst = destination{ip: p.giaddr, port: 67}
	}
	return &outgoing{b: r.ToBytes(), dst: dst}
}

// header starts a reply to m: the fields and options copied from it.
func (s *Server) header(m *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	r := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        m.HWType,
		TransactionID: m.TransactionID,
		Flags:         m.Flags,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: m.GatewayIPAddr,
		ClientHWAddr:  m.ClientHWAddr,
		Options:       dhcpv4.Options{},
	}
	// RFC 6842: the client identifier goes back; RFC 3046: so does the
	// relay agent information.
	for _, c := range []dhcpv4.OptionCode{dhcpv4.OptionClientIdentifier, dhcpv4.OptionRelayAgentInformation} {
		if v := m.Options.Get(c); v != nil {
			r.Options.Update(dhcpv4.OptGeneric(c, v))
		}
	}
	return r
}

// reply builds an OFFER or ACK for addr (invalid for an INFORM's ACK,
// which carries no address and no lease).
func (s *Server) reply(m *dhcpv4.DHCPv4, p *peeked, typ dhcpv4.MessageType, addr netip.Addr, withLease bool) *outgoing {
	r := s.header(m)
	if typ == dhcpv4.MessageTypeAck {
		r.ClientIPAddr = m.ClientIPAddr
	}
	if addr.IsValid() {
		r.YourIPAddr = addr.AsSlice()
	}
	o := &r.Options
	o.Update(dhcpv4.OptMessageType(typ))
	o.Update(dhcpv4.OptServerIdentifier(s.cfg.ServerAddr.AsSlice()))
	if withLease {
		lt := s.cfg.LeaseTime
		o.Update(dhcpv4.OptIPAddressLeaseTime(lt))
		o.Update(dhcpv4.OptRenewTimeValue(lt / 2))
		o.Update(dhcpv4.OptRebindingTimeValue(lt * 7 / 8))
	}
	o.Update(dhcpv4.OptSubnetMask(s.mask))
	o.Update(dhcpv4.OptRouter(s.cfg.ServerAddr.AsSlice()))
	o.Update(dhcpv4.OptDNS(s.cfg.ServerAddr.AsSlice()))
	o.Update(dhcpv4.OptDomainName(s.cfg.Domain))
	if s.mtu >= 68 && s.mtu <= 0xffff {
		o.Update(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{byte(s.mtu >> 8), byte(s.mtu)}))
	}
	return &outgoing{b: r.ToBytes(), dst: s.destination(p, addr)}
}

// destination applies RFC 2131 §4.1: through the relay if there is one,
// else to the client's address if it has one, else by broadcast if it
// asked for that, else to its hardware address.
func (s *Server) destination(p *peeked, yiaddr netip.Addr) destination {
	zero := netip.AddrFrom4([4]byte{})
	switch {
	case p.giaddr != zero:
		return destination{ip: p.giaddr, port: 67}
	case p.ciaddr != zero:
		return destination{ip: p.ciaddr, port: 68}
	case p.broadcast || !yiaddr.IsValid():
		return destination{ip: netip.AddrFrom4([4]byte{255, 255, 255, 255}), port: 68, mac: broadcastMAC}
	}
	// A copy: p points into the read buffer, which the next read
	// reuses while an ACK still waits for the disk.
	return destination{ip: yiaddr, port: 68, mac: slices.Clone(net.HardwareAddr(p.chaddr))}
}

// sanitizeHost keeps a host name printable for the client list and the
// console: letters, digits, '-', '_' and '.', at most 63 of them.
func sanitizeHost(h string) string {
	h = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return -1
	}, h)
	if len(h) > 63 {
		h = h[:63]
	}
	return h
}
