// Package entitlement runs the operator's entitlement plugin and maps its
// answer to ENTITLEMENT_SUCCESS, ENTITLEMENT_FAILED or
// ENTITLEMENT_UNAVAILABLE.
//
// The plugin is an executable (an ELF binary or a "#!" script) named by the
// provisioning setting HotSpot/EntitlementDll. Its exit status is its
// answer: 0 success, 1 failed, 2 unavailable. Any other status, death by a
// signal, a timeout or a failure to start counts as unavailable: the device
// could not find out, which is not the same as being refused.
//
// A plugin runs only if it is signed by an operator key built into the
// image. An unsigned plugin, a bad signature or no keys at all make the
// check fail (ENTITLEMENT_FAILED) without running anything.
//
// Operator keys live in files named *.pub in one directory (see LoadKeys).
// A key file is text with one key per line: the standard base64 encoding of
// a 32-byte ed25519 public key. Blank lines and lines starting with "#" are
// ignored; a malformed line is an error naming the file and line:
//
//	# Example Operator, image signing key 2025
//	j+7pWZUnyqz3mp7WAlF1IvI6ZylR5hcXKUCFh4jz5nM=
//
// The signature of plugin P is the file "P.sig": the standard base64
// encoding of the 64-byte ed25519 signature over P's exact bytes, on one
// line, optionally followed by white space or a newline. cmd/opsign writes
// both formats.
//
// The bytes that were verified are the bytes that run: Check reads the
// plugin once, verifies that copy, and executes it from an anonymous
// in-memory file, so replacing the file at the path during a check has no
// effect. The plugin gets that file as descriptor 3 and is started as
// /proc/self/fd/3, with argv[0] still the configured path; a script's
// interpreter reads the script through /proc/self/fd/3 too, so a script
// sees that in $0. Without memfd_create or /proc nothing runs and the check
// is unavailable.
//
// The plugin starts in "/" with no stdin and only these environment
// variables, each set only when its value is known:
//
//	PATH=/usr/sbin:/usr/bin:/sbin:/bin   (always)
//	OPENMIFI_IMSI, OPENMIFI_ICCID, OPENMIFI_IMEI, OPENMIFI_MCC, OPENMIFI_MNC
//	OPENMIFI_INTERFACE                   the public connection's interface
//	OPENMIFI_ENTITLEMENT_URL             the operator endpoint, if provisioned
//
// It runs in a process group of its own, which is killed as a whole on
// timeout, on cancellation, and once the plugin has answered, so a plugin
// leaves no processes behind. Its stdout and stderr (the first 4 KiB) are
// logged at debug level.
package entitlement

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Result is the plugin's answer.
type Result int

const (
	Success     Result = iota // ENTITLEMENT_SUCCESS (exit 0)
	Failed                    // ENTITLEMENT_FAILED (exit 1)
	Unavailable               // ENTITLEMENT_UNAVAILABLE (exit 2)
)

