package modem

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openmifi/openmifi/internal/modemsim"
	"github.com/openmifi/openmifi/internal/provision"
)

// The tests below run the driver against the simulator over a real
// pseudo-terminal, through the simulator's scenarios.

const upDefault = "up wwan0 [100.64.1.2/30 2001:db8:0:1::2/64] Test PLMN 1-1 LTE -93 dBm 3 bars"

func TestUpOnGenericModem(t *testing.T) {
	r := newRig(t, modemsim.Config{}, Config{}, "")
	r.expect("identity 001010123456789", 0)
	if got := r.expect("up", 0); got != upDefault {
		t.Errorf("got  %s\nwant %s", got, upDefault)
	}
	info, id := r.rec.last()
	if id.ICCID != "89001010123456789015" || id.IMEI != "356938035643809" || id.MCC != "001" || id.MNC != "01" {
		t.Errorf("identity %+v", id)
	}
	if len(info.DNS) != 3 || info.DNS[0].String() != "100.64.0.53" {
		t.Errorf("DNS %v", info.DNS)
	}
	calls := r.addr.log()
	want := "up wwan0 static [100.64.1.2/30 2001:db8:0:1::2/64] gw 100.64.1.1 dns [100.64.0.53 100.64.0.54 2001:db8::53]"
	if len(calls) != 1 || calls[0] != want {
		t.Errorf("addresser calls %q, want %q", calls, want)
	}
}

func TestSignalChangeIsReported(t *testing.T) {
	r := newRig(t, modemsim.Config{}, Config{}, "at 1m signal 30\n")
	r.expect("up", 0)
	r.clk.Advance(time.Minute)
	// The next poll reads the new level: -53 dBm RSSI, -73 dBm RSRP.
	if got := r.expect("up", 10*time.Second); !strings.HasSuffix(got, "-73 dBm 5 bars") {
		t.Errorf("after the signal change: %s", got)
	}
}

func TestSIMLockedWithPIN(t *testing.T) {
	r := newRig(t, modemsim.Config{PIN: "4321"}, Config{PIN: func() string { return "4321" }}, "sim locked\n")
	r.expect("identity", 0)
	if got := r.expect("up", 0); got != upDefault {
		t.Errorf("got %s", got)
	}
}

func TestWrongPINIsEnteredOnce(t *testing.T) {
	r := newRig(t, modemsim.Config{PIN: "4321"}, Config{PIN: func() string { return "0000" }}, "sim locked\n")
	r.expect("down "+ReasonPINRejected, 0)
	// Polls come and go; entering the PIN again would use up the SIM's
	// three tries and block it.
	for range 5 {
		r.clk.Advance(time.Minute)
	}
	r.none("down " + ReasonPUKRequired)
	r.none("up")
}

func TestSIMNeedsPUK(t *testing.T) {
	r := newRig(t, modemsim.Config{}, Config{PIN: func() string { return "1234" }}, "sim puk\n")
	r.expect("down "+ReasonPUKRequired, 0)
}

func TestNoCoverage(t *testing.T) {
	r := newRig(t, modemsim.Config{}, Config{}, "coverage lost\n")
	r.expect("down "+ReasonDeregistered, 0)
	r.clk.Advance(time.Minute)
	r.none("up")
}

func TestCoverageLostAndRegained(t *testing.T) {
	// The built-in scenario coverage-flap, written out so that the test
	// reads alone.
	r := newRig(t, modemsim.Config{}, Config{}, "at 10m coverage lost\nat 12m coverage back\n")
	r.expect("up", 0)
	r.clk.Advance(10 * time.Minute)
	r.expect("down "+ReasonDeregistered, 0)
	r.clk.Advance(2 * time.Minute)
	if got := r.expect("up", 0); got != upDefault {
		t.Errorf("after coverage came back: %s", got)
	}
	if calls := r.addr.log(); !slices.Contains(calls, "down wwan0") {
		t.Errorf("the interface was not unaddressed: %q", calls)
	}
}

