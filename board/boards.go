package board

import "net/netip"

// lanAddress is the LAN address of every board: the address Android and
// Windows hotspots use, which clients and operator documentation expect.
var lanAddress = netip.MustParsePrefix("192.168.43.1/24")

// testPLMN is the mobile variant ID of the QEMU boards: MCC 001, MNC 01,
// the 3GPP test network the simulated modem registers on.
const testPLMN = "00101"

// Kernel modules shared by the boards, in load order; each one's
// dependencies are found by the image build from the modules themselves.
var (
	// hwsimRadios: three simulated radios, one for the access point and
	// two for test clients.
	hwsimRadios = []Module{{Name: "mac80211_hwsim", Params: []string{"radios=3"}}}
	// ccmp: the cipher mac80211 asks the crypto API for when the access
	// point installs a WPA2 key (CCM over CTR). Debian builds both as
	// modules, and the image has no modprobe to load them on demand.
	ccmp = []Module{{Name: "ctr"}, {Name: "ccm"}}
	// ext4 mounts the ext2 state disk (Debian builds ext2 support into
	// ext4).
	ext4 = []Module{{Name: "ext4"}}
	// nftables: what the firewall driver's NAT and forward rules use.
	nftables = []Module{{Name: "nf_tables"}, {Name: "nft_ct"}, {Name: "nft_chain_nat"}, {Name: "nft_masq"}}
)

func modules(groups ...[]Module) []Module {
	var all []Module
	for _, g := range groups {
		all = append(all, g...)
	}
	return all
}

// qemuCommon fills what every QEMU twin shares: the test network's MVID,
// the simulated modem on the second serial port speaking the generic
// dialect, an Ethernet-like uplink (the QEMU NIC stands for the modem's
// ECM interface), the first hwsim radio for the access point, and an ext2
// state disk formatted on first boot.
func qemuCommon(b Board) Board {
	b.Hostname = "openmifi"
	b.Modem.Baud = 115200
	b.Modem.Dialect = DialectGeneric
	b.Console.Baud = 115200
	b.Uplink = Uplink{Interface: "eth0", Addressing: AddrDHCP}
	b.WiFi = WiFi{PHY: "phy0"}
	b.LAN = LAN{Interface: "wlan0", Address: lanAddress}
	b.Storage = Storage{Device: "/dev/vda", FSType: FSExt2}
	b.Flash = Flash{ImageType: ImageQEMU}
	b.MVID = MVID{Source: MVIDFixed, Value: testPLMN}
	// panic=-1: a kernel panic reboots, and QEMU run with -no-reboot
	// exits, so a test sees a crash instead of a hang.
	b.Kernel.Cmdline = "quiet panic=-1"
	b.QEMU.StateSize = 16
	return b
}

func qemuX8664() Board {
	return qemuCommon(Board{
		Name:        "qemu-x86_64",
		Description: "QEMU PC, the test board: boots fastest, with KVM where the host has it",
		Arch:        Arch{GOARCH: "amd64", Debian: "amd64"},
		Kernel:      Kernel{Package: "linux-image-amd64"},
		Modules: modules(
			[]Module{{Name: "virtio_pci"}, {Name: "virtio_blk"}, {Name: "virtio_net"}},
			ext4, hwsimRadios, ccmp, nftables),
		Console: Serial{Device: "ttyS0"},
		Modem:   Modem{Serial: Serial{Device: "ttyS1"}},
		QEMU: &QEMU{
			System: "qemu-system-x86_64", Machine: "pc", Memory: 256,
			Disk: "virtio-blk-pci", NIC: "virtio-net-pci", KVM: true,
		},
	})
}

