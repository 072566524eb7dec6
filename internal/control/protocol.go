// Package control is hotspotd's management interface: a Unix socket that
// only root can open, speaking one JSON request and one JSON reply per
// connection. hotspotctl and any later UI are its clients.
package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/openmifi/openmifi/internal/sharing"
)

// MaxRequest bounds a request: the largest real one, a "set" of every
// setting, is a few hundred bytes.
const MaxRequest = 64 << 10

// Commands.
const (
	CmdStatus  = "status"
	CmdOn      = "on"
	CmdOff     = "off"
	CmdClients = "clients"
	CmdGet     = "get"
	CmdSet     = "set"
)

// Request is what a client asks.
type Request struct {
	Cmd      string            `json:"cmd"`
	Key      string            `json:"key,omitempty"`      // get: one setting; empty for all
	Settings map[string]string `json:"settings,omitempty"` // set: key → value
}

// Response is hotspotd's answer. Error is set when the request was refused
// or failed; the other fields belong to the command.
type Response struct {
	Error    string            `json:"error,omitempty"`
	Status   *sharing.Status   `json:"status,omitempty"`
	Clients  []sharing.Client  `json:"clients,omitempty"`
	Settings map[string]string `json:"settings,omitempty"`
}

// DecodeRequest reads one request: a JSON object on one line, at most
// MaxRequest bytes. Anything else is an error for the client, never a
// reason for the daemon to stop.
func DecodeRequest(r io.Reader) (Request, error) {
	line, err := bufio.NewReader(io.LimitReader(r, MaxRequest+1)).ReadBytes('\n')
	if len(line) > MaxRequest {
		return Request{}, fmt.Errorf("request larger than %d bytes", MaxRequest)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return Request{}, fmt.Errorf("read request: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var req Request
	if err := dec.Decode(&req); err != nil {
		return Request{}, fmt.Errorf("malformed request: %w", err)
	}
	if dec.More() {
		return Request{}, errors.New("malformed request: more than one JSON value")
	}
	switch req.Cmd {
	case CmdStatus, CmdOn, CmdOff, CmdClients:
		if req.Key != "" || req.Settings != nil {
			return Request{}, fmt.Errorf("%s takes no arguments", req.Cmd)
		}
	case CmdGet:
		if req.Settings != nil {
			return Request{}, errors.New("get takes a key, not settings")
		}
	case CmdSet:
		if req.Key != "" || len(req.Settings) == 0 {
			return Request{}, errors.New("set takes at least one setting")
		}
	case "":
		return Request{}, errors.New("malformed request: no command")
	default:
		return Request{}, fmt.Errorf("unknown command %q", req.Cmd)
	}
	return req, nil
}

// encode writes v as one JSON line.
func encode(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
