package nl80211

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// transport carries nl80211 commands; the AP's tests replace it with a
// recorder.
type transport interface {
	// do runs a command on the command socket and returns the
	// attributes of its replies (every message of a dump).
	do(ctx context.Context, cmd uint8, dump bool, attrs []byte) ([][]byte, error)
	// own runs a command on the owner socket, the one whose port the
	// kernel sends our registered frames and EAPOL to, and whose closing
	// stops the AP and deletes the interface we created.
	own(ctx context.Context, cmd uint8, attrs []byte) ([][]byte, error)
}

// ioTimeout bounds a command the kernel never answers; nl80211 answers at
// once, so this is only against a wedged socket.
const ioTimeout = 10 * time.Second

// sockets is the real transport: two generic netlink sockets. Commands
// go on their own socket so that their replies never mix with the
// stream of frames and notifications the owner socket receives.
type sockets struct {
	family uint16

	cmdMu sync.Mutex
	cmd   *netlink.Conn

	owner *netlink.Conn
	// Once the reader runs, it alone receives on the owner socket and
	// hands acks to waiting callers by sequence number.
	reading atomic.Bool
	seq     atomic.Uint32
	mu      sync.Mutex
	waiting map[uint32]chan error
	done    chan struct{}
}

// groups are nl80211's multicast group IDs we join on the owner socket.
type groups struct{ mlme, config uint32 }

func dialSockets() (*sockets, groups, error) {
	var g groups
	cmd, err := netlink.Dial(unix.NETLINK_GENERIC, nil)
	if err != nil {
		return nil, g, fmt.Errorf("dial generic netlink: %w", err)
	}
	owner, err := netlink.Dial(unix.NETLINK_GENERIC, nil)
	if err != nil {
		cmd.Close()
		return nil, g, fmt.Errorf("dial generic netlink: %w", err)
	}
	for _, c := range []*netlink.Conn{cmd, owner} {
		// Best effort: the kernel's reason for a refusal, and acks
		// without a copy of the request.
		_ = c.SetOption(netlink.ExtendedAcknowledge, true)
		_ = c.SetOption(netlink.CapAcknowledge, true)
	}
	_ = owner.SetReadBuffer(1 << 20)
	s := &sockets{cmd: cmd, owner: owner, waiting: map[uint32]chan error{}, done: make(chan struct{})}
	// Sequence numbers of our own, far from those netlink.Conn picks.
	s.seq.Store(1 << 30)
	fam, err := genetlink.NewConn(cmd).GetFamily(unix.NL80211_GENL_NAME)
	if err != nil {
		s.close()
		return nil, g, fmt.Errorf("find generic netlink family nl80211 (no Wi-Fi support in this kernel?): %w", err)
	}
	s.family = fam.ID
	for _, mg := range fam.Groups {
		switch mg.Name {
		case unix.NL80211_MULTICAST_GROUP_MLME:
			g.mlme = mg.ID
		case unix.NL80211_MULTICAST_GROUP_CONFIG:
			g.config = mg.ID
		}
	}
	return s, g, nil
}

func (s *sockets) close() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.cmd.Close()
	s.owner.Close()
}

func (s *sockets) do(ctx context.Context, cmd uint8, dump bool, attrs []byte) ([][]byte, error) {
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	return s.exchange(ctx, s.cmd, cmd, dump, attrs)
}

func (s *sockets) own(ctx context.Context, cmd uint8, attrs []byte) ([][]byte, error) {
	if !s.reading.Load() {
		return s.exchange(ctx, s.owner, cmd, false, attrs)
	}
	// The ack may never come if the kernel dropped it (ENOBUFS on a
	// flooded socket): bound the wait like exchange does.
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	seq := s.seq.Add(1)
	ch := make(chan error, 1)
	s.mu.Lock()
	s.waiting[seq] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiting, seq)
		s.mu.Unlock()
	}()
	m := s.message(cmd, netlink.Request|netlink.Acknowledge, attrs)
	m.Header.Sequence = seq
	if _, err := s.owner.Send(m); err != nil {
		return nil, err
	}
	select {
	case err := <-ch:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, errClosed
	}
}

var errClosed = errors.New("nl80211 sockets closed")

func (s *sockets) message(cmd uint8, flags netlink.HeaderFlags, attrs []byte) netlink.Message {
	gm := genetlink.Message{Header: genetlink.Header{Command: cmd, Version: 1}, Data: attrs}
	b, _ := gm.MarshalBinary() // cannot fail
	return netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(s.family), Flags: flags}, Data: b}
}

// exchange sends one request on c and reads until its ack (or, for a
// dump, its end), returning the attributes of the replies. Requests on a
// socket are serialized by the caller.
func (s *sockets) exchange(ctx context.Context, c *netlink.Conn, cmd uint8, dump bool, attrs []byte) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(ioTimeout)
	}
	if err := c.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		stop()
		_ = c.SetReadDeadline(time.Time{})
	}()
	flags := netlink.Request | netlink.Acknowledge
	if dump {
		// The end of a dump is its DONE message; there is no ack.
		flags = netlink.Request | netlink.Dump
	}
	req, err := c.Send(s.message(cmd, flags, attrs))
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		msgs, err := c.Receive()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var oe *netlink.OpError
			if errors.As(err, &oe) && oe.Sequence != 0 && oe.Sequence != req.Header.Sequence {
				continue // a late error for an abandoned request
			}
			return nil, err
		}
		for _, m := range msgs {
			if m.Header.Sequence != req.Header.Sequence {
				continue
			}
			if m.Header.Type == netlink.Error {
				return out, nil
			}
			var gm genetlink.Message
			if err := gm.UnmarshalBinary(m.Data); err != nil {
				return nil, fmt.Errorf("reply: %w", err)
			}
			out = append(out, gm.Data)
		}
		if dump {
			// netlink.Conn.Receive reads a multi-part reply to its end.
			return out, nil
		}
	}
}

// read receives on the owner socket until it fails or is closed, handing
// acks to own's callers and everything else to handle.
// The caller sets s.reading before it starts read, so that no own call
// receives on the owner socket once read may.
func (s *sockets) read(handle func(cmd uint8, attrs []byte)) error {
	for {
		msgs, err := s.owner.Receive()
		if err != nil {
			select {
			case <-s.done:
				return nil
			default:
			}
			var oe *netlink.OpError
			if errors.As(err, &oe) && oe.Sequence != 0 && s.deliver(oe.Sequence, err) {
				continue
			}
			if errors.Is(err, unix.ENOBUFS) {
				// The kernel dropped notifications; the stations
				// will retry their frames.
				continue
			}
			return err
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case netlink.Error:
				s.deliver(m.Header.Sequence, nil)
				continue
			case netlink.Noop, netlink.Done, netlink.Overrun:
				continue
			}
			var gm genetlink.Message
			if gm.UnmarshalBinary(m.Data) != nil {
				continue
			}
			handle(gm.Header.Command, gm.Data)
		}
	}
}

func (s *sockets) deliver(seq uint32, err error) bool {
	s.mu.Lock()
	ch, ok := s.waiting[seq]
	s.mu.Unlock()
	if ok {
		select {
		case ch <- err:
		default:
		}
	}
	return ok
}
