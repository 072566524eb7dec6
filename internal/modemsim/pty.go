package modemsim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// pty is one pseudo-terminal: the master the modem serves, and a slave
// descriptor the simulator holds itself. Holding the slave keeps the
// master readable while the host closes and reopens the port (the last
// slave close would otherwise make every master read fail with EIO).
type pty struct {
	master *os.File
	hold   *os.File
	path   string // /dev/pts/N
}

// openPTY creates a pseudo-terminal in raw mode: no echo, no line
// editing, no CR/LF translation, 8 bits, like a USB serial port.
func openPTY() (*pty, error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	fail := func(err error) (*pty, error) {
		master.Close()
		return nil, err
	}
	raw, err := master.SyscallConn()
	if err != nil {
		return fail(fmt.Errorf("pty: %w", err))
	}
	var n int
	var ioErr error
	if err := raw.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr != nil {
			ioErr = fmt.Errorf("unlock pty: %w", ioErr)
			return
		}
		if n, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN); ioErr != nil {
			ioErr = fmt.Errorf("pty number: %w", ioErr)
			return
		}
		ioErr = makeRaw(int(fd))
	}); err != nil {
		return fail(fmt.Errorf("pty: %w", err))
	}
	if ioErr != nil {
		return fail(ioErr)
	}
	path := "/dev/pts/" + strconv.Itoa(n)
	hold, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", path, err))
	}
	return &pty{master: master, hold: hold, path: path}, nil
}

// makeRaw sets the terminal behind fd to raw mode (cfmakeraw). On Linux
// termios set through the master applies to the slave side, whose line
// discipline is the one in the data path.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("get termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set termios: %w", err)
	}
	return nil
}

// ListenPTY serves the modem on a new pseudo-terminal until ctx ends and
// returns the path to open: link when it is given, else the /dev/pts/N
// of the terminal. When the port goes (a reset, a "port gone" step) the
// terminal is closed, so that the host's descriptor hangs up (reads end,
// writes fail with EIO), and link is removed, like a USB device node;
// when the modem is back a new terminal is made and link points to it.
// Without a link the new terminal's name is only logged.
//
// wait returns once serving has stopped, with nil after ctx ended, and
// the link removed.
func (m *Modem) ListenPTY(ctx context.Context, link string) (path string, wait func() error, err error) {
	p, err := openPTY()
	if err != nil {
		return "", nil, err
	}
	path = p.path
	if link != "" {
		if err := relink(link, p.path); err != nil {
			p.close()
			return "", nil, err
		}
		path = link
	}
	m.log.Info("serving on a pty", "pty", p.path, "link", link)
	done := make(chan error, 1)
	go func() { done <- m.servePTY(ctx, link, p) }()
	return path, sync.OnceValue(func() error { return <-done }), nil
}

// port is the stream the modem serves: the master, which knows through
// the held slave whether the host has read everything.
type port struct {
	*os.File
	hold *os.File
}

func (p port) drained() bool {
	raw, err := p.hold.SyscallConn()
	if err != nil {
		return true
	}
	n := 0
	ioErr := raw.Control(func(fd uintptr) {
		n, err = unix.IoctlGetInt(int(fd), unix.TIOCINQ)
	})
	return ioErr != nil || err != nil || n == 0
}

func (p *pty) close() {
	p.master.Close()
	p.hold.Close()
}

func (m *Modem) servePTY(ctx context.Context, link string, p *pty) error {
	defer func() {
		if link != "" {
			removeLink(link, p)
		}
	}()
	for {
		err := m.Serve(ctx, port{p.master, p.hold}) // closes the master
		p.hold.Close()
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, ErrPortGone) {
			return fmt.Errorf("pty %s: %w", p.path, err)
		}
		if link != "" {
			removeLink(link, p)
		}
		if err := m.WaitPresent(ctx); err != nil {
			return nil
		}
		np, err := openPTY()
		if err != nil {
			return err
		}
		p = np
		if link != "" {
			if err := relink(link, p.path); err != nil {
				p.close()
				return err
			}
		}
		m.log.Info("port back on a new pty", "pty", p.path, "link", link)
	}
}

// relink points link at target, replacing what is there in one rename so
// that a host never sees a half-made link.
func relink(link, target string) error {
	tmp := link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("link %s: %w", link, err)
	}
	return nil
}

// removeLink removes link if it still points at p.
func removeLink(link string, p *pty) {
	if target, err := os.Readlink(link); err == nil && target == p.path {
		os.Remove(link)
	}
}
