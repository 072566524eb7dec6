// Command at measures what the AT engine (drivers/modem/at) adds to the
// round trip of a command: "AT" answered by "OK" over a pseudo-terminal,
// first by a bare write/read loop on the pty, then through Engine.Do on
// the same pty, with the same responder on the other side.
//
//	go run ./bench/at [-n 20000] [-warmup 2000]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/drivers/modem/at"
)

func main() {
	n := flag.Int("n", 20000, "commands measured per mode")
	warmup := flag.Int("warmup", 2000, "commands run before measuring")
	flag.Parse()
	if err := run(*n, *warmup); err != nil {
		log.Fatal(err)
	}
}

func run(n, warmup int) error {
	master, slave, err := openPTY()
	if err != nil {
		return err
	}
	defer master.Close()
	go respond(master)

	bare, err := measureBare(slave, n, warmup)
	if err != nil {
		return fmt.Errorf("bare loop: %w", err)
	}
	engine, err := measureEngine(slave, n, warmup)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}

	fmt.Printf("AT round trip over a pty, %d commands each (\"AT\" answered \"OK\"), %s/%s, GOMAXPROCS=%d\n\n",
		n, runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0))
	fmt.Printf("%-16s %10s %10s %10s\n", "", "p50", "p99", "mean")
	row := func(name string, s stats) {
		fmt.Printf("%-16s %10s %10s %10s\n", name, us(s.p50), us(s.p99), us(s.mean))
	}
	b, e := summarize(bare), summarize(engine)
	row("bare write/read", b)
	row("engine Do", e)
	row("added", stats{e.p50 - b.p50, e.p99 - b.p99, e.mean - b.mean})
	fmt.Printf("%-16s %10.2f %10.2f %10.2f\n", "ratio", ratio(e.p50, b.p50), ratio(e.p99, b.p99), ratio(e.mean, b.mean))
	return nil
}

// respond is the modem: "OK" for every command line.
func respond(master *os.File) {
	buf := make([]byte, 4096)
	for {
		n, err := master.Read(buf)
		if err != nil {
			return
		}
		for range bytes.Count(buf[:n], []byte("\r")) {
			if _, err := master.Write([]byte("\r\nOK\r\n")); err != nil {
				return
			}
		}
	}
}

func measureBare(port *os.File, n, warmup int) ([]time.Duration, error) {
	buf := make([]byte, 256)
	var pending []byte
	roundTrip := func() error {
		if _, err := port.Write([]byte("AT\r")); err != nil {
			return err
		}
		for {
			if i := bytes.Index(pending, []byte("OK\r\n")); i >= 0 {
				pending = pending[i+4:]
				return nil
			}
			k, err := port.Read(buf)
			if err != nil {
				return err
			}
			pending = append(pending, buf[:k]...)
		}
	}
	return measure(n, warmup, roundTrip)
}

func measureEngine(port *os.File, n, warmup int) ([]time.Duration, error) {
	opened := false
	e := at.New(at.Config{
		Open: func() (at.Port, error) {
			if opened {
				return nil, errors.New("the benchmark's pty was lost")
			}
			opened = true
			return port, nil
		},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case ev := <-e.Events():
		if ev.Kind != at.Ready {
			return nil, fmt.Errorf("engine: %v %v", ev.Kind, ev.Err)
		}
	case <-time.After(10 * time.Second):
		return nil, errors.New("engine not ready")
	}
	cmd := at.Command{Text: "AT"}
	return measure(n, warmup, func() error {
		_, err := e.Do(ctx, cmd)
		return err
	})
}

func measure(n, warmup int, f func() error) ([]time.Duration, error) {
	for range warmup {
		if err := f(); err != nil {
			return nil, err
		}
	}
	d := make([]time.Duration, n)
	for i := range d {
		start := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		d[i] = time.Since(start)
	}
	return d, nil
}

type stats struct{ p50, p99, mean time.Duration }

func summarize(d []time.Duration) stats {
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, v := range s {
		sum += v
	}
	return stats{
		p50:  s[len(s)/2],
		p99:  s[len(s)*99/100],
		mean: sum / time.Duration(len(s)),
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond)) }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// openPTY returns a raw pseudo-terminal pair.
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	var n int
	err = control(master, func(fd int) error {
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
		master.Close()
		return nil, nil, fmt.Errorf("ptmx: %w", err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	if err := control(slave, makeRaw); err != nil {
		master.Close()
		slave.Close()
		return nil, nil, fmt.Errorf("pty slave: %w", err)
	}
	return master, slave, nil
}

// control runs fn on f's descriptor without f.Fd, which would put the file
// in blocking mode and take it off the poller.
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

// makeRaw is cfmakeraw(3).
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("tcgets: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("tcsets: %w", err)
	}
	return nil
}
