package dns

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/openmifi/openmifi/internal/clock"
)

func TestCacheTTL(t *testing.T) {
	cname := &mdns.CNAME{Hdr: mdns.RR_Header{Name: "a.test.", Rrtype: mdns.TypeCNAME, Class: mdns.ClassINET, Ttl: 30}, Target: "b.test."}
	for _, tc := range []struct {
		name string
		msg  mdns.Msg
		ttl  uint32 // 0: not cached
	}{
		{"answers: the smallest", mdns.Msg{Answer: []mdns.RR{aRR("a.test.", 300, "192.0.2.1"), cname}}, 30},
		{"capped at a day", mdns.Msg{Answer: []mdns.RR{aRR("a.test.", 1<<31, "192.0.2.1")}}, maxTTL},
		{"NODATA: SOA minimum", mdns.Msg{Ns: []mdns.RR{testSOA(3600, 120)}}, 120},
		{"NODATA: SOA TTL", mdns.Msg{Ns: []mdns.RR{testSOA(90, 120)}}, 90},
		{"NXDOMAIN after a CNAME", mdns.Msg{MsgHdr: mdns.MsgHdr{Rcode: mdns.RcodeNameError}, Answer: []mdns.RR{cname}, Ns: []mdns.RR{testSOA(3600, 120)}}, 30},
		{"NXDOMAIN capped at an hour", mdns.Msg{MsgHdr: mdns.MsgHdr{Rcode: mdns.RcodeNameError}, Ns: []mdns.RR{testSOA(1e6, 1e6)}}, maxNegTTL},
		{"NXDOMAIN without SOA", mdns.Msg{MsgHdr: mdns.MsgHdr{Rcode: mdns.RcodeNameError}}, 0},
		{"SERVFAIL", mdns.Msg{MsgHdr: mdns.MsgHdr{Rcode: mdns.RcodeServerFailure}, Ns: []mdns.RR{testSOA(60, 60)}}, 0},
		{"truncated", mdns.Msg{MsgHdr: mdns.MsgHdr{Truncated: true}, Answer: []mdns.RR{aRR("a.test.", 300, "192.0.2.1")}}, 0},
		{"TTL 0", mdns.Msg{Answer: []mdns.RR{aRR("a.test.", 0, "192.0.2.1")}}, 0},
	} {
		ttl, ok := cacheTTL(&tc.msg)
		if ok != (tc.ttl != 0) || ttl != tc.ttl {
			t.Errorf("%s: %d %v, want %d", tc.name, ttl, ok, tc.ttl)
		}
	}
}

func TestCachePutAfterFlushIgnored(t *testing.T) {
	c := newCache(8, clock.NewFake(testStart))
	k := cacheKey{name: "a.test.", qtype: mdns.TypeA}
	gen := c.generation()
	c.flush() // the upstreams changed while the query was out
	c.put(gen, k, &mdns.Msg{Answer: []mdns.RR{aRR("a.test.", 300, "192.0.2.1")}})
	if c.get(k) != nil {
		t.Error("an answer asked for before a flush was cached")
	}
}

func TestBadPacketLoggingIsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	fc := clock.NewFake(testStart)
	f := New(Config{
		Listen:    netip.MustParseAddr("127.0.0.1"),
		LANPrefix: testLAN,
		Clock:     fc,
		Log:       slog.New(slog.NewTextHandler(&buf, nil)),
	})
	src := netip.MustParseAddrPort("127.0.0.10:5353")
	for range 100 {
		f.handle(context.Background(), []byte("short"), src, false)
	}
	fc.Advance(time.Second)
	f.handle(context.Background(), []byte("short"), src, false)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "suppressed=99") {
		t.Errorf("log:\n%s\nwant 2 lines, the second counting 99 suppressed", buf.String())
	}
}
