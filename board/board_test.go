package board

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/openmifi/openmifi/internal/usersettings"
)

func TestBoardsValid(t *testing.T) {
	names := map[string]bool{}
	for _, b := range All() {
		if err := b.Validate(); err != nil {
			t.Errorf("%v", err)
		}
		if names[b.Name] {
			t.Errorf("two boards named %s", b.Name)
		}
		names[b.Name] = true
	}
}

// TestBoardSet pins the boards the issue asks for: the four QEMU twins and
// at least two hardware profiles, covering every architecture.
func TestBoardSet(t *testing.T) {
	for _, name := range []string{"qemu-x86_64", "qemu-armv7", "qemu-arm64", "qemu-mipsel"} {
		b, err := Get(name)
		if err != nil {
			t.Fatal(err)
		}
		if b.QEMU == nil {
			t.Errorf("%s: no QEMU settings", name)
		}
		if b.LAN.Address != netip.MustParsePrefix("192.168.43.1/24") {
			t.Errorf("%s: LAN %v", name, b.LAN.Address)
		}
		if !hasModule(b, "mac80211_hwsim", "radios=3") {
			t.Errorf("%s: no mac80211_hwsim with three radios", name)
		}
	}
	hardware := 0
	arches := map[string]bool{}
	for _, b := range All() {
		arches[b.Arch.GOARCH] = true
		if b.QEMU == nil {
			hardware++
		}
	}
	if hardware < 2 {
		t.Errorf("%d hardware profiles, want at least 2", hardware)
	}
	for _, a := range []string{"amd64", "arm", "arm64", "mipsle"} {
		if !arches[a] {
			t.Errorf("no board for %s", a)
		}
	}
	if _, err := Get("no-such-board"); err == nil || !strings.Contains(err.Error(), "qemu-x86_64") {
		t.Errorf("Get of an unknown board: %v, want an error listing the boards", err)
	}
}

func hasModule(b Board, name, param string) bool {
	for _, m := range b.Modules {
		if m.Name == name {
			for _, p := range m.Params {
				if p == param {
					return true
				}
			}
		}
	}
	return false
}

// TestValidateCatches breaks a good board one field at a time: each
// mistake must be reported, naming its field.
func TestValidateCatches(t *testing.T) {
	for _, tc := range []struct {
		field string
		bad   func(*Board)
	}{
		{"name", func(b *Board) { b.Name = "QEMU X86" }},
		{"hostname", func(b *Board) { b.Hostname = "-x" }},
		{"arch.goarch", func(b *Board) { b.Arch.GOARCH = "386" }},
		{"arch.debian", func(b *Board) { b.Arch.Debian = "i386" }},
		{"arch.goarm", func(b *Board) { b.Arch.GOARM = "6" }},
		{"kernel", func(b *Board) { b.Kernel.Package = "" }},
		{"kernel.cmdline", func(b *Board) { b.Kernel.Cmdline = "console=ttyS1" }},
		{"modules[0]", func(b *Board) { b.Modules[0].Name = "virtio-pci" }},
		{"modules[1]", func(b *Board) { b.Modules[1].Name = b.Modules[0].Name }},
		{"modules[0]", func(b *Board) { b.Modules[0].Params = []string{"radios"} }},
		{"console.device", func(b *Board) { b.Console.Device = "/dev/ttyS0" }},
		{"console.baud", func(b *Board) { b.Console.Baud = 115201 }},
		{"modem.device", func(b *Board) { b.Modem.Device = b.Console.Device }},
		{"modem.dialect", func(b *Board) { b.Modem.Dialect = "huawei" }},
		{"uplink.addressing", func(b *Board) { b.Uplink.Addressing = "ppp" }},
		{"uplink.interface", func(b *Board) { b.Uplink.Interface = "eth 0" }},
		{"wifi.phy", func(b *Board) { b.WiFi.PHY = "wlan0" }},
		{"lan.interface", func(b *Board) { b.LAN.Interface = b.Uplink.Interface }},
		{"lan.address", func(b *Board) { b.LAN.Address = netip.MustParsePrefix("8.8.8.1/24") }},
		{"lan.address", func(b *Board) { b.LAN.Address = netip.MustParsePrefix("192.168.43.0/24") }},
		{"lan.address", func(b *Board) { b.LAN.Address = netip.MustParsePrefix("192.168.43.1/30") }},
		{"lan.address", func(b *Board) { b.LAN.Address = netip.Prefix{} }},
		{"lan.interface", func(b *Board) { b.LAN.Interface = "" }},
		{"storage.fstype", func(b *Board) { b.Storage.FSType = "ntfs" }},
		{"storage.device", func(b *Board) { b.Storage.Device = "vda" }},
		{"flash", func(b *Board) { b.Flash.Size = 1 << 20 }},
		{"mvid.value", func(b *Board) { b.MVID.Value = "1234" }},
		{"mvid.source", func(b *Board) { b.MVID.Source = "imei" }},
		{"console_password", func(b *Board) { b.ConsolePassword = "hunter2" }},
		{"qemu.memory", func(b *Board) { b.QEMU.Memory = 64 }},
		{"qemu.disk", func(b *Board) { b.QEMU.Disk = "ide-hd" }},
		{"qemu.nic", func(b *Board) { b.QEMU.NIC = "" }},
		{"qemu.modem_bus", func(b *Board) { b.QEMU.ModemBus = "virtio-serial-pci" }},
		{"qemu.modem_bus", func(b *Board) { b.Modem.Device = "hvc0" }},
	} {
		b, _ := Get("qemu-x86_64")
		tc.bad(&b)
		err := b.Validate()
		if err == nil || !strings.Contains(err.Error(), "board "+b.Name+": "+tc.field) {
			t.Errorf("broken %s: got %v", tc.field, err)
		}
	}
}

