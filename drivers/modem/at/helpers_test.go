package at

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/syncbuf"
)

// openPTY returns a pseudo-terminal pair in raw mode: the modem's side
// (master) and the engine's (slave).
func openPTY(t testing.TB) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	var n int
	err = control(m, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return fmt.Errorf("unlock: %w", err)
		}
		var err error
		if n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN); err != nil {
			return fmt.Errorf("pty number: %w", err)
		}
		return makeRaw(fd)
	})
	if err != nil {
		m.Close()
		t.Fatalf("ptmx: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open pty slave: %v", err)
	}
	if err := control(s, makeRaw); err != nil {
		m.Close()
		s.Close()
		t.Fatalf("pty slave: %v", err)
	}
	return m, s
}

// control runs fn on f's descriptor without f.Fd, which would switch the
// file to blocking mode, after which Close no longer interrupts a Read.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// makeRaw is cfmakeraw(3): no echo, no line editing, no CR/LF mapping.
func makeRaw(fd int) error {
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("tcgets: %w", err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN] = 1
	tio.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, tio); err != nil {
		return fmt.Errorf("tcsets: %w", err)
	}
	return nil
}

// fakeModem plays a modem on the master side of a pty: it collects the
// command lines the engine sends and answers each with what answer says.
type fakeModem struct {
	master *os.File
	cmds   chan string
	answer func(m *fakeModem, cmd string) string
	echo   atomic.Bool
	done   chan struct{}
	wmu    sync.Mutex
}

func startModem(master *os.File, answer func(*fakeModem, string) string) *fakeModem {
	m := &fakeModem{master: master, cmds: make(chan string, 4096), answer: answer, done: make(chan struct{})}
	go m.serve()
	return m
}

func (m *fakeModem) serve() {
	defer close(m.done)
	buf := make([]byte, 4096)
	var line []byte
	for {
		n, err := m.master.Read(buf)
		if err != nil {
			return
		}
		for _, b := range buf[:n] {
			switch b {
			case '\r':
				cmd := string(line)
				line = line[:0]
				if m.echo.Load() {
					m.write(cmd + "\r")
				}
				select {
				case m.cmds <- cmd:
				default:
				}
				if reply := m.answer(m, cmd); reply != "" {
					m.write(reply)
				}
			case '\x1a', '\x1b':
				// the end of prompt data, or its cancellation
				cmd := string(line) + string(b)
				line = line[:0]
				select {
				case m.cmds <- cmd:
				default:
				}
				if reply := m.answer(m, cmd); reply != "" {
					m.write(reply)
				}
			case '\n':
			default:
				line = append(line, b)
			}
		}
	}
}

// write sends raw bytes; after the modem is gone there is nobody to tell.
func (m *fakeModem) write(s string) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	_, _ = m.master.Write([]byte(s))
}

// vanish is the USB modem going away.
func (m *fakeModem) vanish() {
	m.master.Close()
	<-m.done
}

// next returns the next command line the modem received.
func (m *fakeModem) next(t testing.TB) string {
	t.Helper()
	select {
	case c := <-m.cmds:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the modem received no command")
		return ""
	}
}

// expect reads command lines until want, failing on anything else but the
// engine's probes.
func (m *fakeModem) expect(t testing.TB, want string) {
	t.Helper()
	got := m.next(t)
	for got == "AT" && want != "AT" {
		got = m.next(t)
	}
	if got != want {
		t.Fatalf("modem received %q, want %q", got, want)
	}
}

// quiet checks that the modem receives no command for a while.
func (m *fakeModem) quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case c := <-m.cmds:
		t.Fatalf("modem received %q, want nothing yet", c)
	case <-time.After(d):
	}
}

// lines frames result lines the way V.250 does with ATV1.
func lines(ls ...string) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString("\r\n" + l + "\r\n")
	}
	return b.String()
}

// okModem answers every command with OK, the usual modem for tests that
// are about something else.
func okModem(_ *fakeModem, cmd string) string {
	if cmd == "" {
		return ""
	}
	return lines("OK")
}

// rig is an engine on ptys, with a fake clock and a captured debug log.
// Every open makes a new pty and a new fakeModem behind it.
type rig struct {
	t      *testing.T
	clk    *clock.Fake
	eng    *Engine
	log    *syncbuf.Buffer
	answer func(*fakeModem, string) string
	modems chan *fakeModem
	opens  atomic.Int32
	events <-chan Event
	cancel context.CancelFunc
	done   chan error
}

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newRig(t *testing.T, cfg Config, answer func(*fakeModem, string) string) *rig {
	t.Helper()
	r := &rig{
		t:      t,
		clk:    clock.NewFake(epoch),
		log:    &syncbuf.Buffer{},
		answer: answer,
		modems: make(chan *fakeModem, 16),
	}
	cfg.Clock = r.clk
	cfg.Log = slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Open == nil {
		cfg.Open = r.open
	}
	r.eng = New(cfg)
	r.events = r.eng.Events()
	return r
}

func (r *rig) open() (Port, error) {
	r.opens.Add(1)
	master, slave := openPTY(r.t)
	m := startModem(master, r.answer)
	r.t.Cleanup(func() { m.vanish() })
	r.modems <- m
	return slave, nil
}

func (r *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan error, 1)
	go func() { r.done <- r.eng.Run(ctx) }()
	r.t.Cleanup(r.stop)
}

// stop ends Run and checks that it took every goroutine it started with
// it.
func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if !errors.Is(err, context.Canceled) {
			r.t.Errorf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		r.t.Fatal("Run did not return after its context was cancelled")
	}
	noEngineGoroutines(r.t)
}

// noEngineGoroutines fails when a goroutine of the engine outlives Run.
func noEngineGoroutines(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var left []string
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "modem/at.(*session)") || strings.Contains(g, "modem/at.(*Engine).Run") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine goroutines left after Run returned:\n%s", strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// modem returns the modem behind the next port the engine opens.
func (r *rig) modem() *fakeModem {
	r.t.Helper()
	select {
	case m := <-r.modems:
		return m
	case <-time.After(5 * time.Second):
		r.t.Fatal("the engine did not open its port")
		return nil
	}
}

// event returns the next event, which must be of kind want.
func (r *rig) event(want EventKind) Event {
	r.t.Helper()
	select {
	case ev := <-r.events:
		if ev.Kind != want {
			r.t.Fatalf("event %v (%v), want %v", ev.Kind, ev.Err, want)
		}
		return ev
	case <-time.After(5 * time.Second):
		r.t.Fatalf("no %v event", want)
		return Event{}
	}
}

// waitTimers waits until the engine has armed n timers on the fake clock,
// which tells that it is waiting for time to pass.
func (r *rig) waitTimers(n int) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.clk.Pending() < n {
		if time.Now().After(deadline) {
			r.t.Fatalf("the engine armed %d timers, want %d", r.clk.Pending(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// do runs one command with a real-time safety timeout.
func (r *rig) do(text string) (Response, error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.eng.Do(ctx, Command{Text: text})
}

// async runs Do in a goroutine and returns where its result will be.
func (r *rig) async(ctx context.Context, cmd Command) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := r.eng.Do(ctx, cmd)
		ch <- result{resp, err}
	}()
	return ch
}

func wait(t testing.TB, ch <-chan result) result {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(10 * time.Second):
		t.Fatal("Do did not return")
		return result{}
	}
}

// ready starts the rig and waits for the first Ready, answering the sync
// and init commands with OK.
func (r *rig) ready() *fakeModem {
	r.t.Helper()
	r.start()
	m := r.modem()
	r.event(Ready)
	return m
}
