package rootfs

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeModule is the smallest ELF relocatable object debug/elf reads with
// a .modinfo section holding the given key=value strings: what the image
// build reads of a kernel module.
func fakeModule(modinfo ...string) []byte {
	info := []byte(strings.Join(modinfo, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shentsize = 64, 64
	infoOff := uint64(ehsize)
	shstrOff := infoOff + uint64(len(info))
	shOff := (shstrOff + uint64(len(shstr)) + 7) &^ 7

	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* LE */, 1, 0})
	b.Write(make([]byte, 8))
	binary.Write(&b, le, uint16(1))  // ET_REL
	binary.Write(&b, le, uint16(62)) // EM_X86_64
	binary.Write(&b, le, uint32(1))
	binary.Write(&b, le, uint64(0)) // entry
	binary.Write(&b, le, uint64(0)) // phoff
	binary.Write(&b, le, shOff)
	binary.Write(&b, le, uint32(0))
	binary.Write(&b, le, uint16(ehsize))
	binary.Write(&b, le, uint16(0)) // phentsize
	binary.Write(&b, le, uint16(0)) // phnum
	binary.Write(&b, le, uint16(shentsize))
	binary.Write(&b, le, uint16(3)) // shnum
	binary.Write(&b, le, uint16(2)) // shstrndx
	b.Write(info)
	b.Write(shstr)
	b.Write(make([]byte, int(shOff)-b.Len()))
	section := func(name uint32, typ uint32, off, size uint64) {
		binary.Write(&b, le, name)
		binary.Write(&b, le, typ)
		binary.Write(&b, le, uint64(0)) // flags
		binary.Write(&b, le, uint64(0)) // addr
		binary.Write(&b, le, off)
		binary.Write(&b, le, size)
		binary.Write(&b, le, uint32(0)) // link
		binary.Write(&b, le, uint32(0)) // info
		binary.Write(&b, le, uint64(1)) // align
		binary.Write(&b, le, uint64(0)) // entsize
	}
	section(0, 0, 0, 0)
	section(1, 1 /* PROGBITS */, infoOff, uint64(len(info)))
	section(10, 3 /* STRTAB */, shstrOff, uint64(len(shstr)))
	return b.Bytes()
}

const testKernelVersion = "6.1.0-test-amd64"

// fakeModules are a small kernel's modules with the dependency shapes of
// the real ones: a chain (mac80211_hwsim), a shared dependency, a soft
// dependency through an alias (ext4 on crypto-crc32c), and a file name
// with '-' for a module name with '_'.
var fakeModules = map[string][]string{
	"kernel/net/rfkill/rfkill.ko":                     {"name=rfkill", "depends="},
	"kernel/net/wireless/cfg80211.ko":                 {"name=cfg80211", "depends=rfkill"},
	"kernel/lib/crypto/libarc4.ko":                    {"name=libarc4", "depends="},
	"kernel/net/mac80211/mac80211.ko":                 {"name=mac80211", "depends=cfg80211,libarc4"},
	"kernel/drivers/net/wireless/mac80211_hwsim.ko":   {"name=mac80211_hwsim", "depends=mac80211,cfg80211"},
	"kernel/fs/ext4/ext4.ko":                          {"name=ext4", "depends=jbd2", "softdep=pre: crypto-crc32c", "alias=fs-ext2"},
	"kernel/fs/jbd2/jbd2.ko":                          {"name=jbd2", "depends=", "softdep=pre: crypto-crc32c"},
	"kernel/crypto/crc32c_generic.ko":                 {"name=crc32c_generic", "alias=crypto-crc32c", "alias=crc32c"},
	"kernel/arch/x86/crypto/crc32c-intel.ko":          {"name=crc32c_intel", "alias=crypto-crc32c", "alias=cpu:type:x86,ven*fam*mod*:feature:*0094*"},
	"kernel/drivers/net/wireless/unused_radio_drv.ko": {"name=unused_radio_drv", "depends=mac80211"},
}

// writeFakeKernel lays out a kernel image and its modules under dir, as a
// device maker supplies them (and as a kernel package holds them).
func writeFakeKernel(t *testing.T, dir string) string {
	t.Helper()
	image := filepath.Join(dir, "boot", "vmlinuz-"+testKernelVersion)
	mustWrite(t, image, []byte("not really a kernel"))
	for rel, info := range fakeModules {
		mustWrite(t, filepath.Join(dir, "lib", "modules", testKernelVersion, rel), fakeModule(info...))
	}
	return image
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildDeb makes a .deb of the files under root with dpkg-deb, which needs
// no root for it.
func buildDeb(t *testing.T, root, name, version, arch, depends, dst string) {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("no dpkg-deb: not a Debian machine")
	}
	control := "Package: " + name + "\nVersion: " + version + "\nArchitecture: " + arch +
		"\nMaintainer: openmifi tests <tests@openmifi.invalid>\nDescription: test package\n"
	if depends != "" {
		control += "Depends: " + depends + "\n"
	}
	mustWrite(t, filepath.Join(root, "DEBIAN", "control"), []byte(control))
	out, err := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, dst).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, out)
	}
}
