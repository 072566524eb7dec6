package dns

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/openmifi/openmifi/drivers/netns"
)

// maxUpstreamUDP is the read buffer for upstream answers over UDP. We
// advertise ednsSize; a larger datagram breaks that and arrives cut, fails
// to unpack and is ignored.
const maxUpstreamUDP = 4096

// randomID is a query ID an off-path attacker cannot predict (RFC 5452).
func randomID() uint16 {
	var b [2]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return binary.BigEndian.Uint16(b[:])
}

// exchange asks one upstream: over TCP when the client came over TCP, else
// over UDP and again over TCP when the UDP answer is truncated. The answer
// has been checked against q.
func (f *Forwarder) exchange(ctx context.Context, server netip.AddrPort, q *mdns.Msg, packed []byte, tcp bool) (*mdns.Msg, error) {
	if !tcp {
		a, err := f.exchangeUDP(ctx, server, q, packed)
		if err != nil || !a.Truncated {
			return a, err
		}
	}
	return f.exchangeTCP(ctx, server, q, packed)
}

// exchangeUDP sends the query from a socket of its own, so that each query
// has a fresh random source port besides its random ID (RFC 5452), and
// waits for an answer that matches. Anything else arriving meanwhile,
// spoofed or stale, is ignored rather than ending the wait: an attacker
// must not be able to make a query fail by answering it first.
func (f *Forwarder) exchangeUDP(ctx context.Context, server netip.AddrPort, q *mdns.Msg, packed []byte) (*mdns.Msg, error) {
	c, err := f.dial(ctx, "udp", server)
	if err != nil {
		return nil, err
	}
	conn := c.(*net.UDPConn)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(f.timeout))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(packed); err != nil {
		return nil, fmt.Errorf("send over udp: %w", err)
	}
	buf := make([]byte, maxUpstreamUDP)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil, fmt.Errorf("receive over udp: %w", err)
		}
		// The socket is connected, so the kernel lets only the
		// server's address and port through; checked again here all
		// the same, as it is what the anti-spoofing rests on.
		if from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port()); from != server {
			f.logUpstream(server, "answer from a wrong address", "from", from)
			continue
		}
		a, err := checkAnswer(q, buf[:n])
		if err != nil {
			f.logUpstream(server, "answer ignored", "err", err)
			continue
		}
		return a, nil
	}
}

// exchangeTCP sends the query over a TCP connection of its own.
func (f *Forwarder) exchangeTCP(ctx context.Context, server netip.AddrPort, q *mdns.Msg, packed []byte) (*mdns.Msg, error) {
	dctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c, err := f.dial(dctx, "tcp", server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(f.timeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := writeTCPMsg(c, packed); err != nil {
		return nil, fmt.Errorf("send over tcp: %w", err)
	}
	raw, err := readTCPMsg(c, make([]byte, mdns.MaxMsgSize))
	if err != nil {
		return nil, fmt.Errorf("receive over tcp: %w", err)
	}
	a, err := checkAnswer(q, raw)
	if err != nil {
		// Over TCP there is no second chance: the stream is out of
		// step with us.
		return nil, fmt.Errorf("tcp answer: %w", err)
	}
	return a, nil
}

// dial opens a socket to server inside the configured network namespace.
func (f *Forwarder) dial(ctx context.Context, network string, server netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := netns.Do(f.cfg.NetNS, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, server.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", network, err)
	}
	return c, nil
}

var (
	errNotAnswer = errors.New("not an answer")
	errMismatch  = errors.New("answer does not match the question")
)

// checkAnswer unpacks raw and checks that it answers q: same ID, an answer
// to a standard query, and the same question (RFC 5452 9.1). The name is
// compared without regard to case: a server may normalise it.
func checkAnswer(q *mdns.Msg, raw []byte) (*mdns.Msg, error) {
	if len(raw) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes", errNotAnswer, len(raw))
	}
	// The ID first: a wrong one costs no unpacking.
	if id := binary.BigEndian.Uint16(raw); id != q.Id {
		return nil, fmt.Errorf("%w: id %d, want %d", errMismatch, id, q.Id)
	}
	a := &mdns.Msg{}
	if err := a.Unpack(raw); err != nil {
		return nil, fmt.Errorf("%w: %v", errNotAnswer, err)
	}
	if !a.Response || a.Opcode != mdns.OpcodeQuery {
		return nil, fmt.Errorf("%w: qr %v opcode %d", errNotAnswer, a.Response, a.Opcode)
	}
	if len(a.Question) != 1 {
		return nil, fmt.Errorf("%w: %d questions", errMismatch, len(a.Question))
	}
	got, want := a.Question[0], q.Question[0]
	if !strings.EqualFold(got.Name, want.Name) || got.Qtype != want.Qtype || got.Qclass != want.Qclass {
		return nil, fmt.Errorf("%w: %v, want %v", errMismatch, got.String(), want.String())
	}
	// Clients get our packing of the answer, not the upstream's bytes,
	// and miekg/dns unpacks some records it cannot pack back into what
	// it would unpack (an SOA with empty data becomes a zero SOA that
	// does not unpack): such an answer is as broken as one that does
	// not unpack.
	b, err := a.Pack()
	if err == nil {
		err = (&mdns.Msg{}).Unpack(b)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: does not survive repacking: %v", errNotAnswer, err)
	}
	return a, nil
}

// readTCPMsg reads one length-prefixed message (RFC 1035 4.2.2) into buf,
// which bounds its size.
func readTCPMsg(r io.Reader, buf []byte) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n < headerLen || n > len(buf) {
		return nil, fmt.Errorf("message of %d bytes", n)
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// writeTCPMsg writes b with its length prefix in one write: one segment on
// the wire for the common small message.
func writeTCPMsg(w io.Writer, b []byte) error {
	if len(b) > mdns.MaxMsgSize {
		return fmt.Errorf("message of %d bytes", len(b))
	}
	out := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(out, uint16(len(b)))
	copy(out[2:], b)
	_, err := w.Write(out)
	return err
}

// isEOF reports whether err is a client's normal way of ending a
// connection: closing it, or going quiet until the idle timeout.
func isEOF(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &ne) && ne.Timeout()
}
