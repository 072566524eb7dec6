package entitlement

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// helperPrefix marks a run of this test binary as a signed plugin. The
// environment is the only channel into the plugin, and the runner passes
// just its fixed set, so the marker rides in the URL.
const helperPrefix = "openmifi-test-helper:argv0:"

func TestMain(m *testing.M) {
	if out, ok := strings.CutPrefix(os.Getenv("OPENMIFI_ENTITLEMENT_URL"), helperPrefix); ok {
		if err := os.WriteFile(out, []byte(os.Args[0]), 0o644); err != nil {
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func sign(t *testing.T, priv ed25519.PrivateKey, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, data)) + "\n"
	if err := os.WriteFile(path+".sig", []byte(sig), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writePlugin writes a signed shell script plugin with body and returns
// its path.
func writePlugin(t *testing.T, priv ed25519.PrivateKey, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plugin")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sign(t, priv, path)
	return path
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func TestResultString(t *testing.T) {
	for r, want := range map[Result]string{
		Success:     "ENTITLEMENT_SUCCESS",
		Failed:      "ENTITLEMENT_FAILED",
		Unavailable: "ENTITLEMENT_UNAVAILABLE",
		Result(7):   "Result(7)",
	} {
		if got := r.String(); got != want {
			t.Errorf("Result(%d).String() = %q, want %q", int(r), got, want)
		}
	}
}

func TestExitStatus(t *testing.T) {
	t.Parallel()
	pub, priv := newKey(t)
	for _, tt := range []struct {
		body    string
		want    Result
		wantErr string
	}{
		{"exit 0", Success, ""},
		{"echo entitled; exit 0", Success, ""},
		{"echo 'no plan' >&2; exit 1", Failed, "does not include internet sharing"},
		{"exit 2", Unavailable, "could not be reached"},
		{"exit 3", Unavailable, "exit status 3"},
		{"exit 255", Unavailable, "exit status 255"},
		{"kill -TERM $$", Unavailable, "killed by signal terminated"},
		{"kill -KILL $$", Unavailable, "killed by signal killed"},
	} {
		t.Run(tt.body, func(t *testing.T) {
			t.Parallel()
			plugin := writePlugin(t, priv, tt.body)
			r := &Runner{Keys: []ed25519.PublicKey{pub}, Log: testLogger(t)}
			res, err := r.Check(context.Background(), plugin, Env{})
			checkResult(t, res, err, tt.want, tt.wantErr)
		})
	}
}

func checkResult(t *testing.T, res Result, err error, want Result, wantErr string) {
	t.Helper()
	if res != want {
		t.Errorf("result %v (%v), want %v", res, err, want)
	}
	switch {
	case want == Success && err != nil:
		t.Errorf("error %v with %v", err, res)
	case want != Success && err == nil:
		t.Errorf("no error with %v", res)
	case err != nil && !strings.Contains(err.Error(), wantErr):
		t.Errorf("error %q, want it to mention %q", err, wantErr)
	}
}

func TestNotRun(t *testing.T) {
	t.Parallel()
	pub, priv := newKey(t)
	otherPub, otherPriv := newKey(t)
	// Each plugin leaves a mark if it runs, which it must not.
	marker := filepath.Join(t.TempDir(), "ran")
	body := "touch " + quote(marker)

	missingSig := writePlugin(t, priv, body)
	os.Remove(missingSig + ".sig")

	emptySig := writePlugin(t, priv, body)
	os.WriteFile(emptySig+".sig", []byte("\n"), 0o644)

	notBase64 := writePlugin(t, priv, body)
	os.WriteFile(notBase64+".sig", []byte("not base64!\n"), 0o644)

	shortSig := writePlugin(t, priv, body)
	os.WriteFile(shortSig+".sig", []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))), 0o644)

	badSig := writePlugin(t, priv, body)
	os.WriteFile(badSig+".sig", []byte(base64.StdEncoding.EncodeToString(make([]byte, 64))), 0o644)

	tampered := writePlugin(t, priv, body)
	f, err := os.OpenFile(tampered, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("exit 0\n")
	f.Close()

	otherKey := writePlugin(t, otherPriv, body)

	dir := t.TempDir()

	valid := writePlugin(t, priv, body)

	for _, tt := range []struct {
		name    string
		keys    []ed25519.PublicKey
		plugin  string
		wantErr string
	}{
		{"empty path", []ed25519.PublicKey{pub}, "", "no entitlement plugin is configured"},
		{"missing plugin", []ed25519.PublicKey{pub}, filepath.Join(t.TempDir(), "nope"), "no such file"},
		{"directory", []ed25519.PublicKey{pub}, dir, "not a regular file"},
		{"missing sig", []ed25519.PublicKey{pub}, missingSig, "is not signed"},
		{"empty sig", []ed25519.PublicKey{pub}, emptySig, "signature file is empty"},
		{"sig not base64", []ed25519.PublicKey{pub}, notBase64, "not base64"},
		{"short sig", []ed25519.PublicKey{pub}, shortSig, "32 bytes, want 64"},
		{"bad sig", []ed25519.PublicKey{pub}, badSig, "not signed by the operator"},
		{"tampered", []ed25519.PublicKey{pub}, tampered, "not signed by the operator"},
		{"key not in list", []ed25519.PublicKey{pub}, otherKey, "not signed by the operator"},
		{"no keys", nil, valid, "no operator keys"},
		{"wrong keys", []ed25519.PublicKey{otherPub}, valid, "not signed by the operator"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &Runner{Keys: tt.keys, Log: testLogger(t)}
			res, err := r.Check(context.Background(), tt.plugin, Env{})
			checkResult(t, res, err, Failed, tt.wantErr)
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a plugin that did not verify ran")
	}

	// The same plugin, verified, does run: the marker test above means
	// something.
	r := &Runner{Keys: []ed25519.PublicKey{otherPub, pub}, Log: testLogger(t)}
	res, err := r.Check(context.Background(), valid, Env{})
	checkResult(t, res, err, Success, "")
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the verified plugin did not run: %v", err)
	}
}

func TestTimeoutKillsGroup(t *testing.T) {
	t.Parallel()
	pub, priv := newKey(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	// sleep runs as a child of the shell, holding the output pipe: only
	// killing the whole group ends the check promptly.
	plugin := writePlugin(t, priv, "sleep 30 & echo $! >"+quote(pidFile)+"\nwait\nexit 0")
	r := &Runner{Keys: []ed25519.PublicKey{pub}, Timeout: 200 * time.Millisecond, Log: testLogger(t)}
	start := time.Now()
	res, err := r.Check(context.Background(), plugin, Env{})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("check took %v", d)
	}
	checkResult(t, res, err, Unavailable, "did not answer within 200ms")
	checkGone(t, pidFile)
}

// checkGone fails unless the process whose pid is in pidFile has ended.
func checkGone(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The orphan is reaped by init at its own pace; a zombie is dead.
	for deadline := time.Now().Add(5 * time.Second); ; {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if _, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(rest, "Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d of the plugin still runs: %s", pid, stat)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	pub, priv := newKey(t)
	plugin := writePlugin(t, priv, "sleep 30")
	r := &Runner{Keys: []ed25519.PublicKey{pub}, Log: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	res, err := r.Check(ctx, plugin, Env{})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("check took %v", d)
	}
	checkResult(t, res, err, Unavailable, "cancelled")

	// Already cancelled: nothing starts.
	res, err = r.Check(ctx, plugin, Env{})
	checkResult(t, res, err, Unavailable, "cancelled")
}

func TestLeftoverKilled(t *testing.T) {
	t.Parallel()
	pub, priv := newKey(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	plugin := writePlugin(t, priv, "sleep 30 >/dev/null 2>&1 & echo $! >"+quote(pidFile)+"\nexit 0")
	r := &Runner{Keys: []ed25519.PublicKey{pub}, Log: testLogger(t)}
	res, err := r.Check(context.Background(), plugin, Env{})
	checkResult(t, res, err, Success, "")
	checkGone(t, pidFile)
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	pub, priv := newKey(t)
	out := filepath.Join(t.TempDir(), "env")
	// The shell's own environment as it arrived, before the shell adds
	// variables such as PWD to what it passes on.
	plugin := writePlugin(t, priv, "tr '\\0' '\\n' </proc/$$/environ >"+quote(out)+"\necho \"$0\" >"+quote(out+".0"))
	r := &Runner{Keys: []ed25519.PublicKey{pub}, Log: testLogger(t)}
	for _, tt := range []struct {
		env  Env
		want []string
	}{
		{
			Env{
				IMSI:      "001010123456789",
				ICCID:     "8901260123456789012",
				IMEI:      "490154203237518",
				MCC:       "001",
				MNC:       "01",
				Interface: "wwan0",
				URL:       "https://entitlement.example/check?a=b c",
			},
			[]string{
				"OPENMIFI_ENTITLEMENT_URL=https://entitlement.example/check?a=b c",
				"OPENMIFI_ICCID=8901260123456789012",
				"OPENMIFI_IMEI=490154203237518",
				"OPENMIFI_IMSI=001010123456789",
				"OPENMIFI_INTERFACE=wwan0",
				"OPENMIFI_MCC=001",
				"OPENMIFI_MNC=01",
				"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
			},
		},
		{
			Env{MCC: "310", MNC: "260"},
			[]string{
				"OPENMIFI_MCC=310",
				"OPENMIFI_MNC=260",
				"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
			},
		},
	} {
		res, err := r.Check(context.Background(), plugin, tt.env)
		checkResult(t, res, err, Success, "")
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("plugin environment:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
	// A script is read by its interpreter through the verified copy.
	b, err := os.ReadFile(out + ".0")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "/proc/self/fd/3" {
		t.Errorf("script $0 = %q, want /proc/self/fd/3", got)
	}
}

// TestBinaryArgv0 runs this test binary as the plugin (see TestMain): an
// ELF executable runs from memory, and sees the configured path as argv[0].
func TestBinaryArgv0(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("no test executable: %v", err)
	}
	pub, priv := newKey(t)
	dir := t.TempDir()
	plugin := filepath.Join(dir, "entitlement-helper")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plugin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	sign(t, priv, plugin)
	out := filepath.Join(dir, "argv0")
	r := &Runner{Keys: []ed25519.PublicKey{pub}, Log: testLogger(t)}
	res, err := r.Check(context.Background(), plugin, Env{URL: helperPrefix + out})
	checkResult(t, res, err, Success, "")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != plugin {
		t.Errorf("plugin argv[0] = %q, want %q", b, plugin)
	}
}

// TestReplacedWhileRunning replaces the plugin on disk while it runs: the
// running check is undisturbed, and the next one refuses the replacement.
// (The window between verifying and executing that the in-memory copy
// closes cannot be hit from a test.)
func TestReplacedWhileRunning(t *testing.T) {
	t.Parallel()
	pub, priv := newKey(t)
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	plugin := writePlugin(t, priv, "touch "+quote(started)+"\nsleep 1\nexit 0")
	r := &Runner{Keys: []ed25519.PublicKey{pub}, Log: testLogger(t)}
	done := make(chan struct{})
	var res Result
	var err error
	go func() {
		defer close(done)
		res, err = r.Check(context.Background(), plugin, Env{})
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("plugin did not start")
		}
	}
	if err := os.WriteFile(plugin, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	<-done
	checkResult(t, res, err, Success, "")
	res, err = r.Check(context.Background(), plugin, Env{})
	checkResult(t, res, err, Failed, "not signed by the operator")
}

func TestOutputBounded(t *testing.T) {
	t.Parallel()
	pub, priv := newKey(t)
	plugin := writePlugin(t, priv, "i=0; while [ $i -lt 2000 ]; do echo 0123456789; i=$((i+1)); done; exit 1")
	r := &Runner{Keys: []ed25519.PublicKey{pub}, Log: testLogger(t)}
	res, err := r.Check(context.Background(), plugin, Env{})
	checkResult(t, res, err, Failed, "does not include")

	var c capped
	for range 1000 {
		c.Write([]byte("0123456789"))
	}
	if len(c.buf) != maxOutput || c.dropped != 10000-maxOutput {
		t.Errorf("kept %d, dropped %d of 10000 bytes", len(c.buf), c.dropped)
	}
}

func TestNoInterpreter(t *testing.T) {
	t.Parallel()
	pub, priv := newKey(t)
	path := filepath.Join(t.TempDir(), "plugin")
	os.WriteFile(path, []byte("#!/nonexistent/interpreter\n"), 0o755)
	sign(t, priv, path)
	r := &Runner{Keys: []ed25519.PublicKey{pub}, Log: testLogger(t)}
	res, err := r.Check(context.Background(), path, Env{})
	checkResult(t, res, err, Unavailable, "cannot start entitlement plugin")
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadKeys(t *testing.T) {
	pub1, _ := newKey(t)
	pub2, _ := newKey(t)
	pub3, _ := newKey(t)
	enc := base64.StdEncoding.EncodeToString
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.pub"), "# operator A\n\n"+enc(pub1)+"\r\n  "+enc(pub2)+"  \n#"+enc(pub3)+"\n")
	writeFile(t, filepath.Join(dir, "b.pub"), enc(pub3))
	writeFile(t, filepath.Join(dir, "c.pub.bak"), "junk")
	writeFile(t, filepath.Join(dir, "README"), "junk")
	if err := os.Mkdir(filepath.Join(dir, "d.pub"), 0o755); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []ed25519.PublicKey{pub1, pub2, pub3}
	if !slices.EqualFunc(keys, want, func(a, b ed25519.PublicKey) bool { return a.Equal(b) }) {
		t.Errorf("LoadKeys = %v, want %v", keys, want)
	}

	keys, err = LoadKeys(t.TempDir())
	if err != nil || len(keys) != 0 {
		t.Errorf("LoadKeys(empty dir) = %v, %v; want no keys, no error", keys, err)
	}

	if _, err := LoadKeys(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadKeys(missing dir) error %v, want ErrNotExist", err)
	}

	for _, tt := range []struct {
		content, wantErr string
	}{
		{"# ok\n" + enc(pub1) + "\nnot-base64!\n", "bad.pub:3: key is not base64"},
		{enc(pub1[:31]) + "\n", "bad.pub:1: key is 31 bytes, want 32"},
		{enc(append(pub1, 0)) + "\n", "bad.pub:1: key is 33 bytes"},
		{enc(pub1) + " " + enc(pub2) + "\n", "bad.pub:1:"},
	} {
		bad := t.TempDir()
		writeFile(t, filepath.Join(bad, "bad.pub"), tt.content)
		_, err := LoadKeys(bad)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("LoadKeys(%q) error %v, want %q", tt.content, err, tt.wantErr)
		}
	}
}

func TestParseSignature(t *testing.T) {
	sig := base64.StdEncoding.EncodeToString(make([]byte, 64))
	for _, s := range []string{sig, sig + "\n", sig + " \r\n\t\n"} {
		if _, err := parseSignature([]byte(s)); err != nil {
			t.Errorf("parseSignature(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "\n", " " + sig, sig[:40] + "\n" + sig[40:], sig + "\n" + sig, sig[:len(sig)-4]} {
		if _, err := parseSignature([]byte(s)); err == nil {
			t.Errorf("parseSignature(%q) succeeded", s)
		}
	}
}
