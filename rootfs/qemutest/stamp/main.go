// Command stamp writes the time to a file and becomes the program it is
// given (execve, same process):
//
//	stamp FILE PROGRAM [ARG...]
//
// It marks the start of a process for the Wi-Fi tests and benchmark in
// the guest, to the microsecond, on the clock of hostapd's and
// wpa_supplicant's -t timestamps ("SECONDS.MICROSECONDS"): busybox date
// has no %N.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: stamp FILE PROGRAM [ARG...]")
		os.Exit(2)
	}
	prog, err := exec.LookPath(os.Args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "stamp: %v\n", err)
		os.Exit(127)
	}
	now := time.Now()
	line := fmt.Sprintf("%d.%06d\n", now.Unix(), now.Nanosecond()/1000)
	if err := os.WriteFile(os.Args[1], []byte(line), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "stamp: %v\n", err)
		os.Exit(1)
	}
	err = syscall.Exec(prog, os.Args[2:], os.Environ())
	fmt.Fprintf(os.Stderr, "stamp: exec %s: %v\n", prog, err)
	os.Exit(126)
}
