// Package syncbuf is a byte buffer that one goroutine writes while another
// reads it: a child process's output or a logger's, which a test or a
// failure report reads while the writer is still going.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer for a writer and a reader in different
// goroutines. The zero value is empty and ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
