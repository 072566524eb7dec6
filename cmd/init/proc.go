package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// procs starts the init's children and reaps every process that dies:
// as PID 1 the init inherits all orphans, and one reaper waiting for any
// child (wait4(-1)) is the only way to collect them without racing a
// per-child wait. Children started through procs get their exit status
// delivered on a channel; orphans are reaped and forgotten.
type procs struct {
	log *slog.Logger

	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
}

func newProcs(log *slog.Logger) *procs {
	return &procs{log: log, waiters: map[int]chan syscall.WaitStatus{}}
}

// start runs the program at path with argv (argv[0] included) and attr,
// and returns its pid and a channel that receives its exit status once.
func (p *procs) start(path string, argv []string, attr *syscall.ProcAttr) (int, <-chan syscall.WaitStatus, error) {
	// Holding mu across the fork means the reaper, which takes mu to
	// hand a status over, cannot miss a child that dies at once.
	p.mu.Lock()
	defer p.mu.Unlock()
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return 0, nil, fmt.Errorf("start %s: %w", path, err)
	}
	ch := make(chan syscall.WaitStatus, 1)
	p.waiters[pid] = ch
	return pid, ch, nil
}

// run starts argv with the init's standard error for output and waits for
// it to exit.
func (p *procs) run(argv []string) error {
	_, ch, err := p.start(argv[0], argv, &syscall.ProcAttr{
		Env:   []string{"PATH=/usr/bin:/bin"},
		Files: []uintptr{devNull(), os.Stderr.Fd(), os.Stderr.Fd()},
	})
	if err != nil {
		return err
	}
	if ws := <-ch; !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("%s: %s", argv[0], describe(ws))
	}
	return nil
}

// reap waits for SIGCHLD and collects every dead child. It runs for the
// life of the init.
func (p *procs) reap() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD)
	for {
		p.reapAll()
		<-sigs
	}
}

// reapAll collects the children that have exited, without blocking.
func (p *procs) reapAll() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		p.mu.Lock()
		ch, ok := p.waiters[pid]
		delete(p.waiters, pid)
		p.mu.Unlock()
		if ok {
			ch <- ws
		}
	}
}

// describe says how a process ended.
func describe(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}

var (
	nullOnce sync.Once
	nullFd   uintptr
)

// devNull is an open /dev/null for children's standard input.
func devNull() uintptr {
	nullOnce.Do(func() {
		fd, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			// Without /dev/null children read from the console,
			// which is still better than not starting them.
			nullFd = os.Stdin.Fd()
			return
		}
		nullFd = uintptr(fd)
	})
	return nullFd
}
