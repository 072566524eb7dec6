package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openmifi/openmifi/internal/control"
)

func TestCheckAcceptsTheSeedSamples(t *testing.T) {
	for _, args := range [][]string{
		{"../../internal/provision/testdata/seed-hotspot.xml"},
		{"../../internal/provision/testdata/seed-cdma.xml"},
		{"-mvid", "310260", "../../internal/provision/testdata/seed-cdma.xml"},
	} {
		var out, errOut bytes.Buffer
		if code := run(append([]string{"-check"}, args...), &out, &errOut); code != 0 {
			t.Errorf("-check %v: exit %d\n%s", args, code, errOut.String())
		}
		if !strings.Contains(out.String(), ": ok: sharing enabled") {
			t.Errorf("-check %v: output %q", args, out.String())
		}
	}
}

func TestCheckWarnsAboutUndefinedDedicatedConnections(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"-check", "-mvid", "310260", "../../internal/provision/testdata/seed-hotspot.xml"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	want := `seed-hotspot.xml:14: warning: HotSpot/DedicatedConnections: dedicated connection "zzzConn1 310260", "zzzConn2 310260" is not defined`
	if !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr %q lacks %q", errOut.String(), want)
	}
}

func TestCheckRejects(t *testing.T) {
	for file, want := range map[string]string{
		"bad-out-of-range.xml":            `bad-out-of-range.xml:5: HotSpot/MaxUsers: "9" is out of range (allowed: 1 to 8)`,
		"bad-malformed-number.xml":        `bad-malformed-number.xml:5: HotSpot/EntitlementInterval: "1d" is not a whole number (allowed: 0 to 604800 seconds)`,
		"bad-unknown-name.xml":            `bad-unknown-name.xml:5: HotSpot/MaxClients: unknown setting`,
		"bad-duplicate.xml":               `bad-duplicate.xml:6: HotSpot/MaxUsers: duplicate setting (first written at testdata/bad-duplicate.xml:5)`,
		"bad-missing-entitlement-dll.xml": `bad-missing-entitlement-dll.xml:3: HotSpot/EntitlementDll: required when EntitlementRequired is 1`,
		"bad-peerless-zero.xml":           `bad-peerless-zero.xml:5: HotSpot/PeerlessTimeout: "0" is not supported: a time-out is required (allowed: 1 to 120 minutes)`,
		"bad-public-zero.xml":             `bad-public-zero.xml:5: HotSpot/PublicConnectionTimeout: "0" is not supported: a time-out is required (allowed: 1 to 60 minutes)`,
	} {
		var out, errOut bytes.Buffer
		if code := run([]string{"-check", "testdata/" + file}, &out, &errOut); code != 1 {
			t.Errorf("%s: exit %d, want 1", file, code)
		}
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("%s: stderr\n%s\nlacks\n%s", file, errOut.String(), want)
		}
		if !strings.Contains(errOut.String(), "invalid") {
			t.Errorf("%s: no verdict", file)
		}
	}
}

func TestCheckUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-check"}, &out, &errOut); code != 2 {
		t.Errorf("-check without files: exit %d", code)
	}
	if code := run([]string{"-check", "testdata/none.xml"}, &out, &errOut); code != 1 {
		t.Errorf("-check of a missing file: exit %d", code)
	}
}

// TestMain lets a test run this binary as hotspotd itself, to send it real
// signals.
func TestMain(m *testing.M) {
	if os.Getenv("HOTSPOTD_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestSIGTERMStopsCleanly(t *testing.T) {
	dir, err := os.MkdirTemp("", "hotspotd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	socket := filepath.Join(dir, "ctl.sock")
	args := []string{
		"-provisioning", "../../rootfs/etc/openmifi/provisioning.xml",
		"-state", filepath.Join(dir, "state"), "-socket", socket,
		"-keys", filepath.Join(dir, "keys"), "-strings", filepath.Join(dir, "strings"),
	}
	daemon := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "HOTSPOTD_TEST_MAIN=1")
		return cmd
	}
	var log bytes.Buffer
	first := daemon()
	first.Stderr = &log
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(socket); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket; log:\n%s", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A second instance refuses to start on the same socket.
	out, err := daemon().CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another hotspotd is running") {
		t.Errorf("second instance: %v\n%s", err, out)
	}

	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "hotspotd stopped") {
		t.Errorf("log:\n%s", log.String())
	}
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

// TestSecondInstanceTouchesNoDriver: with the control socket held by a
// running hotspotd, a second one exits before it opens any driver (the
// radio, the firewall, the DHCP server are the first one's).
func TestSecondInstanceTouchesNoDriver(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "hotspotd.sock")
	ln, err := control.Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-socket", socket, "-state", filepath.Join(dir, "state"), "-run", filepath.Join(dir, "run"),
		"-provisioning", filepath.Join(dir, "none.xml"), "-lan", "none0"}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1\n%s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "unavailable") || !strings.Contains(stderr.String(), "hotspotd") {
		t.Errorf("the second instance went past the socket:\n%s", stderr.String())
	}
}
