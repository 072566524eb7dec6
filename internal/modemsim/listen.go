package modemsim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
)

// ServeListener serves every connection accepted on ln, each as one AT
// session, until ctx ends; then it closes ln and waits for the sessions.
// While the modem's port is gone, connections are accepted and closed at
// once, as a serial port that is not there would drop a QEMU chardev.
func (m *Modem) ServeListener(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		m.log.Info("connection", "peer", conn.RemoteAddr().String(), "on", ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := m.Serve(ctx, conn)
			m.log.Info("connection ended", "on", ln.Addr().String(), "err", err)
		}()
	}
}

// ListenUnix serves the modem on a unix stream socket at path, for a
// QEMU serial port connected as a client:
//
//	-chardev socket,id=modem,path=PATH,reconnect-ms=1000 -serial chardev:modem
//
// A stale socket file at path is replaced. wait returns once serving has
// stopped after ctx ended; the socket file is removed.
func (m *Modem) ListenUnix(ctx context.Context, path string) (wait func() error, err error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() == fs.ModeSocket {
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	m.log.Info("serving on a unix socket", "path", path)
	return m.serveInBackground(ctx, ln), nil
}

// ListenTCP serves the modem on a TCP address (QEMU: -serial
// tcp:HOST:PORT) and returns the address it is bound to.
func (m *Modem) ListenTCP(ctx context.Context, addr string) (bound net.Addr, wait func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	m.log.Info("serving on TCP", "addr", ln.Addr().String())
	return ln.Addr(), m.serveInBackground(ctx, ln), nil
}

func (m *Modem) serveInBackground(ctx context.Context, ln net.Listener) func() error {
	done := make(chan error, 1)
	go func() { done <- m.ServeListener(ctx, ln) }()
	return sync.OnceValue(func() error { return <-done })
}
