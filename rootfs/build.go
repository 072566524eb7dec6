// Package rootfs builds a board's root file system as a newc cpio
// initramfs, without root and reproducibly: the device programs
// cross-compiled for the board, the Go init, Debian's busybox-static for
// the shell and the tools, the kernel modules the board loads with their
// dependencies, and the configuration from the rootfs/ directory of the
// repository (the operator provisioning, string tables), with modes,
// owners and device nodes set in the archive itself.
//
// The same inputs give the same bytes: entries are sorted, times fixed,
// and nothing of the build machine (owners, inode numbers, umask) enters.
package rootfs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/openmifi/openmifi/board"
)

// Programs are the Go programs of the image, by their cmd/ directory.
var Programs = []string{"hotspotd", "hotspotctl", "entitlement-http", "init"}

// Paths inside the image.
const (
	InitPath         = "/init"
	PluginPath       = "/usr/lib/openmifi/entitlement-http"
	BoardPath        = "/etc/openmifi/board.json"
	ProvisioningPath = "/etc/openmifi/provisioning.xml"
	KeysDir          = "/etc/openmifi/operator-keys"
	StringsDir       = "/usr/share/openmifi/strings"
	StateDir         = "/var/lib/openmifi"
	LogDir           = "/run/openmifi"
)

// Options say what goes into the image and where the inputs come from.
type Options struct {
	Board board.Board
	// Repo is the root of the openmifi module; "" finds it with go env.
	Repo string
	// Cache holds downloaded packages, unpacked kernels and built
	// programs (the repository's .cache).
	Cache string
	// Bin is a directory with the device programs already built for the
	// board (hotspotd, hotspotctl, entitlement-http, init); "" builds
	// them into the cache.
	Bin string
	// Kernel is a kernel image with lib/modules/VERSION beside it, in
	// place of the board's (for a hardware board, "" means the board's
	// Kernel.Path under Repo).
	Kernel string
	// Busybox is a static busybox for the board's architecture, in place
	// of Debian's busybox-static.
	Busybox string
	// Keys is a directory of operator public keys (*.pub) for the
	// entitlement plugin; PluginSig the plugin's detached signature.
	Keys      string
	PluginSig string
	// RegDB is a directory with regulatory.db and regulatory.db.p7s, in
	// place of Debian's wireless-regdb.
	RegDB string
	// Download and AddArch are the Fetcher's.
	Download bool
	AddArch  bool
	// Extra are files added for a test image (TestTools, TestFile);
	// none in a device's image.
	Extra []Extra
	// MTime is every entry's modification time (seconds since 1970).
	MTime uint64
	Log   *slog.Logger
}

// Result describes a built tree.
type Result struct {
	Tree          *Tree
	KernelImage   string   // path of the kernel image on this machine
	KernelVersion string   // uname -r
	Modules       []string // the modules in the image, in load order
	// Sizes of the main parts, in bytes.
	Sizes map[string]int64
}

