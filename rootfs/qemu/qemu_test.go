package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openmifi/openmifi/board"
)

func TestArgs(t *testing.T) {
	b, _ := board.Get("qemu-x86_64")
	args, err := Args(Config{Board: b, Kernel: "vmlinuz", Initrd: "rootfs.cpio", Disk: "state.img",
		ConsoleSocket: "/tmp/con.sock", Accel: "tcg", NoReboot: true, Append: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-nodefaults", "-nic none", "-accel tcg", "-machine pc", "-m 256",
		"-append console=ttyS0,115200 quiet panic=-1 debug",
		"-drive if=none,id=state,format=raw,file=state.img -device virtio-blk-pci,drive=state",
		"-chardev socket,id=console,path=/tmp/con.sock,server=on,wait=on -serial chardev:console",
		"-monitor none", "-no-reboot",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("args lack %q:\n%s", want, line)
		}
	}
	// Nothing may reach the outside: no user-mode network, no NIC.
	for _, bad := range []string{"user,", "-nic user", "hostfwd", "-netdev", "-cpu host"} {
		if strings.Contains(line, bad) {
			t.Errorf("args contain %q:\n%s", bad, line)
		}
	}

	args, _ = Args(Config{Board: b, Kernel: "k", Initrd: "i", Accel: "kvm"})
	line = strings.Join(args, " ")
	if !strings.Contains(line, "-cpu host") || !strings.Contains(line, "-nographic -serial mon:stdio") || strings.Contains(line, "-drive") {
		t.Errorf("interactive KVM boot without disk: %s", line)
	}

	arm, _ := board.Get("qemu-armv7")
	args, _ = Args(Config{Board: arm, Kernel: "k", Initrd: "i", Accel: "tcg"})
	line = strings.Join(args, " ")
	if !strings.Contains(line, "console=ttyAMA0,115200") || !strings.Contains(line, "-cpu cortex-a15") {
		t.Errorf("armv7: %s", line)
	}
	hw, _ := board.Get("qcom-mdm9607")
	if _, err := Args(Config{Board: hw, Accel: "tcg"}); err == nil {
		t.Error("a hardware board got a QEMU command line")
	}
	if _, err := Args(Config{Board: b}); err == nil {
		t.Error("no accelerator accepted")
	}
}

func TestAccel(t *testing.T) {
	arm, _ := board.Get("qemu-armv7")
	if a, err := Accel(arm, ""); err != nil || a != "tcg" {
		t.Errorf("armv7 auto: %q, %v", a, err)
	}
	if _, err := Accel(arm, "kvm"); err == nil {
		t.Error("kvm forced for a foreign architecture")
	}
	x86, _ := board.Get("qemu-x86_64")
	if a, err := Accel(x86, "tcg"); err != nil || a != "tcg" {
		t.Errorf("forced tcg: %q, %v", a, err)
	}
	if _, err := Accel(x86, "hvf"); err == nil {
		t.Error("unknown accelerator accepted")
	}
}

func TestHasCPUFlag(t *testing.T) {
	info := []byte("processor\t: 0\nflags\t\t: fpu vme vmx sse\nbugs\t\t: x\n\nprocessor\t: 1\nflags\t\t: fpu svm\n")
	if !hasCPUFlag(info, "vmx") || hasCPUFlag(info, "svm") || hasCPUFlag(info, "vm") {
		t.Error("hasCPUFlag reads the first flags line word by word")
	}
}

func TestEnsureDisk(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.img")
	if err := EnsureDisk(p, 16); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Size() != 16<<20 {
		t.Fatalf("disk: %v, %v", fi, err)
	}
	// An existing disk is kept as it is: it holds the user's settings.
	os.WriteFile(p, []byte("data"), 0o644)
	if err := EnsureDisk(p, 16); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); string(data) != "data" {
		t.Error("EnsureDisk overwrote an existing disk")
	}
}

func TestArgsModemAndUplink(t *testing.T) {
	cfg := Config{Kernel: "k", Initrd: "i", Accel: "tcg", ConsoleSocket: "/run/con.sock",
		ModemSocket: "/run/modem.sock", UplinkTap: "omtap0", UplinkMAC: "52:54:00:6f:6d:01", Monitor: "/run/qmp.sock"}
	cfg.Board, _ = board.Get("qemu-x86_64")
	args, err := Args(cfg)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		// The console is the first UART, the modem the second.
		"-serial chardev:console -chardev socket,id=modem,path=/run/modem.sock,reconnect=1 -serial chardev:modem",
		"-netdev tap,id=uplink,ifname=omtap0,script=no,downscript=no -device virtio-net-pci,netdev=uplink,mac=52:54:00:6f:6d:01",
		"-chardev socket,id=qmp,path=/run/qmp.sock,server=on,wait=off -mon chardev=qmp,mode=control",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("x86_64 args lack %q:\n%s", want, line)
		}
	}
	for _, bad := range []string{"user,", "-nic user", "hostfwd", "bridge", "-net "} {
		if strings.Contains(line, bad) {
			t.Errorf("args contain %q:\n%s", bad, line)
		}
	}

	// The interactive console keeps its place as the first UART.
	cfg.ConsoleSocket = ""
	args, _ = Args(cfg)
	if line := strings.Join(args, " "); !strings.Contains(line, "-serial mon:stdio -chardev socket,id=modem") {
		t.Errorf("terminal console is not the first UART: %s", line)
	}

	// virt has one UART: the modem is a virtio console, the NIC on
	// virtio-mmio.
	cfg.Board, _ = board.Get("qemu-armv7")
	args, _ = Args(cfg)
	line = strings.Join(args, " ")
	for _, want := range []string{
		"-device virtio-serial-device -chardev socket,id=modem,path=/run/modem.sock,reconnect=1 -device virtconsole,chardev=modem",
		"-device virtio-net-device,netdev=uplink",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("armv7 args lack %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "chardev:modem") {
		t.Errorf("armv7 modem on a UART: %s", line)
	}
}
