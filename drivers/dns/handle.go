package dns

import (
	"context"
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"
)

const (
	headerLen = 12

	// Header flag bits (RFC 1035 4.1.1).
	flagQR = 1 << 15
	flagRD = 1 << 8

	// localTTL is the TTL of the answers the device makes itself: short,
	// because host names follow DHCP leases.
	localTTL = 60
)

// query is a client's query that passed the checks of prepare.
type query struct {
	id     uint16
	q      mdns.Question // as the client spelt it
	src    netip.AddrPort
	tcp    bool
	rd, cd bool
	edns   bool // the client sent an OPT record
	do     bool // DNSSEC OK
	size   int  // the largest UDP answer the client takes
	key    cacheKey
}

// handle answers one raw query from src: the answer to send back, or nil to
// send nothing. It is the whole per-packet path, forwarding included, and
// what the fuzz target drives.
func (f *Forwarder) handle(ctx context.Context, pkt []byte, src netip.AddrPort, tcp bool) []byte {
	resp, q := f.prepare(pkt, src, tcp)
	if q == nil {
		return resp
	}
	return f.resolve(ctx, q)
}

// prepare does everything that needs no upstream: checks, local names, the
// cache, SERVFAIL without uplink. It returns either an answer (nil: drop
// the packet) or a query to forward.
func (f *Forwarder) prepare(pkt []byte, src netip.AddrPort, tcp bool) ([]byte, *query) {
	if len(pkt) < headerLen {
		f.logBad(src, "short packet", "len", len(pkt))
		return nil, nil
	}
	if len(pkt) > maxQuery {
		f.logBad(src, "oversized packet", "len", len(pkt))
		return nil, nil
	}
	if src.Port() == 0 {
		f.logBad(src, "source port 0")
		return nil, nil
	}
	flags := binary.BigEndian.Uint16(pkt[2:])
	if flags&flagQR != 0 {
		// Answering an answer is how two forwarders loop, or how a
		// spoofed source gets bounced at another server.
		f.logBad(src, "response sent as a query")
		return nil, nil
	}
	fromLAN := f.cfg.LANPrefix.Contains(src.Addr())
	opcode := int(flags>>11) & 0xf
	if opcode != mdns.OpcodeQuery {
		if !fromLAN {
			return nil, nil
		}
		f.logBad(src, "unsupported opcode", "opcode", opcode)
		return headerReply(pkt, mdns.RcodeNotImplemented), nil
	}
	qd := binary.BigEndian.Uint16(pkt[4:])
	an := binary.BigEndian.Uint16(pkt[6:])
	ns := binary.BigEndian.Uint16(pkt[8:])
	ar := binary.BigEndian.Uint16(pkt[10:])
	// Checked on the header before unpacking, so that a packet claiming
	// thousands of records costs nothing.
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		if !fromLAN {
			return nil, nil
		}
		f.logBad(src, "not one question", "qd", qd, "an", an, "ns", ns, "ar", ar)
		return headerReply(pkt, mdns.RcodeFormatError), nil
	}
	var m mdns.Msg
	if err := m.Unpack(pkt); err != nil || len(m.Question) != 1 {
		if !fromLAN {
			return nil, nil
		}
		f.logBad(src, "malformed query", "err", err)
		return headerReply(pkt, mdns.RcodeFormatError), nil
	}
	q := &query{
		id:   m.Id,
		q:    m.Question[0],
		src:  src,
		tcp:  tcp,
		rd:   m.RecursionDesired,
		cd:   m.CheckingDisabled,
		size: mdns.MinMsgSize,
	}
	var extra mdns.RR
	if len(m.Extra) == 1 {
		extra = m.Extra[0]
	}
	opt, _ := extra.(*mdns.OPT)
	if opt != nil {
		q.edns = true
		q.do = opt.Do()
		q.size = min(max(int(opt.UDPSize()), mdns.MinMsgSize), ednsSize)
	}
	if !fromLAN {
		// Served only on the LAN address, but a wrong firewall must
		// not turn the device into an open resolver.
		f.logBad(src, "client outside the LAN")
		return f.reply(q, rcodeMsg(mdns.RcodeRefused)), nil
	}
	if extra != nil && opt == nil {
		// TSIG or SIG(0): we hold no keys.
		f.logBad(src, "unexpected additional record", "type", mdns.TypeToString[extra.Header().Rrtype])
		return f.reply(q, rcodeMsg(mdns.RcodeRefused)), nil
	}
	if opt != nil && opt.Version() != 0 {
		// RFC 6891 6.1.3: BADVERS, and the version we speak.
		return f.reply(q, rcodeMsg(mdns.RcodeBadVers)), nil
	}
	switch q.q.Qtype {
	case mdns.TypeAXFR, mdns.TypeIXFR, mdns.TypeMAILA, mdns.TypeMAILB, mdns.TypeOPT, mdns.TypeTSIG, mdns.TypeTKEY:
		// Meta types that a forwarder of single answers cannot serve.
		return f.reply(q, rcodeMsg(mdns.RcodeRefused)), nil
	}
	if q.q.Qclass != mdns.ClassINET {
		return f.reply(q, rcodeMsg(mdns.RcodeRefused)), nil
	}
	if a := f.local(q); a != nil {
		return f.reply(q, a), nil
	}
	q.key = cacheKey{name: mdns.CanonicalName(q.q.Name), qtype: q.q.Qtype, do: q.do, cd: q.cd}
	if a := f.cache.get(q.key); a != nil {
		return f.reply(q, a), nil
	}
	f.mu.Lock()
	none := len(f.upstreams) == 0
	f.mu.Unlock()
	if none {
		return f.reply(q, rcodeMsg(mdns.RcodeServerFailure)), nil
	}
	return nil, q
}

