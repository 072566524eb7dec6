package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/openmifi/openmifi/internal/entitlement"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// TestEndToEnd builds this plugin, signs it and runs it the way hotspotd
// does, which also shows that an ELF binary runs from memory.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the plugin with: %v", err)
	}
	dir := t.TempDir()
	plugin := filepath.Join(dir, "entitlement-http")
	build := exec.Command(goTool, "build", "-o", plugin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	code, err := os.ReadFile(plugin)
	if err != nil {
		t.Fatal(err)
	}
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, code)) + "\n"
	if err := os.WriteFile(plugin+".sig", []byte(sig), 0o644); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var imsi string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		imsi = r.PostFormValue("imsi")
		mu.Unlock()
		if r.URL.Path == "/no" {
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	defer srv.Close()

	r := &entitlement.Runner{
		Keys: []ed25519.PublicKey{pub},
		Log:  slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, tt := range []struct {
		path  string
		iface string
		want  entitlement.Result
	}{
		{"/yes", "", entitlement.Success},
		{"/no", "", entitlement.Failed},
		{"/yes", "lo", entitlement.Success},
		{"/yes", "no-such-if0", entitlement.Unavailable},
	} {
		mu.Lock()
		imsi = ""
		mu.Unlock()
		env := entitlement.Env{IMSI: "001010123456789", MCC: "001", MNC: "01", Interface: tt.iface, URL: srv.URL + tt.path}
		res, err := r.Check(context.Background(), plugin, env)
		if tt.iface == "lo" && res == entitlement.Unavailable {
			t.Logf("binding to lo not allowed here: %v", err)
			continue
		}
		if res != tt.want {
			t.Errorf("%s via %q: %v (%v), want %v", tt.path, tt.iface, res, err, tt.want)
		}
		mu.Lock()
		got := imsi
		mu.Unlock()
		if tt.want != entitlement.Unavailable && got != env.IMSI {
			t.Errorf("%s: server got imsi %q, want %q", tt.path, got, env.IMSI)
		}
	}
}
