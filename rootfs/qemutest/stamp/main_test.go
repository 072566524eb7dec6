package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

func TestStamp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the program")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "stamp")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	file := filepath.Join(dir, "t0")
	out, err := exec.Command(bin, file, "sh", "-c", "echo $0 ran", "it").CombinedOutput()
	if err != nil || string(out) != "it ran\n" {
		t.Fatalf("stamp did not become the program: %v %q", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9]{10,}\.[0-9]{6}\n$`).Match(b) {
		t.Errorf("stamp wrote %q", b)
	}
	if err := exec.Command(bin, file).Run(); err == nil {
		t.Error("no program: want a usage error")
	}
	if err := exec.Command(bin, file, "no-such-program-here").Run(); err == nil {
		t.Error("a missing program: want an error")
	}
}
