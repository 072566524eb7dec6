// Command fwimage builds, verifies and unpacks openmifi firmware images; the
// format is described in package firmware.
//
//	fwimage build -board B -kernel FILE -rootfs FILE -key PRIVFILE -version V [-time T] -out IMAGE
//	fwimage verify -keys DIR|FILE -board B IMAGE
//	fwimage extract [-keys DIR|FILE -board B] -part NAME IMAGE OUT
//	fwimage info IMAGE
//
// build takes the build time from -time (Unix seconds or RFC 3339) or else
// from SOURCE_DATE_EPOCH, and refuses to guess one from the clock: the same
// inputs always give the same image. PRIVFILE is a private key as
// opsign keygen writes it; build checks the image it made before writing
// it and prints the size of every part.
//
// verify and extract -keys take a key file in the device's format or a
// directory of *.pub files. extract without -keys checks the part against
// the image's manifest but not the manifest's signature, and says so.
// info shows what an image claims without checking its signature.
//
// Exit status: 0 success, 1 failure (for verify: the image is rejected; the
// reason is on stderr), 2 a usage error.
package main

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/openmifi/openmifi/firmware"
	"github.com/openmifi/openmifi/internal/atomicfile"
)

const usage = `usage:
	fwimage build -board B -kernel FILE -rootfs FILE -key PRIVFILE -version V [-time T] -out IMAGE
	fwimage verify -keys DIR|FILE -board B IMAGE
	fwimage extract [-keys DIR|FILE -board B] -part NAME IMAGE OUT
	fwimage info IMAGE
`

// errUsage makes run print the usage and exit 2.
var errUsage = errors.New("usage")

// env is what the commands need from outside their arguments, replaceable
// in tests.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

func build(e env, args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	board := fs.String("board", "", "board `name`")
	kernel := fs.String("kernel", "", "kernel `file`")
	rootfs := fs.String("rootfs", "", "root filesystem `file`")
	keyPath := fs.String("key", "", "private signing key `file`")
	version := fs.String("version", "", "release `version`")
	timeFlag := fs.String("time", "", "build `time`, Unix seconds or RFC 3339 (default $SOURCE_DATE_EPOCH)")
	out := fs.String("out", "", "image `file` to write")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return errUsage
	}
	if *board == "" || *kernel == "" || *rootfs == "" || *keyPath == "" || *version == "" || *out == "" {
		return fmt.Errorf("%w: build needs -board, -kernel, -rootfs, -key, -version and -out", errUsage)
	}
	when, err := buildTime(*timeFlag, e.getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	priv, err := firmware.ReadPrivateKey(*keyPath)
	if err != nil {
		return err
	}
	var parts []firmware.Source
	for _, p := range []struct{ name, path string }{{"kernel", *kernel}, {"rootfs", *rootfs}} {
		f, size, err := openFile(p.path)
		if err != nil {
			return err
		}
		defer f.Close()
		parts = append(parts, firmware.Source{Name: p.name, R: f, Size: size})
	}
	// The image is built in memory: a few tens of megabytes on the build
	// machine, and atomicfile never leaves a half image at the path.
	var img bytes.Buffer
	meta := firmware.Meta{Board: *board, Version: *version, BuildTime: when}
	m, err := firmware.Build(&img, meta, parts, priv)
	if err != nil {
		return err
	}
	pub := priv.Public().(ed25519.PublicKey)
	if _, err := firmware.Verify(bytes.NewReader(img.Bytes()), int64(img.Len()), []ed25519.PublicKey{pub}, *board); err != nil {
		return fmt.Errorf("the image just built does not verify: %w", err)
	}
	if err := atomicfile.Write(*out, img.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: board %s, version %s, built %s\n", *out, m.Board, m.Version, m.BuildTime.Format(time.RFC3339))
	report(e.stdout, m, false)
	return nil
}

// buildTime picks the build time from the flag, else from
// SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/).
func buildTime(flagValue, epoch string) (time.Time, error) {
	if flagValue != "" {
		if t, err := parseTime(flagValue); err == nil {
			return t, nil
		}
		return time.Time{}, fmt.Errorf("-time %q is neither Unix seconds nor RFC 3339", flagValue)
	}
	if epoch != "" {
		t, err := parseUnix(epoch)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not Unix seconds", epoch)
		}
		return t, nil
	}
	return time.Time{}, errors.New("no build time: set SOURCE_DATE_EPOCH or -time (the clock would make every build different)")
}

