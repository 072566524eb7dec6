package rootfs

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/u-root/mkuimage/cpio"
)

// dynamicProgram is a dynamically linked program of this machine, which
// every Debian system has.
func dynamicProgram(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/bin/ls", "/usr/bin/ls", "/bin/cat"} {
		if f, err := elf.Open(p); err == nil {
			libs, _ := f.ImportedLibraries()
			f.Close()
			if len(libs) > 0 {
				return p
			}
		}
	}
	t.Skip("no dynamically linked ELF program on this machine")
	return ""
}

func TestSharedLibraries(t *testing.T) {
	prog := dynamicProgram(t)
	libs := map[string]string{}
	if err := SharedLibraries(prog, libs); err != nil {
		t.Fatal(err)
	}
	var interp, libc bool
	for name, src := range libs {
		if !path.IsAbs(name) {
			t.Errorf("%s: not an absolute path", name)
		}
		if _, err := os.Stat(src); err != nil {
			t.Error(err)
		}
		interp = interp || strings.HasPrefix(path.Base(name), "ld-linux")
		libc = libc || path.Base(name) == "libc.so.6"
	}
	if !interp || !libc {
		t.Errorf("%s: want the interpreter and libc.so.6, got %v", prog, libs)
	}
	// Every library's own needs are there too: nothing is left to find.
	for name := range libs {
		f, err := elf.Open(libs[name])
		if err != nil {
			t.Fatal(err)
		}
		needs, _ := f.ImportedLibraries()
		f.Close()
		for _, so := range needs {
			if !already(libs, so) {
				t.Errorf("%s needs %s, which is not in the set", name, so)
			}
		}
	}

	// ldd, where it is, agrees on the sonames.
	if out, err := exec.Command("ldd", prog).Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[1] == "=>" && !already(libs, f[0]) {
				t.Errorf("ldd says %s needs %s, not found here", prog, f[0])
			}
		}
	}
}

func TestSharedLibrariesStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go program")
	}
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"))
	mustWrite(t, filepath.Join(dir, "go.mod"), []byte("module static\n\ngo 1.22\n"))
	cmd := exec.Command("go", "build", "-o", "static")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	libs := map[string]string{}
	if err := SharedLibraries(filepath.Join(dir, "static"), libs); err != nil {
		t.Fatal(err)
	}
	if len(libs) != 0 {
		t.Errorf("a static program needs %v", libs)
	}
}

func TestSharedLibrariesNotELF(t *testing.T) {
	p := filepath.Join(t.TempDir(), "script")
	mustWrite(t, p, []byte("#!/bin/sh\n"))
	if err := SharedLibraries(p, map[string]string{}); err == nil {
		t.Error("a shell script was read as ELF")
	}
}

// TestBuildExtra: a test image holds the extras, the libraries of those
// that ask for them, and stays reproducible; the default image holds none
// of it.
func TestBuildExtra(t *testing.T) {
	ctx := context.Background()
	prog := dynamicProgram(t)
	opts := fakeInputs(t)
	plain, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	testBin := filepath.Join(t.TempDir(), "nl80211.test")
	mustWrite(t, testBin, []byte("\x7fELF test"))
	opts.Extra = []Extra{
		{Name: path.Join(TestToolDir, "ls"), Src: prog, Perm: 0o755, Libs: true},
		TestFile("nl80211/nl80211.test", testBin, 0o755),
	}
	write := func(o Options) []byte {
		t.Helper()
		res, err := Build(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := res.Tree.WriteCPIO(&buf, o.MTime); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	a := write(opts)
	if b := write(opts); !bytes.Equal(a, b) {
		t.Error("two test images from the same inputs differ")
	}
	infos, contents, err := ReadCPIO(a)
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := infos["usr/sbin/ls"]; !ok || i.Mode != cpio.S_IFREG|0o755 {
		t.Errorf("usr/sbin/ls: %+v", i)
	}
	if got := string(contents["usr/lib/openmifi-test/nl80211/nl80211.test"]); got != "\x7fELF test" {
		t.Errorf("test binary content %q", got)
	}
	libc := false
	for name, i := range infos {
		if path.Base(name) == "libc.so.6" {
			libc = true
			if i.Mode&cpio.S_IFMT != cpio.S_IFREG {
				t.Errorf("%s is not a regular file: %#o", name, i.Mode)
			}
		}
	}
	if !libc {
		t.Error("libc.so.6 not in the test image")
	}

	for _, name := range plain.Tree.Names() {
		if strings.HasPrefix(name, "usr/lib/openmifi-test") || strings.HasPrefix(name, "usr/sbin") || strings.Contains(name, "linux-gnu") {
			t.Errorf("default image holds %s", name)
		}
	}
}

func TestBuildExtraRejects(t *testing.T) {
	ctx := context.Background()
	opts := fakeInputs(t)
	opts.Extra = []Extra{TestFile("x", filepath.Join(t.TempDir(), "missing"), 0o644)}
	if _, err := Build(ctx, opts); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing extra: %v", err)
	}
	other := "mipsle"
	if runtime.GOARCH == other {
		other = "amd64"
	}
	extras := []Extra{{Name: "/usr/sbin/ls", Src: dynamicProgram(t), Perm: 0o755, Libs: true}}
	if err := addExtras(NewTree(), extras, other); err == nil || !strings.Contains(err.Error(), "libraries") {
		t.Errorf("libraries for another architecture: %v", err)
	}
}

func TestTestTools(t *testing.T) {
	extras, err := TestTools()
	if err != nil {
		t.Skipf("%v", err)
	}
	if len(extras) != len(TestToolPrograms) {
		t.Errorf("%d tools, want %d", len(extras), len(TestToolPrograms))
	}
	libs := map[string]string{}
	for _, e := range extras {
		if !e.Libs || !strings.HasPrefix(e.Name, TestToolDir+"/") {
			t.Errorf("%+v", e)
		}
		if err := SharedLibraries(e.Src, libs); err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d libraries", len(libs))
}
