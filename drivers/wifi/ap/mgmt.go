package ap

import (
	"bytes"
	"context"
	"errors"
	"net"
	"time"

	"github.com/openmifi/openmifi/drivers/wifi/ieee80211"
	"github.com/openmifi/openmifi/drivers/wifi/nl80211"
	"github.com/openmifi/openmifi/drivers/wifi/wpa"
)

// assocAckWait is how long message 1 waits for the station to acknowledge
// our association response: sent earlier, a station that has not taken
// the response in yet drops it and the handshake loses a retransmission
// interval.
const assocAckWait = 200 * time.Millisecond

// handleFrame answers a management frame.
func (a *AP) handleFrame(ctx context.Context, ev nl80211.Event) {
	m, err := ieee80211.ParseMgmt(ev.Frame)
	if err != nil {
		a.rl.Debug("frame-parse", "access point: management frame dropped", "mac", macValue(ev.MAC), "err", err)
		return
	}
	sa := m.SA.HardwareAddr()
	if sa[0]&1 != 0 || bytes.Equal(sa, a.radio.Addr()) {
		a.rl.Debug("frame-source", "access point: frame from a group or our own address dropped", "mac", macValue(sa))
		return
	}
	bssid := a.bss.frames.BSSID
	if _, probe := m.Body.(*ieee80211.ProbeRequest); !probe && (m.BSSID != bssid || m.DA != bssid) {
		return // for another BSS
	}
	switch body := m.Body.(type) {
	case *ieee80211.ProbeRequest:
		a.handleProbe(ctx, m, body)
	case *ieee80211.Auth:
		a.handleAuth(ctx, m, body, ev.SignalDBm)
	case *ieee80211.AssocRequest:
		a.handleAssoc(ctx, m, body, ev.SignalDBm)
	case *ieee80211.Deauth:
		a.stationLeaves(sa, "deauthenticated", body.Reason)
	case *ieee80211.Disassoc:
		a.stationLeaves(sa, "disassociated", body.Reason)
	case *ieee80211.Raw:
		// Action frames other than public ones are class 3.
		if body.Kind == ieee80211.SubtypeAction && len(body.Data) > 0 && body.Data[0] != categoryPublic {
			if st := a.stations[string(sa)]; st == nil || !st.associated() {
				a.sendDeauthLimited(ctx, sa, reasonClass3)
			}
		}
	}
}

// categoryPublic is the action frame category usable outside an
// association (class 1).
const categoryPublic = 4

func (a *AP) handleProbe(ctx context.Context, m *ieee80211.Mgmt, p *ieee80211.ProbeRequest) {
	b := a.bss
	if m.BSSID != ieee80211.Broadcast && m.BSSID != b.frames.BSSID {
		return
	}
	if !p.Wants(b.ssid, b.hidden) || !a.probes.allow(a.clk.Now()) {
		return
	}
	frame, err := b.frames.ProbeResponse(m.SA)
	if err != nil {
		a.log.Warn("access point: build probe response", "err", err)
		return
	}
	// A probe sent to everyone gets an answer nobody acknowledges.
	if _, err := a.radio.SendFrame(ctx, frame, b.freq, m.DA == ieee80211.Broadcast); err != nil {
		a.rl.Debug("send-probe", "access point: send probe response", "err", err)
	}
}

func (a *AP) handleAuth(ctx context.Context, m *ieee80211.Mgmt, auth *ieee80211.Auth, signal int) {
	sa := m.SA.HardwareAddr()
	if auth.Seq != 1 {
		a.rl.Debug("auth-seq", "access point: authentication frame out of sequence", "mac", macValue(sa), "seq", auth.Seq)
		return
	}
	if auth.Algorithm != ieee80211.AuthOpenSystem {
		a.rl.Debug("auth-alg", "access point: authentication algorithm refused", "mac", macValue(sa), "algorithm", auth.Algorithm)
		if a.replies.allow(a.clk.Now()) {
			a.sendAuth(ctx, m, ieee80211.StatusAuthAlgUnsupported)
		}
		return
	}
	st := a.stations[string(sa)]
	if st != nil && st.associated() {
		// It starts over: whatever it had with us is gone.
		a.log.Info("associated station authenticates again", "mac", macValue(sa))
		a.forget(st)
		st = nil
	}
	if st == nil && a.countAssociated(nil) >= a.bss.max {
		// Refused here already, so that the client backs off cleanly
		// before associating.
		a.rl.Debug("auth-full", "access point: authentication refused: station limit reached", "mac", macValue(sa), "max_stations", a.bss.max)
		if a.replies.allow(a.clk.Now()) {
			a.sendAuth(ctx, m, ieee80211.StatusTooManyStations)
		}
		return
	}
	if st == nil {
		st = a.addPending(sa)
	}
	st.since = a.clk.Now()
	if signal != 0 {
		st.signal = signal
	}
	a.sendAuth(ctx, m, ieee80211.StatusSuccess)
}

