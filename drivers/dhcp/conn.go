package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// destination is where a reply goes. Without mac it leaves through the UDP
// socket and the kernel resolves the next hop: the client has an address
// (renewals, INFORM) or it is a relay. With mac it is sent as a raw frame,
// because a client without an address cannot answer ARP for the address it
// is about to get (RFC 2131 §4.1).
type destination struct {
	ip   netip.Addr
	port uint16
	mac  net.HardwareAddr
}

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// sender sends replies; tests replace the sockets with a recorder.
type sender interface {
	send(b []byte, dst destination) error
}

// lan holds the server's sockets on the LAN interface: a UDP socket on
// port 67, bound to the interface, that receives every request and sends
// unicast replies, and a packet socket for frames to clients without an
// address.
type lan struct {
	udp     *os.File // non-blocking, in Go's network poller
	rc      syscall.RawConn
	raw     int // AF_PACKET, SOCK_DGRAM: the kernel adds the Ethernet header
	ifindex int
	src     netip.Addr
}

// openLAN opens the sockets on ifname and returns them with the
// interface's MTU. It must run in the LAN's network namespace.
func openLAN(ifname string, src netip.Addr) (*lan, int, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, 0, fmt.Errorf("LAN interface %s: %w", ifname, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("UDP socket: %w", err)
	}
	err = errors.Join(
		// Only the LAN is served, whatever other interfaces the device
		// has; replies to 255.255.255.255 leave through it too.
		unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname),
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1),
		// A restarted server binds again at once.
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1),
	)
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrInet4{Port: 67})
	}
	if err != nil {
		unix.Close(fd)
		return nil, 0, fmt.Errorf("listen on %s port 67: %w", ifname, err)
	}
	// A non-blocking descriptor makes a pollable File.
	f := os.NewFile(uintptr(fd), "dhcp-udp")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("UDP socket: %w", err)
	}
	raw, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("packet socket on %s: %w", ifname, err)
	}
	return &lan{udp: f, rc: rc, raw: raw, ifindex: ifi.Index, src: src}, ifi.MTU, nil
}

// interfaceHas reports whether ifname has the address a.
func interfaceHas(ifname string, a netip.Addr) bool {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return false
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok && n.IP.Equal(a.AsSlice()) {
			return true
		}
	}
	return false
}

func (l *lan) send(b []byte, dst destination) error {
	if dst.mac == nil {
		sa := &unix.SockaddrInet4{Port: int(dst.port), Addr: dst.ip.As4()}
		var serr error
		err := l.rc.Write(func(fd uintptr) bool {
			serr = unix.Sendto(int(fd), b, 0, sa)
			return serr != unix.EAGAIN
		})
		return errors.Join(err, serr)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: l.ifindex, Halen: 6}
	copy(sa.Addr[:], dst.mac)
	return unix.Sendto(l.raw, ipUDP(l.src, dst.ip, 67, dst.port, b), 0, sa)
}

// wake makes a read under way return os.ErrDeadlineExceeded, and every
// later one too. Sending still works.
func (l *lan) wake() { l.udp.SetReadDeadline(time.Unix(1, 0)) }

func (l *lan) close() error {
	return errors.Join(l.udp.Close(), unix.Close(l.raw))
}

// mmsghdr is struct mmsghdr; Go pads it to Msghdr's alignment, as C does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// reader receives batches with recvmmsg into buffers of its own.
type reader struct {
	rc   syscall.RawConn
	bufs [][]byte
	iovs []unix.Iovec
	hdrs []mmsghdr
	pkts [][]byte
}

func newReader(rc syscall.RawConn, n, size int) *reader {
	r := &reader{rc: rc, bufs: make([][]byte, n), iovs: make([]unix.Iovec, n), hdrs: make([]mmsghdr, n), pkts: make([][]byte, 0, n)}
	for i := range r.bufs {
		r.bufs[i] = make([]byte, size)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(size)
		r.hdrs[i].hdr.Iov = &r.iovs[i]
		r.hdrs[i].hdr.SetIovlen(1)
	}
	return r
}

// read waits until packets arrive and returns those queued, up to the
// batch size. They are valid until the next read.
//
// The recvmmsg never blocks (the socket is non-blocking; the poller does
// the waiting), so it is made as a raw system call: a call through the
// scheduler wakes the runtime's monitor thread whenever the process was
// idle, which under a flood is once a packet and cost more CPU than all
// the rest of the server's work.
func (r *reader) read() ([][]byte, error) {
	var n uintptr
	var errno unix.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		n, _, errno = unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		return errno != unix.EAGAIN
	})
	if err != nil {
		return nil, err
	}
	if errno != 0 {
		return nil, errno
	}
	r.pkts = r.pkts[:0]
	for i := range int(n) {
		r.pkts = append(r.pkts, r.bufs[i][:r.hdrs[i].n])
	}
	return r.pkts, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// ipUDP wraps payload in IPv4 and UDP headers, checksums included.
func ipUDP(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 28+len(payload))
	b[0] = 0x45 // version 4, 20-byte header
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 64 // TTL
	b[9] = unix.IPPROTO_UDP
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:], ^fold(sum(0, b[:20])))

	u := b[20:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	// The pseudo-header: addresses, protocol, UDP length.
	c := sum(0, b[12:20])
	c += unix.IPPROTO_UDP + uint32(len(u))
	c = sum(c, u)
	ck := ^fold(c)
	if ck == 0 {
		ck = 0xffff // 0 would mean "no checksum"
	}
	binary.BigEndian.PutUint16(u[6:], ck)
	return b
}

func sum(c uint32, b []byte) uint32 {
	for len(b) >= 2 {
		c += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		c += uint32(b[0]) << 8
	}
	return c
}

func fold(c uint32) uint16 {
	for c > 0xffff {
		c = c>>16 + c&0xffff
	}
	return uint16(c)
}
