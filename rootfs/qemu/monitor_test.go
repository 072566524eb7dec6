package qemu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// fakeQMP serves one QMP conversation on ln: it records the commands and
// answers set_link with reply.
func fakeQMP(t *testing.T, ln net.Listener, reply string) <-chan []string {
	got := make(chan []string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		conn.Write([]byte(`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}` + "\r\n"))
		var cmds []string
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			var cmd struct {
				Execute   string          `json:"execute"`
				Arguments json.RawMessage `json:"arguments"`
			}
			if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
				conn.Write([]byte(`{"error": {"class": "GenericError", "desc": "JSON parse error"}}` + "\r\n"))
				continue
			}
			cmds = append(cmds, cmd.Execute+" "+string(cmd.Arguments))
			switch {
			case cmd.Execute == "qmp_capabilities":
				conn.Write([]byte(`{"return": {}}` + "\r\n"))
			case len(cmds) > 1 && cmds[0] != "qmp_capabilities ":
				conn.Write([]byte(`{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}` + "\r\n"))
			default:
				// An event may come before the reply.
				conn.Write([]byte(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "NIC_RX_FILTER_CHANGED", "data": {}}` + "\r\n"))
				conn.Write([]byte(reply + "\r\n"))
				got <- cmds
				return
			}
		}
		got <- cmds
	}()
	return got
}

func TestSetLink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qmp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	got := fakeQMP(t, ln, `{"return": {}}`)
	if err := SetLink(context.Background(), path, "uplink", false); err != nil {
		t.Fatalf("SetLink: %v", err)
	}
	cmds := <-got
	want := []string{"qmp_capabilities ", `set_link {"name":"uplink","up":false}`}
	if strings.Join(cmds, "|") != strings.Join(want, "|") {
		t.Errorf("commands %q, want %q", cmds, want)
	}

	got = fakeQMP(t, ln, `{"error": {"class": "DeviceNotFound", "desc": "Device 'nope' not found"}}`)
	err = SetLink(context.Background(), path, "nope", true)
	if err == nil || !strings.Contains(err.Error(), "Device 'nope' not found") {
		t.Errorf("SetLink of an unknown netdev: %v", err)
	}
	<-got

	if err := SetLink(context.Background(), filepath.Join(t.TempDir(), "none.sock"), "uplink", true); err == nil {
		t.Error("SetLink without a monitor: no error")
	}
}

func TestSetLinkNotQMP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		b.Write([]byte("QEMU 7.2.0 monitor - type 'help' for more information\r\n(qemu) "))
		b.Close()
	}()
	if err := qmpSetLink(a, "uplink", true); err == nil {
		t.Error("a human monitor taken for QMP")
	}
}

// FuzzQMPSetLink feeds qmpSetLink whatever a monitor might send: it must
// end (EOF ends every conversation) with an answer or an error, and never
// count a reply without "return" as success.
func FuzzQMPSetLink(f *testing.F) {
	f.Add([]byte(`{"QMP": {"version": {}}}` + "\n" + `{"return": {}}` + "\n" + `{"return": {}}` + "\n"))
	f.Add([]byte(`{"QMP": {}}` + "\n" + `{"return": {}}` + "\n" + `{"event": "X"}{"error": {"class": "C", "desc": "d"}}`))
	f.Add([]byte("QEMU 7.2.0 monitor - type 'help' for more information\r\n(qemu) "))
	f.Add([]byte(`{"QMP": null}{"return": null}{"return": 1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(data), io.Discard}
		if err := qmpSetLink(rw, "uplink", false); err == nil && !bytes.Contains(data, []byte(`"return"`)) {
			t.Errorf("success without a return in %q", data)
		}
	})
}
