package sharing_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/entitlement"
	"github.com/openmifi/openmifi/internal/provision"
	"github.com/openmifi/openmifi/internal/sharing"
	"github.com/openmifi/openmifi/internal/sharing/sharingtest"
	"github.com/openmifi/openmifi/internal/usersettings"
)

// harness runs one machine with fake drivers and a fake clock.
type harness struct {
	t     *testing.T
	m     *sharing.Machine
	d     *sharingtest.Drivers
	clk   *clock.Fake
	users *sharingtest.Users
}

// provisioning builds a HotSpot provisioning from name/value pairs on top of
// an enabled, entitlement-checked one.
func provisioning(t *testing.T, kv ...string) *provision.Provisioning {
	t.Helper()
	settings := map[string]string{
		"Enabled":        "1",
		"EntitlementDll": "/usr/lib/openmifi/entitlement",
		"MOHelpNumber":   "611",
		"MOInfoLink":     "contoso.com/help",
		"MOAppLink":      "app://12345678-9012-3456-7890-123456789012",
		"MOHelpMessage":  "@HotSpotMOHelp.dll,-101",
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(settings, kv[i])
		} else {
			settings[kv[i]] = kv[i+1]
		}
	}
	var entries []provision.Entry
	for n, v := range settings {
		path := "HotSpot"
		if strings.HasPrefix(n, "Cellular/") {
			path = "Connections"
		}
		entries = append(entries, provision.Entry{Path: path, Name: n, Value: v, Pos: provision.Pos{File: "test.xml", Line: 1}})
	}
	p, _, err := provision.Build(entries, "")
	if err != nil {
		t.Fatalf("test provisioning: %v", err)
	}
	return p
}