func qemuARMv7() Board {
	return qemuCommon(Board{
		Name:        "qemu-armv7",
		Description: "QEMU ARM virt machine with a Cortex-A15: the twin of ARMv7 MiFi SoCs",
		Arch:        Arch{GOARCH: "arm", GOARM: "7", Debian: "armhf"},
		Kernel:      Kernel{Package: "linux-image-armmp"},
		Modules: modules(
			[]Module{{Name: "virtio_mmio"}, {Name: "virtio_blk"}, {Name: "virtio_net"}, {Name: "virtio_console"}},
			ext4, hwsimRadios, ccmp, nftables),
		Console: Serial{Device: "ttyAMA0"},
		// virt has one PL011; the modem simulator gets a virtio console.
		Modem: Modem{Serial: Serial{Device: "hvc0"}},
		QEMU: &QEMU{
			// highmem=off: the armmp kernel has no LPAE and cannot
			// reach devices above 4 GiB.
			System: "qemu-system-arm", Machine: "virt,highmem=off", CPU: "cortex-a15", Memory: 256,
			Disk: "virtio-blk-device", NIC: "virtio-net-device", ModemBus: "virtio-serial-device",
		},
	})
}

func qemuARM64() Board {
	return qemuCommon(Board{
		Name:        "qemu-arm64",
		Description: "QEMU ARM virt machine with a Cortex-A53",
		Arch:        Arch{GOARCH: "arm64", Debian: "arm64"},
		Kernel:      Kernel{Package: "linux-image-arm64"},
		Modules: modules(
			[]Module{{Name: "virtio_mmio"}, {Name: "virtio_blk"}, {Name: "virtio_net"}, {Name: "virtio_console"}},
			ext4, hwsimRadios, ccmp, nftables),
		Console: Serial{Device: "ttyAMA0"},
		Modem:   Modem{Serial: Serial{Device: "hvc0"}},
		QEMU: &QEMU{
			System: "qemu-system-aarch64", Machine: "virt", CPU: "cortex-a53", Memory: 256,
			Disk: "virtio-blk-device", NIC: "virtio-net-device", ModemBus: "virtio-serial-device",
		},
	})
}

func qemuMIPSel() Board {
	return qemuCommon(Board{
		Name:        "qemu-mipsel",
		Description: "QEMU MIPS Malta, little endian: the twin of MediaTek MIPS routers",
		Arch:        Arch{GOARCH: "mipsle", GOMIPS: "softfloat", Debian: "mipsel"},
		Kernel:      Kernel{Package: "linux-image-4kc-malta"},
		Modules: modules(
			[]Module{{Name: "virtio_pci"}, {Name: "virtio_blk"}, {Name: "virtio_net"}},
			ext4, hwsimRadios, ccmp, nftables),
		Console: Serial{Device: "ttyS0"},
		Modem:   Modem{Serial: Serial{Device: "ttyS1"}},
		QEMU: &QEMU{
			System: "qemu-system-mipsel", Machine: "malta", Memory: 256,
			Disk: "virtio-blk-pci", NIC: "virtio-net-pci",
		},
	})
}

// qcomMDM9607 is a pocket router around a Qualcomm MDM9607 (one Cortex-A7,
// ARMv7) with NAND flash, from the public facts of that family: a
// Quectel-style LTE module on USB whose AT port is the third serial
// function (ttyUSB2), its data path a QMI raw-IP wwan interface, the
// console on the SoC's high-speed UART as the vendor kernel names it, and
// user data on a UBI volume. The partition sizes are those of a common
// 256 MiB NAND layout; the maker's partition table is the authority.
func qcomMDM9607() Board {
	const mib = 1 << 20
	return Board{
		Name:        "qcom-mdm9607",
		Description: "Qualcomm MDM9607 pocket router, Quectel-style modem, 256 MiB NAND",
		Hostname:    "openmifi",
		Arch:        Arch{GOARCH: "arm", GOARM: "7", Debian: "armhf"},
		Kernel:      Kernel{Path: "vendor/qcom-mdm9607/zImage", Cmdline: "quiet"},
		Modules: []Module{
			{Name: "usbserial"}, {Name: "option"}, {Name: "qmi_wwan"},
			{Name: "cfg80211"}, {Name: "mac80211"},
			// A QCA6174-class radio on SDIO, as Qualcomm pairs with
			// its modem chips in hotspot designs.
			{Name: "ath10k_sdio"},
			{Name: "nf_tables"}, {Name: "nft_ct"}, {Name: "nft_chain_nat"}, {Name: "nft_masq"},
		},
		Console: Serial{Device: "ttyHSL0", Baud: 115200},
		Modem:   Modem{Serial: Serial{Device: "ttyUSB2", Baud: 115200}, Dialect: DialectQuectel},
		Uplink:  Uplink{Interface: "wwan0", Addressing: AddrStatic},
		WiFi:    WiFi{PHY: "phy0"},
		LAN:     LAN{Interface: "wlan0", Address: lanAddress},
		Storage: Storage{Device: "ubi0:usrdata", FSType: FSUBIFS},
		Flash: Flash{
			ImageType: ImageUBI,
			Size:      256 * mib,
			Partitions: []Partition{
				{Name: "sbl", Offset: 0, Size: 2 * mib},
				{Name: "mibib", Offset: 2 * mib, Size: 1 * mib},
				{Name: "efs2", Offset: 3 * mib, Size: 11 * mib},
				{Name: "tz", Offset: 14 * mib, Size: 1 * mib},
				{Name: "rpm", Offset: 15 * mib, Size: 1 * mib},
				{Name: "aboot", Offset: 16 * mib, Size: 1 * mib},
				{Name: "boot", Offset: 17 * mib, Size: 15 * mib, Image: "kernel"},
				{Name: "modem", Offset: 32 * mib, Size: 64 * mib},
				{Name: "system", Offset: 96 * mib, Size: 112 * mib, Image: "rootfs"},
				{Name: "usrdata", Offset: 208 * mib, Size: 48 * mib},
			},
		},
		MVID: MVID{Source: MVIDSIM},
	}
}

