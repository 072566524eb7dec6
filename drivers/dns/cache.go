package dns

import (
	"container/list"
	"sync"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/openmifi/openmifi/internal/clock"
)

const (
	// maxTTL caps how long an answer is kept, whatever the upstream
	// says: the device moves between networks and operators.
	maxTTL = 24 * 60 * 60
	// maxNegTTL caps negative answers (RFC 2308 5 suggests 1 to 3 hours):
	// a name that did not exist may soon.
	maxNegTTL = 60 * 60
	// maxCached is the largest packed answer kept, so that the cache of
	// a small device stays small: 512 entries of at most 4 KiB.
	maxCached = 4096
)

// cacheKey identifies a question. The DO and CD bits change the answer
// (signatures, and whether the upstream validated), so they are part of
// it. The class is always IN: other classes are refused before the cache.
type cacheKey struct {
	name   string // canonical: lower case, fully qualified
	qtype  uint16
	do, cd bool
}

type cacheEntry struct {
	key     cacheKey
	msg     *mdns.Msg // without OPT; never handed out, only copies
	stored  time.Time
	expires time.Time
}

// cache is a least-recently-used cache of answers that honours their TTLs.
// Entries never refer to each other: a hit is one lookup, there is no
// chasing of CNAMEs through the cache and so no loop to fall into.
type cache struct {
	clock clock.Clock
	size  int

	mu      sync.Mutex
	gen     uint64 // counts flushes
	entries map[cacheKey]*list.Element
	lru     list.List // front: most recently used
}

func newCache(size int, c clock.Clock) *cache {
	return &cache{clock: c, size: size, entries: make(map[cacheKey]*list.Element)}
}

// generation is what put needs to tell an answer that was asked for
// before the last flush.
func (c *cache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *cache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
	c.lru.Init()
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// get returns a copy of the answer for k with its TTLs counted down, or nil.
func (c *cache) get(k cacheKey) *mdns.Msg {
	now := c.clock.Now()
	c.mu.Lock()
	el, ok := c.entries[k]
	if !ok {
		c.mu.Unlock()
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, k)
		c.mu.Unlock()
		return nil
	}
	c.lru.MoveToFront(el)
	c.mu.Unlock()

	m := e.msg.Copy()
	// A cached copy is not the authority's word (RFC 1035 6.1).
	m.Authoritative = false
	age := uint32(now.Sub(e.stored) / time.Second)
	// Never more than the entry has left: a client must not keep a
	// record longer than we would.
	left := uint32((e.expires.Sub(now) + time.Second - 1) / time.Second)
	for _, sec := range [][]mdns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Ttl > age {
				h.Ttl -= age
			} else {
				h.Ttl = 0
			}
			h.Ttl = min(h.Ttl, left)
		}
	}
	return m
}

// put stores answer a for k, if it may be cached and no flush happened
// since gen was read.
func (c *cache) put(gen uint64, k cacheKey, a *mdns.Msg) {
	ttl, ok := cacheTTL(a)
	if !ok || a.Len() > maxCached {
		return
	}
	m := a.Copy()
	m.Extra = withoutMeta(m.Extra)
	now := c.clock.Now()
	e := &cacheEntry{key: k, msg: m, stored: now, expires: now.Add(time.Duration(ttl) * time.Second)}

	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if el, ok := c.entries[k]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[k] = c.lru.PushFront(e)
	for len(c.entries) > c.size {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*cacheEntry).key)
	}
}

// cacheTTL is how long answer a may be cached: the smallest TTL of its
// answer records; for a negative answer (NXDOMAIN or NODATA) the smaller
// of the SOA's TTL and its minimum (RFC 2308 5). Errors, truncated answers
// and negative answers without SOA are not cached.
func cacheTTL(a *mdns.Msg) (uint32, bool) {
	if a.Truncated {
		return 0, false
	}
	var ttl uint32
	switch {
	case a.Rcode == mdns.RcodeSuccess && len(a.Answer) > 0:
		ttl = maxTTL
		for _, rr := range a.Answer {
			ttl = min(ttl, rr.Header().Ttl)
		}
	case a.Rcode == mdns.RcodeSuccess || a.Rcode == mdns.RcodeNameError:
		// Negative: NODATA or NXDOMAIN.
		var soa *mdns.SOA
		for _, rr := range a.Ns {
			if s, ok := rr.(*mdns.SOA); ok {
				soa = s
				break
			}
		}
		if soa == nil {
			return 0, false
		}
		ttl = min(soa.Hdr.Ttl, soa.Minttl, maxNegTTL)
		// The CNAMEs leading to a name that is not there.
		for _, rr := range a.Answer {
			ttl = min(ttl, rr.Header().Ttl)
		}
	default:
		return 0, false
	}
	return ttl, ttl > 0
}
