package board

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/openmifi/openmifi/internal/usersettings"
)

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9_]+)*$`)
	moduleRE = regexp.MustCompile(`^[a-z0-9_]+$`)
	// devRE is a device name under /dev, without the /dev/ prefix.
	devRE     = regexp.MustCompile(`^[a-zA-Z]+[0-9]+$`)
	ifaceRE   = regexp.MustCompile(`^[a-z][a-z0-9]{0,14}$`)
	paramRE   = regexp.MustCompile(`^[a-z0-9_.]+=[^\s]+$`)
	plmnRE    = regexp.MustCompile(`^[0-9]{5,6}$`)
	hostRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	phyRE     = regexp.MustCompile(`^phy[0-9]+$`)
	ubiRE     = regexp.MustCompile(`^ubi[0-9]+:[a-z0-9_]+$`)
	mtdRE     = regexp.MustCompile(`^mtd:[a-z0-9_-]+$`)
	validBaud = map[int]bool{9600: true, 19200: true, 38400: true, 57600: true, 115200: true, 230400: true, 460800: true, 921600: true}
	// debianArch is the Debian architecture of each GOARCH we build for.
	debianArch = map[string]string{"amd64": "amd64", "arm": "armhf", "arm64": "arm64", "mipsle": "mipsel"}
)

// Validate checks b for mistakes a developer can make in a definition,
// and returns all of them, each naming the board and the field.
func (b Board) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("board %s: %s: %s", b.Name, field, fmt.Sprintf(format, args...)))
	}
	if !nameRE.MatchString(b.Name) {
		bad("name", "%q is not lower-case words joined by '-'", b.Name)
	}
	if b.Description == "" {
		bad("description", "missing")
	}
	if !hostRE.MatchString(b.Hostname) {
		bad("hostname", "%q is not a host name", b.Hostname)
	}

	a := b.Arch
	switch deb, ok := debianArch[a.GOARCH]; {
	case !ok:
		bad("arch.goarch", "%q is not one of amd64, arm, arm64, mipsle", a.GOARCH)
	case a.Debian != deb:
		bad("arch.debian", "%q does not match GOARCH %s (want %s)", a.Debian, a.GOARCH, deb)
	}
	if a.GOARCH == "arm" && a.GOARM != "7" {
		bad("arch.goarm", "%q: ARM boards are ARMv7 (GOARM=7)", a.GOARM)
	}
	if a.GOARCH != "arm" && a.GOARM != "" {
		bad("arch.goarm", "set for %s", a.GOARCH)
	}
	if a.GOARCH == "mipsle" && a.GOMIPS != "softfloat" && a.GOMIPS != "hardfloat" {
		bad("arch.gomips", "%q is not softfloat or hardfloat", a.GOMIPS)
	}
	if a.GOARCH != "mipsle" && a.GOMIPS != "" {
		bad("arch.gomips", "set for %s", a.GOARCH)
	}

	switch {
	case b.QEMU != nil && (b.Kernel.Package == "" || b.Kernel.Path != ""):
		bad("kernel", "a QEMU board takes its kernel from a Debian package, not a path")
	case b.QEMU == nil && (b.Kernel.Path == "" || b.Kernel.Package != ""):
		bad("kernel", "a hardware board takes the kernel its maker supplies (a path), not a Debian package")
	}
	if strings.Contains(b.Kernel.Cmdline, "console=") {
		bad("kernel.cmdline", "names the console, which comes from console.device")
	}

	seen := map[string]bool{}
	for i, m := range b.Modules {
		field := fmt.Sprintf("modules[%d]", i)
		if !moduleRE.MatchString(m.Name) {
			bad(field, "%q is not a module name (lower case, '_' not '-')", m.Name)
		}
		if seen[m.Name] {
			bad(field, "%s listed twice", m.Name)
		}
		seen[m.Name] = true
		for _, p := range m.Params {
			if !paramRE.MatchString(p) {
				bad(field, "parameter %q is not name=value", p)
			}
		}
	}

	checkSerial := func(field string, s Serial) {
		if !devRE.MatchString(s.Device) {
			bad(field+".device", "%q is not a device name under /dev (e.g. ttyS0)", s.Device)
		}
		if !validBaud[s.Baud] {
			bad(field+".baud", "%d is not a standard rate", s.Baud)
		}
	}
	checkSerial("console", b.Console)
	checkSerial("modem", b.Modem.Serial)
	if b.Console.Device == b.Modem.Device {
		bad("modem.device", "%s is also the console", b.Modem.Device)
	}
	switch b.Modem.Dialect {
	case DialectGeneric, DialectQuectel, DialectSIMCom:
	default:
		bad("modem.dialect", "%q is not generic, quectel or simcom", b.Modem.Dialect)
	}

	if !ifaceRE.MatchString(b.Uplink.Interface) {
		bad("uplink.interface", "%q is not an interface name", b.Uplink.Interface)
	}
	if b.Uplink.Addressing != AddrDHCP && b.Uplink.Addressing != AddrStatic {
		bad("uplink.addressing", "%q is not dhcp or static", b.Uplink.Addressing)
	}
	if !phyRE.MatchString(b.WiFi.PHY) {
		bad("wifi.phy", "%q is not a wiphy name (phy0)", b.WiFi.PHY)
	}
	if !ifaceRE.MatchString(b.LAN.Interface) || b.LAN.Interface == b.Uplink.Interface {
		bad("lan.interface", "%q is not an interface name apart from the uplink", b.LAN.Interface)
	}

	lan := b.LAN.Address
	switch {
	case !lan.IsValid() || !lan.Addr().Is4():
		bad("lan.address", "%v is not an IPv4 address with a prefix length", lan)
	case !lan.Addr().IsPrivate():
		bad("lan.address", "%v is not a private address", lan)
	case lan.Bits() < 16 || lan.Bits() > 29:
		bad("lan.address", "/%d leaves no room for 8 clients or is wider than a /16", lan.Bits())
	case lan.Addr() == lan.Masked().Addr():
		bad("lan.address", "%v is the network address, not the device's", lan)
	}

	switch b.Storage.FSType {
	case FSExt2:
		if !strings.HasPrefix(b.Storage.Device, "/dev/") {
			bad("storage.device", "%q: ext2 lives on a block device under /dev", b.Storage.Device)
		}
	case FSUBIFS:
		if !ubiRE.MatchString(b.Storage.Device) {
			bad("storage.device", "%q is not a UBI volume (ubi0:usrdata)", b.Storage.Device)
		}
	case FSJFFS2:
		if !mtdRE.MatchString(b.Storage.Device) {
			bad("storage.device", "%q is not an MTD partition (mtd:user)", b.Storage.Device)
		}
	default:
		bad("storage.fstype", "%q is not ext2, ubifs or jffs2", b.Storage.FSType)
	}

	b.validateFlash(bad)

	if b.ConsolePassword != "" && !usersettings.ValidPasswordHash(b.ConsolePassword) {
		// Not quoted: it may be a password written where its hash belongs.
		bad("console_password", "not a hash as usersettings.HashPassword writes it")
	}

	switch b.MVID.Source {
	case MVIDFixed:
		if !plmnRE.MatchString(b.MVID.Value) {
			bad("mvid.value", "%q is not an MCC+MNC (5 or 6 digits)", b.MVID.Value)
		}
	case MVIDSIM:
		if b.MVID.Value != "" {
			bad("mvid.value", "set, but the source is the SIM")
		}
	case MVIDFile:
		if !strings.HasPrefix(b.MVID.Value, "/") {
			bad("mvid.value", "%q is not an absolute path", b.MVID.Value)
		}
	default:
		bad("mvid.source", "%q is not fixed, sim or file", b.MVID.Source)
	}

	if q := b.QEMU; q != nil {
		if !strings.HasPrefix(q.System, "qemu-system-") || q.Machine == "" {
			bad("qemu", "system %q and machine %q", q.System, q.Machine)
		}
		if q.Memory < 128 {
			bad("qemu.memory", "%d MiB is too little for the kernel and the initramfs", q.Memory)
		}
		if q.Disk != "virtio-blk-pci" && q.Disk != "virtio-blk-device" {
			bad("qemu.disk", "%q is not virtio-blk-pci or virtio-blk-device", q.Disk)
		}
		if q.NIC != "virtio-net-pci" && q.NIC != "virtio-net-device" {
			bad("qemu.nic", "%q is not virtio-net-pci or virtio-net-device", q.NIC)
		}
		hvc := strings.HasPrefix(b.Modem.Device, "hvc")
		switch {
		case hvc && q.ModemBus != "virtio-serial-pci" && q.ModemBus != "virtio-serial-device":
			bad("qemu.modem_bus", "modem %s is a virtio console: want virtio-serial-pci or virtio-serial-device, not %q", b.Modem.Device, q.ModemBus)
		case !hvc && q.ModemBus != "":
			bad("qemu.modem_bus", "modem %s is a UART, not a virtio console", b.Modem.Device)
		}
		if q.StateSize < 1 {
			bad("qemu.state_size", "%d MiB", q.StateSize)
		}
		if q.KVM && a.GOARCH != "amd64" {
			bad("qemu.kvm", "only x86_64 boards can use the host's KVM")
		}
	}
	return errors.Join(errs...)
}

func (b Board) validateFlash(bad func(field, format string, args ...any)) {
	f := b.Flash
	switch f.ImageType {
	case ImageQEMU:
		if b.QEMU == nil {
			bad("flash.image_type", "qemu images are for QEMU boards")
		}
		if f.Size != 0 || len(f.Partitions) > 0 {
			bad("flash", "a QEMU board has no flash")
		}
		return
	case ImageUBI, ImageSysupgrade:
		if b.QEMU != nil {
			bad("flash.image_type", "%s is for hardware boards", f.ImageType)
		}
	default:
		bad("flash.image_type", "%q is not qemu, ubi or sysupgrade", f.ImageType)
		return
	}
	if f.Size <= 0 {
		bad("flash.size", "%d", f.Size)
	}
	names := map[string]bool{}
	images := map[string]bool{}
	var end int64
	for i, p := range f.Partitions {
		field := fmt.Sprintf("flash.partitions[%d]", i)
		if p.Name == "" || names[p.Name] {
			bad(field, "name %q missing or used twice", p.Name)
		}
		names[p.Name] = true
		if p.Offset < end {
			bad(field, "%s at %#x overlaps the partition before it (ends at %#x)", p.Name, p.Offset, end)
		}
		if p.Size <= 0 || p.Offset%(64<<10) != 0 || p.Size%(64<<10) != 0 {
			bad(field, "%s: offset %#x and size %#x must be positive multiples of 64 KiB (the erase block)", p.Name, p.Offset, p.Size)
		}
		end = p.Offset + p.Size
		if end > f.Size {
			bad(field, "%s ends at %#x, beyond the %#x bytes of flash", p.Name, end, f.Size)
		}
		switch p.Image {
		case "":
		case "kernel", "rootfs", "firmware":
			if images[p.Image] {
				bad(field, "a second partition for the %s", p.Image)
			}
			images[p.Image] = true
		default:
			bad(field, "image %q is not kernel, rootfs or firmware", p.Image)
		}
	}
	if !images["firmware"] && !(images["kernel"] && images["rootfs"]) {
		bad("flash.partitions", "no partition takes the firmware (a firmware partition, or kernel and rootfs)")
	}
	if images["firmware"] && (images["kernel"] || images["rootfs"]) {
		bad("flash.partitions", "both a firmware partition and separate kernel/rootfs partitions")
	}
	if dev, ok := strings.CutPrefix(b.Storage.Device, "mtd:"); ok && !names[dev] {
		bad("storage.device", "no flash partition %q", dev)
	}
	if _, vol, ok := strings.Cut(b.Storage.Device, ":"); ok && b.Storage.FSType == FSUBIFS && !names[vol] {
		bad("storage.device", "no flash partition %q holds the UBI volume", vol)
	}
}
