package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// ringLog keeps a service's output in RAM (on /run) within a fixed size:
// two files, NAME and NAME.1, each at most max bytes; when NAME would grow
// past max it becomes NAME.1 and a new NAME starts. hotspotd-log (a
// script in the image) shows both.
// It survives the service's restarts, which is when it is read most.
type ringLog struct {
	path string
	max  int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

func newRingLog(path string, max int64) (*ringLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	r := &ringLog{path: path, max: max}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *ringLog) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	r.f, r.size = f, fi.Size()
	return nil
}

// Write appends p, which should be whole lines, rotating first if it would
// not fit. A single write larger than max is cut to its last max bytes.
func (r *ringLog) Write(p []byte) (int, error) {
	n := len(p)
	if int64(len(p)) > r.max {
		p = p[int64(len(p))-r.max:]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.size+int64(len(p)) > r.max {
		r.f.Close()
		if err := os.Rename(r.path, r.path+".1"); err != nil {
			return 0, fmt.Errorf("rotate log: %w", err)
		}
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	m, err := r.f.Write(p)
	r.size += int64(m)
	if err != nil {
		return 0, fmt.Errorf("write log: %w", err)
	}
	return n, nil
}

// Close closes the current file.
func (r *ringLog) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
