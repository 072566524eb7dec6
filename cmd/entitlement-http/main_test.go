package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

func testConfig(url string) config {
	cfg := configFromEnv(func(name string) string {
		return map[string]string{
			"OPENMIFI_IMSI":  "001010123456789",
			"OPENMIFI_ICCID": "8901260123456789012",
			"OPENMIFI_IMEI":  "490154203237518",
			"OPENMIFI_MCC":   "001",
			"OPENMIFI_MNC":   "01",
		}[name]
	})
	cfg.url = url
	return cfg
}

func checkCode(t *testing.T, code int, err error, want int, wantErr string) {
	t.Helper()
	if code != want {
		t.Errorf("exit %d (%v), want %d", code, err, want)
	}
	switch {
	case want == exitSuccess && err != nil:
		t.Errorf("error %v with exit 0", err)
	case want != exitSuccess && err == nil:
		t.Errorf("no error with exit %d", code)
	case err != nil && !strings.Contains(err.Error(), wantErr):
		t.Errorf("error %q, want it to mention %q", err, wantErr)
	}
}

func TestStatus(t *testing.T) {
	for _, tt := range []struct {
		status  int
		want    int
		wantErr string
	}{
		{http.StatusOK, exitSuccess, ""},
		{http.StatusForbidden, exitFailed, "403 Forbidden"},
		{http.StatusInternalServerError, exitUnavailable, "500 Internal Server Error"},
		{http.StatusNoContent, exitUnavailable, "204 No Content"},
		{http.StatusNotFound, exitUnavailable, "404 Not Found"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tt.status)
		}))
		code, err := check(context.Background(), srv.Client(), testConfig(srv.URL))
		checkCode(t, code, err, tt.want, tt.wantErr)
		srv.Close()
	}
}

func TestForm(t *testing.T) {
	var method, ctype, query string
	var form map[string][]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, ctype, query = r.Method, r.Header.Get("Content-Type"), r.URL.RawQuery
		if err := r.ParseForm(); err != nil {
			t.Errorf("ParseForm: %v", err)
		}
		form = r.PostForm
	}))
	defer srv.Close()
	code, err := check(context.Background(), srv.Client(), testConfig(srv.URL+"/check?operator=example"))
	checkCode(t, code, err, exitSuccess, "")
	if method != http.MethodPost || ctype != "application/x-www-form-urlencoded" {
		t.Errorf("request %s with Content-Type %q, want a form POST", method, ctype)
	}
	if query != "operator=example" {
		t.Errorf("query %q, want the URL's own only", query)
	}
	want := map[string]string{
		"imsi":  "001010123456789",
		"iccid": "8901260123456789012",
		"imei":  "490154203237518",
		"mcc":   "001",
		"mnc":   "01",
	}
	if len(form) != len(want) {
		t.Errorf("form %v, want %v", form, want)
	}
	for k, v := range want {
		if got := form[k]; len(got) != 1 || got[0] != v {
			t.Errorf("form field %s = %q, want %q", k, got, v)
		}
	}
}

func TestRedirect(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/new", http.StatusFound)
	})
	mux.HandleFunc("/new", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	code, err := check(context.Background(), srv.Client(), testConfig(srv.URL+"/old"))
	checkCode(t, code, err, exitSuccess, "")
}

func TestHTTPS(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/no", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/downgrade", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL, http.StatusFound)
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()

	for _, tt := range []struct {
		path    string
		want    int
		wantErr string
	}{
		{"/ok", exitSuccess, ""},
		{"/no", exitFailed, "403"},
		{"/moved", exitSuccess, ""},
		{"/downgrade", exitUnavailable, "refusing redirect from https"},
	} {
		code, err := check(context.Background(), srv.Client(), testConfig(srv.URL+tt.path))
		checkCode(t, code, err, tt.want, tt.wantErr)
	}

	// Without the test server's certificate, the server is not trusted.
	code, err := check(context.Background(), newClient(""), testConfig(srv.URL+"/ok"))
	checkCode(t, code, err, exitUnavailable, "certificate")
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	cfg := testConfig(srv.URL)
	cfg.timeout = 200 * time.Millisecond
	start := time.Now()
	code, err := check(context.Background(), srv.Client(), cfg)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("check took %v", d)
	}
	checkCode(t, code, err, exitUnavailable, "deadline exceeded")
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code, err := check(context.Background(), newClient(""), testConfig("http://"+addr+"/"))
	checkCode(t, code, err, exitUnavailable, "refused")
}

func TestBadURL(t *testing.T) {
	for _, tt := range []struct{ url, wantErr string }{
		{"", "not set"},
		{"ftp://example.com/", "want an http or https URL"},
		{"example.com/check", "want an http or https URL"},
		{"http://", "want an http or https URL"},
		{"http://[::1", "invalid OPENMIFI_ENTITLEMENT_URL"},
		{"https://user:secret@/x", "xxxxx"},
	} {
		code, err := check(context.Background(), newClient(""), testConfig(tt.url))
		checkCode(t, code, err, exitUnavailable, tt.wantErr)
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestBindInterface(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()

	code, err := check(context.Background(), newClient("no-such-if0"), testConfig(srv.URL))
	checkCode(t, code, err, exitUnavailable, "bind to interface no-such-if0")

	code, err = check(context.Background(), newClient("lo"), testConfig(srv.URL))
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("binding to an interface is not allowed here: %v", err)
	}
	checkCode(t, code, err, exitSuccess, "")
}