func parseTime(s string) (time.Time, error) {
	if t, err := parseUnix(s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

func parseUnix(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(n, 0).UTC(), nil
}

func verify(e env, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	keysPath := fs.String("keys", "", "public key `file or directory`")
	board := fs.String("board", "", "board `name` the image must be for")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 || *keysPath == "" || *board == "" {
		return errUsage
	}
	path := fs.Arg(0)
	m, f, err := open(path, *keysPath, *board)
	if err != nil {
		return err
	}
	f.Close()
	fmt.Fprintf(e.stdout, "%s: ok: board %s, version %s, built %s\n", path, m.Board, m.Version, m.BuildTime.Format(time.RFC3339))
	return nil
}

func extract(e env, args []string) error {
	fs := flag.NewFlagSet("extract", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	keysPath := fs.String("keys", "", "public key `file or directory`")
	board := fs.String("board", "", "board `name` the image must be for (with -keys)")
	part := fs.String("part", "", "`name` of the part to extract")
	if err := fs.Parse(args); err != nil || fs.NArg() != 2 || *part == "" || (*keysPath == "") != (*board == "") {
		return errUsage
	}
	path, out := fs.Arg(0), fs.Arg(1)
	if *keysPath == "" {
		fmt.Fprintf(e.stderr, "fwimage: warning: %s: signature not checked (no -keys)\n", path)
	}
	m, f, err := open(path, *keysPath, *board)
	if err != nil {
		return err
	}
	defer f.Close()
	var buf bytes.Buffer
	if err := firmware.Extract(&buf, f, m, *part); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.Write(out, buf.Bytes(), 0o644)
}

func info(e env, args []string) error {
	if len(args) != 1 {
		return errUsage
	}
	m, f, err := open(args[0], "", "")
	if err != nil {
		return err
	}
	f.Close()
	fmt.Fprintf(e.stdout, "%s: format %d, board %s, version %s, built %s, signature not checked\n",
		args[0], firmware.FormatVersion, m.Board, m.Version, m.BuildTime.Format(time.RFC3339))
	report(e.stdout, m, true)
	return nil
}

// open opens the image at path and reads its manifest: verified against the
// keys at keysPath for board, or, with no keysPath, only inspected.
func open(path, keysPath, board string) (*firmware.Manifest, *os.File, error) {
	f, size, err := openFile(path)
	if err != nil {
		return nil, nil, err
	}
	var m *firmware.Manifest
	if keysPath == "" {
		m, err = firmware.Inspect(f, size)
	} else {
		var keys []ed25519.PublicKey
		keys, err = firmware.LoadPublicKeys(keysPath)
		if err == nil {
			m, err = firmware.Verify(f, size, keys, board)
		}
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, f, nil
}

// openFile opens a regular file and returns its size, which the image
// code checks every length against.
func openFile(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", path)
	}
	return f, fi.Size(), nil
}

// report prints the size of every region of the image, with the offsets in
// the file (for dd) rather than those in the manifest.
func report(w io.Writer, m *firmware.Manifest, hashes bool) {
	const head = "header+manifest+sig"
	width := len(head)
	for _, p := range m.Parts {
		width = max(width, len(p.Name))
	}
	line := func(name, off string, n int64, hash string) {
		fmt.Fprintf(w, "  %-*s %10s %10d %10s%s\n", width, name, off, n, human(n), hash)
	}
	fmt.Fprintf(w, "  %-*s %10s %10s %10s\n", width, "part", "offset", "bytes", "size")
	line(head, "0", m.DataOffset, "")
	for _, p := range m.Parts {
		hash := ""
		if hashes {
			hash = "  sha256 " + p.SHA256
		}
		line(p.Name, strconv.FormatInt(m.DataOffset+p.Offset, 10), p.Size, hash)
	}
	line("total", "", m.ImageSize(), "")
}

func human(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

// run carries out one command line and returns the exit status.
func run(e env, args []string) int {
	var err error
	if len(args) == 0 {
		err = errUsage
	} else {
		switch args[0] {
		case "build":
			err = build(e, args[1:])
		case "verify":
			err = verify(e, args[1:])
		case "extract":
			err = extract(e, args[1:])
		case "info":
			err = info(e, args[1:])
		default:
			err = errUsage
		}
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		if err != errUsage {
			fmt.Fprintf(e.stderr, "fwimage: %v\n", err)
		}
		fmt.Fprint(e.stderr, usage)
		return 2
	default:
		fmt.Fprintf(e.stderr, "fwimage: %v\n", err)
		return 1
	}
}

func main() {
	os.Exit(run(env{getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}