func TestNetworkDeactivation(t *testing.T) {
	r := newRig(t, modemsim.Config{}, Config{}, "at 5m nw-deact 1\n")
	r.expect("up", 0)
	r.clk.Advance(5 * time.Minute)
	r.expect("down "+ReasonNetworkDeact, 0)
	r.expect("up", 0)
}

func TestNetworkDeactivationOnUMTS(t *testing.T) {
	// Before release 10 the event names the context by type and address.
	r := newRig(t, modemsim.Config{Tech: "umts"}, Config{}, "at 5m nw-deact 1\n")
	if got := r.expect("up", 0); !strings.Contains(got, "UMTS") {
		t.Errorf("got %s", got)
	}
	r.clk.Advance(5 * time.Minute)
	r.expect("down "+ReasonNetworkDeact, 0)
	r.expect("up", 0)
}

func TestPortGoneAndBack(t *testing.T) {
	r := newRig(t, modemsim.Config{}, Config{}, "at 20m port gone 5s\n")
	r.expect("up", 0)
	r.clk.Advance(20 * time.Minute)
	r.expect("down "+ReasonPortLost, 0)
	// The engine reopens with back-off; the modem is back after 5 s.
	if got := r.expect("up", time.Second); got != upDefault {
		t.Errorf("after the port came back: %s", got)
	}
}

func TestSIMRemoved(t *testing.T) {
	r := newRig(t, modemsim.Config{Dialect: "quectel"}, Config{Dialect: DialectQuectel, Addressing: AddressingDHCP}, "at 1m sim absent\n")
	r.expect("up", 0)
	r.clk.Advance(time.Minute)
	r.expect("down "+ReasonSIMRemoved, 0)
}

func TestQuectelECM(t *testing.T) {
	r := newRig(t, modemsim.Config{Dialect: "quectel"}, Config{Dialect: DialectQuectel, Addressing: AddressingDHCP}, "")
	if got := r.expect("up", 0); got != upDefault {
		t.Errorf("got %s", got)
	}
	if calls := r.addr.log(); len(calls) != 1 || !strings.HasPrefix(calls[0], "up wwan0 dhcp") {
		t.Errorf("addresser calls %q", calls)
	}
}

func TestSIMComUp(t *testing.T) {
	r := newRig(t, modemsim.Config{Dialect: "simcom"}, Config{Dialect: DialectSIMCom}, "")
	if got := r.expect("up", 0); got != upDefault {
		t.Errorf("got %s", got)
	}
	if _, id := r.rec.last(); id.ICCID != "89001010123456789015" {
		t.Errorf("identity %+v", id)
	}
}

var tethering = provision.Connection{Name: "tether", APN: "tether.example", IPType: "IP", TetheringNAI: true,
	UserName: "user", Password: "s3cret", AuthType: "chap"}

func TestTetheringOnSingleContextModem(t *testing.T) {
	r := newRig(t, modemsim.Config{MaxActive: 1}, Config{SingleContext: true}, "")
	r.expect("up", 0)
	ctx := context.Background()
	if err := r.drv.Acquire(ctx, []provision.Connection{{Name: "plain", APN: "other"}, tethering}); err != nil {
		t.Fatal(err)
	}
	// The interface loses its address between the two contexts: said
	// first, so that nothing routes through it meanwhile.
	if got := r.expect("", 0); got != "down "+ReasonSwitching {
		t.Errorf("first report after Acquire: %s", got)
	}
	if got := r.expect("up", 0); !strings.HasPrefix(got, "up wwan0 [100.64.2.2/30] ") {
		t.Errorf("sharing: %s", got)
	}
	if info, _ := r.rec.last(); info.Connection != "tether" {
		t.Errorf("connection %q", info.Connection)
	}
	if err := r.drv.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.expect("", 0); got != "down "+ReasonSwitching {
		t.Errorf("first report after Release: %s", got)
	}
	if got := r.expect("up", 0); got != upDefault {
		t.Errorf("restored: %s", got)
	}
}

