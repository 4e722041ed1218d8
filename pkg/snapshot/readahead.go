package snapshot

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// readAhead reads the next batch of a record reader in its own goroutine
// while the caller encodes the current one, so that decoding and Parquet
// encoding run on two cores at once. The channel is unbuffered: at most
// two batches are alive, the one being encoded and the one being decoded
// (or handed over), which keeps memory flat.
//
// The reader's Err, and any other state it has, may be read once Next has
// returned false or after Close.
type readAhead struct {
	batches chan arrow.RecordBatch
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// busy, if not nil, accumulates the nanoseconds spent in src.Next, the
// time the source itself took apart from waiting for the consumer.
func startReadAhead(src array.RecordReader, busy *atomic.Int64) *readAhead {
	r := &readAhead{batches: make(chan arrow.RecordBatch), stop: make(chan struct{})}
	r.wg.Go(func() {
		defer close(r.batches)
		for {
			start := time.Now()
			more := src.Next()
			if busy != nil {
				busy.Add(int64(time.Since(start)))
			}
			if !more {
				return
			}
			rec := src.RecordBatch()
			rec.Retain()
			select {
			case r.batches <- rec:
			case <-r.stop:
				rec.Release()
				return
			}
		}
	})
	return r
}

// Next returns the next batch, which the caller must Release, or false
// when the source is done.
func (r *readAhead) Next() (arrow.RecordBatch, bool) {
	rec, ok := <-r.batches
	return rec, ok
}

// Close stops reading and waits for the goroutine to end. It must be
// called on every path, including after Next returned false.
func (r *readAhead) Close() {
	r.once.Do(func() { close(r.stop) })
	for rec := range r.batches {
		rec.Release()
	}
	r.wg.Wait()
}
