package dns

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/openmifi/openmifi/internal/clock"
)

// fuzzAnswers is the upstream of the fuzz targets: an address for A, a
// large MX set that is truncated over UDP (so the TCP retry runs too),
// NXDOMAIN for nx.test, NODATA otherwise.
func fuzzAnswers(q mdns.Question, tcp bool) *mdns.Msg {
	m := &mdns.Msg{}
	switch {
	case q.Name == "nx.test.":
		m.Rcode = mdns.RcodeNameError
		m.Ns = []mdns.RR{testSOA(3600, 60)}
	case q.Qtype == mdns.TypeA:
		m.Answer = []mdns.RR{aRR(q.Name, 300, "192.0.2.1")}
	case q.Qtype == mdns.TypeMX && !tcp:
		m.Truncated = true
	case q.Qtype == mdns.TypeMX:
		for i := range 40 {
			m.Answer = append(m.Answer, &mdns.MX{
				Hdr:        mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeMX, Class: mdns.ClassINET, Ttl: 60},
				Preference: uint16(i),
				Mx:         "mail-server-with-a-long-name.test.",
			})
		}
	default:
		m.Ns = []mdns.RR{testSOA(3600, 60)}
	}
	return m
}

func fuzzForwarder(t testing.TB) *Forwarder {
	up := startUpstream(t, 0, "127.0.0.1", 0, fuzzAnswers)
	f := New(Config{
		Listen:    netip.MustParseAddr("127.0.0.1"),
		LANPrefix: testLAN,
		LocalName: "hotspot.lan",
		Domain:    "lan",
		Clock:     clock.NewFake(testStart),
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	f.timeout = time.Second
	f.SetUpstreams([]netip.AddrPort{up.addr})
	f.SetHosts(map[string]netip.Addr{"laptop": netip.MustParseAddr("127.0.0.20")})
	return f
}

// FuzzHandle drives the whole per-packet path with raw packets from a LAN
// client: it must never panic, never answer an answer, and every answer
// must be a well-formed response to the packet's ID that fits the client's
// UDP buffer. The seeds in testdata/fuzz/FuzzHandle are packed real
// queries.
func FuzzHandle(f *testing.F) {
	fw := fuzzForwarder(f)
	src := netip.MustParseAddrPort("127.0.0.10:5353")
	f.Fuzz(func(t *testing.T, pkt []byte, tcp bool) {
		resp := fw.handle(context.Background(), pkt, src, tcp)
		if resp == nil {
			return
		}
		if len(pkt) < headerLen || len(pkt) > maxQuery {
			t.Fatalf("answered a packet of %d bytes", len(pkt))
		}
		if binary.BigEndian.Uint16(pkt[2:])&flagQR != 0 {
			t.Fatal("answered an answer")
		}
		var a mdns.Msg
		if err := a.Unpack(resp); err != nil {
			t.Fatalf("answer does not unpack: %v\n%x", err, resp)
		}
		if !a.Response || a.Id != binary.BigEndian.Uint16(pkt) {
			t.Fatalf("answer id %d response %v for query id %d", a.Id, a.Response, binary.BigEndian.Uint16(pkt))
		}
		if !tcp {
			limit := ednsSize
			var q mdns.Msg
			if q.Unpack(pkt) == nil && q.IsEdns0() == nil {
				limit = mdns.MinMsgSize
			}
			if len(resp) > limit {
				t.Fatalf("UDP answer of %d bytes, limit %d", len(resp), limit)
			}
		}
	})
}

// FuzzUpstreamAnswer feeds raw upstream answers to the checks, the cache
// and the reply to the client: what the operator's network sends is
// untrusted as well.
func FuzzUpstreamAnswer(f *testing.F) {
	fw := New(Config{
		Listen:    netip.MustParseAddr("127.0.0.1"),
		LANPrefix: testLAN,
		Clock:     clock.NewFake(testStart),
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	client := &query{
		id:   7,
		q:    mdns.Question{Name: "Example.test.", Qtype: mdns.TypeA, Qclass: mdns.ClassINET},
		src:  netip.MustParseAddrPort("127.0.0.10:5353"),
		rd:   true,
		size: mdns.MinMsgSize,
		key:  cacheKey{name: "example.test.", qtype: mdns.TypeA},
	}
	out := upstreamQuery(client)
	for _, a := range []*mdns.Msg{fuzzAnswers(client.q, false), fuzzAnswers(mdns.Question{Name: "nx.test.", Qtype: mdns.TypeA}, false)} {
		a.SetReply(out)
		a.Question = out.Question
		b, err := a.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) >= 2 {
			// Let the fuzzer past the ID check.
			binary.BigEndian.PutUint16(raw, out.Id)
		}
		a, err := checkAnswer(out, raw)
		if err != nil {
			return
		}
		gen := fw.cache.generation()
		fw.cache.put(gen, client.key, a)
		for _, m := range []*mdns.Msg{a, fw.cache.get(client.key)} {
			if m == nil {
				continue
			}
			resp := fw.reply(client, m)
			var r mdns.Msg
			if err := r.Unpack(resp); err != nil {
				t.Fatalf("reply does not unpack: %v", err)
			}
			if r.Id != client.id || len(resp) > mdns.MinMsgSize {
				t.Fatalf("reply id %d, %d bytes", r.Id, len(resp))
			}
		}
		fw.cache.flush()
	})
}
