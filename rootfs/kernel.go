package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/openmifi/openmifi/board"
)

// ModInfo is what the image build needs to know of a kernel module.
type ModInfo struct {
	Path    string   `json:"path"`    // relative to lib/modules/VERSION
	Depends []string `json:"depends"` // module names
	// SoftPre are the modules or aliases to load first if they exist
	// ("softdep=pre: crypto-crc32c"): ext4 and libcrc32c fail without
	// a crc32c implementation, which they name only this way.
	SoftPre []string `json:"softpre,omitempty"`
	// Aliases are the module's fixed aliases (crypto-crc32c, fs-ext4);
	// wildcard device aliases are left out.
	Aliases []string `json:"aliases,omitempty"`
}

// Kernel is a kernel image and the modules that go with it, laid out on
// disk as Root/lib/modules/Version/....
type Kernel struct {
	Root string `json:"-"`
	// Format is the layout of the cached index; a cache of another
	// layout is made again.
	Format  int                `json:"format"`
	Version string             `json:"version"`
	Image   string             `json:"image"` // the kernel image, relative to Root
	Modules map[string]ModInfo `json:"modules"`

	// deb is the package the files come from; Extract fetches missing
	// modules from it. Empty for a kernel tree on disk.
	deb string
}

// ModuleDir is the modules directory of k.
func (k *Kernel) ModuleDir() string {
	return filepath.Join(k.Root, "lib", "modules", k.Version)
}

// moduleName is the name the kernel gives the module in file: its base
// name without extension, with '-' read as '_' (as kmod does).
func moduleName(file string) string {
	base := path.Base(file)
	base = base[:strings.Index(base, ".ko")]
	return strings.ReplaceAll(base, "-", "_")
}

// indexFormat is the current Kernel.Format.
const indexFormat = 2

// parseModInfo reads the dependencies out of a module's .modinfo section
// (NUL-separated key=value strings, the source of modinfo and depmod).
func parseModInfo(data []byte) (ModInfo, error) {
	var mi ModInfo
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return mi, fmt.Errorf("not an ELF module: %w", err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return mi, errors.New("no .modinfo section")
	}
	info, err := sec.Data()
	if err != nil {
		return mi, fmt.Errorf(".modinfo: %w", err)
	}
	for _, kv := range bytes.Split(info, []byte{0}) {
		key, v, _ := strings.Cut(string(kv), "=")
		switch key {
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					mi.Depends = append(mi.Depends, strings.ReplaceAll(d, "-", "_"))
				}
			}
		case "softdep":
			// "pre: a b post: c"
			pre := false
			for _, w := range strings.Fields(v) {
				switch w {
				case "pre:":
					pre = true
				case "post:":
					pre = false
				default:
					if pre {
						mi.SoftPre = append(mi.SoftPre, w)
					}
				}
			}
		case "alias":
			if v != "" && !strings.ContainsAny(v, "*?[") {
				mi.Aliases = append(mi.Aliases, v)
			}
		}
	}
	return mi, nil
}

const kernelIndex = "index.json"

