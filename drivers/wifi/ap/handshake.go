package ap

import (
	"context"
	"errors"

	"github.com/openmifi/openmifi/drivers/wifi/nl80211"
	"github.com/openmifi/openmifi/drivers/wifi/wpa"
)

// startHandshake sends message 1 of the 4-way handshake to a station that
// associated, once it has acknowledged our association response (or the
// timer gave up waiting for that acknowledgement).
func (a *AP) startHandshake(ctx context.Context, st *station, acked bool) {
	if st.hsStarted || st.hs == nil {
		return
	}
	st.hsStarted = true
	a.log.Debug("4-way handshake starts", "mac", macValue(st.mac), "association_response_acked", acked)
	frame, err := st.hs.Start()
	if err != nil {
		a.log.Warn("access point: 4-way handshake message 1", "mac", macValue(st.mac), "err", err)
		a.deauth(ctx, st, reasonUnspecified)
		return
	}
	a.sendEAPOL(ctx, st, frame)
}

// sendEAPOL sends a handshake message and arms the retransmission timer.
func (a *AP) sendEAPOL(ctx context.Context, st *station, frame []byte) {
	if err := a.radio.SendEAPOL(ctx, st.mac, frame); err != nil {
		a.log.Debug("access point: send EAPOL", "mac", macValue(st.mac), "err", err)
	}
	a.armTimer(st, a.cfg.Retransmit, func() { a.retransmit(st) })
}

// retransmit runs when a station did not answer in time: our message goes
// again, and once the handshake's attempts are spent the station is
// deauthenticated.
func (a *AP) retransmit(st *station) {
	ctx, cancel := opContext()
	defer cancel()
	if !st.hsStarted {
		// No acknowledgement of the association response came.
		a.startHandshake(ctx, st, false)
		return
	}
	frame, ok := st.hs.Retransmit()
	if !ok {
		reason := uint16(reason4WayTimeout)
		switch {
		case st.state == stJoined:
			reason = reasonGroupKeyTimeout
		case st.micFailed:
			// What hostapd says when the PSK is most likely wrong.
			reason = reasonPrevAuthNotValid
			a.log.Warn("station failed the 4-way handshake: wrong passphrase?", "mac", macValue(st.mac))
		default:
			a.log.Info("station did not complete the key handshake", "mac", macValue(st.mac))
		}
		a.deauth(ctx, st, reason)
		return
	}
	a.sendEAPOL(ctx, st, frame)
}

// handleEAPOL feeds an EAPOL frame to its station's handshake and does
// what the handshake says.
func (a *AP) handleEAPOL(ctx context.Context, ev nl80211.Event) {
	st := a.stations[string(ev.MAC)]
	if st == nil || !st.associated() {
		// Class 3 frame from a station that is not associated.
		a.rl.Debug("eapol-stranger", "access point: EAPOL from a station not associated", "mac", macValue(ev.MAC))
		if st == nil || st.state == stAuth {
			a.sendDeauthLimited(ctx, ev.MAC, reasonClass3)
		}
		return
	}
	if st.hs == nil {
		return
	}
	if ev.SignalDBm != 0 {
		st.signal = ev.SignalDBm
	}
	step, err := st.hs.Handle(ev.Frame)
	if err != nil {
		if errors.Is(err, wpa.ErrMIC) {
			if !st.micFailed {
				a.log.Info("station sent an EAPOL-Key frame with a bad MIC", "mac", macValue(st.mac))
			}
			st.micFailed = true
		} else {
			a.rl.Debug("eapol-bad", "access point: EAPOL frame dropped", "mac", macValue(st.mac), "err", err)
		}
		if !step.Deauth {
			return
		}
	}
	if step.Deauth {
		reason := reasonUnspecified
		if errors.Is(err, wpa.ErrRSNE) {
			reason = reasonIEDiffers // a downgrade attempt
		}
		a.log.Info("station deauthenticated by its key handshake", "mac", macValue(st.mac), "err", err)
		a.deauth(ctx, st, reason)
		return
	}
	// The pairwise key goes in first: a group key message that comes
	// with it is then sent encrypted, as after any 4-way handshake.
	if step.InstallPairwise {
		if err := a.radio.SetPairwiseKey(ctx, st.mac, st.hs.TK()); err != nil {
			a.log.Warn("access point: install pairwise key", "mac", macValue(st.mac), "err", err)
			a.deauth(ctx, st, reasonUnspecified)
			return
		}
	}
	if step.Send != nil {
		a.sendEAPOL(ctx, st, step.Send)
	}
	if step.Authorize {
		if step.Send == nil {
			a.stopTimer(st)
		}
		if err := a.radio.SetAuthorized(ctx, st.mac, true); err != nil {
			a.log.Warn("access point: authorize station", "mac", macValue(st.mac), "err", err)
			a.deauth(ctx, st, reasonUnspecified)
			return
		}
		st.micFailed = false
		a.join(st)
	}
	if step.GroupDone {
		if step.Send == nil {
			a.stopTimer(st)
		}
		a.groupAnswered(st)
	}
}
