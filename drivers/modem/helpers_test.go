package modem

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openmifi/openmifi/drivers/modem/at"
	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/modemsim"
	"github.com/openmifi/openmifi/internal/sharing"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// waitLimit bounds how long a test waits for something that should come
// at once; it is a guard against hangs, not a measured time.
const waitLimit = 20 * time.Second

// recorder is a Reporter that keeps what it was told.
type recorder struct {
	ch chan string
	mu sync.Mutex
	up sharing.UplinkInfo
	id sharing.Identity
}

func newRecorder() *recorder { return &recorder{ch: make(chan string, 1000)} }

func (r *recorder) PublicUp(info sharing.UplinkInfo) {
	r.mu.Lock()
	r.up = info
	r.mu.Unlock()
	r.ch <- fmt.Sprintf("up %s %v %s %s %d dBm %d bars", info.Interface, info.Addresses, info.Operator, info.Technology, info.SignalDBm, info.SignalBars)
}

func (r *recorder) PublicDown(reason string) { r.ch <- "down " + reason }

func (r *recorder) SetIdentity(id sharing.Identity) {
	r.mu.Lock()
	r.id = id
	r.mu.Unlock()
	r.ch <- "identity " + id.IMSI
}

func (r *recorder) last() (sharing.UplinkInfo, sharing.Identity) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up, r.id
}

// fakeAddresser records what the driver asks of the interface.
type fakeAddresser struct {
	mu    sync.Mutex
	calls []string
	fail  error
}

func (f *fakeAddresser) Up(ctx context.Context, iface, mode string, want Addressing) (Addressing, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("up %s %s %v gw %v dns %v", iface, mode, want.Addrs, want.Gateway, want.DNS))
	return want, f.fail
}

func (f *fakeAddresser) Down(ctx context.Context, iface string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "down "+iface)
	return nil
}

func (f *fakeAddresser) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// rig is a driver against the simulator over a real pseudo-terminal, both
// on one fake clock.
type rig struct {
	t    *testing.T
	clk  *clock.Fake
	sim  *modemsim.Modem
	drv  *Driver
	rec  *recorder
	addr *fakeAddresser
	link string
}

func newRig(t *testing.T, sim modemsim.Config, cfg Config, scenario string) *rig {
	t.Helper()
	clk := clock.NewFake(epoch)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	if scenario != "" {
		sc, err := modemsim.ParseScenario(t.Name(), strings.NewReader(scenario))
		if err != nil {
			t.Fatal(err)
		}
		sim.Scenario = sc
	}
	sim.Clock, sim.Logger = clk, log.With("who", "sim")
	m := modemsim.New(sim)
	ctx, cancel := context.WithCancel(context.Background())
	link := filepath.Join(t.TempDir(), "ttyModem")
	path, wait, err := m.ListenPTY(ctx, link)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	fa := &fakeAddresser{}
	cfg.Open = at.Serial(path, 115200)
	cfg.Clock, cfg.Log = clk, log
	if cfg.ATTimeout == 0 {
		// Minutes go by in single steps of the fake clock: no
		// command may time out unless a test asks for it.
		cfg.ATTimeout = 24 * time.Hour
	}
	if cfg.Interface == "" {
		cfg.Interface = "wwan0"
	}
	if cfg.Addressing == "" {
		cfg.Addressing = AddressingStatic
	}
	cfg.Addresser = fa
	d := New(cfg)
	rec := newRecorder()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, rec) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
		if err := wait(); err != nil {
			t.Errorf("ListenPTY: %v", err)
		}
		m.Close()
		if _, err := os.Lstat(link); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("link left behind: %v", err)
		}
	})
	return &rig{t: t, clk: clk, sim: m, drv: d, rec: rec, addr: fa, link: link}
}

// expect waits for a report starting with prefix and returns it; reports
// before it are skipped (and logged). While waiting it moves the clock on
// by step, if step is set, so that back-offs and scenario steps run.
func (r *rig) expect(prefix string, step time.Duration) string {
	r.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		select {
		case ev := <-r.rec.ch:
			if strings.HasPrefix(ev, prefix) {
				return ev
			}
			r.t.Logf("report (skipped): %s", ev)
		case <-time.After(5 * time.Millisecond):
			if step > 0 {
				r.clk.Advance(step)
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no report %q", prefix)
		}
	}
}

// quiet checks that no report starting with prefix is pending.
func (r *rig) none(prefix string) {
	r.t.Helper()
	for {
		select {
		case ev := <-r.rec.ch:
			if strings.HasPrefix(ev, prefix) {
				r.t.Errorf("unexpected report: %s", ev)
			}
		default:
			return
		}
	}
}
