package nl80211

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// pae carries EAPOL over a PF_PACKET socket bound to the AP interface,
// for drivers that cannot pass it over nl80211's control port. The kernel
// delivers EAPOL from stations that are not authorized yet to the
// interface, and lets our EAPOL out to them.
type pae struct {
	f       *os.File
	rc      syscall.RawConn
	ifindex int
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openPAE(ifindex int) (*pae, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(ethPAE)))
	if err != nil {
		return nil, fmt.Errorf("open EAPOL packet socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethPAE), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind EAPOL packet socket: %w", err)
	}
	// os.File puts the socket in the runtime's poller, so that Close
	// wakes a blocked read.
	f := os.NewFile(uintptr(fd), "eapol")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &pae{f: f, rc: rc, ifindex: ifindex}, nil
}

func (p *pae) close() error { return p.f.Close() }

func (p *pae) send(to net.HardwareAddr, frame []byte) error {
	sa := &unix.SockaddrLinklayer{Protocol: htons(ethPAE), Ifindex: p.ifindex, Halen: 6}
	copy(sa.Addr[:], to)
	var serr error
	err := p.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), frame, 0, sa)
		return serr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return serr
}

// recv reads one EAPOL frame (without its Ethernet header) and its
// sender; a nil sender is a frame to skip.
func (p *pae) recv(buf []byte) (int, net.HardwareAddr, error) {
	var (
		n    int
		from unix.Sockaddr
		rerr error
	)
	err := p.rc.Read(func(fd uintptr) bool {
		n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, nil, err
	}
	if rerr != nil {
		return 0, nil, rerr
	}
	ll, ok := from.(*unix.SockaddrLinklayer)
	if ok && ll.Pkttype == unix.PACKET_OUTGOING {
		return 0, nil, nil
	}
	if !ok || ll.Halen != 6 {
		return 0, nil, fmt.Errorf("EAPOL frame without a sender address")
	}
	return n, net.HardwareAddr(append([]byte(nil), ll.Addr[:6]...)), nil
}
