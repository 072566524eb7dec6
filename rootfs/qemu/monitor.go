package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// monitorTimeout bounds a monitor conversation when ctx has no deadline:
// a QEMU that stopped answering must not hang the modem simulator's hook.
const monitorTimeout = 10 * time.Second

// SetLink sets the link of QEMU's network backend netdev up or down
// through the QMP monitor socket at path (Config.Monitor): the guest sees
// its NIC's carrier come or go, as when a modem's data interface loses
// the network.
func SetLink(ctx context.Context, path, netdev string, up bool) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("qemu monitor: %w", err)
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(monitorTimeout)
	}
	conn.SetDeadline(deadline)
	if err := qmpSetLink(conn, netdev, up); err != nil {
		return fmt.Errorf("qemu monitor %s: set_link %s: %w", path, netdev, err)
	}
	return nil
}

// qmpMessage is what QMP sends: a greeting, a reply (return or error) or
// an asynchronous event.
type qmpMessage struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string `json:"event"`
}

// qmpSetLink speaks QMP on rw: the greeting, capabilities negotiation
// (QMP accepts no other command before it), then set_link.
func qmpSetLink(rw io.ReadWriter, netdev string, up bool) error {
	dec := json.NewDecoder(rw)
	var greeting qmpMessage
	if err := dec.Decode(&greeting); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if greeting.QMP == nil {
		return errors.New("not a QMP monitor (no greeting)")
	}
	if err := qmpCommand(rw, dec, "qmp_capabilities", nil); err != nil {
		return err
	}
	return qmpCommand(rw, dec, "set_link", map[string]any{"name": netdev, "up": up})
}

// qmpCommand sends one command and waits for its reply, skipping events.
func qmpCommand(w io.Writer, dec *json.Decoder, name string, args map[string]any) error {
	cmd := map[string]any{"execute": name}
	if args != nil {
		cmd["arguments"] = args
	}
	if err := json.NewEncoder(w).Encode(cmd); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for {
		var m qmpMessage
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		switch {
		case m.Error != nil:
			return fmt.Errorf("%s: %s: %s", name, m.Error.Class, m.Error.Desc)
		case m.Return != nil:
			return nil
		}
	}
}
