// Package qemutest boots openmifi images in QEMU and drives their serial
// console, for the boot tests: a Console runs shell commands over the
// QEMU console socket and returns their output and exit status.
package qemutest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Console is a serial console: everything the machine prints is kept,
// and Run types commands into the shell.
type Console struct {
	conn net.Conn

	mu     sync.Mutex
	buf    bytes.Buffer // all output so far
	seen   int          // Expect's read position in buf
	cond   chan struct{}
	closed error
	n      int // command counter for markers
}

// Dial connects to QEMU's console socket, retrying while QEMU creates it.
func Dial(ctx context.Context, path string) (*Console, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			c := &Console{conn: conn, cond: make(chan struct{})}
			go c.read()
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("console socket %s: %w", path, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Console) read() {
	b := make([]byte, 4096)
	for {
		n, err := c.conn.Read(b)
		c.mu.Lock()
		c.buf.Write(b[:n])
		if err != nil {
			c.closed = err
		}
		close(c.cond)
		c.cond = make(chan struct{})
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Transcript is everything the console printed.
func (c *Console) Transcript() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// Close hangs up.
func (c *Console) Close() error { return c.conn.Close() }

// Expect waits for re in the output after the previous match and returns
// its submatches; the next Expect starts after it.
func (c *Console) Expect(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	for {
		c.mu.Lock()
		out := c.buf.Bytes()[c.seen:]
		if loc := re.FindSubmatchIndex(out); loc != nil {
			var m []string
			for i := 0; i < len(loc); i += 2 {
				if loc[i] >= 0 {
					m = append(m, string(out[loc[i]:loc[i+1]]))
				} else {
					m = append(m, "")
				}
			}
			c.seen += loc[1]
			c.mu.Unlock()
			return m, nil
		}
		closed, wake := c.closed, c.cond
		c.mu.Unlock()
		if closed != nil {
			return nil, fmt.Errorf("waiting for %q: console closed: %w", re, closed)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %q: %w", re, ctx.Err())
		}
	}
}

// Send types s.
func (c *Console) Send(s string) error {
	_, err := io.WriteString(c.conn, s)
	return err
}

// Run types a shell command and waits for it to finish. The output is
// what the console printed between markers the command line prints
// around it; since the terminal echoes the line as typed, the markers are
// written so that the echo cannot match them ("__B""EGIN" prints as
// "__BEGIN"). Lines the kernel or the init print meanwhile are part of
// the output.
func (c *Console) Run(ctx context.Context, cmd string) (string, int, error) {
	c.mu.Lock()
	c.n++
	n := c.n
	c.mu.Unlock()
	line := fmt.Sprintf("echo __B\"\"EGIN%d__; %s; echo __E\"\"ND%d_$?__\n", n, cmd, n)
	if err := c.Send(line); err != nil {
		return "", 0, fmt.Errorf("console: %w", err)
	}
	re := regexp.MustCompile(fmt.Sprintf(`(?s)__BEGIN%d__\r?\n(.*?)__END%d_(\d+)__`, n, n))
	m, err := c.Expect(ctx, re)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", cmd, err)
	}
	rc, _ := strconv.Atoi(m[2])
	return string(bytes.ReplaceAll([]byte(m[1]), []byte("\r\n"), []byte("\n"))), rc, nil
}
