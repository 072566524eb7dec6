package dhcp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzReceive feeds packets to the server's handler, one server per fuzz
// process so that state builds up between inputs. The seed corpus in
// testdata/fuzz/FuzzReceive holds packets captured from udhcpc, dhclient,
// dhcpcd and perfdhcp (see TestCaptureSeeds). Whatever comes in: no
// panic, never more slots held than allowed, and every reply is a
// well-formed BOOTREPLY to the same transaction.
func FuzzReceive(f *testing.F) {
	c := newClient(1)
	f.Add(c.discover().ToBytes())
	f.Add(c.selecting(netip.MustParseAddr("192.168.43.10")).ToBytes())
	f.Add(c.renewing().ToBytes())
	const max = 3
	h := newHarness(f, max, quiet)
	h.rec.check = nil
	f.Fuzz(func(t *testing.T, pkt []byte) {
		h.clock.Advance(time.Second)
		h.s.receive([][]byte{pkt})
		h.s.commit()
		h.s.mu.Lock()
		used := h.s.tab.used(h.clock.Now())
		h.s.mu.Unlock()
		if used > max {
			t.Fatalf("%d slots held, at most %d allowed", used, max)
		}
		for _, r := range h.rec.take() {
			if r.msg.OpCode != dhcpv4.OpcodeBootReply {
				t.Errorf("reply with op %v", r.msg.OpCode)
			}
			if string(r.msg.TransactionID[:]) != string(pkt[4:8]) {
				t.Errorf("reply to xid %x with %v", pkt[4:8], r.msg.TransactionID)
			}
			if a := addrOf(r.msg); a.IsValid() && !a.IsUnspecified() && !h.s.cfg.Prefix.Contains(a) {
				t.Errorf("reply hands out %v", a)
			}
			if !r.dst.ip.IsValid() || r.dst.ip.IsUnspecified() {
				t.Errorf("reply sent to %+v", r.dst)
			}
		}
	})
}

// FuzzLeaseFile loads arbitrary lease files: bad lines are skipped, never
// a crash, and what loads is written back in a form that loads the same.
func FuzzLeaseFile(f *testing.F) {
	f.Add([]byte(`{"addr":"192.168.43.10","client":"hw:020000000001","mac":"02:00:00:00:00:01","host":"a","since":1772366400,"expires":1772370000}
{"addr":"192.168.43.11","declined":1772367000}
{"addr":"192.168.43.12","client":"id:ff00112233","mac":"02:00:00:00:00:02","expires":1772370000}
{"addr":"192.168.43.10","client":"id:ff00112233","mac":"02:00:00:00:00:02","expires":1772370001}
`))
	f.Add([]byte("{\"addr\":\"192.168.43.300\"}\nnot json\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab := newTable(netip.MustParseAddr("192.168.43.10"), netip.MustParseAddr("192.168.43.20"), 3, time.Minute)
		for _, r := range parseJournal(data, func(int, error) {}) {
			tab.apply(r)
		}
		for k, i := range tab.byKey {
			if tab.leases[i].key != k {
				t.Fatalf("byKey[%q] = %d, which belongs to %q", k, i, tab.leases[i].key)
			}
		}
		snap := tab.snapshot(time.Unix(0, 0))
		again := newTable(tab.first, tab.addr(len(tab.leases)-1), 3, time.Minute)
		for _, r := range snap {
			if err := again.apply(r); err != nil {
				t.Fatalf("snapshot record %+v does not load: %v", r, err)
			}
		}
		if len(again.byKey) != len(tab.byKey) {
			t.Fatalf("%d clients after a reload, want %d", len(again.byKey), len(tab.byKey))
		}
	})
}
