package sharing

// Timers and the events drivers report.

import (
	"fmt"
	"net"
	"time"
)

// arm (re)starts timer k.
func (m *Machine) arm(k timerKind, d time.Duration) {
	m.disarm(k)
	m.timerSeq++
	seq := m.timerSeq
	m.timers[k] = &armed{seq: seq, t: m.clk.AfterFunc(d, func() { m.send(timerFired{k, seq}) })}
}

func (m *Machine) disarm(k timerKind) {
	if a := m.timers[k]; a != nil {
		a.t.Stop()
		delete(m.timers, k)
	}
}

type timerFired struct {
	kind timerKind
	seq  int
}

func (e timerFired) apply(m *Machine) {
	a := m.timers[e.kind]
	if a == nil || a.seq != e.seq || m.state != On {
		return // stopped or re-armed after it fired
	}
	delete(m.timers, e.kind)
	h := m.prov.HotSpot
	switch e.kind {
	case timerPeerless:
		m.log.Info("no clients", "for", h.PeerlessTimeout)
		m.stop(ReasonPeerless, "")
	case timerPublic:
		m.log.Info("no public connection", "for", h.PublicConnectionTimeout)
		m.stop(ReasonNoPublicConnection, fmt.Sprintf("no public connection for %v", h.PublicConnectionTimeout))
	case timerRecheck:
		if m.op != nil {
			// An AP restart is under way; check once it is done.
			m.arm(timerRecheck, time.Minute)
			return
		}
		m.launch(opRecheck, m.entitleOp())
	}
}

type publicUp struct{ info UplinkInfo }

func (e publicUp) apply(m *Machine) {
	wasUp := m.uplink.Up
	if !wasUp {
		m.log.Info("public connection up", "interface", e.info.Interface, "operator", e.info.Operator, "technology", e.info.Technology)
	}
	m.uplink = UplinkStatus{Up: true, UplinkInfo: e.info}
	if f := m.cfg.UplinkChanged; f != nil {
		f(m.uplink)
	}
	m.disarm(timerPublic)
	m.syncUplink(!wasUp)
}

type publicDown struct{ reason string }

func (e publicDown) apply(m *Machine) {
	if m.uplink.Up {
		m.log.Warn("public connection down", "reason", e.reason)
	}
	m.uplink.Up, m.uplink.DownReason = false, e.reason
	if f := m.cfg.UplinkChanged; f != nil {
		f(m.uplink)
	}
	if m.state == On && m.timers[timerPublic] == nil {
		m.arm(timerPublic, m.prov.HotSpot.PublicConnectionTimeout)
	}
}

type stationJoined struct{ st Station }

func (e stationJoined) apply(m *Machine) {
	if m.state != Starting && m.state != On {
		return
	}
	mac := e.st.MAC.String()
	old, ok := m.stations[mac]
	entry := stationEntry{Station: e.st, joined: m.clk.Now()}
	if ok {
		entry.joined = old.joined
	} else {
		m.log.Info("client joined", "mac", mac)
		if f := m.cfg.StationChanged; f != nil {
			f(e.st.MAC, true)
		}
	}
	m.stations[mac] = entry
	m.disarm(timerPeerless)
}

type stationLeft struct{ mac string }

func (e stationLeft) apply(m *Machine) {
	if _, ok := m.stations[e.mac]; !ok {
		return
	}
	delete(m.stations, e.mac)
	m.log.Info("client left", "mac", e.mac)
	if f := m.cfg.StationChanged; f != nil {
		if hw, err := net.ParseMAC(e.mac); err == nil {
			f(hw, false)
		}
	}
	if len(m.stations) == 0 && m.state == On {
		m.arm(timerPeerless, m.prov.HotSpot.PeerlessTimeout)
	}
}

type identityEvent struct{ id Identity }

func (e identityEvent) apply(m *Machine) { m.identity = e.id }

type driverFailed struct {
	driver string
	err    error
}

func (e driverFailed) apply(m *Machine) {
	if m.state != Starting && m.state != On {
		return
	}
	m.log.Error("driver failed: sharing stops", "driver", e.driver, "err", e.err)
	m.stop(ReasonStartFailure, fmt.Sprintf("%s failed: %v", e.driver, e.err))
}