// resolve forwards q to the upstreams, starting with the one that answered
// last, and returns the answer for the client (nil when stopping).
func (f *Forwarder) resolve(ctx context.Context, q *query) []byte {
	f.mu.Lock()
	ups, gen, first := f.upstreams, f.upGen, f.preferred
	cacheGen := f.cache.generation()
	f.mu.Unlock()

	out := upstreamQuery(q)
	packed, err := out.Pack()
	if err != nil {
		f.logBad(q.src, "cannot pack forwarded query", "err", err)
		return f.reply(q, rcodeMsg(mdns.RcodeServerFailure))
	}
	for i := range ups {
		idx := (first + i) % len(ups)
		server := ups[idx]
		a, err := f.exchange(ctx, server, out, packed, q.tcp)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			f.logUpstream(server, "upstream failed", "question", q.q.String(), "err", err)
			continue
		}
		switch a.Rcode {
		case mdns.RcodeServerFailure, mdns.RcodeRefused, mdns.RcodeNotImplemented, mdns.RcodeFormatError:
			// Another server may do better.
			f.logUpstream(server, "upstream error answer", "question", q.q.String(), "rcode", mdns.RcodeToString[a.Rcode])
			continue
		}
		f.answered(gen, idx)
		f.cache.put(cacheGen, q.key, a)
		return f.reply(q, a)
	}
	return f.reply(q, rcodeMsg(mdns.RcodeServerFailure))
}

// answered remembers the upstream that answered, unless the upstreams
// changed meanwhile.
func (f *Forwarder) answered(gen uint64, idx int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen == f.upGen && f.preferred != idx {
		f.log.Info("dns upstream answering", "server", f.upstreams[idx], "was", f.upstreams[f.preferred])
		f.preferred = idx
	}
}

// upstreamQuery is what goes upstream for q: a fresh message carrying only
// the question and the DNSSEC bits, with a random ID. The client's EDNS
// options (cookies, client subnet) stay on the LAN. Recursion is always
// desired, so that what is cached is a full answer whatever the client
// asked.
func upstreamQuery(q *query) *mdns.Msg {
	m := &mdns.Msg{}
	m.Id = randomID()
	m.RecursionDesired = true
	m.CheckingDisabled = q.cd
	m.Question = []mdns.Question{q.q}
	m.SetEdns0(ednsSize, q.do)
	return m
}

// reply finishes answer a for the client of q and packs it. a is modified.
func (f *Forwarder) reply(q *query, a *mdns.Msg) []byte {
	a.Id = q.id
	a.Response = true
	a.Opcode = mdns.OpcodeQuery
	a.RecursionDesired = q.rd
	a.RecursionAvailable = true
	a.CheckingDisabled = q.cd
	a.Question = []mdns.Question{q.q}
	a.Extra = withoutMeta(a.Extra)
	if q.edns {
		a.SetEdns0(ednsSize, q.do)
	} else if a.Rcode > 0xf {
		// An extended RCODE needs an OPT record to travel in.
		a.Rcode = mdns.RcodeServerFailure
	}
	a.Compress = true
	if !q.tcp {
		a.Truncate(q.size)
	}
	b, err := a.Pack()
	if err != nil {
		f.logBad(q.src, "cannot pack answer", "err", err)
		s := &mdns.Msg{}
		s.Id = q.id
		s.Response = true
		s.Rcode = mdns.RcodeServerFailure
		s.Question = []mdns.Question{q.q}
		b, err = s.Pack()
		if err != nil {
			return nil
		}
	}
	return b
}

// withoutMeta drops the records that belong to one hop, not to the data:
// OPT, TSIG and SIG(0).
func withoutMeta(rrs []mdns.RR) []mdns.RR {
	out := rrs[:0:0]
	for _, rr := range rrs {
		switch rr.Header().Rrtype {
		case mdns.TypeOPT, mdns.TypeTSIG, mdns.TypeSIG:
			continue
		}
		out = append(out, rr)
	}
	return out
}

func rcodeMsg(rcode int) *mdns.Msg {
	m := &mdns.Msg{}
	m.Rcode = rcode
	return m
}

// headerReply is an answer with only a header, for queries too broken to
// echo their question: their ID, opcode and RD flag, and rcode.
func headerReply(pkt []byte, rcode int) []byte {
	b := make([]byte, headerLen)
	copy(b, pkt[:2])
	flags := binary.BigEndian.Uint16(pkt[2:])
	flags = flagQR | flags&(0xf<<11) | flags&flagRD | uint16(rcode&0xf)
	binary.BigEndian.PutUint16(b[2:], flags)
	return b
}

