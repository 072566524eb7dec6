package dhcp

import (
	"bytes"
	"net"
	"net/netip"
	"time"
)

// lease is the state of one pool address. An address remembers its last
// client after the binding ends, so that a client coming back gets the same
// address, unless the pool needs it for someone else.
type lease struct {
	key  string // the client (see keyOf); "" for none
	mac  net.HardwareAddr
	host string
	// since is when the current binding started; lowering the limit
	// revokes the newest bindings first.
	since      time.Time
	expires    time.Time // end of the binding; not bound from then on
	offerUntil time.Time // an offer reserves address and slot until then
	// leftAt is when the access point reported the station gone; zero
	// while it is present or nothing was reported.
	leftAt time.Time
	// quarantine is set by a DECLINE: the address is in use by someone
	// the server does not know, and nobody gets it before then.
	quarantine time.Time
}

// table is the pool. It is not safe for concurrent use: the server holds
// its mutex around every call.
type table struct {
	first  netip.Addr // first pool address
	leases []lease
	byKey  map[string]int
	max    int           // at most this many clients hold a slot
	grace  time.Duration // after a station left, its slot is held this long
	// holders are the addresses that may hold a slot: every address
	// that does is in it, and used drops those that no longer do. It
	// keeps counting cheap however large the pool, which matters when a
	// flood asks for every packet.
	holders  []int
	isHolder []bool
}

func newTable(first, last netip.Addr, max int, grace time.Duration) *table {
	n := int(ipv4u32(last)-ipv4u32(first)) + 1
	return &table{first: first, leases: make([]lease, n), byKey: map[string]int{}, max: max, grace: grace, isHolder: make([]bool, n)}
}

func ipv4u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func (t *table) addr(i int) netip.Addr {
	v := ipv4u32(t.first) + uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// index returns a's position in the pool.
func (t *table) index(a netip.Addr) (int, bool) {
	if !a.Is4() {
		return 0, false
	}
	d := int64(ipv4u32(a)) - int64(ipv4u32(t.first))
	if d < 0 || d >= int64(len(t.leases)) {
		return 0, false
	}
	return int(d), true
}

func (t *table) lookup(key []byte) (int, bool) {
	i, ok := t.byKey[string(key)]
	return i, ok
}

func (l *lease) bound(now time.Time) bool   { return now.Before(l.expires) }
func (l *lease) offered(now time.Time) bool { return now.Before(l.offerUntil) }

// gone reports whether the station left long enough ago for its slot to be
// given to another client.
func (t *table) gone(l *lease, now time.Time) bool {
	return !l.leftAt.IsZero() && !now.Before(l.leftAt.Add(t.grace))
}

// holdsSlot reports whether address i counts against the limit.
func (t *table) holdsSlot(i int, now time.Time) bool {
	l := &t.leases[i]
	if l.key == "" {
		return false
	}
	return l.offered(now) || (l.bound(now) && !t.gone(l, now))
}

// busy reports whether address i may not be given to a client other than
// its owner. A lease of a station that left keeps its address until it
// expires, even when its slot was given away: the client may come back and
// still be using it.
func (t *table) busy(i int, now time.Time) bool {
	l := &t.leases[i]
	if now.Before(l.quarantine) {
		return true
	}
	return l.key != "" && (l.bound(now) || l.offered(now))
}

// mayHold adds address i to the holders. Whatever makes an address hold
// a slot calls it: an offer, a binding, a station's return, a load.
func (t *table) mayHold(i int) {
	if !t.isHolder[i] {
		t.isHolder[i] = true
		t.holders = append(t.holders, i)
	}
}

// used counts the slots held.
func (t *table) used(now time.Time) int {
	n := 0
	keep := t.holders[:0]
	for _, i := range t.holders {
		if t.holdsSlot(i, now) {
			keep = append(keep, i)
			n++
		} else {
			t.isHolder[i] = false
		}
	}
	t.holders = keep
	return n
}

// offer reserves address i and a slot for its client.
func (t *table) offer(i int, now time.Time) {
	t.leases[i].offerUntil = now.Add(offerHold)
	t.mayHold(i)
}

// bind starts or extends the binding of address i.
func (t *table) bind(i int, now time.Time, d time.Duration) {
	l := &t.leases[i]
	if !l.bound(now) {
		l.since = now
	}
	l.expires = now.Add(d)
	l.offerUntil, l.leftAt = time.Time{}, time.Time{}
	t.mayHold(i)
}

// roomFor reports whether the client at address i (-1: a client without
// an address) may hold a slot.
func (t *table) roomFor(i int, now time.Time) bool {
	if i >= 0 && t.holdsSlot(i, now) {
		return true
	}
	return t.used(now) < t.max
}

// choose picks an address for a client that has none: the one it asks for
// if that is free, else one its hardware address used before, else the
// address unused for the longest time, so that addresses remembered for
// other clients are handed out last. It returns -1 when every address is
// busy.
func (t *table) choose(key string, mac []byte, want netip.Addr, now time.Time) int {
	if i, ok := t.index(want); ok && !t.busy(i, now) && (t.leases[i].key == "" || t.leases[i].key == key) {
		return i
	}
	best, sameMAC := -1, -1
	var bestAt time.Time
	for i := range t.leases {
		if t.busy(i, now) {
			continue
		}
		l := &t.leases[i]
		if sameMAC < 0 && l.key != "" && bytes.Equal(l.mac, mac) {
			sameMAC = i
		}
		// Never used counts as free since the beginning of time.
		at := l.expires
		if l.offerUntil.After(at) {
			at = l.offerUntil
		}
		if l.quarantine.After(at) {
			at = l.quarantine
		}
		if best < 0 || at.Before(bestAt) {
			best, bestAt = i, at
		}
	}
	if sameMAC >= 0 {
		return sameMAC
	}
	return best
}

// assign makes address i the client's, taking it from its previous owner
// (whose binding must have ended) and ending the client's hold on any
// other address. It returns the other address changed, or -1.
func (t *table) assign(i int, key string, mac []byte, now time.Time) int {
	l := &t.leases[i]
	other := -1
	if l.key != key {
		if l.key != "" {
			delete(t.byKey, l.key)
		}
		if j, ok := t.byKey[key]; ok && j != i {
			o := &t.leases[j]
			o.key, o.offerUntil, o.leftAt = "", time.Time{}, time.Time{}
			if o.bound(now) {
				o.expires = now
			}
			other = j
		}
		// The address is not busy (see choose), so nothing of the
		// previous owner's binding survives but the quarantine.
		*l = lease{key: key, quarantine: l.quarantine}
		t.byKey[key] = i
	}
	if !bytes.Equal(l.mac, mac) {
		l.mac = append(net.HardwareAddr(nil), mac...)
	}
	return other
}

// release ends the binding of address i and keeps the client remembered.
func (t *table) release(i int, now time.Time) {
	l := &t.leases[i]
	if l.bound(now) {
		l.expires = now
	}
	l.offerUntil = time.Time{}
}

// forget ends the binding of address i and forgets its client.
func (t *table) forget(i int, now time.Time) {
	t.release(i, now)
	l := &t.leases[i]
	if l.key != "" {
		delete(t.byKey, l.key)
	}
	l.key, l.host, l.leftAt = "", "", time.Time{}
}