// mediatekMT7628 is a travel router around a MediaTek MT7628 (MIPS 24KEc,
// little endian, no FPU) with 16 MiB SPI NOR flash, its built-in 2.4 GHz
// radio, and an LTE modem on its USB port: a SIMCom-style module whose AT
// port is ttyUSB2 and whose data path is CDC-ECM (usb0, addressed over
// DHCP by the modem). The layout is the usual one of such routers: boot
// loader, its environment, the radio calibration ("factory"), one
// "firmware" partition for kernel and root file system, and a small
// JFFS2 partition for the user's settings.
func mediatekMT7628() Board {
	const kib = 1 << 10
	return Board{
		Name:        "mediatek-mt7628",
		Description: "MediaTek MT7628 travel router with a USB LTE modem, 16 MiB NOR",
		Hostname:    "openmifi",
		Arch:        Arch{GOARCH: "mipsle", GOMIPS: "softfloat", Debian: "mipsel"},
		Kernel:      Kernel{Path: "vendor/mediatek-mt7628/uImage", Cmdline: "quiet"},
		Modules: []Module{
			{Name: "usbserial"}, {Name: "option"}, {Name: "cdc_ether"},
			// mt7603e drives the MT7628's built-in radio.
			{Name: "cfg80211"}, {Name: "mac80211"}, {Name: "mt7603e"},
			{Name: "nf_tables"}, {Name: "nft_ct"}, {Name: "nft_chain_nat"}, {Name: "nft_masq"},
		},
		Console: Serial{Device: "ttyS0", Baud: 115200},
		Modem:   Modem{Serial: Serial{Device: "ttyUSB2", Baud: 115200}, Dialect: DialectSIMCom},
		Uplink:  Uplink{Interface: "usb0", Addressing: AddrDHCP},
		WiFi:    WiFi{PHY: "phy0"},
		LAN:     LAN{Interface: "wlan0", Address: lanAddress},
		Storage: Storage{Device: "mtd:user", FSType: FSJFFS2},
		Flash: Flash{
			ImageType: ImageSysupgrade,
			Size:      16 * 1024 * kib,
			Partitions: []Partition{
				{Name: "u-boot", Offset: 0, Size: 192 * kib},
				{Name: "u-boot-env", Offset: 192 * kib, Size: 64 * kib},
				{Name: "factory", Offset: 256 * kib, Size: 64 * kib},
				{Name: "firmware", Offset: 320 * kib, Size: 15040 * kib, Image: "firmware"},
				{Name: "user", Offset: 15360 * kib, Size: 1024 * kib},
			},
		},
		MVID: MVID{Source: MVIDSIM},
	}
}