func userDefaults(t *testing.T) usersettings.Settings {
	t.Helper()
	s, err := usersettings.Defaults(strings.NewReader(strings.Repeat("0123456789abcdef", 64)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func start(t *testing.T, p *provision.Provisioning, provErr error, users usersettings.Settings) *harness {
	t.Helper()
	h := &harness{
		t:     t,
		d:     sharingtest.New(),
		clk:   clock.NewFake(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)),
		users: sharingtest.NewUsers(users),
	}
	h.m = sharing.New(h.d.Config(sharing.Config{
		Clock: h.clk,
		Users: h.users,
		ResolveHelp: func(ref string) (string, error) {
			return "Add hotspot to your plan (" + ref + ")", nil
		},
	}), p, provErr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return h
}

// wait polls until the status satisfies ok; the deadline only catches a
// machine that hangs.
func (h *harness) wait(what string, ok func(sharing.Status) bool) sharing.Status {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := h.m.Status()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waiting for %s: status is %s (%s), error %q; driver calls: %s", what, s.State, s.Reason, s.Error, h.d.Log)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) waitState(st sharing.State) sharing.Status {
	h.t.Helper()
	return h.wait(st.String(), func(s sharing.Status) bool { return s.State == st })
}

func (h *harness) waitOff(r sharing.Reason) sharing.Status {
	h.t.Helper()
	return h.wait("off ("+r.String()+")", func(s sharing.Status) bool { return s.State == sharing.Off && s.Reason == r })
}

// settle waits until the machine has handled every event sent before.
func (h *harness) settle() {
	h.t.Helper()
	if _, err := h.m.UpdateSettings(context.Background(), func(*usersettings.Settings) error { return nil }); err != nil && !errors.Is(err, sharing.ErrUnavailable) {
		h.t.Fatal(err)
	}
}

func (h *harness) on() {
	h.t.Helper()
	if err := h.m.TurnOn(context.Background()); err != nil {
		h.t.Fatalf("TurnOn: %v", err)
	}
}

func (h *harness) off() {
	h.t.Helper()
	if err := h.m.TurnOff(context.Background()); err != nil {
		h.t.Fatalf("TurnOff: %v", err)
	}
}

func (h *harness) join(mac string) {
	hw, _ := net.ParseMAC(mac)
	h.m.StationJoined(sharing.Station{MAC: hw, SignalDBm: -50})
	h.settle()
}

// keepUp keeps the peerless and public connection timers out of the way:
// a client stays and the uplink is up.
func (h *harness) keepUp() {
	h.m.PublicUp(sharing.UplinkInfo{Interface: "wwan0"})
	h.join("02:00:00:00:00:01")
}

func (h *harness) calls(want ...string) {
	h.t.Helper()
	if got := h.d.Log.Calls(); !reflect.DeepEqual(got, want) {
		h.t.Errorf("driver calls:\n got %q\nwant %q", got, want)
	}
}

func TestUnavailableRefusesEverything(t *testing.T) {
	u := userDefaults(t)
	u.Sharing = true // a stale choice must not start anything
	h := start(t, provisioning(t, "Enabled", "0"), nil, u)
	s := h.waitState(sharing.Unavailable)
	if s.Help == nil || s.Help.InfoLink != "contoso.com/help" {
		t.Errorf("help = %+v, want the info link", s.Help)
	}
	ctx := context.Background()
	if err := h.m.TurnOn(ctx); !errors.Is(err, sharing.ErrUnavailable) {
		t.Errorf("TurnOn: %v", err)
	}
	if err := h.m.TurnOff(ctx); !errors.Is(err, sharing.ErrUnavailable) {
		t.Errorf("TurnOff: %v", err)
	}
	if _, err := h.m.UpdateSettings(ctx, func(s *usersettings.Settings) error { s.SSID = "x"; return nil }); !errors.Is(err, sharing.ErrUnavailable) {
		t.Errorf("UpdateSettings: %v", err)
	}
	if _, err := h.m.Settings(); !errors.Is(err, sharing.ErrUnavailable) {
		t.Errorf("Settings: %v", err)
	}
	if h.users.Get().SSID == "x" {
		t.Error("settings changed while unavailable")
	}
	h.calls()
}

func TestOnAndOff(t *testing.T) {
	h := start(t, provisioning(t), nil, userDefaults(t))
	if s := h.waitState(sharing.Off); s.Reason != sharing.ReasonNone {
		t.Errorf("initial reason %v", s.Reason)
	}
	h.calls() // sharing starts off: nothing touched
	h.on()
	s := h.waitState(sharing.On)
	if s.Help != nil || s.Error != "" {
		t.Errorf("on with help %+v error %q", s.Help, s.Error)
	}
	ssid := h.users.Get().SSID
	h.calls(
		"entitle /usr/lib/openmifi/entitlement",
		"uplink acquire []",
		`firewall start uplink=""`,
		"dhcp start max=5",
		`ap start ssid="`+ssid+`" max=5`,
	)
	if !h.users.Get().Sharing {
		t.Error("the user's on was not persisted")
	}
	h.off()
	h.waitOff(sharing.ReasonUser)
	h.calls("ap stop", "dhcp stop", "firewall stop", "uplink release")
	if h.users.Get().Sharing {
		t.Error("the user's off was not persisted")
	}
}

func TestResumesTheUsersChoice(t *testing.T) {
	u := userDefaults(t)
	u.Sharing = true
	h := start(t, provisioning(t), nil, u)
	h.waitState(sharing.On)
	if len(h.d.Entitler.Envs()) != 1 {
		t.Error("resuming did not check entitlement")
	}
}

func TestEntitlementOnEveryEnable(t *testing.T) {
	h := start(t, provisioning(t), nil, userDefaults(t))
	for i := 1; i <= 3; i++ {
		h.on()
		h.waitState(sharing.On)
		h.off()
		h.waitOff(sharing.ReasonUser)
		if n := len(h.d.Entitler.Envs()); n != i {
			t.Fatalf("after %d enables, %d checks", i, n)
		}
	}
}

func TestNoEntitlementWhenNotRequired(t *testing.T) {
	h := start(t, provisioning(t, "EntitlementRequired", "0", "EntitlementDll", ""), nil, userDefaults(t))
	h.on()
	h.waitState(sharing.On)
	h.keepUp()
	h.clk.Advance(30 * 24 * time.Hour)
	h.settle()
	if n := len(h.d.Entitler.Envs()); n != 0 {
		t.Errorf("%d checks with EntitlementRequired=0", n)
	}
}

func TestEntitlementEnvironment(t *testing.T) {
	h := start(t, provisioning(t, "EntitlementURL", "https://e.contoso.com/check"), nil, userDefaults(t))
	h.m.SetIdentity(sharing.Identity{IMSI: "001010123456789", ICCID: "8901", IMEI: "3569", MCC: "001", MNC: "01"})
	h.m.PublicUp(sharing.UplinkInfo{Interface: "wwan0"})
	h.on()
	h.waitState(sharing.On)
	want := entitlement.Env{IMSI: "001010123456789", ICCID: "8901", IMEI: "3569", MCC: "001", MNC: "01",
		Interface: "wwan0", URL: "https://e.contoso.com/check"}
	if got := h.d.Entitler.Envs(); len(got) != 1 || got[0] != want {
		t.Errorf("env = %+v, want %+v", got, want)
	}
}

func TestEntitlementAtEnable(t *testing.T) {
	for _, tc := range []struct {
		answer entitlement.Result
		reason sharing.Reason
	}{
		{entitlement.Failed, sharing.ReasonEntitlementFailed},
		{entitlement.Unavailable, sharing.ReasonEntitlementUnavailable},
	} {
		t.Run(tc.answer.String(), func(t *testing.T) {
			h := start(t, provisioning(t), nil, userDefaults(t))
			h.d.Entitler.Answer(tc.answer)
			h.on()
			s := h.waitOff(tc.reason)
			want := &sharing.Help{
				InfoLink: "contoso.com/help",
				AppLink:  "app://12345678-9012-3456-7890-123456789012",
				Message:  "Add hotspot to your plan (@HotSpotMOHelp.dll,-101)",
			}
			if !reflect.DeepEqual(s.Help, want) {
				t.Errorf("help = %+v, want %+v", s.Help, want)
			}
			if s.Error == "" {
				t.Error("no error detail")
			}
			h.calls("entitle /usr/lib/openmifi/entitlement") // no driver started
			if txt := s.String(); !strings.Contains(txt, tc.reason.String()) || !strings.Contains(txt, want.Message) {
				t.Errorf("status text lacks reason or message:\n%s", txt)
			}
		})
	}
}

func TestPeriodicEntitlement(t *testing.T) {
	h := start(t, provisioning(t, "EntitlementInterval", "3600"), nil, userDefaults(t))
	h.on()
	h.waitState(sharing.On)
	h.keepUp()
	for i := 2; i <= 25; i++ { // a day of hourly checks
		h.clk.Advance(time.Hour)
		h.wait("check", func(sharing.Status) bool { return len(h.d.Entitler.Envs()) == i })
		h.settle()
		if s := h.m.Status(); s.State != sharing.On {
			t.Fatalf("check %d: %s", i, s.State)
		}
	}
	h.d.Entitler.Answer(entitlement.Failed)
	h.clk.Advance(time.Hour)
	h.waitOff(sharing.ReasonEntitlementFailed)
}

func TestPeriodicEntitlementUnavailable(t *testing.T) {
	h := start(t, provisioning(t, "EntitlementInterval", "86400"), nil, userDefaults(t))
	h.on()
	h.waitState(sharing.On)
	h.keepUp()
	checks := func(n int) {
		t.Helper()
		h.wait("checks", func(sharing.Status) bool { return len(h.d.Entitler.Envs()) == n })
		h.settle()
	}
	// A recovery on the second retry keeps sharing on and resets the count.
	h.d.Entitler.Answer(entitlement.Unavailable)
	h.clk.Advance(24 * time.Hour)
	checks(2)
	h.clk.Advance(time.Minute)
	checks(3)
	h.d.Entitler.Answer(entitlement.Success)
	h.clk.Advance(2*time.Minute - time.Nanosecond)
	h.settle()
	checks(3)
	h.clk.Advance(time.Nanosecond)
	checks(4)
	if s := h.m.Status(); s.State != sharing.On {
		t.Fatalf("after recovery: %s", s.State)
	}
	// Then UNAVAILABLE throughout: the check and three retries, then off.
	h.d.Entitler.Answer(entitlement.Unavailable)
	h.clk.Advance(24 * time.Hour)
	checks(5)
	for i, d := range sharing.RetryBackoff {
		if s := h.m.Status(); s.State != sharing.On {
			t.Fatalf("off before retry %d", i+1)
		}
		h.clk.Advance(d)
		checks(6 + i)
	}
	h.waitOff(sharing.ReasonEntitlementUnavailable)
}

func TestEntitlementIntervalZeroNeverRechecks(t *testing.T) {
	h := start(t, provisioning(t, "EntitlementInterval", "0"), nil, userDefaults(t))
	h.on()
	h.waitState(sharing.On)
	h.keepUp()
	h.clk.Advance(365 * 24 * time.Hour)
	h.settle()
	if n := len(h.d.Entitler.Envs()); n != 1 {
		t.Errorf("%d checks, want only the one at enable", n)
	}
	if s := h.m.Status(); s.State != sharing.On {
		t.Errorf("state %s", s.State)
	}
}

func TestPeerlessTimeout(t *testing.T) {
	h := start(t, provisioning(t, "PeerlessTimeout", "5"), nil, userDefaults(t))
	h.on()
	h.waitState(sharing.On)
	h.m.PublicUp(sharing.UplinkInfo{Interface: "wwan0"})
	// A client joins before the deadline: no timeout while it stays.
	h.clk.Advance(4 * time.Minute)
	h.join("02:00:00:00:00:01")
	h.clk.Advance(time.Hour)
	h.settle()
	if s := h.m.Status(); s.State != sharing.On || len(s.Clients) != 1 {
		t.Fatalf("with a client: %s, %d clients", s.State, len(s.Clients))
	}
	// It leaves: the five minutes count from then.
	h.m.StationLeft("02:00:00:00:00:01")
	h.settle()
	h.clk.Advance(5*time.Minute - time.Nanosecond)
	h.settle()
	if s := h.m.Status(); s.State != sharing.On {
		t.Fatalf("off before the timeout: %s", s.Reason)
	}
	h.clk.Advance(time.Nanosecond)
	s := h.waitOff(sharing.ReasonPeerless)
	if s.Help != nil {
		t.Errorf("a peerless stop is no failure, yet help %+v", s.Help)
	}
	if !h.users.Get().Sharing {
		t.Error("an automatic stop changed the user's persisted choice")
	}
}

func TestPublicConnectionTimeout(t *testing.T) {
	h := start(t, provisioning(t, "PublicConnectionTimeout", "20", "PeerlessTimeout", "120"), nil, userDefaults(t))
	h.on()
	h.waitState(sharing.On)
	h.join("02:00:00:00:00:01")
	h.m.PublicUp(sharing.UplinkInfo{Interface: "wwan0"})
	h.settle()
	// Down, and back before the deadline: cancelled.
	h.m.PublicDown("deregistered")
	h.settle()
	h.clk.Advance(19 * time.Minute)
	h.m.PublicUp(sharing.UplinkInfo{Interface: "wwan0"})
	h.settle()
	h.clk.Advance(time.Hour)
	h.settle()
	if s := h.m.Status(); s.State != sharing.On {
		t.Fatalf("recovered uplink, yet %s (%s)", s.State, s.Reason)
	}
	// Down for good.
	h.m.PublicDown("network deactivation")
	h.settle()
	if s := h.m.Status(); s.Uplink.Up || s.Uplink.DownReason != "network deactivation" {
		t.Errorf("uplink status %+v", s.Uplink)
	}
	h.clk.Advance(20*time.Minute - time.Nanosecond)
	h.settle()
	if s := h.m.Status(); s.State != sharing.On {
		t.Fatalf("off before the timeout")
	}
	h.clk.Advance(time.Nanosecond)
	s := h.waitOff(sharing.ReasonNoPublicConnection)
	if s.Help == nil || s.Help.Number != "611" {
		t.Errorf("help = %+v, want the help number", s.Help)
	}
}

func TestPublicConnectionTimeoutCountsFromOnWhenNeverUp(t *testing.T) {
	h := start(t, provisioning(t, "PublicConnectionTimeout", "1", "PeerlessTimeout", "120"), nil, userDefaults(t))
	h.on()
	h.waitState(sharing.On)
	h.clk.Advance(time.Minute)
	h.waitOff(sharing.ReasonNoPublicConnection)
}

func TestDedicatedConnections(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		h := start(t, provisioning(t, "DedicatedConnections", "zzzConn1;zzzConn2", "Cellular/zzzConn1/APN", "internet"), nil, userDefaults(t))
		h.on()
		s := h.waitOff(sharing.ReasonStartFailure)
		if !strings.Contains(s.Error, `"zzzConn2" is not defined`) {
			t.Errorf("error %q", s.Error)
		}
		if s.Help == nil || s.Help.Number != "611" {
			t.Errorf("help = %+v", s.Help)
		}
		h.calls() // nothing started, not even entitlement
	})
	t.Run("defined", func(t *testing.T) {
		h := start(t, provisioning(t, "DedicatedConnections", "zzzConn1", "TetheringNAIConnection", "nai",
			"Cellular/zzzConn1/APN", "internet", "Cellular/nai/TetheringNAI", "1"), nil, userDefaults(t))
		h.on()
		h.waitState(sharing.On)
		_, conns := h.d.Uplink.Acquired()
		var names []string
		for _, c := range conns {
			names = append(names, c.Name)
		}
		if !slices.Equal(names, []string{"zzzConn1", "nai"}) {
			t.Errorf("acquired %q", names)
		}
	})
}

func TestLoweringMaxUsersWhileOn(t *testing.T) {
	h := start(t, provisioning(t, "MaxUsers", "8"), nil, userDefaults(t))
	h.on()
	h.waitState(sharing.On)
	h.d.Log.Calls()
	if _, err := h.m.UpdateSettings(context.Background(), func(s *usersettings.Settings) error { s.MaxUsers = 3; return nil }); err != nil {
		t.Fatal(err)
	}
	h.calls("ap max 3", "dhcp max 3")
	if s := h.m.Status(); s.MaxUsers != 3 || s.State != sharing.On {
		t.Errorf("status %s max %d", s.State, s.MaxUsers)
	}
	// Above the operator's limit: refused, nothing changes.
	if _, err := h.m.UpdateSettings(context.Background(), func(s *usersettings.Settings) error { s.MaxUsers = 9; return nil }); err == nil {
		t.Error("MaxUsers 9 accepted under an operator limit of 8")
	}
	h.calls()
}

func TestWifiSettingsChangeRestartsAP(t *testing.T) {
	h := start(t, provisioning(t), nil, userDefaults(t))
	h.on()
	h.waitState(sharing.On)
	h.join("02:00:00:00:00:01")
	h.d.Log.Calls()
	if _, err := h.m.UpdateSettings(context.Background(), func(s *usersettings.Settings) error { s.SSID = "renamed"; return nil }); err != nil {
		t.Fatal(err)
	}
	h.wait("restarted AP", func(sharing.Status) bool {
		running, cfg := h.d.AP.Running()
		return running && cfg.SSID == "renamed"
	})
	h.calls("ap stop", `ap start ssid="renamed" max=5`)
}

func TestStartFailureStopsEverything(t *testing.T) {
	h := start(t, provisioning(t, "EntitlementRequired", "0", "EntitlementDll", ""), nil, userDefaults(t))
	h.d.AP.FailWith(errors.New("no AP-capable radio"))
	h.on()
	s := h.waitOff(sharing.ReasonStartFailure)
	if !strings.Contains(s.Error, "start access point: no AP-capable radio") {
		t.Errorf("error %q", s.Error)
	}
	if s.Help == nil || s.Help.Number != "611" {
		t.Errorf("help %+v", s.Help)
	}
	if !strings.Contains(s.String(), "call 611 for help") {
		t.Errorf("status text:\n%s", s)
	}
	h.calls("uplink acquire []", `firewall start uplink=""`, "dhcp start max=5", `ap start ssid="`+h.users.Get().SSID+`" max=5`,
		"ap stop", "dhcp stop", "firewall stop", "uplink release")
	// And it can be turned on again once the radio works.
	h.d.AP.FailWith(nil)
	h.on()
	h.waitState(sharing.On)
}

func TestInvalidProvisioning(t *testing.T) {
	u := userDefaults(t)
	u.Sharing = true
	bad := errors.New("f.xml:3: HotSpot/MaxUsers: \"9\" is out of range (allowed: 1 to 8)")
	h := start(t, provisioning(t), bad, u)
	s := h.waitOff(sharing.ReasonInvalidProvisioning)
	if s.Error != bad.Error() {
		t.Errorf("error %q", s.Error)
	}
	if err := h.m.TurnOn(context.Background()); err == nil || !strings.Contains(err.Error(), bad.Error()) {
		t.Errorf("TurnOn: %v", err)
	}
	h.calls()
}

func TestOffWhileCheckingEntitlement(t *testing.T) {
	h := start(t, provisioning(t), nil, userDefaults(t))
	release := h.d.Entitler.Block()
	defer release()
	h.on()
	h.waitState(sharing.CheckingEntitlement)
	h.off()
	h.waitOff(sharing.ReasonUser)
	release()
	h.settle()
	if s := h.m.Status(); s.State != sharing.Off {
		t.Errorf("a late entitlement answer turned sharing %s", s.State)
	}
	if running, _ := h.d.AP.Running(); running {
		t.Error("AP started after off")
	}
}

func TestOffWhileStarting(t *testing.T) {
	h := start(t, provisioning(t, "EntitlementRequired", "0", "EntitlementDll", ""), nil, userDefaults(t))
	release := h.d.DHCP.Block()
	h.on()
	h.waitState(sharing.Starting)
	h.off()
	release()
	h.waitOff(sharing.ReasonUser)
	for name, running := range map[string]bool{
		"ap":       first(h.d.AP.Running()),
		"dhcp":     first(h.d.DHCP.Running()),
		"firewall": first(h.d.Firewall.Running()),
		"uplink":   first(h.d.Uplink.Acquired()),
	} {
		if running {
			t.Errorf("%s still running after off during start", name)
		}
	}
}

func first[A, B any](a A, _ B) A { return a }

func TestNATWaitsForTheUplinkAcquireMoves(t *testing.T) {
	// The public connection is up when sharing is turned on, and the
	// uplink driver takes it down to move sharing to its own context:
	// the firewall must not be pointed at the interface that was up
	// before Acquire, but at whatever is up once it is done.
	h := start(t, provisioning(t), nil, userDefaults(t))
	h.m.PublicUp(sharing.UplinkInfo{Interface: "wwan0"})
	h.settle()
	release := h.d.Uplink.Block()
	h.on()
	h.waitState(sharing.Starting)
	h.m.PublicDown("switching connection")
	h.settle()
	release()
	h.waitState(sharing.On)
	if _, up := h.d.Firewall.Running(); up != "" {
		t.Errorf("NAT on %q while the uplink is moving", up)
	}
	h.m.PublicUp(sharing.UplinkInfo{Interface: "wwan0"})
	h.settle()
	if _, up := h.d.Firewall.Running(); up != "wwan0" {
		t.Errorf("NAT on %q once the uplink is back", up)
	}
}

func TestDriverFailureStopsSharing(t *testing.T) {
	h := start(t, provisioning(t), nil, userDefaults(t))
	h.on()
	h.waitState(sharing.On)
	h.keepUp()
	h.m.DriverFailed("access point", errors.New("stopped by the kernel"))
	s := h.waitOff(sharing.ReasonStartFailure)
	if !strings.Contains(s.Error, "access point failed: stopped by the kernel") {
		t.Errorf("status error %q", s.Error)
	}
	if running, _ := h.d.AP.Running(); running {
		t.Error("the access point is still running")
	}
	// Off already: a late report changes nothing.
	h.m.DriverFailed("access point", errors.New("again"))
	h.settle()
	if s := h.m.Status(); s.State != sharing.Off || strings.Contains(s.Error, "again") {
		t.Errorf("after a late failure: %v %q", s.State, s.Error)
	}
}

func TestNATFollowsTheUplink(t *testing.T) {
	h := start(t, provisioning(t), nil, userDefaults(t))
	h.m.PublicUp(sharing.UplinkInfo{Interface: "wwan0"})
	h.on()
	h.waitState(sharing.On)
	if _, up := h.d.Firewall.Running(); up != "wwan0" {
		t.Errorf("NAT on %q", up)
	}
	h.m.PublicDown("network deactivation")
	h.m.PublicUp(sharing.UplinkInfo{Interface: "wwan1", Operator: "Contoso", Technology: "LTE", SignalDBm: -85, SignalBars: 3})
	h.settle()
	if _, up := h.d.Firewall.Running(); up != "wwan1" {
		t.Errorf("NAT on %q after the uplink moved", up)
	}
	s := h.m.Status()
	if !strings.Contains(s.String(), "up on wwan1, Contoso LTE, -85 dBm (3/5)") {
		t.Errorf("status:\n%s", s)
	}
	// Down and back on the same interface: the kernel dropped its routes,
	// so the firewall driver is asked again; a signal update is not news.
	h.d.Log.Calls()
	h.m.PublicUp(sharing.UplinkInfo{Interface: "wwan1", SignalDBm: -80})
	h.m.PublicDown("deregistered")
	h.m.PublicUp(sharing.UplinkInfo{Interface: "wwan1"})
	h.settle()
	h.calls(`firewall uplink="wwan1"`)
}

func TestStatusClientsAndCounters(t *testing.T) {
	h := start(t, provisioning(t), nil, userDefaults(t))
	h.on()
	h.waitState(sharing.On)
	h.join("02:00:00:00:00:01")
	h.clk.Advance(time.Second)
	h.join("02:00:00:00:00:02")
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	a1 := netip.MustParseAddr("192.168.43.10")
	h.d.DHCP.SetLeases([]sharing.Lease{{MAC: mac, Addr: a1, Hostname: "laptop"}})
	h.d.Firewall.Count(a1, sharing.Counters{UpBytes: 100, DownBytes: 2000, UpPackets: 2, DownPackets: 3})
	h.d.Firewall.Count(netip.MustParseAddr("192.168.43.11"), sharing.Counters{UpBytes: 1, DownBytes: 2})
	wired, _ := net.ParseMAC("02:00:00:00:00:99")
	h.d.DHCP.SetLeases([]sharing.Lease{{MAC: mac, Addr: a1, Hostname: "laptop"},
		{MAC: wired, Addr: netip.MustParseAddr("192.168.43.12"), Hostname: "printer"}})
	s := h.m.Status()
	if len(s.Clients) != 3 {
		t.Fatalf("clients %+v", s.Clients)
	}
	if c := s.Clients[2]; c.MAC != "02:00:00:00:00:99" || c.Hostname != "printer" {
		t.Errorf("a lease without a station is not listed: %+v", c)
	}
	c := s.Clients[0]
	if c.MAC != "02:00:00:00:00:01" || c.Addr != a1 || c.Hostname != "laptop" || c.DownBytes != 2000 {
		t.Errorf("client %+v", c)
	}
	if s.Total.UpBytes != 101 || s.Total.DownBytes != 2002 {
		t.Errorf("total %+v", s.Total)
	}
}

func TestShutdownStopsSharingButKeepsTheChoice(t *testing.T) {
	h := &harness{t: t, d: sharingtest.New(), clk: clock.NewFake(time.Unix(0, 0)), users: sharingtest.NewUsers(userDefaults(t))}
	h.m = sharing.New(h.d.Config(sharing.Config{Clock: h.clk, Users: h.users}), provisioning(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.m.Run(ctx) }()
	h.on()
	h.waitState(sharing.On)
	h.d.Log.Calls()
	cancel()
	<-done
	h.calls("ap stop", "dhcp stop", "firewall stop", "uplink release")
	if s := h.m.Status(); s.State != sharing.Off || s.Reason != sharing.ReasonShutdown {
		t.Errorf("after shutdown: %s (%s)", s.State, s.Reason)
	}
	if !h.users.Get().Sharing {
		t.Error("shutdown changed the user's choice")
	}
	if err := h.m.TurnOn(context.Background()); err == nil {
		t.Error("TurnOn after Run returned: no error")
	}
}

func TestNoGoroutineOutlivesRun(t *testing.T) {
	before := runtime.NumGoroutine()
	d := sharingtest.New()
	users := sharingtest.NewUsers(userDefaults(t))
	m := sharing.New(d.Config(sharing.Config{Clock: clock.NewFake(time.Unix(0, 0)), Users: users}), provisioning(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	release := d.Entitler.Block() // an operation under way when Run ends
	defer release()
	if err := m.TurnOn(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.StationJoined(sharing.Station{})
	cancel()
	<-done
	m.PublicUp(sharing.UplinkInfo{}) // events after Run must not block or leak
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

func TestObserversHearUplinkAndStations(t *testing.T) {
	d := sharingtest.New()
	var mu sync.Mutex
	var heard []string
	note := func(s string) { mu.Lock(); heard = append(heard, s); mu.Unlock() }
	m := sharing.New(d.Config(sharing.Config{
		Clock: clock.NewFake(time.Unix(0, 0)),
		Users: sharingtest.NewUsers(userDefaults(t)),
		UplinkChanged: func(u sharing.UplinkStatus) {
			note(fmt.Sprintf("uplink up=%v dns=%v", u.Up, u.DNS))
		},
		StationChanged: func(mac net.HardwareAddr, present bool) { note(fmt.Sprintf("station %s %v", mac, present)) },
	}), provisioning(t, "EntitlementRequired", "0", "EntitlementDll", ""), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	defer func() { cancel(); <-done }()

	m.PublicUp(sharing.UplinkInfo{Interface: "wwan0", DNS: []netip.Addr{netip.MustParseAddr("10.0.0.53")}})
	if err := m.TurnOn(ctx); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, m: m, d: d}
	h.waitState(sharing.On)
	hw, _ := net.ParseMAC("02:00:00:00:00:07")
	m.StationJoined(sharing.Station{MAC: hw})
	m.StationLeft("02:00:00:00:00:07")
	m.PublicDown("deregistered")
	h.settle()
	mu.Lock()
	defer mu.Unlock()
	want := []string{"uplink up=true dns=[10.0.0.53]", "station 02:00:00:00:00:07 true", "station 02:00:00:00:00:07 false", "uplink up=false dns=[10.0.0.53]"}
	if !reflect.DeepEqual(heard, want) {
		t.Errorf("heard %q\nwant  %q", heard, want)
	}
}
