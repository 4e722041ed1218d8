package snapshot

import (
	"io"
	"sync"
	"sync/atomic"
)

// asyncWriter hands what is written to it to a goroutine that writes it to
// w. The raw archive's gzip compression runs there, beside the decoder and
// the Parquet encoder, instead of on the decoder's goroutine. A few
// buffers bound the memory and make a slow w hold the writer back.
type asyncWriter struct {
	full   chan []byte
	free   chan []byte
	done   chan struct{}
	err    error // w's first error; read after done is closed
	failed atomic.Bool
	close  sync.Once
}

func newAsyncWriter(w io.Writer, buffers, size int) *asyncWriter {
	a := &asyncWriter{
		full: make(chan []byte, buffers),
		free: make(chan []byte, buffers),
		done: make(chan struct{}),
	}
	for range buffers {
		a.free <- make([]byte, size)
	}
	go func() {
		defer close(a.done)
		for buf := range a.full {
			if a.err == nil {
				if _, err := w.Write(buf); err != nil {
					a.err = err
					a.failed.Store(true)
				}
			}
			a.free <- buf[:cap(buf)]
		}
	}()
	return a
}

// Write copies p into buffers for the goroutine. After w failed it
// returns w's error.
func (a *asyncWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if a.failed.Load() {
			return written, a.err // set before failed: the atomic orders them
		}
		buf := <-a.free
		n := copy(buf, p)
		a.full <- buf[:n]
		p, written = p[n:], written+n
	}
	return written, nil
}

// Close waits until everything written has reached w and returns w's
// first error. It may be called more than once; Write must not be called
// after it.
func (a *asyncWriter) Close() error {
	a.close.Do(func() { close(a.full) })
	<-a.done
	return a.err
}