func (r Result) String() string {
	switch r {
	case Success:
		return "ENTITLEMENT_SUCCESS"
	case Failed:
		return "ENTITLEMENT_FAILED"
	case Unavailable:
		return "ENTITLEMENT_UNAVAILABLE"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Env is what the plugin is told, as environment variables.
type Env struct {
	IMSI, ICCID, IMEI, MCC, MNC string
	Interface                   string // the (dedicated) public connection's network interface, "" if unknown
	URL                         string // operator endpoint from provisioning (HotSpot/EntitlementURL), may be ""
}

// environ leaves out unknown values rather than setting them empty, so a
// plugin can tell "not known" apart with a plain presence test.
func (e Env) environ() []string {
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, v := range []struct{ name, value string }{
		{"OPENMIFI_IMSI", e.IMSI},
		{"OPENMIFI_ICCID", e.ICCID},
		{"OPENMIFI_IMEI", e.IMEI},
		{"OPENMIFI_MCC", e.MCC},
		{"OPENMIFI_MNC", e.MNC},
		{"OPENMIFI_INTERFACE", e.Interface},
		{"OPENMIFI_ENTITLEMENT_URL", e.URL},
	} {
		if v.value != "" {
			env = append(env, v.name+"="+v.value)
		}
	}
	return env
}

const (
	defaultTimeout = 30 * time.Second
	// maxOutput is how much of the plugin's output is kept for the log.
	maxOutput = 4 << 10
	// waitDelay is how long output may keep flowing after the plugin
	// exited, from a child it left behind, before the pipes are closed.
	waitDelay = time.Second
)

// Runner checks and runs entitlement plugins. Its zero value fails every
// check, having no keys.
type Runner struct {
	Keys    []ed25519.PublicKey
	Timeout time.Duration // 0 means 30s
	Log     *slog.Logger  // nil means slog.Default()
}

// Check verifies plugin's detached signature and runs it. The error explains any
// result other than Success (nil for Success), in words fit for a user's status line.
func (r *Runner) Check(ctx context.Context, plugin string, env Env) (Result, error) {
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	start := time.Now()
	res, err := r.check(ctx, log, plugin, env)
	attrs := []any{"plugin", plugin, "result", res, "duration", time.Since(start).Round(time.Millisecond)}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	log.Info("entitlement check", attrs...)
	return res, err
}

func (r *Runner) check(ctx context.Context, log *slog.Logger, plugin string, env Env) (Result, error) {
	code, err := readVerified(plugin, r.Keys)
	if err != nil {
		return Failed, err
	}
	exe, err := memExecutable(code)
	if err != nil {
		return Unavailable, fmt.Errorf("cannot run entitlement plugin %s: %w", plugin, err)
	}
	defer exe.Close()

	timeout := r.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var out capped
	// The child's descriptor 3 is exe (ExtraFiles[0]); the path resolves in
	// the child, not here.
	cmd := exec.CommandContext(runCtx, "/proc/self/fd/3")
	cmd.Args = []string{plugin}
	cmd.Env = env.environ()
	cmd.Dir = "/"
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.ExtraFiles = []*os.File{exe}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = waitDelay
	runErr := cmd.Run()
	if cmd.Process != nil {
		// Whatever the plugin started in the background goes with it.
		killGroup(cmd.Process.Pid)
	}
	if len(out.buf) > 0 || out.dropped > 0 {
		log.Debug("entitlement plugin output", "plugin", plugin, "output", string(out.buf), "dropped_bytes", out.dropped)
	}

	st := cmd.ProcessState
	if st == nil {
		if ctx.Err() != nil {
			return Unavailable, fmt.Errorf("entitlement check was cancelled: %w", context.Cause(ctx))
		}
		return Unavailable, fmt.Errorf("cannot start entitlement plugin %s: %w", plugin, runErr)
	}
	// An answer given before the deadline counts, even if the deadline
	// passed while output was still draining.
	if st.Exited() {
		switch code := st.ExitCode(); code {
		case 0:
			return Success, nil
		case 1:
			return Failed, errors.New("the operator says this subscription does not include internet sharing")
		case 2:
			return Unavailable, errors.New("the operator's entitlement service could not be reached")
		default:
			return Unavailable, fmt.Errorf("entitlement plugin %s gave no answer (exit status %d)", plugin, code)
		}
	}
	if ctx.Err() != nil {
		return Unavailable, fmt.Errorf("entitlement check was cancelled: %w", context.Cause(ctx))
	}
	if runCtx.Err() != nil {
		return Unavailable, fmt.Errorf("entitlement plugin %s did not answer within %v", plugin, timeout)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return Unavailable, fmt.Errorf("entitlement plugin %s was killed by signal %v", plugin, ws.Signal())
	}
	return Unavailable, fmt.Errorf("entitlement plugin %s: %w", plugin, runErr)
}

// killGroup kills the process group led by pid. The group outlives its
// leader while any member is left, and its id is not reused before then.
func killGroup(pid int) error {
	err := unix.Kill(-pid, unix.SIGKILL)
	if err == unix.ESRCH {
		return os.ErrProcessDone
	}
	return err
}

// memExecutable returns an anonymous in-memory file holding code, for the
// child to execute through /proc/self/fd (os/exec cannot call execveat).
func memExecutable(code []byte) (*os.File, error) {
	// Kernels since 6.3 may make memfds non-executable unless MFD_EXEC is
	// asked for; older ones reject the flag.
	fd, err := unix.MemfdCreate("entitlement-plugin", unix.MFD_CLOEXEC|unix.MFD_EXEC)
	if err == unix.EINVAL {
		fd, err = unix.MemfdCreate("entitlement-plugin", unix.MFD_CLOEXEC)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "entitlement-plugin")
	if _, err := f.Write(code); err != nil {
		f.Close()
		return nil, fmt.Errorf("write memfd: %w", err)
	}
	// Without /proc the exec would fail with a misleading "no such file",
	// indistinguishable from a script's missing interpreter.
	if _, err := os.Stat(fmt.Sprintf("/proc/self/fd/%d", fd)); err != nil {
		f.Close()
		return nil, fmt.Errorf("/proc is not usable: %w", err)
	}
	return f, nil
}

// capped keeps the first maxOutput bytes written to it and counts the
// rest. It never fails, so a chatty plugin is not killed by SIGPIPE.
type capped struct {
	buf     []byte
	dropped int
}

func (c *capped) Write(p []byte) (int, error) {
	n := min(len(p), maxOutput-len(c.buf))
	c.buf = append(c.buf, p[:n]...)
	c.dropped += len(p) - n
	return len(p), nil
}
