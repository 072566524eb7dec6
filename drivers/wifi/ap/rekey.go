package ap

import (
	"context"
	"fmt"
	"io"

	"github.com/openmifi/openmifi/drivers/wifi/wpa"
)

// rekey is a group key change in progress: the new key goes to every
// joined station, and into the kernel once all have answered or been
// dropped, so that no station misses group traffic sent with a key it
// does not have yet.
type rekey struct {
	gtk     []byte
	idx     int
	waiting map[string]bool
}

// armRekey schedules the next group key change; a.mu is held.
func (a *AP) armRekey() {
	if a.cfg.GroupRekey <= 0 || a.bss == nil {
		return
	}
	gen := a.gen
	a.bss.rekeyTimer = a.clk.AfterFunc(a.cfg.GroupRekey, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.gen != gen || a.bss == nil {
			return
		}
		a.startRekey()
		a.armRekey()
	})
}

func (a *AP) stopRekey() {
	if a.bss != nil && a.bss.rekeyTimer != nil {
		a.bss.rekeyTimer.Stop()
		a.bss.rekeyTimer = nil
	}
	a.rekey = nil
}

// startRekey sends a new group key to every joined station.
func (a *AP) startRekey() {
	if a.rekey != nil {
		// The previous change is still waiting for stations: their
		// retransmissions end it soon; skip this round.
		return
	}
	gtk, err := newGTK(a.cfg.Rand)
	if err != nil {
		a.log.Warn("access point: group rekey", "err", err)
		return
	}
	idx := 3 - a.bss.gtkIdx // alternate between key ids 1 and 2
	a.rekey = &rekey{gtk: gtk, idx: idx, waiting: map[string]bool{}}
	// Stations joining from now on get the new key in message 3.
	a.bss.hsGTK, a.bss.hsGTKIdx = gtk, idx
	ctx, cancel := opContext()
	defer cancel()
	for _, st := range a.sortedStations() {
		if !st.associated() || st.hs == nil {
			continue
		}
		// A station in its 4-way handshake gets the new key in
		// message 3, or right after message 4 if message 3 is out
		// already: that one is waited for too.
		waitMsg4 := st.hs.State() == wpa.StateWaitMsg4
		frame, err := st.hs.RekeyGroup(gtk, idx)
		if err != nil {
			a.log.Debug("access point: group key message 1", "mac", macValue(st.mac), "err", err)
			continue
		}
		if frame == nil && !waitMsg4 {
			continue
		}
		a.rekey.waiting[string(st.mac)] = true
		if frame != nil {
			a.sendEAPOL(ctx, st, frame)
		}
	}
	a.log.Debug("group rekey started", "stations", len(a.rekey.waiting), "key_id", idx)
	a.finishRekey(ctx)
}

// groupAnswered notes that st finished its group key handshake or is gone.
func (a *AP) groupAnswered(st *station) {
	if a.rekey == nil || !a.rekey.waiting[string(st.mac)] {
		return
	}
	delete(a.rekey.waiting, string(st.mac))
	ctx, cancel := opContext()
	defer cancel()
	a.finishRekey(ctx)
}

// finishRekey installs the new group key once no station is waited for.
func (a *AP) finishRekey(ctx context.Context) {
	r := a.rekey
	if r == nil || len(r.waiting) > 0 || a.bss == nil {
		return
	}
	a.rekey = nil
	if err := a.radio.SetGroupKey(ctx, r.idx, r.gtk, make([]byte, 6)); err != nil {
		// Stations keep the old key beside the new one: newcomers get
		// the old one too, and the next rekey tries again.
		a.log.Warn("access point: install the new group key", "err", err)
		a.bss.hsGTK, a.bss.hsGTKIdx = a.bss.gtk, a.bss.gtkIdx
		return
	}
	a.bss.gtk, a.bss.gtkIdx = r.gtk, r.idx
	a.log.Info("group key changed", "key_id", r.idx)
}

// newGTK draws a CCMP group key.
func newGTK(r io.Reader) ([]byte, error) {
	gtk := make([]byte, 16)
	if _, err := io.ReadFull(r, gtk); err != nil {
		return nil, fmt.Errorf("draw group key: %w", err)
	}
	return gtk, nil
}