// local answers the names that are the device's to answer, or returns nil
// for names to forward.
func (f *Forwarder) local(q *query) *mdns.Msg {
	name := mdns.CanonicalName(q.q.Name)
	qtype := q.q.Qtype
	inDomain := f.domain != "" && mdns.IsSubDomain(f.domain, name)

	if name == f.localName && f.localName != "" {
		return f.addrAnswer(q, f.cfg.Listen, inDomain)
	}
	if addr, ok := parseReverse(name); ok {
		addr = addr.Unmap()
		if !f.cfg.LANPrefix.Contains(addr) {
			return nil
		}
		// Reverse names in the LAN are ours (RFC 6303): they must not
		// leak to the operator's servers.
		target := ""
		if addr == f.cfg.Listen {
			target = f.localName
		} else {
			f.mu.Lock()
			target = f.ptrs[addr]
			f.mu.Unlock()
		}
		m := &mdns.Msg{}
		m.Authoritative = true
		switch {
		case target == "":
			m.Rcode = mdns.RcodeNameError
		case qtype == mdns.TypePTR || qtype == mdns.TypeANY:
			m.Answer = []mdns.RR{&mdns.PTR{Hdr: hdr(q.q.Name, mdns.TypePTR), Ptr: target}}
		}
		return m
	}
	if !inDomain {
		return nil
	}
	f.mu.Lock()
	addr, ok := f.hosts[name]
	f.mu.Unlock()
	if ok {
		return f.addrAnswer(q, addr, true)
	}
	m := &mdns.Msg{}
	m.Authoritative = true
	switch {
	case name != f.domain:
		m.Rcode = mdns.RcodeNameError
	case qtype == mdns.TypeSOA:
		m.Answer = []mdns.RR{f.soa()}
		return m
	}
	m.Ns = []mdns.RR{f.soa()}
	return m
}

// addrAnswer answers q for a name whose only record is addr: A or AAAA,
// and NODATA for every other type.
func (f *Forwarder) addrAnswer(q *query, addr netip.Addr, inDomain bool) *mdns.Msg {
	m := &mdns.Msg{}
	m.Authoritative = true
	qtype := q.q.Qtype
	switch {
	case addr.Is4() && (qtype == mdns.TypeA || qtype == mdns.TypeANY):
		m.Answer = []mdns.RR{&mdns.A{Hdr: hdr(q.q.Name, mdns.TypeA), A: addr.AsSlice()}}
	case addr.Is6() && (qtype == mdns.TypeAAAA || qtype == mdns.TypeANY):
		m.Answer = []mdns.RR{&mdns.AAAA{Hdr: hdr(q.q.Name, mdns.TypeAAAA), AAAA: addr.AsSlice()}}
	case inDomain:
		// NODATA with the SOA, so that clients cache the absence
		// (RFC 2308).
		m.Ns = []mdns.RR{f.soa()}
	}
	return m
}

func hdr(name string, rrtype uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: rrtype, Class: mdns.ClassINET, Ttl: localTTL}
}

// soa is the SOA of the local domain, whose minimum is the negative TTL.
func (f *Forwarder) soa() *mdns.SOA {
	ns := f.localName
	if ns == "" {
		ns = f.domain
	}
	return &mdns.SOA{
		Hdr:     hdr(f.domain, mdns.TypeSOA),
		Ns:      ns,
		Mbox:    "hostmaster." + f.domain,
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  localTTL,
	}
}

// parseReverse returns the address of a full reverse name:
// d.c.b.a.in-addr.arpa. or the 32 nibbles under ip6.arpa. name is
// canonical.
func parseReverse(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa."); ok {
		parts := strings.Split(rest, ".")
		if len(parts) != 4 {
			return netip.Addr{}, false
		}
		var a [4]byte
		for i, p := range parts {
			// Only plain decimal: "010" or "+1" are not names of
			// an address.
			if len(p) == 0 || len(p) > 3 || (len(p) > 1 && p[0] == '0') {
				return netip.Addr{}, false
			}
			n, err := strconv.ParseUint(p, 10, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			a[3-i] = byte(n)
		}
		return netip.AddrFrom4(a), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa."); ok {
		if len(rest) != 63 {
			return netip.Addr{}, false
		}
		var a [16]byte
		for i := 0; i < 32; i++ {
			c := rest[2*i]
			if i < 31 && rest[2*i+1] != '.' {
				return netip.Addr{}, false
			}
			var v byte
			switch {
			case '0' <= c && c <= '9':
				v = c - '0'
			case 'a' <= c && c <= 'f':
				v = c - 'a' + 10
			default:
				return netip.Addr{}, false
			}
			// Nibble i counts from the least significant end.
			pos := 31 - i
			if pos%2 == 0 {
				a[pos/2] |= v << 4
			} else {
				a[pos/2] |= v
			}
		}
		return netip.AddrFrom16(a), true
	}
	return netip.Addr{}, false
}
