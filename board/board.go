// Package board describes the devices openmifi runs on: one plain Go value
// per board, for the QEMU twins and for real hardware alike.
//
// A board says everything the image build and the init need to know about
// a device: the CPU architecture the Go programs are built for, the kernel
// and the modules to load, where the console and the modem are, how the
// uplink gets its address, which radio the access point uses, the LAN
// address, where user settings persist and how the flash is laid out.
//
// Boards are Go values rather than a text format because they are few,
// written by developers, and best checked by the compiler and by Validate;
// a board is serialized to JSON (/etc/openmifi/board.json) only to hand it
// to the init inside the image.
package board

import (
	"fmt"
	"net/netip"
	"sort"
)

// Board is one device.
type Board struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Hostname    string `json:"hostname"`

	Arch    Arch     `json:"arch"`
	Kernel  Kernel   `json:"kernel"`
	Modules []Module `json:"modules"` // loaded in this order, each after its dependencies
	Console Serial   `json:"console"`
	Modem   Modem    `json:"modem"`
	Uplink  Uplink   `json:"uplink"`
	WiFi    WiFi     `json:"wifi"`
	LAN     LAN      `json:"lan"`
	Storage Storage  `json:"storage"`
	Flash   Flash    `json:"flash"`
	MVID    MVID     `json:"mvid"`

	// ConsolePassword is the serial console's password when the user has
	// set none: a hash as usersettings.HashPassword writes it, or "" for
	// a console without a password (a development board). The user's
	// console_password replaces it; clearing the user's brings it back.
	ConsolePassword string `json:"console_password,omitempty"`

	// QEMU is how to boot the board under emulation; nil for real
	// hardware.
	QEMU *QEMU `json:"qemu,omitempty"`
}

// Arch is the CPU architecture, in Go's and Debian's words.
type Arch struct {
	GOARCH string `json:"goarch"`
	GOARM  string `json:"goarm,omitempty"`  // "7" for ARMv7
	GOMIPS string `json:"gomips,omitempty"` // "softfloat": MiFi-class MIPS cores have no FPU
	// Debian is the Debian architecture of the kernel and busybox
	// packages (amd64, armhf, arm64, mipsel).
	Debian string `json:"debian"`
}

// Env is the environment for cross-compiling Go programs for a.
func (a Arch) Env() []string {
	env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + a.GOARCH}
	if a.GOARM != "" {
		env = append(env, "GOARM="+a.GOARM)
	}
	if a.GOMIPS != "" {
		env = append(env, "GOMIPS="+a.GOMIPS)
	}
	return env
}

// Kernel is where the board's kernel comes from.
type Kernel struct {
	// Package is a Debian kernel package (or the meta package that
	// depends on one), for QEMU boards.
	Package string `json:"package,omitempty"`
	// Path is a kernel image with its modules tree beside it, supplied by
	// the device maker, for real hardware.
	Path string `json:"path,omitempty"`
	// Cmdline is the kernel command line, less the console, which comes
	// from Console.
	Cmdline string `json:"cmdline,omitempty"`
}

// Module is a kernel module to load at boot, by its name (as in lsmod,
// with underscores), with its parameters.
type Module struct {
	Name   string   `json:"name"`
	Params []string `json:"params,omitempty"` // "radios=3"
}

// Serial is a serial port.
type Serial struct {
	Device string `json:"device"` // under /dev: "ttyS0"
	Baud   int    `json:"baud"`
}

// AT dialects the modem driver speaks: the 3GPP TS 27.007 commands every
// modem has, and the vendor commands of Quectel and SIMCom modules.
const (
	DialectGeneric = "generic"
	DialectQuectel = "quectel"
	DialectSIMCom  = "simcom"
)

// Modem is the cellular modem's AT command port.
type Modem struct {
	Serial
	Dialect string `json:"dialect"`
}

// Uplink addressing.
const (
	// AddrDHCP is an Ethernet-like uplink (CDC-ECM, RNDIS, a QEMU NIC)
	// whose address the modem hands out over DHCP.
	AddrDHCP = "dhcp"
	// AddrStatic is a raw-IP uplink (QMI/MBIM wwan) configured with the
	// address the modem reports for the PDP context.
	AddrStatic = "static"
)

// Uplink is the network interface that carries the cellular data.
type Uplink struct {
	Interface  string `json:"interface"`
	Addressing string `json:"addressing"`
}

// WiFi is the radio the access point runs on.
type WiFi struct {
	PHY string `json:"phy"` // "phy0"
}

