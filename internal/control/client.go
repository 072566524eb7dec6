package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/openmifi/openmifi/internal/sharing"
)

// DefaultSocket is where hotspotd listens on the device.
const DefaultSocket = "/run/hotspotd.sock"

// ErrUnreachable wraps failures to talk to hotspotd at all, as opposed to
// hotspotd refusing a request.
var ErrUnreachable = errors.New("cannot reach hotspotd")

// Client talks to hotspotd's control socket.
type Client struct {
	Socket string
}

// Do sends one request and returns the reply. A refusal by hotspotd is
// returned as an error holding its message; a transport failure wraps
// ErrUnreachable.
func (c *Client) Do(ctx context.Context, req Request) (Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		return Response{}, fmt.Errorf("%w at %s: %v", ErrUnreachable, c.Socket, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := encode(conn, req); err != nil {
		return Response{}, fmt.Errorf("%w: send: %v", ErrUnreachable, err)
	}
	var resp Response
	if err := json.NewDecoder(io.LimitReader(conn, 16<<20)).Decode(&resp); err != nil {
		return Response{}, fmt.Errorf("%w: read reply: %v", ErrUnreachable, err)
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

// Status asks for the sharing status.
func (c *Client) Status(ctx context.Context) (sharing.Status, error) {
	resp, err := c.Do(ctx, Request{Cmd: CmdStatus})
	if err != nil {
		return sharing.Status{}, err
	}
	if resp.Status == nil {
		return sharing.Status{}, fmt.Errorf("%w: reply without status", ErrUnreachable)
	}
	return *resp.Status, nil
}
