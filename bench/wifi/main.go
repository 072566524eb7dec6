// Command wifi benchmarks the Wi-Fi access point against Debian's hostapd
// in the same QEMU guest (the test image of rootfs/qemutest, with
// mac80211_hwsim's radios: hotspotd's AP on the first, hostapd on the
// fourth, wpa_supplicant on the second in a network namespace). As root:
//
//	go run ./bench/wifi [-rounds 5] [-accel tcg]
//
// For each AP in turn, interleaved over the rounds so that drift on the
// machine hits both alike, it measures:
//
//   - AP start: from the start command (hostapd's exec; "hotspotctl on"
//     for hotspotd) to the AP beaconing. For hostapd that is its
//     AP-ENABLED event, sent once the kernel accepted NL80211_CMD_START_AP
//     (hwsim then beacons at the next beacon interval); for hotspotd it is
//     the return of "hotspotctl on", which also waits for its DHCP server
//     and firewall, so it overstates the AP alone. (The guest boots with
//     the modem simulator and the simulated cellular network: sharing
//     needs the uplink, and the wait for it is not counted.)
//   - AP only (hotspotd): from hotspotd's "DHCP server started" log line
//     to its "access point started" one, the access point's own step of
//     sharing's start (START_AP and the group key; the log has
//     millisecond resolution). hostapd has no such split.
//   - client join: from wpa_supplicant's exec to CTRL-EVENT-CONNECTED
//     (library loading, driver setup, a scan of the AP's channel,
//     authentication, association and the 4-way handshake).
//   - the AP-dependent part: from wpa_supplicant's "SME: Trying to
//     authenticate" (it sends the first authentication frame) to "WPA: Key
//     negotiation completed" (the 4-way handshake done).
//
// Start times come from rootfs/qemutest/stamp (the clock just before the
// exec), the others from the programs' own -t timestamps, all on the
// guest's clock. It prints each AP's median, minimum and maximum, and the
// ratios hotspotd/hostapd; hotspotd is reported "not available", with its
// error, while it has no AP driver.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/openmifi/openmifi/rootfs"
	"github.com/openmifi/openmifi/rootfs/qemutest"
)

var (
	rounds  = flag.Int("rounds", 5, "measurements per AP")
	accel   = flag.String("accel", "", "QEMU accelerator: kvm, tcg (default: kvm when usable)")
	verbose = flag.Bool("v", false, "log the image build and print every round")
)

// metric names, in table order.
const (
	mAPStart = "AP start (start → beaconing)"
	mAPOnly  = "AP only (hotspotd: DHCP up → AP started)"
	mJoin    = "client join (wpa_supplicant exec → connected)"
	mAPPart  = "AP part (first auth frame → 4-way done)"
)

var metrics = []string{mAPStart, mAPOnly, mJoin, mAPPart}

