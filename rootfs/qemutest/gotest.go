package qemutest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/openmifi/openmifi/rootfs"
)

// GoTestResult is what a Go test binary said in the guest.
type GoTestResult struct {
	Passed, Failed, Skipped []string // test names, subtests included
	// Ok is true when the binary said PASS (or "ok") and exited 0.
	Ok       bool
	ExitCode int
	Output   string
}

// RunGoTest runs a test binary in the guest, from its directory (where
// its testdata is), verbosely, with OPENMIFI_GUEST=1 in its environment
// so that tests can tell they run inside the image, as root, with the
// hwsim radios, and with the test tools first in PATH (exec.Command("ip")
// is iproute2's, not busybox's applet). args are more flags
// (-test.run=...).
func RunGoTest(ctx context.Context, sh Shell, bin GoTestBinary, timeout time.Duration, args ...string) (GoTestResult, error) {
	if bin.BuildErr != nil {
		return GoTestResult{}, bin.BuildErr
	}
	cmd := fmt.Sprintf("cd %s && PATH=%s:/usr/bin:/bin OPENMIFI_GUEST=1 %s -test.v -test.timeout=%s %s 2>&1; rc=$?; cd /; (exit $rc)",
		Quote(bin.Dir), rootfs.TestToolDir, Quote(bin.Path), timeout, strings.Join(args, " "))
	rctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	out, rc, err := sh.Run(rctx, cmd)
	if err != nil {
		return GoTestResult{Output: out}, fmt.Errorf("%s in the guest: %w", bin.Package, err)
	}
	res := ParseGoTestOutput(out)
	res.ExitCode = rc
	res.Ok = res.Ok && rc == 0
	return res, nil
}

// ParseGoTestOutput reads the output of a test binary run with -test.v:
// the "--- PASS/FAIL/SKIP: Name" lines and the final verdict. A binary
// that panicked or was killed has no PASS line, so Ok stays false.
func ParseGoTestOutput(out string) GoTestResult {
	res := GoTestResult{Output: out}
	sawPass, sawFail := false, false
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		trimmed := strings.TrimSpace(line)
		for _, v := range []struct {
			prefix string
			list   *[]string
		}{{"--- PASS: ", &res.Passed}, {"--- FAIL: ", &res.Failed}, {"--- SKIP: ", &res.Skipped}} {
			if rest, ok := strings.CutPrefix(trimmed, v.prefix); ok {
				if name := strings.Fields(rest); len(name) > 0 {
					*v.list = append(*v.list, name[0])
				}
			}
		}
		switch {
		case line == "PASS" || strings.HasPrefix(line, "ok "):
			sawPass = true
		case line == "FAIL" || strings.HasPrefix(line, "FAIL\t") || strings.HasPrefix(line, "panic: "):
			sawFail = true
		}
	}
	res.Ok = sawPass && !sawFail && len(res.Failed) == 0
	return res
}
