package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// Fetcher gets Debian packages into a cache directory with apt-get, once:
// a package already in the cache is used as it is, so that builds are
// repeatable until the cache is cleared.
type Fetcher struct {
	Dir string // the cache of .deb files
	// Download allows apt-get download for a package not in the cache.
	Download bool
	// AddArch allows dpkg --add-architecture and apt-get update (as
	// root) when a foreign architecture's packages are unknown to apt.
	AddArch bool
	Log     *slog.Logger
}

// ErrNotFetched is wrapped by the errors of packages that could not be
// had, so that tests can skip on them.
var ErrNotFetched = errors.New("debian package not available")

// Package returns the path of the cached .deb of name for the Debian
// architecture arch ("all" for architecture-independent packages),
// downloading it when allowed.
func (f *Fetcher) Package(ctx context.Context, name, arch string) (string, error) {
	if p, err := f.cached(ctx, name, arch); err != nil || p != "" {
		return p, err
	}
	if !f.Download {
		return "", fmt.Errorf("%s:%s is not in %s and downloading is off: %w", name, arch, f.Dir, ErrNotFetched)
	}
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return "", fmt.Errorf("deb cache: %w", err)
	}
	out, err := f.aptDownload(ctx, name, arch)
	if err != nil && f.AddArch && strings.Contains(out, "Unable to locate package") {
		if aerr := f.addArch(ctx, arch); aerr != nil {
			return "", aerr
		}
		out, err = f.aptDownload(ctx, name, arch)
	}
	if err != nil {
		hint := ""
		if strings.Contains(out, "Unable to locate package") && arch != hostDebianArch() {
			hint = fmt.Sprintf(" (as root: dpkg --add-architecture %s && apt-get update)", arch)
		}
		return "", fmt.Errorf("apt-get download %s:%s: %v: %s%s: %w", name, arch, err, strings.TrimSpace(out), hint, ErrNotFetched)
	}
	p, err := f.cached(ctx, name, arch)
	if err == nil && p == "" {
		err = fmt.Errorf("apt-get download %s:%s left no .deb in %s: %w", name, arch, f.Dir, ErrNotFetched)
	}
	return p, err
}

func (f *Fetcher) aptDownload(ctx context.Context, name, arch string) (string, error) {
	f.Log.Info("fetching Debian package", "package", name, "arch", arch, "into", f.Dir)
	spec := name + ":" + arch
	if arch == "all" {
		spec = name // architecture-independent: apt knows it without one
	}
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", spec)
	cmd.Dir = f.Dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// addArch makes apt know arch. A failed apt-get update is only logged: a
// mirror in sync leaves some index stale, and the download that follows
// tells whether what we need is there.
func (f *Fetcher) addArch(ctx context.Context, arch string) error {
	f.Log.Info("adding Debian architecture", "arch", arch)
	if out, err := exec.CommandContext(ctx, "dpkg", "--add-architecture", arch).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg --add-architecture %s: %v: %s: %w", arch, err, strings.TrimSpace(string(out)), ErrNotFetched)
	}
	if out, err := exec.CommandContext(ctx, "apt-get", "update", "-qq").CombinedOutput(); err != nil {
		f.Log.Warn("apt-get update failed; trying the download anyway", "err", err, "output", strings.TrimSpace(string(out)))
	}
	return nil
}

// cached returns the newest cached .deb of name for arch, or "".
func (f *Fetcher) cached(ctx context.Context, name, arch string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(f.Dir, name+"_*_"+arch+".deb"))
	if err != nil {
		return "", fmt.Errorf("look for %s in the deb cache: %w", name, err)
	}
	best, bestVersion := "", ""
	for _, m := range matches {
		// name_version_arch.deb; versions hold no '_'.
		parts := strings.Split(strings.TrimSuffix(filepath.Base(m), ".deb"), "_")
		if len(parts) != 3 || parts[0] != name {
			continue
		}
		v := strings.ReplaceAll(parts[1], "%3a", ":")
		if best == "" || versionGreater(ctx, v, bestVersion) {
			best, bestVersion = m, v
		}
	}
	return best, nil
}

// versionGreater compares Debian versions with dpkg, which knows the rules.
func versionGreater(ctx context.Context, a, b string) bool {
	return exec.CommandContext(ctx, "dpkg", "--compare-versions", a, "gt", b).Run() == nil
}

var versionedKernel = regexp.MustCompile(`^linux-image-[0-9]+\.[0-9]+`)

// KernelPackage returns the .deb holding the kernel of the Debian package
// name: name itself when it is versioned (linux-image-6.1.0-56-amd64), or
// the package a meta package (linux-image-amd64) depends on.
func (f *Fetcher) KernelPackage(ctx context.Context, name, arch string) (string, error) {
	deb, err := f.Package(ctx, name, arch)
	if err != nil || versionedKernel.MatchString(name) {
		return deb, err
	}
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb, "Depends").Output()
	if err != nil {
		return "", fmt.Errorf("dpkg-deb -f %s Depends: %w", deb, err)
	}
	for _, dep := range strings.Split(string(out), ",") {
		dep = strings.TrimSpace(dep)
		if i := strings.IndexAny(dep, " (|"); i >= 0 {
			dep = dep[:i]
		}
		if versionedKernel.MatchString(dep) {
			return f.Package(ctx, dep, arch)
		}
	}
	return "", fmt.Errorf("%s depends on no linux-image package (Depends: %s)", deb, strings.TrimSpace(string(out)))
}

// debFiles streams the data of a .deb as a tar archive and calls fn for
// every regular file, with a reader of its content. dpkg-deb does the
// unpacking: it is on every Debian machine and knows every compression
// Debian uses.
func debFiles(ctx context.Context, deb string, fn func(h *tar.Header, r io.Reader) error) error {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("dpkg-deb: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dpkg-deb: %w", err)
	}
	walkErr := func() error {
		tr := tar.NewReader(stdout)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", deb, err)
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			h.Name = strings.TrimPrefix(h.Name, "./")
			if err := fn(h, tr); err != nil {
				return err
			}
		}
	}()
	if walkErr != nil {
		// Stop dpkg-deb; its error would only say the pipe broke.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return walkErr
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("dpkg-deb --fsys-tarfile %s: %v: %s", deb, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// extractFile copies one file out of a .deb to dst (atomically, so that
// an interrupted build leaves no half file in the cache).
func extractFile(ctx context.Context, deb, name, dst string) error {
	found := false
	err := debFiles(ctx, deb, func(h *tar.Header, r io.Reader) error {
		if h.Name != name || found {
			return nil
		}
		found = true
		return writeFileAtomic(dst, r, 0o755)
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s has no %s", deb, name)
	}
	return nil
}

func writeFileAtomic(dst string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// hostDebianArch is this machine's Debian architecture.
func hostDebianArch() string {
	switch runtime.GOARCH {
	case "arm":
		return "armhf"
	case "mipsle":
		return "mipsel"
	}
	return runtime.GOARCH
}