// Build assembles the root file system of opts.Board.
func Build(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.Board.Validate(); err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Repo == "" {
		repo, err := RepoRoot(ctx)
		if err != nil {
			return nil, err
		}
		opts.Repo = repo
	}
	if opts.Cache == "" {
		opts.Cache = filepath.Join(opts.Repo, ".cache")
	}
	b := opts.Board
	fetch := &Fetcher{Dir: filepath.Join(opts.Cache, "deb"), Download: opts.Download, AddArch: opts.AddArch, Log: opts.Log}

	bin := opts.Bin
	if bin == "" {
		bin = filepath.Join(opts.Cache, "build", "linux-"+archKey(b.Arch))
		if err := GoBuild(ctx, opts.Repo, b.Arch, bin, opts.Log); err != nil {
			return nil, err
		}
	}
	for _, p := range Programs {
		if _, err := os.Stat(filepath.Join(bin, p)); err != nil {
			return nil, fmt.Errorf("device program: %w", err)
		}
	}

	busybox := opts.Busybox
	if busybox == "" {
		deb, err := fetch.Package(ctx, "busybox-static", b.Arch.Debian)
		if err != nil {
			return nil, fmt.Errorf("busybox: %w", err)
		}
		busybox = filepath.Join(opts.Cache, "busybox", strings.TrimSuffix(filepath.Base(deb), ".deb"), "busybox")
		if _, err := os.Stat(busybox); err != nil {
			if err := extractFile(ctx, deb, "bin/busybox", busybox); err != nil {
				return nil, fmt.Errorf("busybox: %w", err)
			}
		}
	}

	k, err := openKernel(ctx, opts, fetch)
	if err != nil {
		return nil, err
	}
	mods, err := k.Resolve(b.Modules)
	if err != nil {
		return nil, fmt.Errorf("board %s: %w", b.Name, err)
	}
	if err := k.Extract(ctx, mods); err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}

	regdb := map[string]string{
		"regulatory.db":     filepath.Join(opts.RegDB, "regulatory.db"),
		"regulatory.db.p7s": filepath.Join(opts.RegDB, "regulatory.db.p7s"),
	}
	if opts.RegDB == "" {
		if regdb, err = regulatoryDB(ctx, fetch, opts.Cache, b); err != nil {
			return nil, err
		}
	}

	t := NewTree()
	if err := addRepoFiles(t, filepath.Join(opts.Repo, "rootfs")); err != nil {
		return nil, err
	}
	res := &Result{Tree: t, KernelImage: filepath.Join(k.Root, k.Image), KernelVersion: k.Version, Modules: mods, Sizes: map[string]int64{}}
	skeleton(t, b)

	t.HostFile(InitPath, 0o755, filepath.Join(bin, "init"))
	t.HostFile("/usr/bin/hotspotd", 0o755, filepath.Join(bin, "hotspotd"))
	t.HostFile("/usr/bin/hotspotctl", 0o755, filepath.Join(bin, "hotspotctl"))
	t.HostFile(PluginPath, 0o755, filepath.Join(bin, "entitlement-http"))
	if opts.PluginSig != "" {
		t.HostFile(PluginPath+".sig", 0o644, opts.PluginSig)
	}
	t.HostFile("/bin/busybox", 0o755, busybox)
	for _, a := range applets {
		t.Symlink("/bin/"+a, "busybox")
	}
	if opts.Keys != "" {
		keys, err := filepath.Glob(filepath.Join(opts.Keys, "*.pub"))
		if err != nil {
			return nil, fmt.Errorf("operator keys: %w", err)
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("operator keys: no *.pub in %s", opts.Keys)
		}
		for _, key := range keys {
			t.HostFile(KeysDir+"/"+filepath.Base(key), 0o444, key)
		}
	}

	modDir := "/lib/modules/" + k.Version
	for _, m := range mods {
		t.HostFile(modDir+"/"+k.Modules[m].Path, 0o644, filepath.Join(k.ModuleDir(), k.Modules[m].Path))
	}
	t.File(modDir+"/modules.dep", 0o644, []byte(k.ModulesDep(mods)))
	for name, src := range regdb {
		t.HostFile("/lib/firmware/"+name, 0o644, src)
	}

	if len(opts.Extra) > 0 {
		if err := addExtras(t, opts.Extra, b.Arch.GOARCH); err != nil {
			return nil, err
		}
	}

	boardJSON, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("board.json: %w", err)
	}
	t.File(BoardPath, 0o444, append(boardJSON, '\n'))

	if !t.Has(ProvisioningPath) {
		return nil, fmt.Errorf("no operator provisioning at rootfs%s", ProvisioningPath)
	}
	for _, p := range Programs {
		fi, err := os.Stat(filepath.Join(bin, p))
		if err != nil {
			return nil, err
		}
		res.Sizes[p] = fi.Size()
	}
	if fi, err := os.Stat(busybox); err == nil {
		res.Sizes["busybox"] = fi.Size()
	}
	var modSize int64
	for _, m := range mods {
		if fi, err := os.Stat(filepath.Join(k.ModuleDir(), k.Modules[m].Path)); err == nil {
			modSize += fi.Size()
		}
	}
	res.Sizes["modules"] = modSize
	if res.Sizes["total"], err = t.Size(); err != nil {
		return nil, err
	}
	return res, nil
}

