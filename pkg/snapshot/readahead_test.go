package snapshot

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// countingSource is a record reader of n one-row batches.
type countingSource struct {
	mem  memory.Allocator
	n    int
	read int
	rec  arrow.RecordBatch
}

var oneColumn = arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)

func (s *countingSource) Schema() *arrow.Schema { return oneColumn }
func (s *countingSource) Next() bool {
	if s.rec != nil {
		s.rec.Release()
		s.rec = nil
	}
	if s.read == s.n {
		return false
	}
	s.read++
	b := array.NewRecordBuilder(s.mem, oneColumn)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).Append(int64(s.read))
	s.rec = b.NewRecordBatch()
	return true
}
func (s *countingSource) RecordBatch() arrow.RecordBatch { return s.rec }
func (s *countingSource) Record() arrow.RecordBatch      { return s.rec }
func (s *countingSource) Err() error                     { return nil }
func (s *countingSource) Retain()                        {}
func (s *countingSource) Release() {
	if s.rec != nil {
		s.rec.Release()
		s.rec = nil
	}
}

func TestReadAheadDeliversEveryBatchInOrder(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	src := &countingSource{mem: mem, n: 50}
	defer src.Release()
	r := startReadAhead(src, nil)
	defer r.Close()
	want := int64(1)
	for {
		rec, ok := r.Next()
		if !ok {
			break
		}
		if got := rec.Column(0).(*array.Int64).Value(0); got != want {
			t.Fatalf("batch %d, want %d", got, want)
		}
		rec.Release()
		want++
	}
	if want != 51 {
		t.Fatalf("%d batches, want 50", want-1)
	}
}

// TestReadAheadCloseStopsEarly is the path of a failed write: the caller
// stops after a few batches, and Close must end the goroutine without
// reading the whole source and without leaking a batch.
func TestReadAheadCloseStopsEarly(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	src := &countingSource{mem: mem, n: 1000}
	r := startReadAhead(src, nil)
	rec, ok := r.Next()
	if !ok {
		t.Fatal("no first batch")
	}
	rec.Release()
	r.Close()
	r.Close() // a second Close, as the deferred one after an explicit one, is harmless
	if src.read > 3 {
		t.Errorf("the source was read %d times after the caller stopped at 1", src.read)
	}
	src.Release()
	mem.AssertSize(t, 0)
	if _, ok := r.Next(); ok {
		t.Error("Next after Close returned a batch")
	}
}
