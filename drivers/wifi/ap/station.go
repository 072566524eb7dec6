package ap

import (
	"bytes"
	"cmp"
	"context"
	"net"
	"slices"
	"time"

	"github.com/openmifi/openmifi/drivers/wifi/wpa"
	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/sharing"
)

// maxAID is the highest association ID 802.11 allows.
const maxAID = 2007

type staState int

const (
	stAuth   staState = iota + 1 // authenticated (open system), not associated
	stAssoc                      // associated, 4-way handshake running
	stJoined                     // handshake done, port authorized
)

// station is what we know of one station from its authentication on.
type station struct {
	mac      net.HardwareAddr
	state    staState
	since    time.Time // when it authenticated, for expiry in stAuth
	aid      uint16
	seq      uint64 // association order
	signal   int
	rxKbps   int // rates last read from the kernel (refreshLinks)
	txKbps   int
	inKernel bool // NewStation done: DelStation needed when it goes

	rsne       []byte // from its association request, with the header
	hs         *wpa.Handshake
	hsStarted  bool   // message 1 sent
	assocReply uint64 // cookie of our association response, 0 if unknown
	micFailed  bool   // a message with a bad MIC came: likely a wrong passphrase
	timer      clock.Timer
	timerSeq   int
}

func (st *station) associated() bool { return st.state == stAssoc || st.state == stJoined }

// sortedStations lists all stations, associated in association order first.
func (a *AP) sortedStations() []*station {
	out := make([]*station, 0, len(a.stations))
	for _, st := range a.stations {
		out = append(out, st)
	}
	slices.SortFunc(out, func(x, y *station) int {
		if x.associated() != y.associated() {
			if x.associated() {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(x.seq, y.seq), x.since.Compare(y.since), bytes.Compare(x.mac, y.mac))
	})
	return out
}

// associated lists the associated stations in association order.
func (a *AP) associated() []*station {
	var out []*station
	for _, st := range a.sortedStations() {
		if st.associated() {
			out = append(out, st)
		}
	}
	return out
}

// countAssociated counts the associated stations other than except.
func (a *AP) countAssociated(except *station) int {
	n := 0
	for _, st := range a.stations {
		if st != except && st.associated() {
			n++
		}
	}
	return n
}

// freeAID returns the lowest association ID no station holds, 0 if none.
func (a *AP) freeAID() uint16 {
	used := make(map[uint16]bool, len(a.stations))
	for _, st := range a.stations {
		if st.aid != 0 {
			used[st.aid] = true
		}
	}
	for id := uint16(1); id <= maxAID; id++ {
		if !used[id] {
			return id
		}
	}
	return 0
}

// addPending records a newly authenticated station, making room when the
// bound on such stations is reached: expired entries go first, then the
// oldest, so that a flood from random addresses costs bounded memory and
// a real client authenticating in it still gets through (it associates
// within milliseconds).
func (a *AP) addPending(mac net.HardwareAddr) *station {
	now := a.clk.Now()
	if a.pending >= a.cfg.MaxPending {
		var oldest *station
		for _, st := range a.stations {
			if st.state != stAuth {
				continue
			}
			if now.Sub(st.since) >= a.cfg.AuthTimeout {
				a.forget(st)
				continue
			}
			if oldest == nil || st.since.Before(oldest.since) {
				oldest = st
			}
		}
		if a.pending >= a.cfg.MaxPending && oldest != nil {
			a.forget(oldest)
		}
	}
	st := &station{mac: slices.Clone(mac), state: stAuth, since: now}
	a.stations[string(st.mac)] = st
	a.pending++
	return st
}

// forget drops a station's state and reports it left if it had joined.
// A station still in the kernel is removed from it without a word: it is
// the one that left, or it starts over.
func (a *AP) forget(st *station) {
	if a.stations[string(st.mac)] != st {
		return
	}
	a.stopTimer(st)
	a.removeSilently(st)
	delete(a.stations, string(st.mac))
	if st.state == stAuth {
		a.pending--
	}
	if st.state == stJoined {
		mac := st.mac.String()
		a.report(func(r Reporter) { r.StationLeft(mac) })
		a.log.Info("station left", "mac", macValue(st.mac))
	}
	if a.rekey != nil {
		a.groupAnswered(st)
	}
}

// join marks st authorized and reports it.
func (a *AP) join(st *station) {
	st.state = stJoined
	s := sharing.Station{MAC: slices.Clone(st.mac), SignalDBm: st.signal}
	a.report(func(r Reporter) { r.StationJoined(s) })
	a.log.Info("station joined", "mac", macValue(st.mac), "aid", st.aid, "signal_dbm", st.signal,
		"since_auth", a.clk.Now().Sub(st.since).Round(time.Millisecond))
}

// deauth tells st it is out (a deauthentication frame), removes it from
// the kernel and forgets it. For a station the kernel knows, DelStation
// sends the frame.
func (a *AP) deauth(ctx context.Context, st *station, reason uint16) {
	if st.inKernel {
		if err := a.radio.DelStation(ctx, st.mac, reason); err != nil {
			a.log.Debug("access point: remove station", "mac", macValue(st.mac), "err", err)
		}
		st.inKernel = false
	} else {
		a.sendDeauth(ctx, st.mac, reason)
	}
	a.forget(st)
}

// reasonSilent asks DelStation to remove a station without sending it a
// deauthentication frame, for a station that left by itself or is
// authenticating or associating again (a deauthentication then would
// abort that). nl80211.AP does not know it yet and sends reason 1.
const reasonSilent = 0

func (a *AP) removeSilently(st *station) {
	if !st.inKernel {
		return
	}
	ctx, cancel := opContext()
	defer cancel()
	if err := a.radio.DelStation(ctx, st.mac, reasonSilent); err != nil {
		a.log.Debug("access point: remove station", "mac", macValue(st.mac), "err", err)
	}
	st.inKernel = false
}

// armTimer (re)starts st's timer; f runs under a.mu unless the timer was
// re-armed or stopped, the station forgotten or the AP restarted since.
func (a *AP) armTimer(st *station, d time.Duration, f func()) {
	a.stopTimer(st)
	st.timerSeq++
	seq, gen := st.timerSeq, a.gen
	st.timer = a.clk.AfterFunc(d, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.gen != gen || a.stations[string(st.mac)] != st || st.timerSeq != seq {
			return
		}
		st.timer = nil
		f()
	})
}

func (a *AP) stopTimer(st *station) {
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
	st.timerSeq++
}
