// Package netns runs code inside a network namespace given by a file
// descriptor. On the device everything runs in the one namespace; the
// drivers take a namespace so that tests can run a router, a client and an
// upstream on one machine.
package netns

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs f on an OS thread moved into the network namespace fd (0: runs
// it here). What is per namespace and has no handle of its own is bound
// then: sockets f opens stay in the namespace for their whole life,
// whichever thread uses them later, and so do /proc/sys/net files and
// interface lookups. The thread itself goes back afterwards.
func Do(fd int, f func() error) error {
	if fd == 0 {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Left locked, the thread ends with this goroutine
			// instead of running others in the wrong namespace.
			errc <- fmt.Errorf("leave network namespace: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