func (a *AP) sendAuth(ctx context.Context, req *ieee80211.Mgmt, status ieee80211.StatusCode) {
	frame, err := a.bss.frames.AuthResponse(req, status)
	if err != nil {
		a.log.Warn("access point: build authentication response", "err", err)
		return
	}
	if _, err := a.radio.SendFrame(ctx, frame, a.bss.freq, false); err != nil {
		a.rl.Debug("send-auth", "access point: send authentication response", "err", err)
	}
}

func (a *AP) handleAssoc(ctx context.Context, m *ieee80211.Mgmt, req *ieee80211.AssocRequest, signal int) {
	sa := m.SA.HardwareAddr()
	st := a.stations[string(sa)]
	if st == nil {
		a.rl.Debug("assoc-noauth", "access point: association request without authentication", "mac", macValue(sa))
		a.sendDeauthLimited(ctx, sa, reasonClass2)
		return
	}
	if signal != 0 {
		st.signal = signal
	}
	status, rsne := a.checkAssoc(st, req)
	if st.state == stAssoc && status == ieee80211.StatusSuccess && bytes.Equal(rsne, st.rsne) {
		// Our response got lost: say it again, the handshake goes on.
		st.assocReply = a.sendAssocResp(ctx, m, ieee80211.StatusSuccess, st.aid)
		return
	}
	if st.associated() {
		// It roams back or asks for something else: start its
		// association over.
		a.unassociate(st)
	}
	if status != ieee80211.StatusSuccess {
		a.log.Info("association refused", "mac", macValue(sa), "status", status)
		a.sendAssocResp(ctx, m, status, 0)
		return
	}
	p := nl80211.StationParams{
		MAC: st.mac, AID: a.freeAID(), ListenInterval: req.ListenInterval,
		Capability: uint16(req.Capability), Rates: legacyRates(req.Elements.Rates()),
	}
	if e, ok := req.Elements.Find(ieee80211.IDHTCapabilities); ok && a.bss.ht && len(e.Data) == ieee80211.HTCapabilitiesLen {
		p.HTCapElement = bytes.Clone(e.Data)
	}
	_, p.WMM = req.Elements.WMM()
	hs, err := wpa.NewHandshake(a.handshakeConfig(), st.mac, rsne)
	if err != nil {
		a.log.Warn("access point: prepare handshake", "mac", macValue(sa), "err", err)
		a.sendAssocResp(ctx, m, ieee80211.StatusUnspecified, 0)
		return
	}
	if err := a.radio.NewStation(ctx, p); err != nil {
		a.log.Warn("access point: add station", "mac", macValue(sa), "err", err)
		a.sendAssocResp(ctx, m, ieee80211.StatusUnspecified, 0)
		return
	}
	a.pending--
	a.seq++
	st.state, st.seq, st.aid, st.inKernel, st.hs, st.rsne = stAssoc, a.seq, p.AID, true, hs, rsne
	st.assocReply = a.sendAssocResp(ctx, m, ieee80211.StatusSuccess, p.AID)
	a.log.Info("station associated", "mac", macValue(sa), "aid", p.AID, "reassoc", req.Reassoc)
	a.armTimer(st, assocAckWait, func() { a.retransmit(st) })
}

