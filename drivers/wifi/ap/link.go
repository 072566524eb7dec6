package ap

import (
	"bytes"
	"slices"
	"time"

	"github.com/mdlayher/wifi"

	"github.com/openmifi/openmifi/internal/sharing"
)

// LinkRefresh is how often the joined stations' signal and rates are read
// from the kernel, for the client list.
const LinkRefresh = 10 * time.Second

// linkReader is a radio that can say how its stations are doing; the
// nl80211 radio can, a test's fake may not.
type linkReader interface {
	StationInfo() ([]*wifi.StationInfo, error)
}

// armLinks schedules the next refreshLinks on Run's loop; stop cancels it.
func (a *AP) armLinks(tick chan<- struct{}) (stop func()) {
	t := a.clk.AfterFunc(LinkRefresh, func() {
		select {
		case tick <- struct{}{}:
		default:
		}
	})
	return func() { t.Stop() }
}

// refreshLinks reads the joined stations' signal and rates and reports
// the stations whose link changed: the state machine takes a repeated
// join as an update.
func (a *AP) refreshLinks(r linkReader) {
	infos, err := r.StationInfo()
	if err != nil {
		a.rl.Debug("station-info", "access point: station information", "err", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, in := range infos {
		st := a.stations[string(in.HardwareAddr)]
		if st == nil || st.state != stJoined || !bytes.Equal(st.mac, in.HardwareAddr) {
			continue
		}
		s := sharing.Station{MAC: slices.Clone(st.mac), SignalDBm: in.Signal,
			RxRateKbps: in.ReceiveBitrate / 1000, TxRateKbps: in.TransmitBitrate / 1000}
		if s.SignalDBm == 0 {
			s.SignalDBm = st.signal // no frame from it since the last look
		}
		if s.SignalDBm == st.signal && s.RxRateKbps == st.rxKbps && s.TxRateKbps == st.txKbps {
			continue
		}
		st.signal, st.rxKbps, st.txKbps = s.SignalDBm, s.RxRateKbps, s.TxRateKbps
		a.report(func(r Reporter) { r.StationJoined(s) })
	}
}
