package at

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tarm/serial"
)

// serialReadTimeout bounds each read of a serial port. The engine stops a
// session by closing the port, and a blocking tty read does not notice a
// close: it has to come back by itself. Bytes are delivered as soon as they
// arrive, so this costs no latency, only a wake-up per period when idle.
const serialReadTimeout = 500 * time.Millisecond

// Serial opens device (e.g. /dev/ttyUSB2) at baud, 8N1, raw, with
// github.com/tarm/serial.
func Serial(device string, baud int) OpenFunc {
	return func() (Port, error) {
		p, err := serial.OpenPort(&serial.Config{Name: device, Baud: baud, ReadTimeout: serialReadTimeout})
		if err != nil {
			return nil, fmt.Errorf("open %s at %d baud: %w", device, baud, err)
		}
		return &serialPort{p: p, device: device}, nil
	}
}

type serialPort struct {
	p      *serial.Port
	device string
}

// Read returns (0, nil) when the read timeout passes without data.
//
// tarm/serial reports that timeout as io.EOF, and a tty that hung up (the
// USB modem reset and its device went away) gives io.EOF too, but at once
// and for good. A quick EOF, or a device node that is gone, is a lost
// port; a slow one is only the timeout.
func (s *serialPort) Read(b []byte) (int, error) {
	start := time.Now()
	n, err := s.p.Read(b)
	if n > 0 || !errors.Is(err, io.EOF) {
		return n, err
	}
	if time.Since(start) < serialReadTimeout/2 {
		return 0, fmt.Errorf("%s: hung up", s.device)
	}
	if _, err := os.Stat(s.device); err != nil {
		return 0, fmt.Errorf("%s: %w", s.device, err)
	}
	return 0, nil
}

func (s *serialPort) Write(b []byte) (int, error) { return s.p.Write(b) }

func (s *serialPort) Close() error { return s.p.Close() }
