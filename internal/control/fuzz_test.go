package control

import (
	"bytes"
	"testing"
)

// FuzzDecodeRequest: whatever arrives on the socket gives a request or an
// error, never a panic, and an accepted request survives a round trip.
func FuzzDecodeRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := encode(&buf, req); err != nil {
			t.Fatalf("encode accepted request: %v", err)
		}
		again, err := DecodeRequest(&buf)
		if err != nil {
			t.Fatalf("re-decode %q: %v", buf.Bytes(), err)
		}
		if again.Cmd != req.Cmd || again.Key != req.Key || len(again.Settings) != len(req.Settings) {
			t.Fatalf("round trip changed %+v into %+v", req, again)
		}
	})
}
