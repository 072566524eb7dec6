package rootfs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/u-root/mkuimage/cpio"
)

// Tree is the root file system being assembled: every entry with its
// mode and owner as they will be in the archive, whatever they are on the
// build machine, so that no root is needed to build it.
type Tree struct {
	entries map[string]entry
}

type entry struct {
	mode         uint64 // type and permission bits
	uid, gid     uint64
	data         []byte // regular file content, or symlink target
	src          string // regular file content from this host file
	major, minor uint64 // device nodes
}

// NewTree returns a tree holding only the root directory.
func NewTree() *Tree {
	return &Tree{entries: map[string]entry{".": {mode: cpio.S_IFDIR | 0o755}}}
}

func clean(name string) string {
	return path.Clean(strings.TrimPrefix(name, "/"))
}

// add puts e at name, creating the parent directories (0755, root) that
// are not there yet. A later entry replaces an earlier one, so that the
// generated files override the repository's.
func (t *Tree) add(name string, e entry) {
	name = clean(name)
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		if _, ok := t.entries[dir]; !ok {
			t.entries[dir] = entry{mode: cpio.S_IFDIR | 0o755}
		}
	}
	t.entries[name] = e
}

// Dir adds a directory.
func (t *Tree) Dir(name string, perm uint64) { t.add(name, entry{mode: cpio.S_IFDIR | perm}) }

// File adds a file with the given content.
func (t *Tree) File(name string, perm uint64, data []byte) {
	t.add(name, entry{mode: cpio.S_IFREG | perm, data: data})
}

// HostFile adds a file whose content is read from src when the archive is
// written.
func (t *Tree) HostFile(name string, perm uint64, src string) {
	t.add(name, entry{mode: cpio.S_IFREG | perm, src: src})
}

// Symlink adds a symbolic link.
func (t *Tree) Symlink(name, target string) {
	t.add(name, entry{mode: cpio.S_IFLNK | 0o777, data: []byte(target)})
}

// CharDev adds a character device node.
func (t *Tree) CharDev(name string, perm, major, minor uint64) {
	t.add(name, entry{mode: cpio.S_IFCHR | perm, major: major, minor: minor})
}

// Chown sets the owner of an entry already in the tree.
func (t *Tree) Chown(name string, uid, gid uint64) error {
	name = clean(name)
	e, ok := t.entries[name]
	if !ok {
		return fmt.Errorf("chown %s: not in the tree", name)
	}
	e.uid, e.gid = uid, gid
	t.entries[name] = e
	return nil
}

// Has reports whether name is in the tree.
func (t *Tree) Has(name string) bool {
	_, ok := t.entries[clean(name)]
	return ok
}

// Names returns the entries in archive order.
func (t *Tree) Names() []string {
	names := make([]string, 0, len(t.entries))
	for n := range t.entries {
		names = append(names, n)
	}
	// Sorted by name, which puts every directory before what it holds
	// ("a" < "a/b"), as the kernel needs when it unpacks.
	sort.Strings(names)
	return names
}

// Size is the total size of the regular files' contents.
func (t *Tree) Size() (int64, error) {
	var n int64
	for name, e := range t.entries {
		switch {
		case e.src != "":
			fi, err := os.Stat(e.src)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", name, err)
			}
			n += fi.Size()
		case e.mode&cpio.S_IFMT == cpio.S_IFREG:
			n += int64(len(e.data))
		}
	}
	return n, nil
}

// WriteCPIO writes the tree as a newc cpio archive (an initramfs). The
// bytes depend on the entries only: names are sorted, every time is
// mtime, inode numbers count up in name order, and the build machine's
// owners, modes and device numbers never enter.
func (t *Tree) WriteCPIO(w io.Writer, mtime uint64) error {
	// The writer makes several small writes per record.
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := cpio.Newc.Writer(bw)
	for i, name := range t.Names() {
		e := t.entries[name]
		info := cpio.Info{
			Ino:    uint64(i + 1),
			Mode:   e.mode,
			UID:    e.uid,
			GID:    e.gid,
			NLink:  1,
			MTime:  mtime,
			Rmajor: e.major,
			Rminor: e.minor,
			Name:   name,
		}
		var rec cpio.Record
		switch {
		case e.src != "":
			f, err := os.Open(e.src)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return fmt.Errorf("%s: %w", name, err)
			}
			if !fi.Mode().IsRegular() {
				f.Close()
				return fmt.Errorf("%s: %s is not a regular file", name, e.src)
			}
			info.FileSize = uint64(fi.Size())
			// The writer closes f once it has copied it.
			rec = cpio.Record{ReaderAt: f, Info: info}
		case e.mode&cpio.S_IFMT == cpio.S_IFDIR:
			info.NLink = 2
			rec = cpio.Record{Info: info}
		case e.data != nil:
			rec = cpio.StaticRecord(e.data, info)
		default:
			rec = cpio.Record{Info: info}
		}
		if err := cw.WriteRecord(rec); err != nil {
			return fmt.Errorf("cpio %s: %w", name, err)
		}
	}
	if err := cpio.WriteTrailer(cw); err != nil {
		return fmt.Errorf("cpio trailer: %w", err)
	}
	return bw.Flush()
}

// ReadCPIO lists a newc archive's records, for tests and for checking an
// image: name to header, with regular files' and symlinks' contents.
func ReadCPIO(data []byte) (map[string]cpio.Info, map[string][]byte, error) {
	infos := map[string]cpio.Info{}
	contents := map[string][]byte{}
	rr := cpio.Newc.Reader(bytes.NewReader(data))
	err := cpio.ForEachRecord(rr, func(r cpio.Record) error {
		infos[r.Name] = r.Info
		if r.FileSize > 0 {
			b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
			if err != nil {
				return fmt.Errorf("%s: %w", r.Name, err)
			}
			contents[r.Name] = b
		}
		return nil
	})
	return infos, contents, err
}
