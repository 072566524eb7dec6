package atomicfile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWriteNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "settings.json")
	if err := Write(path, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "hello\n", 0o600)
	checkOnly(t, dir, "settings.json")
}

func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "leases")
	if err := os.WriteFile(path, []byte("old content, longer than the new one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new"), 0o640); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "new", 0o640)
	checkOnly(t, dir, "leases")
}

func TestWritePermIgnoresUmask(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	// 0o666 would become 0o644 or 0o664 through a typical umask.
	if err := Write(path, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "", 0o666)
}

func TestWriteMissingDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "missing", "f")
	if err := Write(path, []byte("x"), 0o600); err == nil {
		t.Fatal("Write into a missing directory succeeded")
	}
	checkOnly(t, dir)
}

// TestWriteRenameFails fails after the temporary file exists (path is a
// directory, which a file cannot replace), so it checks the clean-up even
// when the tests run as root.
func TestWriteRenameFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "target")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("x"), 0o600); err == nil {
		t.Fatal("Write over a directory succeeded")
	}
	checkOnly(t, dir, "target")
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Fatalf("target is no longer the directory: %v, %v", fi, err)
	}
}

func TestWriteReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write into a read-only directory")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if err := Write(path, []byte("new"), 0o600); err == nil {
		t.Fatal("Write into a read-only directory succeeded")
	}
	checkFile(t, path, "old", 0o600)
	checkOnly(t, dir, "f")
}

func checkFile(t *testing.T, path, want string, perm os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != perm {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode(), perm)
	}
}

// checkOnly fails unless dir holds exactly the named entries: a leftover
// temporary file would show up here.
func checkOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, names) {
		t.Fatalf("%s holds %q, want %q", dir, got, names)
	}
}
