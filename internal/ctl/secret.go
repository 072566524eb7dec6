package ctl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// secretKeys may be given without "=VALUE": the value is then read from
// standard input, with the terminal's echo off, so that it stays out of
// the shell's history and of ps.
var secretKeys = map[string]bool{"passphrase": true, "sim_pin": true, "console_password": true}

// maxSecret bounds a secret read from standard input.
const maxSecret = 256

// readSecret reads the value of a secret setting; tests replace it.
var readSecret = func(key string) (string, error) { return readSecretFrom(os.Stdin, os.Stderr, key) }

// readSecretFrom asks for key's value on a terminal with echo off, or
// reads one line from a pipe (no prompt).
func readSecretFrom(in *os.File, prompt io.Writer, key string) (string, error) {
	fd := int(in.Fd())
	if t, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
		quiet := *t
		quiet.Lflag &^= unix.ECHO
		quiet.Lflag |= unix.ICANON
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
			return "", fmt.Errorf("%s: terminal echo off: %w", key, err)
		}
		defer unix.IoctlSetTermios(fd, unix.TCSETS, t)
		fmt.Fprintf(prompt, "%s: ", key)
		defer fmt.Fprintln(prompt)
	}
	return readLine(in, key)
}

// readLine reads one line of at most maxSecret bytes, without its end.
func readLine(in io.Reader, key string) (string, error) {
	line, err := bufio.NewReaderSize(in, maxSecret+2).ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", fmt.Errorf("%s: longer than %d bytes", key, maxSecret)
	case err != nil && !(errors.Is(err, io.EOF) && len(line) > 0):
		return "", fmt.Errorf("%s: no value on standard input", key)
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}