// checkAssoc decides an association request; on success it returns the
// station's RSN element with its header.
func (a *AP) checkAssoc(st *station, req *ieee80211.AssocRequest) (ieee80211.StatusCode, []byte) {
	b := a.bss
	if ssid, ok := req.Elements.SSID(); !ok || !bytes.Equal(ssid, b.ssid) {
		return ieee80211.StatusUnspecified, nil
	}
	if !ieee80211.SupportsBasicRates(b.rates, req.Elements.Rates()) {
		return ieee80211.StatusBasicRatesUnsupported, nil
	}
	if req.Elements.Count(ieee80211.IDRSN) > 1 {
		return ieee80211.StatusInvalidElement, nil
	}
	e, _ := req.Elements.Find(ieee80211.IDRSN)
	if err := ieee80211.CheckRSN(b.rsne[2:], e.Data); err != nil {
		var se *ieee80211.StatusError
		if errors.As(err, &se) {
			a.log.Debug("access point: RSN element refused", "mac", macValue(st.mac), "err", err)
			return se.Code, nil
		}
		return ieee80211.StatusInvalidElement, nil
	}
	if a.countAssociated(st) >= b.max {
		return ieee80211.StatusTooManyStations, nil
	}
	if a.freeAID() == 0 {
		return ieee80211.StatusTooManyStations, nil
	}
	rsne, err := ieee80211.Elements{e}.Marshal()
	if err != nil {
		return ieee80211.StatusInvalidElement, nil
	}
	return ieee80211.StatusSuccess, rsne
}

// sendAssocResp answers a (re)association request and returns the cookie
// that the transmit status will carry.
func (a *AP) sendAssocResp(ctx context.Context, req *ieee80211.Mgmt, status ieee80211.StatusCode, aid uint16) uint64 {
	frame, err := a.bss.frames.AssocResponse(req, status, aid)
	if err != nil {
		a.log.Warn("access point: build association response", "err", err)
		return 0
	}
	cookie, err := a.radio.SendFrame(ctx, frame, a.bss.freq, false)
	if err != nil {
		a.rl.Debug("send-assoc", "access point: send association response", "err", err)
		return 0
	}
	return cookie
}

// unassociate takes an associated station back to authenticated.
func (a *AP) unassociate(st *station) {
	a.stopTimer(st)
	a.removeSilently(st)
	if st.state == stJoined {
		mac := st.mac.String()
		a.report(func(r Reporter) { r.StationLeft(mac) })
	}
	if a.rekey != nil {
		a.groupAnswered(st)
	}
	st.state, st.aid, st.hs, st.hsStarted, st.assocReply, st.micFailed = stAuth, 0, nil, false, 0, false
	st.since = a.clk.Now()
	a.pending++
}

// legacyRates keeps the rates of a station's rates elements, leaving out
// BSS membership selectors (HT PHY, VHT PHY…), which NEW_STATION does not
// take.
func legacyRates(rs []ieee80211.Rate) []byte {
	out := make([]byte, 0, len(rs))
	for _, r := range rs {
		if r.Value() > 0 && r.Value() <= 108 { // up to 54 Mbit/s
			out = append(out, byte(r))
		}
	}
	return out
}

// stationLeaves handles a station's deauthentication or disassociation.
func (a *AP) stationLeaves(mac net.HardwareAddr, how string, reason ieee80211.ReasonCode) {
	st := a.stations[string(mac)]
	if st == nil {
		return
	}
	if st.associated() {
		a.log.Info("station "+how+" itself", "mac", macValue(mac), "reason", reason)
	}
	a.forget(st)
}

// handleTxStatus starts the handshake of the station whose association
// response was just acknowledged.
func (a *AP) handleTxStatus(ctx context.Context, ev nl80211.Event) {
	if ev.Cookie == 0 {
		return
	}
	for _, st := range a.stations {
		if st.state == stAssoc && st.assocReply == ev.Cookie && !st.hsStarted {
			if ev.Ack {
				a.startHandshake(ctx, st, true)
			}
			return
		}
	}
}

// sendDeauth sends a deauthentication frame.
func (a *AP) sendDeauth(ctx context.Context, mac net.HardwareAddr, reason uint16) {
	to, err := ieee80211.AddrFrom(mac)
	if err != nil || a.bss == nil {
		return
	}
	frame := a.bss.frames.Deauth(to, ieee80211.ReasonCode(reason))
	if _, err := a.radio.SendFrame(ctx, frame, a.bss.freq, false); err != nil {
		a.rl.Debug("send-deauth", "access point: send deauthentication", "mac", macValue(mac), "err", err)
	}
}

// sendDeauthLimited deauthenticates a station we hold no state for,
// within the rate of answers to strangers.
func (a *AP) sendDeauthLimited(ctx context.Context, mac net.HardwareAddr, reason uint16) {
	if len(mac) != 6 || mac[0]&1 != 0 || !a.replies.allow(a.clk.Now()) {
		return
	}
	a.sendDeauth(ctx, mac, reason)
}
