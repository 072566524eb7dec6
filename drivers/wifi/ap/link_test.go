package ap

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/wifi"
)

// linkRadio is the fake radio with the kernel's station information.
type linkRadio struct {
	*fakeRadio
	mu    sync.Mutex
	infos []*wifi.StationInfo
	calls int
}

func (r *linkRadio) StationInfo() ([]*wifi.StationInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	return r.infos, nil
}

func (r *linkRadio) set(infos ...*wifi.StationInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.infos = infos
}

func TestLinksAreRefreshed(t *testing.T) {
	h := newHarness(t, 5)
	radio := &linkRadio{fakeRadio: h.radio}
	h.ap.radio = radio
	s1 := newSupplicant(t, 1, testPass)
	h.join(s1)
	h.rep.take()
	for len(h.rep.notify) > 0 {
		<-h.rep.notify
	}
	timers := h.clk.Pending() // the group rekey's

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.ap.Run(ctx) }()
	stranger := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	radio.set(
		&wifi.StationInfo{HardwareAddr: s1.mac, Signal: -61, ReceiveBitrate: 54_000_000, TransmitBitrate: 65_000_000},
		&wifi.StationInfo{HardwareAddr: stranger, Signal: -20},
	)
	waitTimer(t, h, timers)
	h.clk.Advance(LinkRefresh)
	<-h.rep.notify
	expectEvents(t, h.rep.take(), "joined 02:11:22:33:44:01 -61 rx 54000 tx 65000")

	// Unchanged: nothing to report; the refresh goes on.
	waitTimer(t, h, timers)
	h.clk.Advance(LinkRefresh)
	waitTimer(t, h, timers)
	if ev := h.rep.take(); len(ev) != 0 {
		t.Errorf("reported an unchanged link: %q", ev)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Run: %v", err)
	}
	if n := h.clk.Pending(); n != timers {
		t.Errorf("%d timers after Run, want the %d from before", n, timers)
	}
}

// waitTimer waits until Run has armed its next refresh.
func waitTimer(t *testing.T, h *harness, others int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.clk.Pending() <= others {
		if time.Now().After(deadline) {
			t.Fatal("no refresh armed")
		}
		time.Sleep(time.Millisecond)
	}
}