// regulatoryDB returns the wireless regulatory database, by file name in
// /lib/firmware, from Debian's wireless-regdb. cfg80211 loads it to know
// each country's channels and powers (without it, the world domain only,
// and a warning at every boot). Debian's kernels trust the copy Debian
// signs; other kernels the upstream one.
func regulatoryDB(ctx context.Context, fetch *Fetcher, cache string, b board.Board) (map[string]string, error) {
	deb, err := fetch.Package(ctx, "wireless-regdb", "all")
	if err != nil {
		return nil, fmt.Errorf("regulatory database: %w", err)
	}
	signer := "upstream"
	if b.Kernel.Package != "" {
		signer = "debian"
	}
	dir := filepath.Join(cache, "regdb", strings.TrimSuffix(filepath.Base(deb), ".deb"))
	files := map[string]string{}
	for _, name := range []string{"regulatory.db", "regulatory.db.p7s"} {
		dst := filepath.Join(dir, name+"-"+signer)
		if _, err := os.Stat(dst); err != nil {
			if err := extractFile(ctx, deb, "lib/firmware/"+name+"-"+signer, dst); err != nil {
				return nil, fmt.Errorf("regulatory database: %w", err)
			}
		}
		files[name] = dst
	}
	return files, nil
}

func openKernel(ctx context.Context, opts Options, fetch *Fetcher) (*Kernel, error) {
	b := opts.Board
	image := opts.Kernel
	if image == "" && b.Kernel.Path != "" {
		image = b.Kernel.Path
		if !filepath.IsAbs(image) {
			image = filepath.Join(opts.Repo, image)
		}
	}
	if image != "" {
		return KernelFromDir(image)
	}
	deb, err := fetch.KernelPackage(ctx, b.Kernel.Package, b.Arch.Debian)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	k, err := KernelFromDeb(ctx, deb, filepath.Join(opts.Cache, "kernel"))
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	return k, nil
}

