package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openmifi/openmifi/internal/ctl"
	"github.com/openmifi/openmifi/internal/daemon"
	"github.com/openmifi/openmifi/internal/sharing"
	"github.com/openmifi/openmifi/internal/sharing/sharingtest"
)

const provisioning = `<Settings Path="HotSpot">
    <Setting Name="Enabled" Value="1" />
    <Setting Name="EntitlementRequired" Value="1" />
    <Setting Name="EntitlementDll" Value="/usr/lib/openmifi/entitlement" />
    <Setting Name="MaxUsers" Value="5" />
    <Setting Name="MOHelpNumber" Value="611" />
</Settings>
`

type env struct {
	t      *testing.T
	dir    string
	socket string
	prov   string
}

func newEnv(t *testing.T, prov string) *env {
	t.Helper()
	dir, err := os.MkdirTemp("", "hotspotd") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &env{t: t, dir: dir, socket: filepath.Join(dir, "ctl.sock"), prov: filepath.Join(dir, "provisioning.xml")}
	if err := os.WriteFile(e.prov, []byte(prov), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) config() daemon.Config {
	return daemon.Config{
		Provisioning: []string{e.prov},
		StateDir:     filepath.Join(e.dir, "state"),
		Socket:       e.socket,
		StringsDir:   filepath.Join(e.dir, "strings"),
		KeysDir:      filepath.Join(e.dir, "keys"),
		Log:          slog.New(slog.NewTextHandler(&testWriter{e.t}, nil)),
	}
}

// start runs a daemon until the returned function stops it.
func (e *env) start(drv daemon.Drivers) (stop func()) {
	e.t.Helper()
	d, err := daemon.New(e.config(), drv)
	if err != nil {
		e.t.Fatalf("daemon.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
	}
	e.t.Cleanup(stop)
	return stop
}

// ctl runs hotspotctl's own code against the daemon.
func (e *env) ctl(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = ctl.Main(append([]string{"-socket", e.socket, "-timeout", "20s"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func fakes() (*sharingtest.Drivers, daemon.Drivers) {
	f := sharingtest.New()
	return f, daemon.Drivers{Uplink: f.Uplink, AP: f.AP, DHCP: f.DHCP, Firewall: f.Firewall, Entitler: f.Entitler}
}

func TestOnStatusOffOverTheSocket(t *testing.T) {
	e := newEnv(t, provisioning)
	f, drv := fakes()
	stop := e.start(drv)

	code, out, errOut := e.ctl("status")
	if code != 0 || !strings.Contains(out, "sharing:  off since") {
		t.Fatalf("status: %d %q %q", code, out, errOut)
	}
	code, out, errOut = e.ctl("on")
	if code != 0 || !strings.Contains(out, "sharing:  on since") {
		t.Fatalf("on: %d %q %q", code, out, errOut)
	}
	if running, cfg := f.AP.Running(); !running || !strings.HasPrefix(cfg.SSID, "openmifi-") {
		t.Errorf("AP running=%v cfg=%+v", running, cfg)
	}
	code, out, _ = e.ctl("status", "--json")
	var st sharing.Status
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.State != sharing.On || st.MaxUsers != 5 {
		t.Fatalf("status --json: %d %v %+v\n%s", code, err, st, out)
	}
	code, out, _ = e.ctl("clients")
	if code != 0 || !strings.Contains(out, "no clients") {
		t.Errorf("clients: %d %q", code, out)
	}
	code, out, errOut = e.ctl("set", "ssid=pocket", "max_users=3")
	if code != 0 || !strings.Contains(out, "pocket") {
		t.Errorf("set: %d %q %q", code, out, errOut)
	}
	if _, max := f.DHCP.Running(); max != 3 {
		t.Errorf("DHCP limit %d after max_users=3", max)
	}
	code, _, errOut = e.ctl("set", "max_users=6")
	if code != 1 || !strings.Contains(errOut, "max_users") {
		t.Errorf("max_users above the operator's: %d %q", code, errOut)
	}
	code, out, _ = e.ctl("off")
	if code != 0 || !strings.Contains(out, "sharing:  off (user)") {
		t.Fatalf("off: %d %q", code, out)
	}
	if running, _ := f.AP.Running(); running {
		t.Error("AP still running after off")
	}

	// The choice and the settings persist: turned on, a restart resumes.
	if code, _, _ := e.ctl("on"); code != 0 {
		t.Fatal("on again")
	}
	stop()
	if running, _ := f.AP.Running(); running {
		t.Error("AP still running after the daemon stopped")
	}
	if _, err := os.Stat(e.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	f2, drv2 := fakes()
	e.start(drv2)
	waitFor(t, func() bool { running, _ := f2.AP.Running(); return running })
	if _, cfg := f2.AP.Running(); cfg.SSID != "pocket" || cfg.MaxStations != 3 {
		t.Errorf("after restart AP has %+v", cfg)
	}
}

func TestSecondInstanceRefused(t *testing.T) {
	e := newEnv(t, provisioning)
	_, drv := fakes()
	e.start(drv)
	if _, err := daemon.New(e.config(), drv); err == nil || !strings.Contains(err.Error(), "another hotspotd is running") {
		t.Errorf("second daemon: %v", err)
	}
	if code, _, _ := e.ctl("status"); code != 0 {
		t.Error("first daemon disturbed by the second")
	}
}

func TestInvalidProvisioningKeepsManagement(t *testing.T) {
	e := newEnv(t, strings.Replace(provisioning, `Value="5"`, `Value="50"`, 1))
	_, drv := fakes()
	e.start(drv)
	code, _, errOut := e.ctl("on")
	if code != 1 || !strings.Contains(errOut, `HotSpot/MaxUsers: "50" is out of range (allowed: 1 to 8)`) {
		t.Errorf("on: %d %q", code, errOut)
	}
	code, out, _ := e.ctl("status")
	if code != 0 || !strings.Contains(out, "off (invalid provisioning)") || !strings.Contains(out, `"50" is out of range`) {
		t.Errorf("status: %d %q", code, out)
	}
}

func TestMissingDriversFailTheStartClearly(t *testing.T) {
	e := newEnv(t, strings.Replace(provisioning, `"EntitlementRequired" Value="1"`, `"EntitlementRequired" Value="0"`, 1))
	e.start(daemon.Drivers{})
	code, out, _ := e.ctl("on")
	if code != 1 || !strings.Contains(out, "off (start failure)") || !strings.Contains(out, "no uplink (modem) driver on this device") ||
		!strings.Contains(out, "call 611 for help") {
		t.Errorf("on: %d %q", code, out)
	}
}

func TestUnsignedPluginFailsEntitlement(t *testing.T) {
	e := newEnv(t, provisioning)
	f, drv := fakes()
	drv.Entitler = nil // the real runner: no keys, no plugin
	e.start(drv)
	code, out, _ := e.ctl("on")
	if code != 1 || !strings.Contains(out, "off (entitlement failed)") {
		t.Errorf("on: %d %q", code, out)
	}
	if running, _ := f.AP.Running(); running {
		t.Error("AP started without entitlement")
	}
}

func TestCorruptUserSettingsAreSetAside(t *testing.T) {
	e := newEnv(t, provisioning)
	state := filepath.Join(e.dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "user.json"), []byte(`{"version":1,"ssid":`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, drv := fakes()
	e.start(drv)
	code, out, _ := e.ctl("status")
	if code != 0 || !strings.Contains(out, "warning:") {
		t.Errorf("status: %d %q", code, out)
	}
	matches, _ := filepath.Glob(filepath.Join(state, "user.json.corrupt-*"))
	if len(matches) != 1 {
		t.Fatalf("corrupt file not kept aside: %v", matches)
	}
	if b, _ := os.ReadFile(matches[0]); string(b) != `{"version":1,"ssid":` {
		t.Errorf("set-aside file changed: %q", b)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testWriter sends the daemon's log to the test's, shown on failure.
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestServicesRunWithTheDaemon: a service (the modem driver) runs under
// the daemon's context, reports to its machine, reads the user's settings
// whatever the state of sharing, and stops with the daemon.
func TestServicesRunWithTheDaemon(t *testing.T) {
	e := newEnv(t, `<Settings Path="HotSpot"><Setting Name="Enabled" Value="0" /></Settings>`)
	started, ended := make(chan string, 1), make(chan struct{})
	svc := func(ctx context.Context, d *daemon.Daemon) error {
		d.Machine().PublicUp(sharing.UplinkInfo{Interface: "wwan0", Operator: "Test"})
		started <- d.UserSettings().SSID
		<-ctx.Done()
		close(ended)
		return ctx.Err()
	}
	stop := e.start(daemon.Drivers{Services: []func(context.Context, *daemon.Daemon) error{svc}})
	if ssid := <-started; ssid == "" {
		t.Error("the service saw no user settings")
	}
	stop()
	select {
	case <-ended:
	default:
		t.Error("Run returned before the service ended")
	}
}