// LAN is the clients' side: the access point's interface, which hotspotd
// creates on the Wi-Fi PHY, and its address, which is also the DHCP
// server's, the gateway's and the DNS forwarder's.
type LAN struct {
	Interface string       `json:"interface"` // "wlan0"
	Address   netip.Prefix `json:"address"`   // 192.168.43.1/24
}

// Storage kinds for the user's settings and the leases.
const (
	// FSExt2 on a block device, formatted by the init on first boot
	// when the device is blank.
	FSExt2 = "ext2"
	// FSUBIFS on a UBI volume ("ubi0:usrdata"), prepared at the factory.
	FSUBIFS = "ubifs"
	// FSJFFS2 on an MTD partition ("mtd:user"), prepared at the factory.
	FSJFFS2 = "jffs2"
)

// Storage is where /var/lib/openmifi persists.
type Storage struct {
	Device string `json:"device"` // "/dev/vda", "ubi0:usrdata", "mtd:user"
	FSType string `json:"fstype"`
}

// Image types the firmware tool builds.
const (
	// ImageQEMU is a kernel and an initramfs, booted by QEMU directly.
	ImageQEMU = "qemu"
	// ImageUBI is a NAND image of UBI volumes (Qualcomm MDM boards).
	ImageUBI = "ubi"
	// ImageSysupgrade is a NOR image: a uImage kernel followed by the
	// root filesystem in one "firmware" partition (MediaTek routers).
	ImageSysupgrade = "sysupgrade"
)

// Flash is the device's flash: its size, partitions and image type.
type Flash struct {
	ImageType  string      `json:"image_type"`
	Size       int64       `json:"size,omitempty"` // bytes; 0 for QEMU
	Partitions []Partition `json:"partitions,omitempty"`
}

// Partition is one flash partition. Image names the part of the firmware
// image written to it ("kernel", "rootfs", "firmware"), or is empty for
// partitions an update leaves alone (boot loader, calibration data, the
// user's settings).
type Partition struct {
	Name   string `json:"name"`
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	Image  string `json:"image,omitempty"`
}

// Sources of the mobile variant ID ($(__MVID) in the provisioning).
const (
	// MVIDFixed: the value given, for QEMU boards and single-operator
	// builds.
	MVIDFixed = "fixed"
	// MVIDSIM: the SIM's MCC+MNC, read by hotspotd from the modem.
	MVIDSIM = "sim"
	// MVIDFile: the first line of a file, e.g. on a factory partition.
	MVIDFile = "file"
)

// MVID is where the mobile variant ID comes from.
type MVID struct {
	Source string `json:"source"`
	Value  string `json:"value,omitempty"` // the ID for fixed, the path for file
}

// QEMU is how to boot a board under emulation.
type QEMU struct {
	System  string `json:"system"`  // qemu-system-x86_64
	Machine string `json:"machine"` // "q35", "virt", "malta"
	CPU     string `json:"cpu"`     // CPU under TCG; KVM uses "host"
	Memory  int    `json:"memory"`  // MiB
	Disk    string `json:"disk"`    // QEMU device for the storage disk: "virtio-blk-pci"
	// NIC is the QEMU device of the uplink NIC, which stands for the
	// modem's Ethernet-like data interface: "virtio-net-pci" on PCI
	// machines, "virtio-net-device" on the virtio-mmio of ARM's virt.
	NIC string `json:"nic"`
	// ModemBus is the virtio-serial device whose console (hvc0) is the
	// modem's AT port on machines with a single UART, which the console
	// takes; "" when the modem is the machine's second UART.
	ModemBus string   `json:"modem_bus,omitempty"`
	Extra    []string `json:"extra,omitempty"`
	// KVM is true when the board can use KVM on an x86_64 host.
	KVM bool `json:"kvm,omitempty"`
	// StateSize is the size of the persistent disk image, in MiB.
	StateSize int `json:"state_size"`
}

// Get returns the board called name.
func Get(name string) (Board, error) {
	for _, b := range All() {
		if b.Name == name {
			return b, nil
		}
	}
	return Board{}, fmt.Errorf("unknown board %q (boards: %v)", name, Names())
}

// Names lists the boards, sorted.
func Names() []string {
	var names []string
	for _, b := range All() {
		names = append(names, b.Name)
	}
	sort.Strings(names)
	return names
}

// All returns every board. The values are fresh copies: callers may
// change them.
func All() []Board {
	return []Board{
		qemuX8664(), qemuARMv7(), qemuARM64(), qemuMIPSel(),
		qcomMDM9607(), mediatekMT7628(),
	}
}
