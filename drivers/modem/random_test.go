package modem

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// unseededKernel is a kernel as it is right after a fast boot: its
// random number generator refuses non-blocking reads until it is seeded,
// which it does when a reader blocks (Linux ≥ 5.4) and unblock says so.
type unseededKernel struct {
	unblock chan struct{}

	mu       sync.Mutex
	seeded   bool
	blocking int // blocking reads made
}

func (k *unseededKernel) getrandom(b []byte, flags int) (int, error) {
	if flags&unix.GRND_NONBLOCK != 0 {
		k.mu.Lock()
		defer k.mu.Unlock()
		if !k.seeded {
			return 0, unix.EAGAIN
		}
		return len(b), nil
	}
	k.mu.Lock()
	k.blocking++
	k.mu.Unlock()
	<-k.unblock
	k.mu.Lock()
	k.seeded = true
	k.mu.Unlock()
	return len(b), nil
}

func (k *unseededKernel) nonBlockingWorks() bool {
	_, err := k.getrandom(make([]byte, 4), unix.GRND_NONBLOCK)
	return err == nil
}

// TestSeederSeedsKernel is the second boot of the QEMU board: the DHCP
// library's non-blocking reads only succeed once the kernel was made to
// seed itself, which the wait does, once for all its waiters.
func TestSeederSeedsKernel(t *testing.T) {
	k := &unseededKernel{unblock: make(chan struct{})}
	s := &seeder{getrandom: k.getrandom}
	close(k.unblock)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() { errs <- s.wait(t.Context(), slog.New(slog.DiscardHandler)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !k.nonBlockingWorks() {
		t.Fatal("the kernel is still not seeded after the wait: DHCP's transaction IDs would spin for two minutes")
	}
	if k.blocking != 1 {
		t.Errorf("%d blocking reads, want 1", k.blocking)
	}
	// Seeded, it reads nothing more in the blocking way.
	if err := s.wait(t.Context(), slog.New(slog.DiscardHandler)); err != nil || k.blocking != 1 {
		t.Errorf("wait once seeded: %v, %d blocking reads", err, k.blocking)
	}
}

func TestSeederAlreadySeeded(t *testing.T) {
	k := &unseededKernel{seeded: true}
	s := &seeder{getrandom: k.getrandom}
	if err := s.wait(t.Context(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if k.blocking != 0 || s.done != nil {
		t.Errorf("a seeded kernel was read in the blocking way (%d reads)", k.blocking)
	}
}

// TestSeederCancel: a kernel that takes its time does not hold the
// driver past its context.
func TestSeederCancel(t *testing.T) {
	k := &unseededKernel{unblock: make(chan struct{})}
	defer close(k.unblock) // ends the blocking read's goroutine
	s := &seeder{getrandom: k.getrandom}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.wait(ctx, slog.New(slog.DiscardHandler)); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait on a cancelled context: %v", err)
	}
}

// TestNclientWaitsForRandom: every exchange of the device's DHCP client
// waits for the kernel's random numbers before the library draws a
// transaction ID.
func TestNclientWaitsForRandom(t *testing.T) {
	errNotSeeded := errors.New("not seeded")
	c := nclient{iface: "no-such-interface", seeded: func(context.Context) error { return errNotSeeded }}
	l := testLease(t, "10.0.0.2", 3600e9, 0, 0)
	if _, err := c.Discover(t.Context()); !errors.Is(err, errNotSeeded) {
		t.Errorf("Discover: %v", err)
	}
	if _, err := c.Renew(t.Context(), l); !errors.Is(err, errNotSeeded) {
		t.Errorf("Renew: %v", err)
	}
	if _, err := c.Rebind(t.Context(), l); !errors.Is(err, errNotSeeded) {
		t.Errorf("Rebind: %v", err)
	}
	if c := (&Netlink{}).client("usb0"); c.seeded == nil {
		t.Error("the device's DHCP client does not wait for the kernel's random numbers")
	}
}
