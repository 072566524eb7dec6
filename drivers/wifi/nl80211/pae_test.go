package nl80211

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/openmifi/openmifi/drivers/netns"
	"github.com/openmifi/openmifi/internal/clock"
)

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

// TestPAE carries EAPOL between the two ends of a veth pair in a
// namespace of its own: the fallback for drivers without the control
// port over nl80211.
func TestPAE(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (network namespace, packet sockets)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) to make the namespace and veth pair")
	}
	name := fmt.Sprintf("nl80211-pae-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		// busybox's ip (the QEMU guest's) has no netns.
		t.Skipf("ip netns add: %v: %.200s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ipCmd(t, "-n", name, "link", "add", "pa", "type", "veth", "peer", "name", "pb")
	ipCmd(t, "-n", name, "link", "set", "pa", "up")
	ipCmd(t, "-n", name, "link", "set", "pb", "up")
	f, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var ap, sta *pae
	var apIf, staIf *net.Interface
	err = netns.Do(int(f.Fd()), func() error {
		var err error
		if apIf, err = net.InterfaceByName("pa"); err != nil {
			return err
		}
		if staIf, err = net.InterfaceByName("pb"); err != nil {
			return err
		}
		if ap, err = openPAE(apIf.Index); err != nil {
			return err
		}
		sta, err = openPAE(staIf.Index)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ap.close()
	defer sta.close()
	// A guard against a hang, not a timing check.
	ap.f.SetReadDeadline(time.Now().Add(30 * time.Second))
	sta.f.SetReadDeadline(time.Now().Add(30 * time.Second))

	msg1 := []byte{0x02, 0x03, 0x00, 0x05, 0x02, 0x00, 0x8a, 0x00, 0x10}
	if err := ap.send(staIf.HardwareAddr, msg1); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, from, err := sta.recv(buf)
	if err != nil {
		t.Fatal(err)
	}
	// Ethernet pads short frames: the 802.1X length says what counts.
	if n < len(msg1) || !bytes.Equal(buf[:len(msg1)], msg1) || from.String() != apIf.HardwareAddr.String() {
		t.Errorf("received %x from %v, want %x from %v", buf[:n], from, msg1, apIf.HardwareAddr)
	}
	if err := sta.send(apIf.HardwareAddr, []byte{0x02, 0x03, 0x00, 0x00}); err != nil {
		t.Fatal(err)
	}
	if _, from, err := ap.recv(buf); err != nil || from.String() != staIf.HardwareAddr.String() {
		t.Errorf("AP received from %v, %v; want %v", from, err, staIf.HardwareAddr)
	}

	// The same through an AP whose driver lacks the control port.
	r := &recorder{}
	a := newAP(Config{Interface: "pa", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock.NewFake(epoch)}, r)
	a.ifindex, a.addr, a.pae = apIf.Index, apIf.HardwareAddr, ap
	a.run()
	defer a.Close()
	if err := sta.send(apIf.HardwareAddr, msg1); err != nil {
		t.Fatal(err)
	}
	e := <-a.Events()
	if e.Kind != EventEAPOL || e.MAC.String() != staIf.HardwareAddr.String() || !bytes.Equal(e.Frame[:len(msg1)], msg1) {
		t.Errorf("event %+v, want EAPOL %x from %v", e, msg1, staIf.HardwareAddr)
	}
	if err := a.SendEAPOL(context.Background(), staIf.HardwareAddr, msg1); err != nil {
		t.Fatal(err)
	}
	if n, from, err := sta.recv(buf); err != nil || !bytes.Equal(buf[:len(msg1)], msg1) || from.String() != apIf.HardwareAddr.String() {
		t.Errorf("station received %x from %v, %v", buf[:n], from, err)
	}
	if len(r.take()) != 0 {
		t.Error("EAPOL went over nl80211 though the driver lacks the control port")
	}
}
