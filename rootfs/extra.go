package rootfs

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// Extra is a host file added to a test image, never to a device's: the
// Wi-Fi test tools (hostapd, wpa_supplicant, iw, ip) and Go test
// binaries. Build adds nothing when Options.Extra is empty, so the normal
// image does not depend on what is installed on the build machine.
type Extra struct {
	// Name is the path inside the image.
	Name string
	// Src is the file on this machine.
	Src  string
	Perm uint64
	// Libs adds the shared libraries Src needs and its program
	// interpreter, found as the dynamic loader would on this Debian
	// machine, at the paths they have here. Only for an image of this
	// machine's architecture.
	Libs bool
}

// TestDir holds the files of a test image that are not tools: Go test
// binaries built with go test -c and what they read.
const TestDir = "/usr/lib/openmifi-test"

// TestToolDir is where TestTools puts the programs. The tests call them by
// their full path: Debian's busybox shell prefers its own applets (ip)
// to programs found in PATH.
const TestToolDir = "/usr/sbin"

// TestToolPrograms are the programs the Wi-Fi tests run in the guest,
// with the Debian package that has each.
var TestToolPrograms = map[string]string{
	"wpa_supplicant": "wpasupplicant",
	"wpa_cli":        "wpasupplicant",
	"hostapd":        "hostapd",
	"hostapd_cli":    "hostapd",
	"iw":             "iw",
	"ip":             "iproute2",
}

// hostProgramDirs are searched, in order, for the test tools.
var hostProgramDirs = []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"}

// TestTools returns the Wi-Fi test tools of this machine as extras with
// their libraries, for an image of this machine's architecture. It fails
// naming the Debian packages to install when a tool is missing.
func TestTools() ([]Extra, error) {
	var extras []Extra
	var missing []string
	for _, name := range toolNames() {
		src := ""
		for _, dir := range hostProgramDirs {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				src = p
				break
			}
		}
		if src == "" {
			if p, err := exec.LookPath(name); err == nil {
				src = p
			}
		}
		if src == "" {
			missing = append(missing, TestToolPrograms[name])
			continue
		}
		extras = append(extras, Extra{Name: path.Join(TestToolDir, name), Src: src, Perm: 0o755, Libs: true})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("test tools missing on this machine (apt-get install %s): %w", strings.Join(uniq(missing), " "), ErrNotFetched)
	}
	return extras, nil
}

// TestFile puts src into the test image under TestDir, at rel.
func TestFile(rel, src string, perm uint64) Extra {
	return Extra{Name: path.Join(TestDir, rel), Src: src, Perm: perm}
}

// addExtras puts the extras and the libraries they need into t. The
// libraries are regular files at their sonames (a symlink's target's
// content), which is all the dynamic loader looks for.
func addExtras(t *Tree, extras []Extra, goarch string) error {
	libs := map[string]string{}
	for _, e := range extras {
		if e.Name == "" || e.Src == "" {
			return fmt.Errorf("extra file %q from %q: both names are needed", e.Name, e.Src)
		}
		if _, err := os.Stat(e.Src); err != nil {
			return fmt.Errorf("extra file %s: %w", e.Name, err)
		}
		t.HostFile(e.Name, e.Perm, e.Src)
		if !e.Libs {
			continue
		}
		if goarch != runtime.GOARCH {
			return fmt.Errorf("extra program %s: this machine's libraries are %s, the image is %s", e.Src, runtime.GOARCH, goarch)
		}
		if err := SharedLibraries(e.Src, libs); err != nil {
			return fmt.Errorf("extra program %s: %w", e.Src, err)
		}
	}
	for name, src := range libs {
		t.HostFile(name, 0o755, src)
	}
	return nil
}

// libraryDirs are the directories Debian's dynamic loader searches when a
// library has no ld.so.cache entry, for a multiarch triplet.
func libraryDirs(triplet string) []string {
	return []string{
		"/lib/" + triplet, "/usr/lib/" + triplet,
		"/lib64", "/usr/lib64", "/lib", "/usr/lib",
	}
}

var triplets = map[elf.Machine]string{
	elf.EM_X86_64:  "x86_64-linux-gnu",
	elf.EM_AARCH64: "aarch64-linux-gnu",
	elf.EM_ARM:     "arm-linux-gnueabihf",
	elf.EM_MIPS:    "mipsel-linux-gnu",
}

// SharedLibraries adds to libs (image path to host file) the program
// interpreter and every shared library prog needs, recursively, from the
// ELF dynamic sections: DT_NEEDED names looked up in DT_RUNPATH and the
// usual Debian directories, keeping only libraries of prog's class and
// machine (as the loader skips the others). A static program needs none.
func SharedLibraries(prog string, libs map[string]string) error {
	f, err := elf.Open(prog)
	if err != nil {
		return err
	}
	defer f.Close()
	class, machine := f.Class, f.Machine
	triplet, ok := triplets[machine]
	if !ok {
		return fmt.Errorf("%s: no library directories known for %v", prog, machine)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return fmt.Errorf("%s: interpreter: %w", prog, err)
		}
		interp := string(bytes0(b))
		if _, err := os.Stat(interp); err != nil {
			return fmt.Errorf("%s: interpreter: %w", prog, err)
		}
		libs[interp] = interp
	}
	return needed(f, prog, class, machine, libraryDirs(triplet), libs)
}

func needed(f *elf.File, name string, class elf.Class, machine elf.Machine, dirs []string, libs map[string]string) error {
	sonames, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	runpath, _ := f.DynString(elf.DT_RUNPATH)
	rpath, _ := f.DynString(elf.DT_RPATH)
	search := append(append(splitPaths(rpath), splitPaths(runpath)...), dirs...)
	for _, so := range sonames {
		if already(libs, so) {
			continue
		}
		found := false
		for _, dir := range search {
			p := path.Join(dir, so)
			lf, err := elf.Open(p)
			if err != nil {
				continue
			}
			if lf.Class != class || lf.Machine != machine {
				lf.Close()
				continue
			}
			libs[p] = p
			found = true
			err = needed(lf, p, class, machine, dirs, libs)
			lf.Close()
			if err != nil {
				return err
			}
			break
		}
		if !found {
			return fmt.Errorf("%s needs %s, found in none of %v", name, so, search)
		}
	}
	return nil
}

// already reports whether a library of that soname is in libs, in any
// directory: the first one found wins, as for the loader.
func already(libs map[string]string, soname string) bool {
	for p := range libs {
		if path.Base(p) == soname {
			return true
		}
	}
	return false
}

func splitPaths(s []string) []string {
	var out []string
	for _, v := range s {
		for _, p := range filepath.SplitList(v) {
			// $ORIGIN and friends are not used by the tools we ship.
			if p != "" && p[0] == '/' {
				out = append(out, p)
			}
		}
	}
	return out
}

func bytes0(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

func toolNames() []string {
	keys := make([]string, 0, len(TestToolPrograms))
	for k := range TestToolPrograms {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
