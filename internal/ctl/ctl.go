// Package ctl is hotspotctl, the serial-console management tool: it turns
// command lines into control-socket requests and replies into text for a
// person (or JSON for a script).
package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/openmifi/openmifi/internal/control"
	"github.com/openmifi/openmifi/internal/sharing"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitRefused     = 1 // hotspotd refused or the request failed
	ExitUsage       = 2
	ExitUnreachable = 3 // hotspotd is not running or the socket is not ours
)

const usage = `usage: hotspotctl [-socket PATH] [-json] COMMAND

commands:
  status              sharing state, uplink, clients and traffic
  on                  turn internet sharing on (waits until on or off; -nowait to return at once)
  off                 turn internet sharing off
  clients             connected clients with address, host name and traffic
  get [KEY]           show the user settings, or one of them
  set KEY=VALUE...    change user settings (keys: ssid, passphrase, hidden, band,
                      channel, country, max_users, sim_pin, console_password;
                      console_password= with nothing after it clears it);
                      passphrase, sim_pin and console_password without =VALUE
                      are read from standard input, not echoed on a terminal

exit status: 0 done, 1 refused or failed, 2 usage, 3 hotspotd not reachable
`

// Main runs hotspotctl with args (without the program name) and returns the
// exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hotspotctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	socket := fs.String("socket", control.DefaultSocket, "hotspotd control socket")
	asJSON := fs.Bool("json", false, "print replies as JSON")
	noWait := fs.Bool("nowait", false, "on/off: return once hotspotd accepted the request")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	// Flags may also follow the command: "hotspotctl status --json".
	rest := fs.Args()
	var words []string
	for len(rest) > 0 {
		words = append(words, rest[0])
		if err := fs.Parse(rest[1:]); err != nil {
			return ExitUsage
		}
		rest = fs.Args()
	}
	if len(words) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	req, err := request(words)
	if err != nil {
		fmt.Fprintf(stderr, "hotspotctl: %v\n", err)
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c := &control.Client{Socket: *socket}
	resp, err := c.Do(ctx, req)
	if err == nil && (req.Cmd == control.CmdOn || req.Cmd == control.CmdOff) && !*noWait && resp.Status != nil {
		var st sharing.Status
		st, err = settle(ctx, c, *resp.Status)
		resp.Status = &st
	}
	if err != nil {
		fmt.Fprintf(stderr, "hotspotctl: %v\n", err)
		if errors.Is(err, control.ErrUnreachable) || errors.Is(err, context.DeadlineExceeded) {
			return ExitUnreachable
		}
		return ExitRefused
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		var v any = resp
		switch {
		case resp.Status != nil:
			v = resp.Status
		case req.Cmd == control.CmdClients:
			v = resp.Clients
		case resp.Settings != nil:
			v = resp.Settings
		}
		enc.Encode(v)
	} else {
		printHuman(stdout, req, resp)
	}
	if req.Cmd == control.CmdOn && resp.Status != nil && !*noWait && resp.Status.State != sharing.On {
		return ExitRefused
	}
	return ExitOK
}

func request(words []string) (control.Request, error) {
	cmd, args := words[0], words[1:]
	switch cmd {
	case control.CmdStatus, control.CmdOn, control.CmdOff, control.CmdClients:
		if len(args) > 0 {
			return control.Request{}, fmt.Errorf("%s takes no arguments", cmd)
		}
		return control.Request{Cmd: cmd}, nil
	case control.CmdGet:
		if len(args) > 1 {
			return control.Request{}, errors.New("get takes at most one key")
		}
		req := control.Request{Cmd: cmd}
		if len(args) == 1 {
			req.Key = args[0]
		}
		return req, nil
	case control.CmdSet:
		if len(args) == 0 {
			return control.Request{}, errors.New("set needs KEY=VALUE")
		}
		settings := map[string]string{}
		for _, a := range args {
			k, v, ok := strings.Cut(a, "=")
			if !ok && secretKeys[k] {
				var err error
				if v, err = readSecret(k); err != nil {
					return control.Request{}, err
				}
				ok = true
			}
			if !ok || k == "" {
				return control.Request{}, fmt.Errorf("%q is not KEY=VALUE", a)
			}
			if _, dup := settings[k]; dup {
				return control.Request{}, fmt.Errorf("%s given twice", k)
			}
			settings[k] = v
		}
		return control.Request{Cmd: cmd, Settings: settings}, nil
	}
	return control.Request{}, fmt.Errorf("unknown command %q", cmd)
}

// settle waits until sharing has reached on or off, so that "hotspotctl on"
// tells the user how it went, entitlement included.
func settle(ctx context.Context, c *control.Client, st sharing.Status) (sharing.Status, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		switch st.State {
		case sharing.On, sharing.Off, sharing.Unavailable:
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("still %s: %w", st.State, ctx.Err())
		case <-tick.C:
		}
		var err error
		if st, err = c.Status(ctx); err != nil {
			return st, err
		}
	}
}

func printHuman(w io.Writer, req control.Request, resp control.Response) {
	switch {
	case req.Cmd == control.CmdClients:
		printClients(w, resp.Clients)
	case resp.Status != nil:
		fmt.Fprint(w, resp.Status.String())
		if req.Cmd == control.CmdStatus && len(resp.Status.Clients) > 0 {
			fmt.Fprintln(w)
			printClients(w, resp.Status.Clients)
		}
	case resp.Settings != nil:
		if req.Cmd == control.CmdGet && req.Key != "" {
			fmt.Fprintln(w, resp.Settings[req.Key])
			return
		}
		keys := make([]string, 0, len(resp.Settings))
		for k := range resp.Settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\n", k, resp.Settings[k])
		}
		tw.Flush()
	}
}

func printClients(w io.Writer, clients []sharing.Client) {
	if len(clients) == 0 {
		fmt.Fprintln(w, "no clients")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAC\tADDRESS\tHOST\tSIGNAL\tUP\tDOWN")
	for _, c := range clients {
		addr := "-"
		if c.Addr.IsValid() {
			addr = c.Addr.String()
		}
		host := c.Hostname
		if host == "" {
			host = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d dBm\t%d\t%d\n", c.MAC, addr, host, c.SignalDBm, c.UpBytes, c.DownBytes)
	}
	tw.Flush()
}
