// Package qemu boots a QEMU board's kernel and initramfs: the command line
// for its machine, KVM when the host can give it, the persistent state
// disk, and the serial console on the terminal or on a unix socket for
// tests.
//
// The board's modem port (its second UART, or a virtio console) is a
// unix socket client of the modem simulator, and its uplink NIC is a tap
// device; package cellnet provides both ends on the host. QEMU's defaults,
// which include a user-mode NIC that reaches the outside, are off: the tap
// is the only network device, and it lives in a network namespace that
// routes nowhere.
package qemu

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/openmifi/openmifi/board"
)

// Config is one boot.
type Config struct {
	Board  board.Board
	Kernel string
	Initrd string
	// Disk is the persistent state disk image; "" boots without one
	// (the init then keeps settings in RAM, with a warning).
	Disk string
	// ConsoleSocket puts the serial console on a unix socket QEMU
	// listens on, waiting for the first connection before it starts
	// the machine; "" puts it on standard input and output.
	ConsoleSocket string
	// Accel is "kvm" or "tcg", from Accel.
	Accel string
	// NoReboot makes a reboot (or a kernel panic, with panic=-1) end
	// QEMU.
	NoReboot bool
	// Append is added to the kernel command line.
	Append string
	// ModemSocket connects the board's modem port to the modem
	// simulator listening on this unix socket; "" leaves the port
	// unconnected. QEMU is the client and reconnects every second,
	// so the guest's port outlives a simulator restarted or reset.
	ModemSocket string
	// UplinkTap is the tap device behind the uplink NIC, in the
	// network namespace QEMU runs in; "" gives the machine no NIC.
	UplinkTap string
	// UplinkMAC is the uplink NIC's MAC address ("" lets QEMU pick).
	UplinkMAC string
	// Monitor is a unix socket QEMU serves its QMP monitor on (for
	// SetLink); "" for none.
	Monitor string
}

// UplinkNetdev is QEMU's name of the uplink NIC's network backend, which
// set_link takes.
const UplinkNetdev = "uplink"

// Accel picks the accelerator: KVM when the board can use it and
// /dev/kvm opens, otherwise TCG. want forces one ("kvm" fails if KVM is
// not usable).
func Accel(b board.Board, want string) (string, error) {
	usable, why := kvmUsable(b)
	switch want {
	case "tcg":
		return "tcg", nil
	case "kvm":
		if !usable {
			return "", fmt.Errorf("kvm not usable: %s", why)
		}
		return "kvm", nil
	case "", "auto":
		if usable {
			return "kvm", nil
		}
		return "tcg", nil
	}
	return "", fmt.Errorf("accelerator %q is not kvm, tcg or auto", want)
}

func kvmUsable(b board.Board) (bool, string) {
	if b.QEMU == nil || !b.QEMU.KVM || runtime.GOARCH != "amd64" {
		return false, "the board is not this machine's architecture"
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false, err.Error()
	}
	f.Close()
	// Some sandboxes offer a /dev/kvm (paravirtual, "kvm-pvm") on CPUs
	// without hardware virtualization, where an unmodified kernel hangs
	// early in boot: only a CPU with VMX or SVM counts.
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false, err.Error()
	}
	if !hasCPUFlag(cpuinfo, "vmx") && !hasCPUFlag(cpuinfo, "svm") {
		return false, "the CPU has no vmx or svm flag (a /dev/kvm without hardware virtualization)"
	}
	return true, ""
}

// hasCPUFlag reports whether /proc/cpuinfo's first "flags" line has flag.
func hasCPUFlag(cpuinfo []byte, flag string) bool {
	for _, line := range strings.Split(string(cpuinfo), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "flags" {
			for _, f := range strings.Fields(v) {
				if f == flag {
					return true
				}
			}
			return false
		}
	}
	return false
}

// Args is QEMU's command line (after the program name) for cfg.
func Args(cfg Config) ([]string, error) {
	q := cfg.Board.QEMU
	if q == nil {
		return nil, fmt.Errorf("board %s is hardware, not a QEMU board", cfg.Board.Name)
	}
	if cfg.Accel != "kvm" && cfg.Accel != "tcg" {
		return nil, errors.New("qemu: no accelerator chosen")
	}
	c := cfg.Board.Console
	kcmd := strings.Join(nonEmpty(fmt.Sprintf("console=%s,%d", c.Device, c.Baud), cfg.Board.Kernel.Cmdline, cfg.Append), " ")
	args := []string{
		// No default devices: QEMU's defaults include a NIC with
		// user-mode networking to the outside, a VGA card and drives.
		"-nodefaults", "-no-user-config",
		"-machine", q.Machine,
		"-accel", cfg.Accel,
		"-m", fmt.Sprint(q.Memory),
		"-kernel", cfg.Kernel,
		"-initrd", cfg.Initrd,
		"-append", kcmd,
		"-nic", "none",
	}
	switch {
	case cfg.Accel == "kvm":
		args = append(args, "-cpu", "host")
	case q.CPU != "":
		args = append(args, "-cpu", q.CPU)
	}
	if cfg.Disk != "" {
		args = append(args,
			"-drive", "if=none,id=state,format=raw,file="+cfg.Disk,
			"-device", q.Disk+",drive=state")
	}
	if cfg.ConsoleSocket == "" {
		// The terminal's: Ctrl-A X quits, Ctrl-A C is QEMU's monitor.
		args = append(args, "-nographic", "-serial", "mon:stdio")
	} else {
		args = append(args, "-display", "none", "-monitor", "none",
			"-chardev", "socket,id=console,path="+cfg.ConsoleSocket+",server=on,wait=on",
			"-serial", "chardev:console")
	}
	if cfg.ModemSocket != "" {
		// reconnect=1 (seconds; QEMU 9.2 spells it reconnect-ms):
		// the simulator may start after QEMU, restart, or drop the
		// connection while its modem resets.
		chardev := "socket,id=modem,path=" + cfg.ModemSocket + ",reconnect=1"
		if q.ModemBus != "" {
			args = append(args, "-device", q.ModemBus, "-chardev", chardev, "-device", "virtconsole,chardev=modem")
		} else {
			// The second -serial is the second UART: ttyS1.
			args = append(args, "-chardev", chardev, "-serial", "chardev:modem")
		}
	}
	if cfg.UplinkTap != "" {
		dev := q.NIC + ",netdev=" + UplinkNetdev
		if cfg.UplinkMAC != "" {
			dev += ",mac=" + cfg.UplinkMAC
		}
		args = append(args,
			"-netdev", "tap,id="+UplinkNetdev+",ifname="+cfg.UplinkTap+",script=no,downscript=no",
			"-device", dev)
	}
	if cfg.Monitor != "" {
		args = append(args,
			"-chardev", "socket,id=qmp,path="+cfg.Monitor+",server=on,wait=off",
			"-mon", "chardev=qmp,mode=control")
	}
	if cfg.NoReboot {
		args = append(args, "-no-reboot")
	}
	return append(args, q.Extra...), nil
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// EnsureDisk creates the state disk image at path, sizeMiB large and
// sparse (all zero: the init formats it on first boot), unless it exists.
func EnsureDisk(path string, sizeMiB int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state disk: %w", err)
	}
	if err := f.Truncate(int64(sizeMiB) << 20); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("state disk: %w", err)
	}
	return f.Close()
}