// skeleton adds the directories, device nodes and generated files every
// image has.
func skeleton(t *Tree, b board.Board) {
	for _, d := range []string{"/proc", "/sys", "/dev", "/run", "/mnt", "/etc/openmifi", KeysDir, StringsDir, "/usr/lib/openmifi"} {
		t.Dir(d, 0o755)
	}
	t.Dir("/tmp", 0o1777)
	t.Dir("/root", 0o700)
	t.Dir(StateDir, 0o700)
	t.Symlink("/sbin", "bin")
	t.Symlink("/var/run", "../run")

	// The kernel opens /dev/console for the init before any file system
	// is mounted; the others are there for an init that fails before
	// devtmpfs is up.
	t.CharDev("/dev/console", 0o600, 5, 1)
	t.CharDev("/dev/tty", 0o666, 5, 0)
	t.CharDev("/dev/null", 0o666, 1, 3)
	for i := uint64(0); i < 4; i++ {
		t.CharDev(fmt.Sprintf("/dev/ttyS%d", i), 0o660, 4, 64+i)
	}

	t.File("/etc/hostname", 0o644, []byte(b.Hostname+"\n"))
	t.File("/etc/hosts", 0o644, fmt.Appendf(nil, "127.0.0.1\tlocalhost\n%s\t%s\n", b.LAN.Address.Addr(), b.Hostname))
	t.File("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	t.File("/etc/group", 0o644, []byte("root:x:0:\n"))
	t.File("/etc/os-release", 0o644, fmt.Appendf(nil, "NAME=openmifi\nID=openmifi\nPRETTY_NAME=\"openmifi (%s)\"\nVARIANT_ID=%s\n", b.Name, b.Name))
	t.File("/etc/profile", 0o644, []byte(profile))
	t.File("/usr/bin/hotspotd-log", 0o755, []byte(hotspotdLog))
}

const profile = `# Login shell on the serial console.
export PATH=/usr/bin:/bin
export HOME=/root
export PS1='\h:\w\$ '
cat <<'EOF'

openmifi: hotspotctl status | hotspotctl get | hotspotd-log [-f] | poweroff | reboot

EOF
`

// hotspotdLog shows hotspotd's log, which the init keeps in a ring of two
// capped files under /run/openmifi. (Not "logread": Debian's busybox shell
// runs its own applets before looking at PATH.)
const hotspotdLog = `#!/bin/sh
# hotspotd-log [-f]: hotspotd's log, oldest first; -f follows it.
cd ` + LogDir + ` 2>/dev/null || { echo "hotspotd-log: no log yet" >&2; exit 1; }
case "$1" in
-f) cat hotspotd.log.1 2>/dev/null; exec tail -n +1 -F hotspotd.log ;;
"") cat hotspotd.log.1 hotspotd.log 2>/dev/null ;;
*) echo "usage: hotspotd-log [-f]" >&2; exit 2 ;;
esac
`

// addRepoFiles adds the image's files kept in the repository: the
// directories etc/ and usr/ of rootfs/ (the rest of rootfs/ is Go code).
// Files keep their executable bit; the operator provisioning and keys are
// read-only.
func addRepoFiles(t *Tree, dir string) error {
	for _, top := range []string{"etc", "usr"} {
		root := filepath.Join(dir, top)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return nil
			}
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			name := "/" + filepath.ToSlash(rel)
			switch {
			case d.IsDir():
				t.Dir(name, 0o755)
			case d.Type().IsRegular():
				fi, err := d.Info()
				if err != nil {
					return err
				}
				perm := uint64(0o644)
				if fi.Mode()&0o111 != 0 {
					perm = 0o755
				}
				if strings.HasPrefix(name, "/etc/openmifi/") {
					perm &^= 0o222
				}
				t.HostFile(name, perm, p)
			default:
				return fmt.Errorf("%s: only files and directories go into the image", p)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("image files in %s: %w", dir, err)
		}
	}
	return nil
}

// archKey names a build directory per target: linux-arm-7, linux-mipsle-softfloat.
func archKey(a board.Arch) string {
	k := a.GOARCH
	if a.GOARM != "" {
		k += "-" + a.GOARM
	}
	if a.GOMIPS != "" {
		k += "-" + a.GOMIPS
	}
	return k
}

// GoBuild cross-compiles the device programs for arch into dir: static
// (no cgo), stripped, without build paths or IDs, so that the same source
// gives the same binaries.
func GoBuild(ctx context.Context, repo string, arch board.Arch, dir string, log *slog.Logger) error {
	args := []string{"build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", dir + string(os.PathSeparator)}
	for _, p := range Programs {
		args = append(args, "./cmd/"+p)
	}
	log.Info("building device programs", "arch", archKey(arch), "into", dir)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), arch.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for %s: %v\n%s", archKey(arch), err, out)
	}
	return nil
}

// RepoRoot finds the openmifi module's directory.
func RepoRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the openmifi module (go env GOMOD is empty)")
	}
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(data, []byte("module github.com/openmifi/openmifi\n")) {
		return "", fmt.Errorf("%s is not openmifi's go.mod", gomod)
	}
	return filepath.Dir(gomod), nil
}

// SortedSizes lists r.Sizes for a report, largest first.
func (r *Result) SortedSizes() []string {
	var names []string
	for n := range r.Sizes {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return r.Sizes[names[i]] > r.Sizes[names[j]] })
	var out []string
	for _, n := range names {
		out = append(out, fmt.Sprintf("%s %d", n, r.Sizes[n]))
	}
	return out
}
