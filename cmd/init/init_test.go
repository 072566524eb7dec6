package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openmifi/openmifi/board"
	"github.com/openmifi/openmifi/internal/syncbuf"
)

func TestBackoff(t *testing.T) {
	// A service that keeps dying at once waits 1, 2, 4, 8, 16, 30, 30 s.
	delay := minDelay
	var waits []time.Duration
	for range 7 {
		var wait time.Duration
		wait, delay = backoff(delay, 100*time.Millisecond)
		waits = append(waits, wait)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		if waits[i] != want[i]*time.Second {
			t.Fatalf("waits %v, want %v seconds", waits, want)
		}
	}
	// Once it ran a minute, the next death waits 1 s again.
	if wait, next := backoff(30*time.Second, resetAfter); wait != time.Second || next != 2*time.Second {
		t.Errorf("after a healthy run: wait %v, next %v; want 1s, 2s", wait, next)
	}
	if wait, _ := backoff(8*time.Second, resetAfter-time.Millisecond); wait != 8*time.Second {
		t.Errorf("just short of healthy: wait %v, want 8s", wait)
	}
}

// fakeClock runs the service loop without waiting: sleep advances it.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) bool {
	c.mu.Lock()
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err() == nil
}

func TestServiceRestarts(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Runs of 1 s, 1 s, 1 s, then a healthy 2 min, then 1 s; the sixth
	// start ends the test.
	runs := []time.Duration{time.Second, time.Second, time.Second, 2 * time.Minute, time.Second}
	starts := 0
	svc := &service{
		name: "hotspotd",
		log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:  clk.Now, sleep: clk.Sleep,
		start: func() (int, <-chan syscall.WaitStatus, error) {
			starts++
			if starts > len(runs) {
				cancel()
				return 0, make(chan syscall.WaitStatus), nil
			}
			clk.advance(runs[starts-1])
			ch := make(chan syscall.WaitStatus, 1)
			ch <- syscall.WaitStatus(9) // killed by SIGKILL
			return 100 + starts, ch, nil
		},
	}
	done := make(chan struct{})
	go func() { svc.run(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("service loop did not stop when its context ended")
	}
	want := []time.Duration{1, 2, 4, 1, 2}
	if len(clk.slept) != len(want) {
		t.Fatalf("slept %v, want %v seconds", clk.slept, want)
	}
	for i := range want {
		if clk.slept[i] != want[i]*time.Second {
			t.Fatalf("slept %v, want %v seconds", clk.slept, want)
		}
	}
}

func TestServiceStartFailureBacksOff(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	starts := 0
	svc := &service{
		name: "hotspotd",
		log:  slog.New(slog.NewTextHandler(&logs, nil)),
		now:  clk.Now,
		sleep: func(ctx context.Context, d time.Duration) bool {
			if starts == 3 {
				cancel()
			}
			return clk.Sleep(ctx, d)
		},
		start: func() (int, <-chan syscall.WaitStatus, error) {
			starts++
			return 0, nil, syscall.ENOENT
		},
	}
	svc.run(ctx)
	if starts != 3 || !strings.Contains(logs.String(), "no such file") {
		t.Errorf("%d starts, log:\n%s", starts, logs.String())
	}
}

func TestRingLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "hotspotd.log")
	r, err := newRingLog(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 39) + "\n") // 40 bytes
	for range 5 {
		if n, err := r.Write(line); err != nil || n != len(line) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	// 5 lines of 40 bytes in files of 100: 2 in .1, then 2, then 1.
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if len(cur) != 40 || len(old) != 80 {
		t.Errorf("current %d bytes, old %d; want 40 and 80", len(cur), len(old))
	}
	// A write larger than the cap keeps its end.
	big := []byte(strings.Repeat("a", 150) + "end\n")
	if n, err := r.Write(big); err != nil || n != len(big) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	cur, _ = os.ReadFile(path)
	if len(cur) != 100 || !bytes.HasSuffix(cur, []byte("end\n")) {
		t.Errorf("after a big write: %d bytes %q", len(cur), cur)
	}
	r.Close()
	// Reopened (an init restart cannot happen, but a test can): appends.
	r, err = newRingLog(path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	r.Write([]byte("more\n"))
	r.Close()
	cur, _ = os.ReadFile(path)
	if !bytes.HasSuffix(cur, []byte("end\nmore\n")) {
		t.Errorf("reopened log does not append: %q", cur)
	}
}

func TestCopyLog(t *testing.T) {
	long := strings.Repeat("y", 40<<10)
	in := "level=INFO msg=fine\n" +
		"level=ERROR msg=\"invalid provisioning\"\n" +
		long + "\n" +
		"level=WARN msg=last-without-newline"
	var ring, console syncbuf.Buffer
	copyLog(io.NopCloser(strings.NewReader(in)), "hotspotd", &ring, &console)
	if got := ring.String(); !strings.HasPrefix(got, "level=INFO msg=fine\nlevel=ERROR") ||
		!strings.HasSuffix(got, "level=WARN msg=last-without-newline\n") || !strings.Contains(got, long[:1000]) {
		t.Errorf("ring lost lines: %d bytes", len(got))
	}
	want := "hotspotd: level=ERROR msg=\"invalid provisioning\"\nhotspotd: level=WARN msg=last-without-newline\n"
	if got := console.String(); got != want {
		t.Errorf("console got %q, want %q", got, want)
	}
}

func TestProcsReapsAndReports(t *testing.T) {
	p := newProcs(slog.New(slog.NewTextHandler(io.Discard, nil)))
	go p.reap()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	_, exit, err := p.start("/bin/sh", []string{"sh", "-c", "exit 3"}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ws := <-exit:
		if !ws.Exited() || ws.ExitStatus() != 3 {
			t.Errorf("status %s, want exit status 3", describe(ws))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exit status never arrived")
	}
	if err := p.run([]string{"/bin/sh", "-c", "kill -9 $$"}); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("run of a killed process: %v", err)
	}
	if err := p.run([]string{"/no/such/program"}); err == nil {
		t.Error("run of a missing program succeeded")
	}
}

func TestModulesDep(t *testing.T) {
	dep := `kernel/drivers/net/wireless/mac80211_hwsim.ko: kernel/net/mac80211/mac80211.ko kernel/lib/crypto/libarc4.ko kernel/net/wireless/cfg80211.ko kernel/net/rfkill/rfkill.ko
kernel/net/mac80211/mac80211.ko: kernel/lib/crypto/libarc4.ko kernel/net/wireless/cfg80211.ko kernel/net/rfkill/rfkill.ko
kernel/net/wireless/cfg80211.ko: kernel/net/rfkill/rfkill.ko
kernel/net/rfkill/rfkill.ko:
kernel/lib/crypto/libarc4.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
`
	d, err := parseModulesDep(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	order, err := d.loadOrder([]board.Module{
		{Name: "cfg80211"},
		{Name: "mac80211_hwsim", Params: []string{"radios=3"}},
		{Name: "crc32c_intel"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range order {
		s := modName(m.file)
		if m.params != "" {
			s += " " + m.params
		}
		got = append(got, s)
	}
	want := "rfkill cfg80211 libarc4 mac80211 mac80211_hwsim radios=3 crc32c_intel"
	if strings.Join(got, " ") != want {
		t.Errorf("load order %q, want %q", strings.Join(got, " "), want)
	}
	if _, err := d.loadOrder([]board.Module{{Name: "ext4"}, {Name: "rfkill"}}); err == nil || !strings.Contains(err.Error(), "ext4") {
		t.Errorf("missing module: %v", err)
	}
	if _, err := parseModulesDep(strings.NewReader("no colon here\n")); err == nil {
		t.Error("malformed modules.dep accepted")
	}
}

func TestIsBlank(t *testing.T) {
	dir := t.TempDir()
	blank := filepath.Join(dir, "blank.img")
	if err := os.WriteFile(blank, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blank, 16<<20); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "small.img")
	os.WriteFile(small, make([]byte, 1000), 0o644)
	used := filepath.Join(dir, "used.img")
	data := make([]byte, 2<<20)
	data[1080], data[1081] = 0x53, 0xef // an ext2 superblock's magic
	os.WriteFile(used, data, 0o644)
	late := filepath.Join(dir, "late.img")
	data = make([]byte, 2<<20)
	data[blankSize+10] = 1 // beyond what counts
	os.WriteFile(late, data, 0o644)

	for _, tc := range []struct {
		path string
		want bool
	}{{blank, true}, {small, true}, {used, false}, {late, true}} {
		got, err := isBlank(tc.path)
		if err != nil || got != tc.want {
			t.Errorf("isBlank(%s) = %v, %v; want %v", filepath.Base(tc.path), got, err, tc.want)
		}
	}
	if _, err := isBlank(filepath.Join(dir, "none")); err == nil {
		t.Error("isBlank of a missing device: no error")
	}
}

func TestStorageRefusesToFormatData(t *testing.T) {
	// mount(2) of a regular file as ext2 fails (ENOTBLK as root, EPERM
	// otherwise), as a device with something else on it does.
	dir := t.TempDir()
	dev := filepath.Join(dir, "disk.img")
	data := make([]byte, 1<<20)
	copy(data[512:], "someone's data")
	os.WriteFile(dev, data, 0o644)
	formatted := false
	s := storage{
		Storage: board.Storage{Device: dev, FSType: board.FSExt2},
		dir:     filepath.Join(dir, "state"),
		mke2fs:  func(string) error { formatted = true; return nil },
	}
	err := s.mount()
	if err == nil || formatted || !strings.Contains(err.Error(), "not blank") {
		t.Errorf("mount of a disk with data: err %v, formatted %v", err, formatted)
	}
	s.Device = filepath.Join(dir, "absent")
	if err := s.mount(); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("absent device: %v", err)
	}
}

func TestDecodeBoard(t *testing.T) {
	b, _ := board.Get("qemu-x86_64")
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(b); err != nil {
		t.Fatal(err)
	}
	got, err := decodeBoard(&buf)
	if err != nil || got.Name != b.Name || got.Console.Device != "ttyS0" {
		t.Errorf("decodeBoard = %+v, %v", got, err)
	}
	if _, err := decodeBoard(strings.NewReader(`{"name":"x","surprise":1}`)); err == nil {
		t.Error("unknown field accepted")
	}
	if _, err := decodeBoard(strings.NewReader(`{"name":"x"}`)); err == nil {
		t.Error("invalid board accepted")
	}
}

func TestMVID(t *testing.T) {
	b, _ := board.Get("qemu-x86_64")
	if id, err := mvid(b); err != nil || id != "00101" {
		t.Errorf("fixed: %q, %v", id, err)
	}
	f := filepath.Join(t.TempDir(), "mvid")
	os.WriteFile(f, []byte(" 310260 \nrest\n"), 0o644)
	b.MVID = board.MVID{Source: board.MVIDFile, Value: f}
	if id, err := mvid(b); err != nil || id != "310260" {
		t.Errorf("file: %q, %v", id, err)
	}
	b.MVID = board.MVID{Source: board.MVIDSIM}
	if id, err := mvid(b); err != nil || id != "" {
		t.Errorf("sim: %q, %v", id, err)
	}
}

func TestHotspotdArgs(t *testing.T) {
	b, _ := board.Get("qemu-x86_64")
	got := strings.Join(hotspotdArgs(b, "00101"), " ")
	want := "/usr/bin/hotspotd -provisioning /etc/openmifi/provisioning.xml -state /var/lib/openmifi" +
		" -lan wlan0 -lan-address 192.168.43.1/24 -mvid 00101 -wifi-phy phy0" +
		" -modem /dev/ttyS1 -modem-baud 115200 -modem-dialect generic -uplink eth0 -uplink-addressing dhcp"
	if got != want {
		t.Errorf("qemu-x86_64:\n got %s\nwant %s", got, want)
	}

	// A real device: the SIM gives the MVID, the data path is raw IP.
	hw, _ := board.Get("qcom-mdm9607")
	got = strings.Join(hotspotdArgs(hw, ""), " ")
	if strings.Contains(got, "-mvid") ||
		!strings.HasSuffix(got, " -modem /dev/ttyUSB2 -modem-baud 115200 -modem-dialect quectel -uplink wwan0 -uplink-addressing static") {
		t.Errorf("qcom-mdm9607: %s", got)
	}

	arm, _ := board.Get("qemu-armv7")
	if got := strings.Join(hotspotdArgs(arm, "00101"), " "); !strings.Contains(got, " -modem /dev/hvc0 ") {
		t.Errorf("qemu-armv7: %s", got)
	}

	// No modem: no modem or uplink flags at all.
	b.Modem = board.Modem{}
	if got := strings.Join(hotspotdArgs(b, ""), " "); strings.Contains(got, "-modem") || strings.Contains(got, "-uplink") {
		t.Errorf("board without a modem: %s", got)
	}
}