func main() {
	flag.Parse()
	if os.Getuid() != 0 {
		log.Fatal("wifi bench: run as root (the image build fetches Debian packages, as make test does)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		log.Fatalf("wifi bench: %v", err)
	}
}

func run(ctx context.Context) error {
	logOut := io.Discard
	if *verbose {
		logOut = os.Stderr
	}
	start := time.Now()
	repo, err := rootfs.RepoRoot(ctx)
	if err != nil {
		return err
	}
	img, err := qemutest.BuildImage(ctx, qemutest.ImageOptions{
		TestTools: true, Repo: repo,
		// Not the tests' image directory: a test run may be using it.
		Dir: filepath.Join(repo, ".cache", "qemu", "qemu-x86_64", "bench-wifi"),
		Log: slog.New(slog.NewTextHandler(logOut, nil)),
	})
	if err != nil {
		return err
	}
	built := time.Since(start)
	// The modem and the cellular network: hotspotd starts sharing only
	// with a public connection to share.
	g, err := qemutest.Boot(ctx, img, qemutest.BootOptions{Accel: *accel, Cellular: true})
	if err != nil {
		return err
	}
	defer g.Close()
	fmt.Printf("Wi-Fi bench: %s, accel %s, %d rounds; image %d bytes built in %v, booted in %v\n",
		img.Board.Name, g.Accel, *rounds, img.Size, built.Round(100*time.Millisecond), g.Booted.Round(100*time.Millisecond))

	sh := g.Console
	c1, err := qemutest.NewClient(ctx, sh, 1)
	if err != nil {
		return err
	}
	defer c1.Close(ctx)
	n := qemutest.Network{SSID: "openmifi-bench", Passphrase: "benchmark passphrase", Channel: 6}

	// hostapd on a radio of its own: hotspotd holds the first's
	// management frames from its start, and the radios are alike.
	aps := []qemutest.AP{&qemutest.Hostapd{Iface: qemutest.HostapdIface}, &qemutest.Hotspotd{}}
	unavailable := map[string]string{}
	results := map[string]map[string][]time.Duration{}
	for _, ap := range aps {
		results[ap.Name()] = map[string][]time.Duration{}
	}
	for r := 0; r < *rounds; r++ {
		for _, ap := range aps {
			if unavailable[ap.Name()] != "" {
				continue
			}
			m, err := measure(ctx, g, ap, c1, n)
			var na notAvailable
			if errors.As(err, &na) {
				unavailable[ap.Name()] = na.Error()
				continue
			}
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", ap.Name(), r+1, err)
			}
			if *verbose {
				fmt.Printf("round %d %s: %v\n", r+1, ap.Name(), m)
			}
			for k, v := range m {
				results[ap.Name()][k] = append(results[ap.Name()][k], v)
			}
		}
	}
	printTable(os.Stdout, results, unavailable)
	return g.Poweroff(ctx)
}

// notAvailable is an AP that cannot start on this image at all (hotspotd
// before its AP driver lands).
type notAvailable struct{ error }

// measure runs one round with ap: start it, join client c, stop both.
func measure(ctx context.Context, g *qemutest.Guest, ap qemutest.AP, c *qemutest.Client, n qemutest.Network) (map[string]time.Duration, error) {
	sh := g.Console
	m := map[string]time.Duration{}
	switch ap.(type) {
	case *qemutest.Hostapd:
		if err := ap.Start(ctx, sh, n); err != nil {
			return nil, err
		}
		t0, err := stampFile(ctx, g, qemutest.HostapdT0)
		if err != nil {
			return nil, err
		}
		log, err := g.Check(ctx, 10*time.Second, "cat "+qemutest.HostapdLog)
		if err != nil {
			return nil, err
		}
		enabled, ok := qemutest.Timestamp(log, "AP-ENABLED")
		if !ok {
			return nil, fmt.Errorf("no AP-ENABLED in hostapd's log:\n%s", log)
		}
		m[mAPStart] = enabled.Sub(t0)
	case *qemutest.Hotspotd:
		const done = "/tmp/hotspotd.on"
		if err := ap.Start(ctx, sh, n); err != nil {
			ap.Stop(ctx, sh)
			return nil, notAvailable{err}
		}
		// The return of hotspotctl on, stamped right after.
		if _, err := g.Check(ctx, 10*time.Second, qemutest.StampTool+" "+done+" true"); err != nil {
			return nil, err
		}
		t0, err := stampFile(ctx, g, qemutest.HotspotdT0)
		if err != nil {
			return nil, err
		}
		t1, err := stampFile(ctx, g, done)
		if err != nil {
			return nil, err
		}
		m[mAPStart] = t1.Sub(t0)
		// The access point's own step, from hotspotd's log: it
		// starts right after the DHCP server, the step before it.
		d, err := apOnly(ctx, g)
		if err != nil {
			return nil, err
		}
		m[mAPOnly] = d
	default:
		return nil, fmt.Errorf("no start measurement for %s", ap.Name())
	}

	res, err := c.Join(ctx, n, 60*time.Second)
	if err != nil {
		return nil, err
	}
	log, lerr := c.ReadLog(ctx)
	if !res.Connected {
		return nil, fmt.Errorf("client did not connect (%q): %v\n%s", res.Event, lerr, log)
	}
	t0, err := stampFile(ctx, g, c.T0())
	if err != nil {
		return nil, err
	}
	connected, ok1 := qemutest.Timestamp(log, "CTRL-EVENT-CONNECTED")
	auth, ok2 := qemutest.Timestamp(log, "SME: Trying to authenticate")
	keys, ok3 := qemutest.Timestamp(log, "WPA: Key negotiation completed")
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("wpa_supplicant's log lacks a step:\n%s", log)
	}
	m[mJoin] = connected.Sub(t0)
	m[mAPPart] = keys.Sub(auth)
	if err := c.Stop(ctx); err != nil {
		return nil, err
	}
	return m, ap.Stop(ctx, sh)
}

