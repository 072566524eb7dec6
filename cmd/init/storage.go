package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/board"
)

// stateFlags: the state directory holds data, never programs or devices.
const stateFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME

// storage mounts the persistent storage for the user's settings and the
// leases at dir.
type storage struct {
	board.Storage
	dir string
	// mke2fs formats a blank device.
	mke2fs func(dev string) error
	// wait is how long a block device may take to appear after its
	// driver loaded.
	wait time.Duration
}

// errNotBlank: the device holds something that is not our file system;
// formatting it could destroy someone's data, so the init does not.
var errNotBlank = errors.New("not blank and not a file system the init can mount: left as it is")

// mount mounts the board's storage. On an error the caller falls back to
// a tmpfs, and settings last until the next reboot.
func (s storage) mount() error {
	switch s.FSType {
	case board.FSExt2:
		return s.mountExt2()
	case board.FSUBIFS, board.FSJFFS2:
		// Prepared at the factory; the kernel attaches UBI from its
		// command line (ubi.mtd=) and jffs2 takes "mtd:NAME".
		if err := unix.Mount(s.Device, s.dir, s.FSType, stateFlags, ""); err != nil {
			return fmt.Errorf("mount %s (%s) on %s: %w", s.Device, s.FSType, s.dir, err)
		}
		return nil
	}
	return fmt.Errorf("storage type %q unknown", s.FSType)
}

func (s storage) mountExt2() error {
	deadline := time.Now().Add(s.wait)
	for {
		_, err := os.Stat(s.Device)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("storage device %s: %w", s.Device, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	err := unix.Mount(s.Device, s.dir, "ext2", stateFlags, "")
	if err == nil {
		return nil
	}
	blank, berr := isBlank(s.Device)
	if berr != nil {
		return fmt.Errorf("mount %s: %v; and reading it: %w", s.Device, err, berr)
	}
	if !blank {
		return fmt.Errorf("mount %s as ext2: %v: %w", s.Device, err, errNotBlank)
	}
	if err := s.mke2fs(s.Device); err != nil {
		return fmt.Errorf("format blank %s: %w", s.Device, err)
	}
	if err := unix.Mount(s.Device, s.dir, "ext2", stateFlags, ""); err != nil {
		return fmt.Errorf("mount %s after formatting it: %w", s.Device, err)
	}
	return nil
}

// blankSize is how much of a device must be zero for it to count as
// blank: more than any file system's or partition table's header.
const blankSize = 1 << 20

// isBlank reports whether the start of the device (or file) is all zero,
// as a new QEMU disk image or an erased eMMC partition is.
func isBlank(dev string) (bool, error) {
	f, err := os.Open(dev)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	zero := make([]byte, len(buf))
	var read int64
	for read < blankSize {
		n, err := io.ReadFull(f, buf)
		if !bytes.Equal(buf[:n], zero[:n]) {
			return false, nil
		}
		read += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}