func TestValidateFlash(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  func(*Board)
		want string
	}{
		{"overlap", func(b *Board) { b.Flash.Partitions[1].Offset -= 64 << 10 }, "overlaps"},
		{"beyond", func(b *Board) { b.Flash.Size -= 1 << 20 }, "beyond"},
		{"unaligned", func(b *Board) { b.Flash.Partitions[0].Size += 512 }, "multiples of 64 KiB"},
		{"no firmware", func(b *Board) {
			for i := range b.Flash.Partitions {
				b.Flash.Partitions[i].Image = ""
			}
		}, "no partition takes the firmware"},
		{"no user partition", func(b *Board) { b.Storage.Device = "mtd:overlay" }, `no flash partition "overlay"`},
		{"qemu image", func(b *Board) { b.Flash.ImageType = ImageQEMU }, "qemu images are for QEMU boards"},
	} {
		b, _ := Get("mediatek-mt7628")
		tc.bad(&b)
		if err := b.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// TestJSONRoundTrip: the init reads the board back from the JSON the
// image build writes.
func TestJSONRoundTrip(t *testing.T) {
	for _, b := range All() {
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var back Board
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		if !reflect.DeepEqual(b, back) {
			t.Errorf("%s: round trip changed the board:\n%+v\n%+v", b.Name, b, back)
		}
	}
}

func TestArchEnv(t *testing.T) {
	b, _ := Get("qemu-mipsel")
	got := strings.Join(b.Arch.Env(), " ")
	if want := "CGO_ENABLED=0 GOOS=linux GOARCH=mipsle GOMIPS=softfloat"; got != want {
		t.Errorf("Env = %q, want %q", got, want)
	}
}

func TestConsolePasswordDefault(t *testing.T) {
	b, _ := Get("qemu-x86_64")
	if b.ConsolePassword != "" {
		t.Errorf("the QEMU board has a console password; its boot tests expect a shell")
	}
	h, err := usersettings.HashPassword(nil, "factory")
	if err != nil {
		t.Fatal(err)
	}
	b.ConsolePassword = h
	if err := b.Validate(); err != nil {
		t.Errorf("board with a hashed default: %v", err)
	}
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var back Board
	if err := json.Unmarshal(data, &back); err != nil || back.ConsolePassword != h {
		t.Errorf("round trip: %q, %v; want %q", back.ConsolePassword, err, h)
	}

	b.ConsolePassword = "factory"
	if err := b.Validate(); err == nil || strings.Contains(err.Error(), "factory") {
		t.Errorf("plain-text default: %v", err)
	}
}