var logTimeRE = regexp.MustCompile(`time=(\S+) .*msg="(DHCP server started|access point started)"`)

// apOnly is the time between hotspotd's "DHCP server started" and its
// "access point started" of the last start: the access point's step of
// sharing's start (the radio's START_AP and the group key), with the
// log's millisecond resolution.
func apOnly(ctx context.Context, g *qemutest.Guest) (time.Duration, error) {
	out, err := g.Check(ctx, 10*time.Second, "hotspotd-log | grep -e 'DHCP server started' -e 'access point started' | tail -n 2")
	if err != nil {
		return 0, err
	}
	return parseAPOnly(out)
}

func parseAPOnly(log string) (time.Duration, error) {
	at := map[string]time.Time{}
	for _, line := range strings.Split(log, "\n") {
		m := logTimeRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			return 0, fmt.Errorf("hotspotd's log: %q: %w", line, err)
		}
		at[m[2]] = t
	}
	dhcp, ok1 := at["DHCP server started"]
	ap, ok2 := at["access point started"]
	if !ok1 || !ok2 || ap.Before(dhcp) {
		return 0, fmt.Errorf("hotspotd's log lacks a DHCP then access point start:\n%s", log)
	}
	return ap.Sub(dhcp), nil
}

func stampFile(ctx context.Context, g *qemutest.Guest, name string) (time.Time, error) {
	out, err := g.Check(ctx, 10*time.Second, "cat "+name)
	if err != nil {
		return time.Time{}, err
	}
	// The console may interleave other lines (the init's echo of daemon
	// warnings).
	for _, line := range strings.Split(out, "\n") {
		if t, ok := qemutest.ParseSeconds(line); ok {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s: not a time: %q", name, out)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func printTable(w io.Writer, results map[string]map[string][]time.Duration, unavailable map[string]string) {
	fmt.Fprintf(w, "\n%-48s %26s %26s %8s\n", "median (min–max)", "hostapd", "hotspotd", "ratio")
	for _, name := range metrics {
		cells := map[string]string{}
		meds := map[string]time.Duration{}
		for _, ap := range []string{"hostapd", "hotspotd"} {
			v := results[ap][name]
			if len(v) == 0 {
				cells[ap] = "n/a"
				continue
			}
			meds[ap] = median(v)
			cells[ap] = fmt.Sprintf("%s (%s–%s)", ms(meds[ap]), ms(slices.Min(v)), ms(slices.Max(v)))
		}
		ratio := "n/a"
		if meds["hostapd"] > 0 && meds["hotspotd"] > 0 {
			ratio = fmt.Sprintf("%.2f", float64(meds["hotspotd"])/float64(meds["hostapd"]))
		}
		fmt.Fprintf(w, "%-48s %26s %26s %8s\n", name, cells["hostapd"], cells["hotspotd"], ratio)
	}
	for _, ap := range []string{"hostapd", "hotspotd"} {
		if why := unavailable[ap]; why != "" {
			fmt.Fprintf(w, "%s: not available: %s\n", ap, strings.TrimPrefix(firstLine(why), ap+": "))
		}
	}
	fmt.Fprintln(w, "ratio: hotspotd / hostapd (below 1 is faster)")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
