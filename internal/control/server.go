package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/internal/sharing"
	"github.com/openmifi/openmifi/internal/usersettings"
)

// Backend is what the socket manages; *sharing.Machine is one.
type Backend interface {
	Status() sharing.Status
	TurnOn(ctx context.Context) error
	TurnOff(ctx context.Context) error
	Settings() (usersettings.Settings, error)
	UpdateSettings(ctx context.Context, f func(*usersettings.Settings) error) (usersettings.Settings, error)
}

const (
	// ioTimeout bounds a client that connects and then says nothing.
	ioTimeout = 10 * time.Second
	// maxConns bounds concurrent clients; a console has one user.
	maxConns = 16
)

// Listener is the control socket, held exclusively by one hotspotd.
type Listener struct {
	net.Listener
	path string
	lock *os.File
}

// Listen creates the control socket at path, readable and writable by
// root only. A lock file beside it (path + ".lock") makes a second
// hotspotd fail here instead of stealing the socket of the first.
func Listen(path string) (*Listener, error) {
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another hotspotd is running (it holds %s)", path+".lock")
		}
		return nil, fmt.Errorf("lock %s: %w", path+".lock", err)
	}
	// We hold the lock: a socket file left here is a dead daemon's.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		lock.Close()
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	// Bind under a temporary name and rename once restricted, so that the
	// socket is never reachable with the umask's permissions.
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	err = os.Chmod(tmp, 0o600)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		ln.Close()
		os.Remove(tmp)
		lock.Close()
		return nil, fmt.Errorf("restrict control socket: %w", err)
	}
	return &Listener{Listener: ln, path: path, lock: lock}, nil
}

// Close removes the socket and releases the lock.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	os.Remove(l.path)
	l.lock.Close()
	return err
}

// Server answers control requests.
type Server struct {
	Backend Backend
	Log     *slog.Logger
}

// Serve answers connections on ln until ctx is cancelled, then waits for
// the requests under way.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	sem := make(chan struct{}, maxConns)
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
		select {
		case sem <- struct{}{}:
		default:
			encode(conn, Response{Error: "too many control connections"})
			conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer conn.Close()
			s.handle(ctx, log, conn)
		}()
	}
}

func (s *Server) handle(ctx context.Context, log *slog.Logger, conn net.Conn) {
	conn.SetDeadline(time.Now().Add(ioTimeout))
	if err := checkPeer(conn); err != nil {
		log.Warn("control connection refused", "err", err)
		encode(conn, Response{Error: err.Error()})
		return
	}
	req, err := DecodeRequest(conn)
	if err != nil {
		log.Debug("bad control request", "err", err)
		encode(conn, Response{Error: err.Error()})
		return
	}
	// The request may take long (a start waits for nothing, but settings
	// are written to flash); the client's deadline is its own business.
	conn.SetDeadline(time.Time{})
	resp := s.do(ctx, req)
	conn.SetDeadline(time.Now().Add(ioTimeout))
	if err := encode(conn, resp); err != nil {
		log.Debug("control reply", "err", err)
	}
}

// checkPeer lets only our own user (root on the device) in; the socket's
// mode says the same, this holds even if the mode is changed by hand.
func checkPeer(conn net.Conn) error {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if credErr != nil {
		return fmt.Errorf("peer credentials: %w", credErr)
	}
	if int(cred.Uid) != os.Getuid() && cred.Uid != 0 {
		return fmt.Errorf("permission denied for uid %d", cred.Uid)
	}
	return nil
}

func (s *Server) do(ctx context.Context, req Request) Response {
	fail := func(err error) Response { return Response{Error: err.Error()} }
	switch req.Cmd {
	case CmdStatus:
		st := s.Backend.Status()
		return Response{Status: &st}
	case CmdClients:
		st := s.Backend.Status()
		if st.Clients == nil {
			st.Clients = []sharing.Client{}
		}
		return Response{Clients: st.Clients}
	case CmdOn:
		if err := s.Backend.TurnOn(ctx); err != nil {
			return fail(err)
		}
		st := s.Backend.Status()
		return Response{Status: &st}
	case CmdOff:
		if err := s.Backend.TurnOff(ctx); err != nil {
			return fail(err)
		}
		st := s.Backend.Status()
		return Response{Status: &st}
	case CmdGet:
		u, err := s.Backend.Settings()
		if err != nil {
			return fail(err)
		}
		out, err := get(u, req.Key)
		if err != nil {
			return fail(err)
		}
		return Response{Settings: out}
	case CmdSet:
		keys := make([]string, 0, len(req.Settings))
		for k := range req.Settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		u, err := s.Backend.UpdateSettings(ctx, func(u *usersettings.Settings) error {
			var errs []error
			for _, k := range keys {
				if k == "sharing" {
					errs = append(errs, errors.New("sharing: use 'hotspotctl on' or 'hotspotctl off'"))
					continue
				}
				errs = append(errs, u.Set(k, req.Settings[k]))
			}
			return errors.Join(errs...)
		})
		if err != nil {
			return fail(err)
		}
		out, _ := get(u, "")
		return Response{Settings: out}
	}
	return fail(fmt.Errorf("unknown command %q", req.Cmd))
}

// get returns one setting, or all but the secrets: the passphrase is shown
// only when asked for by name, the SIM PIN never.
func get(u usersettings.Settings, key string) (map[string]string, error) {
	if key != "" {
		v, err := u.Get(key)
		if err != nil {
			return nil, err
		}
		return map[string]string{key: v}, nil
	}
	out := map[string]string{}
	for _, k := range usersettings.Keys() {
		switch k {
		case "sim_pin":
			if u.SIMPIN != "" {
				out[k] = "(set)"
			} else {
				out[k] = "(not set)"
			}
			continue
		case "passphrase":
			out[k] = "(hidden: hotspotctl get passphrase)"
			continue
		}
		v, err := u.Get(k)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}