// KernelFromDeb opens the kernel of a Debian kernel package, unpacking into
// cacheDir/<package file name>/ once: the kernel image and an index of
// every module's dependencies. Modules are unpacked by Extract as boards
// need them, so that the cache holds megabytes rather than the hundreds
// a full modules tree takes.
func KernelFromDeb(ctx context.Context, deb, cacheDir string) (*Kernel, error) {
	root := filepath.Join(cacheDir, strings.TrimSuffix(filepath.Base(deb), ".deb"))
	k := &Kernel{Root: root, deb: deb}
	data, err := os.ReadFile(filepath.Join(root, kernelIndex))
	if err == nil {
		if err := json.Unmarshal(data, k); err != nil {
			return nil, fmt.Errorf("kernel index %s: %w", filepath.Join(root, kernelIndex), err)
		}
		if k.Format == indexFormat {
			return k, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("kernel index: %w", err)
	}

	k.Format = indexFormat
	k.Version, k.Image = "", ""
	k.Modules = map[string]ModInfo{}
	err = debFiles(ctx, deb, func(h *tar.Header, r io.Reader) error {
		switch {
		case strings.HasPrefix(h.Name, "boot/vmlinu"):
			k.Image = h.Name
			return writeFileAtomic(filepath.Join(root, h.Name), r, 0o644)
		case strings.HasPrefix(h.Name, "lib/modules/") && strings.Contains(h.Name, ".ko"):
			return k.index(h.Name, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if k.Image == "" || k.Version == "" {
		return nil, fmt.Errorf("%s: no kernel image or no modules in it", deb)
	}
	data, err = json.MarshalIndent(k, "", " ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(root, kernelIndex), bytes.NewReader(data), 0o644); err != nil {
		return nil, fmt.Errorf("kernel index: %w", err)
	}
	return k, nil
}

// KernelFromDir opens a kernel a device maker supplies: the image file,
// with lib/modules/VERSION in the same directory, or in the one above
// when the image is in boot/ (as in a root file system or a package).
func KernelFromDir(image string) (*Kernel, error) {
	if _, err := os.Stat(image); err != nil {
		return nil, fmt.Errorf("kernel image: %w", err)
	}
	root := filepath.Dir(image)
	if filepath.Base(root) == "boot" {
		if _, err := os.Stat(filepath.Join(root, "lib", "modules")); err != nil {
			root = filepath.Dir(root)
		}
	}
	rel, err := filepath.Rel(root, image)
	if err != nil {
		return nil, err
	}
	k := &Kernel{Root: root, Format: indexFormat, Image: rel, Modules: map[string]ModInfo{}}
	err = filepath.WalkDir(filepath.Join(root, "lib", "modules"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(d.Name(), ".ko") {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return k.index(filepath.ToSlash(rel), f)
	})
	if err != nil {
		return nil, fmt.Errorf("kernel modules beside %s: %w", image, err)
	}
	if k.Version == "" {
		return nil, fmt.Errorf("no modules under %s", filepath.Join(root, "lib", "modules"))
	}
	return k, nil
}

// index records the module at name (lib/modules/VERSION/...).
func (k *Kernel) index(name string, r io.Reader) error {
	parts := strings.SplitN(name, "/", 4)
	if len(parts) < 4 {
		return nil
	}
	version, rel := parts[2], parts[3]
	if k.Version != "" && version != k.Version {
		return fmt.Errorf("modules of two kernels: %s and %s", k.Version, version)
	}
	k.Version = version
	if !strings.HasSuffix(rel, ".ko") {
		return fmt.Errorf("%s: compressed modules are not supported (unpack them, or build the kernel with CONFIG_MODULE_COMPRESS_NONE)", name)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	mi, err := parseModInfo(data)
	if err != nil {
		return fmt.Errorf("module %s: %w", name, err)
	}
	mi.Path = rel
	k.Modules[moduleName(rel)] = mi
	return nil
}

// Resolve returns the modules the board wants with everything they depend
// on, in an order in which each comes after its dependencies.
func (k *Kernel) Resolve(want []board.Module) ([]string, error) {
	var (
		order []string
		state = map[string]int{} // 1 visiting, 2 done
		visit func(name, from string) error
	)
	visit = func(name, from string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("module %s: dependency cycle", name)
		case 2:
			return nil
		}
		m, ok := k.Modules[name]
		if !ok {
			if from != "" {
				return fmt.Errorf("module %s (needed by %s) is not in kernel %s", name, from, k.Version)
			}
			return fmt.Errorf("module %s is not in kernel %s", name, k.Version)
		}
		state[name] = 1
		for _, d := range m.Depends {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		for _, soft := range m.SoftPre {
			for _, d := range k.providers(soft) {
				if d == name || state[d] == 1 {
					continue // soft: a cycle is broken, not an error
				}
				if err := visit(d, name); err != nil {
					return err
				}
			}
		}
		state[name] = 2
		order = append(order, name)
		return nil
	}
	for _, m := range want {
		if err := visit(m.Name, ""); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// providers are the modules a soft dependency names: the module of that
// name, or else every module with that alias (crc32c_generic and the
// CPU's accelerated crc32c for crypto-crc32c); none is fine.
func (k *Kernel) providers(dep string) []string {
	name := strings.ReplaceAll(dep, "-", "_")
	if _, ok := k.Modules[name]; ok {
		return []string{name}
	}
	var mods []string
	for n, m := range k.Modules {
		for _, a := range m.Aliases {
			if a == dep {
				mods = append(mods, n)
			}
		}
	}
	sort.Strings(mods)
	return mods
}

// Extract makes sure the files of the named modules are on disk,
// unpacking the missing ones from the package in one pass.
func (k *Kernel) Extract(ctx context.Context, names []string) error {
	missing := map[string]bool{}
	for _, n := range names {
		p := filepath.Join(k.ModuleDir(), k.Modules[n].Path)
		if _, err := os.Stat(p); err != nil {
			missing["lib/modules/"+k.Version+"/"+k.Modules[n].Path] = true
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if k.deb == "" {
		return fmt.Errorf("kernel modules missing from %s: %v", k.ModuleDir(), sortedKeys(missing))
	}
	err := debFiles(ctx, k.deb, func(h *tar.Header, r io.Reader) error {
		if !missing[h.Name] {
			return nil
		}
		delete(missing, h.Name)
		return writeFileAtomic(filepath.Join(k.Root, h.Name), r, 0o644)
	})
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s lacks %v", k.deb, sortedKeys(missing))
	}
	return nil
}

// ModulesDep is a modules.dep in depmod's format for the given modules:
// each line names a module and all it depends on, directly or not, the
// ones to load last first, so that busybox modprobe works on the console
// as well.
func (k *Kernel) ModulesDep(names []string) string {
	var b strings.Builder
	sorted := append([]string(nil), names...)
	sort.Slice(sorted, func(i, j int) bool { return k.Modules[sorted[i]].Path < k.Modules[sorted[j]].Path })
	for _, n := range sorted {
		deps, _ := k.Resolve([]board.Module{{Name: n}})
		b.WriteString(k.Modules[n].Path + ":")
		// Resolve lists n last, after its dependencies; depmod lists
		// them the other way round, without n.
		for i := len(deps) - 2; i >= 0; i-- {
			b.WriteString(" " + k.Modules[deps[i]].Path)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func sortedKeys(m map[string]bool) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
