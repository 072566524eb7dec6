// Command entitlement-http is the entitlement plugin that asks the
// operator's HTTP(S) endpoint whether this subscription may share its
// connection. hotspotd runs it through internal/entitlement, which sets
// its environment; its exit status is the answer.
//
// It POSTs the form fields imsi, iccid, imei, mcc and mnc (empty when not
// known) to OPENMIFI_ENTITLEMENT_URL, in the body so that the identities
// stay out of server access logs. Status 200 means entitled (exit 0), 403
// means not entitled (exit 1); any other status, a transport error, a
// missing or invalid URL, or no answer within 20 seconds means the
// question could not be answered (exit 2). Redirects are followed, except
// from https to http.
//
// When OPENMIFI_INTERFACE is set, every socket, DNS included, is bound to
// that interface, so the check goes out over the connection that will be
// shared rather than whichever one holds the default route.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Exit statuses, as internal/entitlement reads them.
const (
	exitSuccess     = 0
	exitFailed      = 1
	exitUnavailable = 2
)

// timeout stays below the runner's 30 s, so that a slow server gives a
// clean "unavailable" from here rather than a kill.
const timeout = 20 * time.Second

type config struct {
	url     string
	iface   string
	form    url.Values
	timeout time.Duration
}

func configFromEnv(getenv func(string) string) config {
	form := url.Values{}
	for _, f := range []string{"imsi", "iccid", "imei", "mcc", "mnc"} {
		form.Set(f, getenv("OPENMIFI_"+strings.ToUpper(f)))
	}
	return config{
		url:     getenv("OPENMIFI_ENTITLEMENT_URL"),
		iface:   getenv("OPENMIFI_INTERFACE"),
		form:    form,
		timeout: timeout,
	}
}

// bindControl returns a net.Dialer.Control that binds sockets to iface.
func bindControl(iface string) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, iface)
		}); cerr != nil {
			return cerr
		}
		if err != nil {
			return fmt.Errorf("bind to interface %s: %w", iface, err)
		}
		return nil
	}
}

// newClient returns a client whose connections, and name lookups, leave
// through iface, or through the default route if iface is "".
func newClient(iface string) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if iface != "" {
		dialer.Control = bindControl(iface)
		// The resolver's own sockets need binding too, or the lookup
		// fails on a connection that is not the default route.
		dns := &net.Dialer{Control: bindControl(iface)}
		dialer.Resolver = &net.Resolver{PreferGo: true, Dial: dns.DialContext}
	}
	return &http.Client{
		Transport: &http.Transport{
			// The environment is the runner's fixed set, which holds no
			// proxy, and a proxy would defeat the interface binding.
			Proxy:               nil,
			DialContext:         dialer.DialContext,
			ForceAttemptHTTP2:   true,
			TLSHandshakeTimeout: 10 * time.Second,
		},
	}
}

// noDowngrade stops a redirect chain that leaves https, which would let
// anyone on the path answer in the operator's name.
func noDowngrade(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if prev := via[len(via)-1].URL; prev.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("refusing redirect from %s to %s", prev.Redacted(), req.URL.Redacted())
	}
	return nil
}

// check asks the endpoint in cfg and returns the exit status, with an
// error explaining any status other than exitSuccess.
func check(ctx context.Context, client *http.Client, cfg config) (int, error) {
	if cfg.url == "" {
		return exitUnavailable, errors.New("OPENMIFI_ENTITLEMENT_URL is not set")
	}
	u, err := url.Parse(cfg.url)
	if err != nil {
		return exitUnavailable, fmt.Errorf("invalid OPENMIFI_ENTITLEMENT_URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return exitUnavailable, fmt.Errorf("invalid OPENMIFI_ENTITLEMENT_URL %q: want an http or https URL", u.Redacted())
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(cfg.form.Encode()))
	if err != nil {
		return exitUnavailable, fmt.Errorf("entitlement request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "openmifi-entitlement-http/1")

	// The redirect policy holds whatever client the caller passes.
	c := *client
	c.CheckRedirect = noDowngrade
	resp, err := c.Do(req)
	if err != nil {
		return exitUnavailable, fmt.Errorf("entitlement request: %w", err)
	}
	defer resp.Body.Close()
	// Drain a little so the connection closes cleanly; the body means
	// nothing to us.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusOK:
		return exitSuccess, nil
	case http.StatusForbidden:
		return exitFailed, fmt.Errorf("operator refused entitlement: %s", resp.Status)
	}
	return exitUnavailable, fmt.Errorf("entitlement server answered %s", resp.Status)
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := configFromEnv(os.Getenv)
	code, err := check(context.Background(), newClient(cfg.iface), cfg)
	if err != nil {
		log.Error("entitlement check", "exit", code, "err", err)
	} else {
		log.Info("entitled")
	}
	os.Exit(code)
}
