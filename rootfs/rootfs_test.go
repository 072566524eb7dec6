package rootfs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/u-root/mkuimage/cpio"

	"github.com/openmifi/openmifi/board"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestParseModInfo(t *testing.T) {
	mi, err := parseModInfo(fakeModule("license=GPL", "depends=mac80211,virtio-ring", "softdep=pre: crypto-crc32c post: foo",
		"alias=crypto-crc32c", "alias=pci:v00001AF4d*", "name=x"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(mi.Depends, ","); got != "mac80211,virtio_ring" {
		t.Errorf("depends %q", got)
	}
	if got := strings.Join(mi.SoftPre, ","); got != "crypto-crc32c" {
		t.Errorf("softdep pre %q", got)
	}
	if got := strings.Join(mi.Aliases, ","); got != "crypto-crc32c" {
		t.Errorf("aliases %q (wildcards must be left out)", got)
	}
	if _, err := parseModInfo([]byte("not ELF")); err == nil {
		t.Error("garbage parsed as a module")
	}
}

func TestKernelResolve(t *testing.T) {
	dir := t.TempDir()
	k, err := KernelFromDir(writeFakeKernel(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if k.Version != testKernelVersion || len(k.Modules) != len(fakeModules) {
		t.Fatalf("version %q, %d modules", k.Version, len(k.Modules))
	}
	order, err := k.Resolve([]board.Module{{Name: "mac80211_hwsim", Params: []string{"radios=3"}}, {Name: "ext4"}})
	if err != nil {
		t.Fatal(err)
	}
	// The crc32c modules come in as jbd2's soft dependencies (through
	// their alias), in name order, before jbd2.
	want := "rfkill cfg80211 libarc4 mac80211 mac80211_hwsim crc32c_generic crc32c_intel jbd2 ext4"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("order %q, want %q", got, want)
	}
	pos := map[string]int{}
	for i, m := range order {
		pos[m] = i
	}
	for _, m := range order {
		for _, d := range k.Modules[m].Depends {
			if pos[d] > pos[m] {
				t.Errorf("%s before its dependency %s", m, d)
			}
		}
	}
	if _, err := k.Resolve([]board.Module{{Name: "nf_tables"}}); err == nil || !strings.Contains(err.Error(), "nf_tables") {
		t.Errorf("missing module: %v", err)
	}

	dep := k.ModulesDep(order)
	for _, line := range []string{
		"kernel/drivers/net/wireless/mac80211_hwsim.ko: kernel/net/mac80211/mac80211.ko kernel/lib/crypto/libarc4.ko kernel/net/wireless/cfg80211.ko kernel/net/rfkill/rfkill.ko\n",
		"kernel/net/rfkill/rfkill.ko:\n",
		"kernel/arch/x86/crypto/crc32c-intel.ko:\n",
	} {
		if !strings.Contains(dep, line) {
			t.Errorf("modules.dep lacks %q:\n%s", line, dep)
		}
	}
	if strings.Contains(dep, "unused_radio_drv") {
		t.Error("modules.dep lists a module the board does not load")
	}
	if err := k.Extract(context.Background(), order); err != nil {
		t.Errorf("Extract on a tree on disk: %v", err)
	}
}

func TestKernelFromDeb(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	debs := filepath.Join(dir, "deb")
	os.MkdirAll(debs, 0o755)
	// A kernel package and the meta package that depends on it, as
	// Debian has them.
	pkgRoot := filepath.Join(dir, "pkg")
	writeFakeKernel(t, pkgRoot)
	buildDeb(t, pkgRoot, "linux-image-"+testKernelVersion, "6.1.1-1", "amd64", "", filepath.Join(debs, "linux-image-"+testKernelVersion+"_6.1.1-1_amd64.deb"))
	metaRoot := filepath.Join(dir, "meta")
	os.MkdirAll(metaRoot, 0o755)
	buildDeb(t, metaRoot, "linux-image-test", "6.1.1-1", "amd64", "linux-image-"+testKernelVersion+" (= 6.1.1-1)",
		filepath.Join(debs, "linux-image-test_6.1.1-1_amd64.deb"))
	// An older version in the cache loses to the newer.
	buildDeb(t, metaRoot, "linux-image-test", "6.1.0-9", "amd64", "linux-image-6.1.0-old-amd64",
		filepath.Join(debs, "linux-image-test_6.1.0-9_amd64.deb"))

	f := &Fetcher{Dir: debs, Log: quiet}
	deb, err := f.KernelPackage(ctx, "linux-image-test", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(deb) != "linux-image-"+testKernelVersion+"_6.1.1-1_amd64.deb" {
		t.Fatalf("kernel package %s", deb)
	}
	cache := filepath.Join(dir, "kernel")
	k, err := KernelFromDeb(ctx, deb, cache)
	if err != nil {
		t.Fatal(err)
	}
	if k.Image != "boot/vmlinuz-"+testKernelVersion || len(k.Modules) != len(fakeModules) {
		t.Fatalf("image %q, %d modules", k.Image, len(k.Modules))
	}
	order, err := k.Resolve([]board.Module{{Name: "mac80211_hwsim"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Extract(ctx, order); err != nil {
		t.Fatal(err)
	}
	for _, m := range order {
		if _, err := os.Stat(filepath.Join(k.ModuleDir(), k.Modules[m].Path)); err != nil {
			t.Errorf("module %s not unpacked: %v", m, err)
		}
	}
	if _, err := os.Stat(filepath.Join(k.ModuleDir(), k.Modules["ext4"].Path)); err == nil {
		t.Error("a module nobody asked for was unpacked")
	}
	// Opened again, the index comes from the cache.
	again, err := KernelFromDeb(ctx, deb, cache)
	if err != nil || again.Version != k.Version || len(again.Modules) != len(k.Modules) {
		t.Errorf("cached index: %v, %+v", err, again)
	}

	if _, err := f.Package(ctx, "busybox-static", "amd64"); !errors.Is(err, ErrNotFetched) {
		t.Errorf("package not cached, download off: %v, want ErrNotFetched", err)
	}
}

func TestVersionedKernel(t *testing.T) {
	for name, want := range map[string]bool{
		"linux-image-6.1.0-56-amd64":     true,
		"linux-image-6.1.0-50-4kc-malta": true,
		"linux-image-amd64":              false,
		"linux-image-4kc-malta":          false, // a meta package, despite the digit
		"linux-image-armmp":              false,
	} {
		if got := versionedKernel.MatchString(name); got != want {
			t.Errorf("%s: versioned %v, want %v", name, got, want)
		}
	}
}

// TestFetcherDownload runs the download path against a stand-in apt-get
// that "downloads" from a local directory.
func TestFetcherDownload(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "mirror")
	root := filepath.Join(dir, "pkg")
	mustWrite(t, filepath.Join(root, "bin", "busybox"), []byte("busybox"))
	os.MkdirAll(repo, 0o755)
	buildDeb(t, root, "busybox-static", "1:1.35.0-4", "armhf", "", filepath.Join(repo, "busybox-static_1%3a1.35.0-4_armhf.deb"))
	bin := filepath.Join(dir, "bin")
	mustWrite(t, filepath.Join(bin, "apt-get"), []byte(`#!/bin/sh
# apt-get download -q NAME:ARCH
case "$3" in
busybox-static:armhf) cp "`+repo+`"/busybox-static_*_armhf.deb . ;;
*) echo "E: Unable to locate package $3" >&2; exit 100 ;;
esac
`))
	os.Chmod(filepath.Join(bin, "apt-get"), 0o755)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	f := &Fetcher{Dir: filepath.Join(dir, "cache"), Download: true, Log: quiet}
	ctx := context.Background()
	deb, err := f.Package(ctx, "busybox-static", "armhf")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "out", "busybox")
	if err := extractFile(ctx, deb, "bin/busybox", dst); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(dst); string(data) != "busybox" {
		t.Errorf("extracted %q", data)
	}
	_, err = f.Package(ctx, "busybox-static", "mipsel")
	if !errors.Is(err, ErrNotFetched) || !strings.Contains(err.Error(), "dpkg --add-architecture mipsel") {
		t.Errorf("unknown package: %v (want ErrNotFetched with the hint)", err)
	}
}

func TestTreeCPIO(t *testing.T) {
	host := filepath.Join(t.TempDir(), "prog")
	mustWrite(t, host, []byte("#!/bin/sh\necho hi\n"))
	build := func() []byte {
		tr := NewTree()
		tr.HostFile("/usr/bin/prog", 0o755, host)
		tr.File("/etc/motd", 0o644, []byte("hello\n"))
		tr.File("/etc/empty", 0o600, []byte{})
		tr.Symlink("/bin/sh", "busybox")
		tr.CharDev("/dev/console", 0o600, 5, 1)
		tr.Dir("/tmp", 0o1777)
		if err := tr.Chown("/etc/motd", 1000, 100); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := tr.WriteCPIO(&buf, 1234); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	a := build()
	// Another time, another mtime and mode on the host file: same bytes.
	os.Chtimes(host, time.Now(), time.Now().Add(time.Hour))
	os.Chmod(host, 0o600)
	if b := build(); !bytes.Equal(a, b) {
		t.Fatal("two builds of the same tree differ")
	}
	infos, contents, err := ReadCPIO(a)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, mode uint64) cpio.Info {
		t.Helper()
		i, ok := infos[name]
		if !ok {
			t.Fatalf("%s not in the archive (has %v)", name, keys(infos))
		}
		if i.Mode != mode {
			t.Errorf("%s: mode %#o, want %#o", name, i.Mode, mode)
		}
		if i.MTime != 1234 {
			t.Errorf("%s: mtime %d", name, i.MTime)
		}
		return i
	}
	check(".", cpio.S_IFDIR|0o755)
	check("usr", cpio.S_IFDIR|0o755)
	check("usr/bin", cpio.S_IFDIR|0o755)
	check("usr/bin/prog", cpio.S_IFREG|0o755)
	check("tmp", cpio.S_IFDIR|0o1777)
	if i := check("etc/motd", cpio.S_IFREG|0o644); i.UID != 1000 || i.GID != 100 {
		t.Errorf("etc/motd owner %d:%d", i.UID, i.GID)
	}
	if i := check("dev/console", cpio.S_IFCHR|0o600); i.Rmajor != 5 || i.Rminor != 1 {
		t.Errorf("dev/console is %d,%d", i.Rmajor, i.Rminor)
	}
	check("bin/sh", cpio.S_IFLNK|0o777)
	check("etc/empty", cpio.S_IFREG|0o600)
	if string(contents["bin/sh"]) != "busybox" || string(contents["usr/bin/prog"]) != "#!/bin/sh\necho hi\n" {
		t.Errorf("contents: %q", contents)
	}
	if err := NewTree().Chown("/nope", 0, 0); err == nil {
		t.Error("chown of a missing entry")
	}
}

func keys[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

// fakeInputs makes every input of Build that would otherwise come from
// Debian or the Go toolchain, so that the test runs anywhere, offline.
func fakeInputs(t *testing.T) Options {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	for _, p := range Programs {
		mustWrite(t, filepath.Join(bin, p), []byte("\x7fELF "+p))
	}
	mustWrite(t, filepath.Join(dir, "busybox"), []byte("\x7fELF busybox"))
	mustWrite(t, filepath.Join(dir, "regdb", "regulatory.db"), []byte("regdb"))
	mustWrite(t, filepath.Join(dir, "regdb", "regulatory.db.p7s"), []byte("sig"))
	mustWrite(t, filepath.Join(dir, "keys", "operator.pub"), []byte("key"))
	b, err := board.Get("qemu-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	b.Modules = []board.Module{{Name: "mac80211_hwsim", Params: []string{"radios=3"}}, {Name: "ext4"}}
	return Options{
		Board:   b,
		Cache:   filepath.Join(dir, "cache"),
		Bin:     bin,
		Kernel:  writeFakeKernel(t, filepath.Join(dir, "kernel")),
		Busybox: filepath.Join(dir, "busybox"),
		RegDB:   filepath.Join(dir, "regdb"),
		Keys:    filepath.Join(dir, "keys"),
		MTime:   1700000000,
		Log:     quiet,
	}
}

func TestBuildReproducible(t *testing.T) {
	ctx := context.Background()
	build := func(opts Options) []byte {
		t.Helper()
		res, err := Build(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := res.Tree.WriteCPIO(&buf, opts.MTime); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	opts := fakeInputs(t)
	a := build(opts)
	// The same inputs elsewhere, with other times and modes on disk.
	opts2 := fakeInputs(t)
	filepath.WalkDir(filepath.Dir(opts2.Bin), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			os.Chtimes(p, time.Unix(1, 0), time.Unix(2, 0))
			os.Chmod(p, 0o600)
		}
		return nil
	})
	if b := build(opts2); !bytes.Equal(a, b) {
		t.Fatal("two builds from the same inputs differ")
	}
	opts2.MTime++
	if b := build(opts2); bytes.Equal(a, b) {
		t.Error("the archive does not depend on the mtime asked for")
	}

	infos, contents, err := ReadCPIO(a)
	if err != nil {
		t.Fatal(err)
	}
	names := keys(infos)
	if !sort.StringsAreSorted(names) {
		t.Error("entries not sorted")
	}
	want := map[string]uint64{
		"init":                              cpio.S_IFREG | 0o755,
		"usr/bin/hotspotd":                  cpio.S_IFREG | 0o755,
		"usr/bin/hotspotctl":                cpio.S_IFREG | 0o755,
		"usr/bin/hotspotd-log":              cpio.S_IFREG | 0o755,
		"usr/lib/openmifi/entitlement-http": cpio.S_IFREG | 0o755,
		"bin/busybox":                       cpio.S_IFREG | 0o755,
		"bin/sh":                            cpio.S_IFLNK | 0o777,
		"bin/mke2fs":                        cpio.S_IFLNK | 0o777,
		"bin/poweroff":                      cpio.S_IFLNK | 0o777,
		"sbin":                              cpio.S_IFLNK | 0o777,
		"dev/console":                       cpio.S_IFCHR | 0o600,
		"dev/null":                          cpio.S_IFCHR | 0o666,
		"dev/ttyS1":                         cpio.S_IFCHR | 0o660,
		"tmp":                               cpio.S_IFDIR | 0o1777,
		"var/lib/openmifi":                  cpio.S_IFDIR | 0o700,
		"etc/openmifi/provisioning.xml":     cpio.S_IFREG | 0o444,
		"etc/openmifi/board.json":           cpio.S_IFREG | 0o444,
		"etc/openmifi/operator-keys":        cpio.S_IFDIR | 0o755,
		"etc/openmifi/operator-keys/operator.pub":                                      cpio.S_IFREG | 0o444,
		"usr/share/openmifi/strings":                                                   cpio.S_IFDIR | 0o755,
		"lib/firmware/regulatory.db":                                                   cpio.S_IFREG | 0o644,
		"lib/modules/" + testKernelVersion + "/modules.dep":                            cpio.S_IFREG | 0o644,
		"lib/modules/" + testKernelVersion + "/kernel/arch/x86/crypto/crc32c-intel.ko": cpio.S_IFREG | 0o644,
	}
	for name, mode := range want {
		i, ok := infos[name]
		switch {
		case !ok:
			t.Errorf("%s missing", name)
		case i.Mode != mode:
			t.Errorf("%s: mode %#o, want %#o", name, i.Mode, mode)
		case i.UID != 0 || i.GID != 0 || i.MTime != opts.MTime:
			t.Errorf("%s: owner %d:%d mtime %d", name, i.UID, i.GID, i.MTime)
		}
	}
	if i := infos["dev/ttyS1"]; i.Rmajor != 4 || i.Rminor != 65 {
		t.Errorf("ttyS1 is %d,%d", i.Rmajor, i.Rminor)
	}
	if _, ok := infos["lib/modules/"+testKernelVersion+"/kernel/drivers/net/wireless/unused_radio_drv.ko"]; ok {
		t.Error("a module the board does not load is in the image")
	}
	var b board.Board
	if err := json.Unmarshal(contents["etc/openmifi/board.json"], &b); err != nil || b.Name != "qemu-x86_64" {
		t.Errorf("board.json: %v %+v", err, b)
	}
	prov, _ := os.ReadFile(filepath.Join("etc", "openmifi", "provisioning.xml"))
	if !bytes.Equal(contents["etc/openmifi/provisioning.xml"], prov) {
		t.Error("provisioning.xml is not the repository's")
	}
	if !strings.Contains(string(contents["etc/profile"]), "PATH=/usr/bin:/bin") {
		t.Error("profile does not put hotspotctl in PATH")
	}
}

func TestBuildRejects(t *testing.T) {
	ctx := context.Background()
	opts := fakeInputs(t)
	opts.Board.Modules = append(opts.Board.Modules, board.Module{Name: "nf_tables"})
	if _, err := Build(ctx, opts); err == nil || !strings.Contains(err.Error(), "nf_tables") {
		t.Errorf("board module missing from the kernel: %v", err)
	}
	opts = fakeInputs(t)
	os.Remove(filepath.Join(opts.Bin, "hotspotd"))
	if _, err := Build(ctx, opts); err == nil || !strings.Contains(err.Error(), "hotspotd") {
		t.Errorf("program missing: %v", err)
	}
	opts = fakeInputs(t)
	opts.Board.LAN = board.LAN{Interface: "wlan0"}
	if _, err := Build(ctx, opts); err == nil || !strings.Contains(err.Error(), "lan.address") {
		t.Errorf("invalid board: %v", err)
	}
}

// TestApplets checks the applet list against Debian's busybox-static when
// the cache has it (any boot or image build fetches it).
func TestApplets(t *testing.T) {
	repo, err := RepoRoot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(repo, ".cache", "busybox", "busybox-static_*_"+hostDebianArch(), "busybox"))
	if len(matches) == 0 {
		t.Skip("Debian's busybox-static is not in .cache yet (an image build fetches it)")
	}
	out, err := exec.Command(matches[0], "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, a := range strings.Fields(string(out)) {
		have[a] = true
	}
	for _, a := range append(applets, "sh", "mke2fs", "poweroff", "reboot", "halt", "pidof", "kill") {
		if !have[a] {
			t.Errorf("busybox has no %s applet", a)
		}
	}
}