func TestSharingConnectionBesideTheDefault(t *testing.T) {
	r := newRig(t, modemsim.Config{}, Config{}, "")
	r.expect("up", 0)
	conn := provision.Connection{Name: "dedicated", APN: "dedicated.example", IPType: "IPV6"}
	if err := r.drv.Acquire(context.Background(), []provision.Connection{conn}); err != nil {
		t.Fatal(err)
	}
	if got := r.expect("up", 0); !strings.HasPrefix(got, "up wwan0 [2001:db8:0:2::2/64] ") {
		t.Errorf("sharing: %s", got)
	}
	r.drv.Release(context.Background())
	if got := r.expect("up", 0); got != upDefault {
		t.Errorf("restored: %s", got)
	}
}

func TestAcquireRefusesQuotes(t *testing.T) {
	d := New(Config{})
	err := d.Acquire(context.Background(), []provision.Connection{{Name: "x", APN: `a"b`}})
	if err == nil {
		t.Error("an APN with a quote was accepted")
	}
}

func TestQuectelNetworkDeactivation(t *testing.T) {
	r := newRig(t, modemsim.Config{Dialect: "quectel"}, Config{Dialect: DialectQuectel, Addressing: AddressingDHCP}, "at 5m nw-deact 1\n")
	r.expect("up", 0)
	r.clk.Advance(5 * time.Minute)
	r.expect("down "+ReasonNetworkDeact, 0)
	r.expect("up", 0)
	// The interface's own URC about the deactivation, handled after the
	// reconnection, must not take the new connection down.
	r.clk.Advance(time.Minute)
	r.clk.Advance(time.Minute)
	r.none("down")
}

func TestSIMRemovedGeneric(t *testing.T) {
	// The generic modem says nothing about its SIM; the registration
	// lost with it makes the driver ask.
	r := newRig(t, modemsim.Config{}, Config{}, "at 1m sim absent\nat 2m sim inserted\n")
	r.expect("up", 0)
	r.clk.Advance(time.Minute)
	r.expect("down "+ReasonSIMRemoved, 0)
	r.clk.Advance(time.Minute)
	r.expect("up", 10*time.Second)
}

func TestSlowModem(t *testing.T) {
	// The built-in scenario slow: every answer takes a second, and
	// activation ten.
	r := newRig(t, modemsim.Config{}, Config{}, "slow 1s\nslow 10s +CGACT=\n")
	if got := r.expect("up", time.Second); got != upDefault {
		t.Errorf("got %s", got)
	}
}

func TestGarbageOnTheLine(t *testing.T) {
	r := newRig(t, modemsim.Config{}, Config{}, "every 30s garbage\nat 6m signal 30\n")
	r.expect("up", 0)
	// Ten bursts of noise between the driver's polls: skipped lines,
	// never a lost connection; and the driver still hears the modem.
	for range 10 {
		r.clk.Advance(30 * time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	r.none("down")
	if got := r.expect("up", 10*time.Second); !strings.HasSuffix(got, "-73 dBm 5 bars") {
		t.Errorf("after the noise: %s", got)
	}
}

func TestEchoStuck(t *testing.T) {
	r := newRig(t, modemsim.Config{}, Config{}, "echo stuck\n")
	if got := r.expect("up", 0); got != upDefault {
		t.Errorf("with echo on: %s", got)
	}
}

func TestModemHangs(t *testing.T) {
	// The firmware stops answering for a minute: the engine's probe
	// finds it silent, the connection is reported lost, and once the
	// modem answers again it is brought back. Polls that time out
	// meanwhile report nothing they did not hear.
	r := newRig(t, modemsim.Config{}, Config{ATTimeout: 5 * time.Second}, "at 5m hang 1m\n")
	r.expect("up", 0)
	r.clk.Advance(5 * time.Minute)
	deadline := time.Now().Add(waitLimit)
	for ev := ""; !strings.HasPrefix(ev, "down"); {
		select {
		case ev = <-r.rec.ch:
			if strings.HasPrefix(ev, "up") && ev != upDefault {
				t.Errorf("reported during the hang: %s", ev)
			}
		case <-time.After(5 * time.Millisecond):
			r.clk.Advance(time.Second)
		}
		if time.Now().After(deadline) {
			t.Fatal("the hang was never reported")
		}
	}
	if got := r.expect("up", time.Second); got != upDefault {
		t.Errorf("after the hang: %s", got)
	}
}
