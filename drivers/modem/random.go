package modem

// The kernel's random number generator, seeded before the first DHCP
// exchange.
//
// The DHCP library draws every transaction ID with non-blocking
// getrandom(2), retried in a busy loop for up to two minutes while the
// kernel says it is not seeded yet. Since Linux 5.4 the kernel seeds
// itself from CPU timing jitter when a reader blocks, and only then, so
// right after a fast boot (nothing formatted, no virtio-rng, nobody yet
// asking for random bytes in the blocking way) the first DISCOVER is not
// sent for two minutes and then fails. One blocking read makes the kernel
// seed itself, within a second.

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// seeder waits for the kernel's random number generator to be seeded.
type seeder struct {
	// getrandom is getrandom(2); tests give a kernel of their own.
	getrandom func(b []byte, flags int) (int, error)

	once sync.Once
	done chan struct{} // closed once a blocking read returned
}

// kernelRandom is the device's: one per process, as the kernel's is.
var kernelRandom = &seeder{getrandom: unix.Getrandom}

// wait returns once the kernel hands out random bytes without blocking,
// or with ctx's error. The blocking read cannot be cancelled: it runs on
// a goroutine of its own, shared by every waiter, which ends when the
// kernel is seeded.
func (s *seeder) wait(ctx context.Context, log *slog.Logger) error {
	var b [1]byte
	if _, err := s.getrandom(b[:], unix.GRND_NONBLOCK); !errors.Is(err, unix.EAGAIN) {
		// Seeded; or no getrandom(2), and the library reads
		// /dev/urandom.
		return nil
	}
	start := time.Now()
	log.Info("modem: waiting for the kernel's random number generator before DHCP")
	s.once.Do(func() {
		s.done = make(chan struct{})
		go func() {
			defer close(s.done)
			var b [1]byte
			for {
				if _, err := s.getrandom(b[:], 0); !errors.Is(err, unix.EINTR) {
					return
				}
			}
		}()
	})
	select {
	case <-s.done:
		log.Info("modem: kernel's random number generator seeded", "waited", time.Since(start).Round(time.Millisecond))
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
