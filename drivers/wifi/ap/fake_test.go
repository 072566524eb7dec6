package ap

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"

	"github.com/openmifi/openmifi/drivers/wifi/nl80211"
	"github.com/openmifi/openmifi/internal/sharing"
)

// fakeRadio records what the AP asks of the kernel.
type fakeRadio struct {
	mu        sync.Mutex
	addr      net.HardwareAddr
	events    chan nl80211.Event
	started   *nl80211.StartConfig
	startErr  error
	frames    [][]byte // management frames sent
	cookie    uint64
	eapol     map[string][][]byte
	stations  map[string]*fakeSta
	dels      []string // "mac reason"
	groupKeys []string // "idx gtkhex"
	stops     int
	countries []string      // SetCountry calls
	eapolSent chan struct{} // a token per SendEAPOL, for tests that run Run
}

func (r *fakeRadio) SetCountry(ctx context.Context, alpha2 string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.countries = append(r.countries, alpha2)
	return nil
}

type fakeSta struct {
	params     nl80211.StationParams
	authorized bool
	tk         []byte
}

func newFakeRadio() *fakeRadio {
	return &fakeRadio{
		addr:      net.HardwareAddr{0x02, 0, 0, 0, 0xaa, 0x01},
		events:    make(chan nl80211.Event, 16),
		eapolSent: make(chan struct{}, 64),
		eapol:     map[string][][]byte{},
		stations:  map[string]*fakeSta{},
	}
}

func (r *fakeRadio) StartAP(ctx context.Context, cfg nl80211.StartConfig) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.startErr != nil {
		return r.startErr
	}
	r.started = &cfg
	return nil
}

func (r *fakeRadio) StopAP(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = nil
	r.stops++
	return nil
}

func (r *fakeRadio) SetBeacon(ctx context.Context, head, tail []byte) error { return nil }

func (r *fakeRadio) SendFrame(ctx context.Context, frame []byte, freqMHz int, noAck bool) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, slices.Clone(frame))
	r.cookie++
	return r.cookie, nil
}

func (r *fakeRadio) SendEAPOL(ctx context.Context, to net.HardwareAddr, frame []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.eapol[to.String()] = append(r.eapol[to.String()], slices.Clone(frame))
	select {
	case r.eapolSent <- struct{}{}:
	default:
	}
	return nil
}

func (r *fakeRadio) NewStation(ctx context.Context, p nl80211.StationParams) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.stations[p.MAC.String()]; ok {
		return fmt.Errorf("station %s exists", p.MAC)
	}
	r.stations[p.MAC.String()] = &fakeSta{params: p}
	return nil
}

func (r *fakeRadio) sta(mac net.HardwareAddr) (*fakeSta, error) {
	s := r.stations[mac.String()]
	if s == nil {
		return nil, fmt.Errorf("no station %s", mac)
	}
	return s, nil
}

func (r *fakeRadio) SetAuthorized(ctx context.Context, mac net.HardwareAddr, authorized bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.sta(mac)
	if err != nil {
		return err
	}
	s.authorized = authorized
	return nil
}

func (r *fakeRadio) DelStation(ctx context.Context, mac net.HardwareAddr, reason uint16) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dels = append(r.dels, fmt.Sprintf("%s %d", mac, reason))
	if _, err := r.sta(mac); err != nil {
		return err
	}
	delete(r.stations, mac.String())
	return nil
}

func (r *fakeRadio) SetPairwiseKey(ctx context.Context, mac net.HardwareAddr, tk []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.sta(mac)
	if err != nil {
		return err
	}
	s.tk = slices.Clone(tk)
	return nil
}

func (r *fakeRadio) SetGroupKey(ctx context.Context, idx int, gtk []byte, rsc []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.groupKeys = append(r.groupKeys, fmt.Sprintf("%d %x", idx, gtk))
	return nil
}

func (r *fakeRadio) Events() <-chan nl80211.Event { return r.events }
func (r *fakeRadio) Addr() net.HardwareAddr       { return r.addr }

// takeFrames returns the management frames sent since the last call.
func (r *fakeRadio) takeFrames() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.frames
	r.frames = nil
	return f
}

// takeEAPOL returns the EAPOL frames sent to mac since the last call.
func (r *fakeRadio) takeEAPOL(mac net.HardwareAddr) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.eapol[mac.String()]
	delete(r.eapol, mac.String())
	return f
}

func (r *fakeRadio) station(mac net.HardwareAddr) (fakeSta, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stations[mac.String()]
	if s == nil {
		return fakeSta{}, false
	}
	return *s, true
}

func (r *fakeRadio) takeDels() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.dels
	r.dels = nil
	return d
}

// fakeReporter records joins and leaves in order.
type fakeReporter struct {
	mu     sync.Mutex
	events []string
	notify chan struct{}
}

func newFakeReporter() *fakeReporter { return &fakeReporter{notify: make(chan struct{}, 100)} }

func (f *fakeReporter) StationJoined(st sharing.Station) {
	f.mu.Lock()
	ev := fmt.Sprintf("joined %s %d", st.MAC, st.SignalDBm)
	if st.RxRateKbps != 0 || st.TxRateKbps != 0 {
		ev += fmt.Sprintf(" rx %d tx %d", st.RxRateKbps, st.TxRateKbps)
	}
	f.events = append(f.events, ev)
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

func (f *fakeReporter) DriverFailed(driver string, err error) {
	f.mu.Lock()
	f.events = append(f.events, "failed "+driver+": "+err.Error())
	f.mu.Unlock()
}

func (f *fakeReporter) StationLeft(mac string) {
	f.mu.Lock()
	f.events = append(f.events, "left "+mac)
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

func (f *fakeReporter) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.events
	f.events = nil
	return e
}

// The kernel side and the fake both drive the AP.
var (
	_ Radio = (*nl80211.AP)(nil)
	_ Radio = (*fakeRadio)(nil)
)

var (
	_ sharing.AccessPoint = (*AP)(nil)
	_ Reporter            = (*sharing.Machine)(nil)
	_ failureReporter     = (*sharing.Machine)(nil)
)
