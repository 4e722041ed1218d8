package spoc

import (
	"math/bits"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// recycler is an Arrow allocator that keeps the buffers of released
// batches for the next ones. Every batch of a body has about the same
// size, so after the first batch the decoder builds into memory that is
// already mapped: no fresh pages to fault in and clear, and no garbage
// for the collector, which made up about a third of the CPU time with
// Go's allocator.
//
// Buffers are kept by power-of-two size class, up to maxIdle bytes in
// all; beyond that they go back to the underlying allocator. A reused
// buffer is cleared whole, because Arrow's builders count on fresh
// memory being zero (bitmaps, and growth within a buffer's capacity).
type recycler struct {
	mem     memory.Allocator
	maxIdle int

	mu     sync.Mutex
	free   [bits.UintSize][][]byte // by class: cap(buf) >= 1<<class
	idle   int                     // bytes held in free
	closed bool
}

// minClass is the smallest size class, 64 bytes: Arrow's alignment.
const minClass = 6

func newRecycler(mem memory.Allocator, maxIdle int) *recycler {
	return &recycler{mem: mem, maxIdle: maxIdle}
}

// sizeClass is the smallest class that holds size bytes.
func sizeClass(size int) int {
	if size <= 1<<minClass {
		return minClass
	}
	return bits.Len(uint(size - 1))
}

func (r *recycler) Allocate(size int) []byte {
	class := sizeClass(size)
	r.mu.Lock()
	if n := len(r.free[class]); n > 0 {
		buf := r.free[class][n-1]
		r.free[class][n-1] = nil
		r.free[class] = r.free[class][:n-1]
		r.idle -= cap(buf)
		r.mu.Unlock()
		clear(buf[:cap(buf)])
		return buf[:size]
	}
	r.mu.Unlock()
	return r.mem.Allocate(1 << class)[:size]
}

func (r *recycler) Reallocate(size int, b []byte) []byte {
	if cap(b) >= size {
		return b[:size]
	}
	grown := r.Allocate(size)
	copy(grown, b)
	r.Free(b)
	return grown
}

func (r *recycler) Free(b []byte) {
	if cap(b) < 1<<minClass {
		r.mem.Free(b)
		return
	}
	b = b[:cap(b)]
	class := bits.Len(uint(cap(b))) - 1
	r.mu.Lock()
	if r.closed || r.idle+cap(b) > r.maxIdle {
		r.mu.Unlock()
		r.mem.Free(b)
		return
	}
	r.free[class] = append(r.free[class], b)
	r.idle += cap(b)
	r.mu.Unlock()
}

// close hands every kept buffer back to the underlying allocator, and
// from then on every freed one, so that batches released after the
// decoder still reach it.
func (r *recycler) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for class, bufs := range r.free {
		for _, b := range bufs {
			r.mem.Free(b)
		}
		r.free[class] = nil
	}
	r.idle = 0
}

var _ memory.Allocator = (*recycler)(nil)
