package spoc

import (
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestRecyclerReusesClearedBuffers(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	r := newRecycler(mem, 1<<20)
	a := r.Allocate(1000)
	if len(a) != 1000 || cap(a) != 1024 {
		t.Fatalf("Allocate(1000): len %d cap %d, want 1000 and 1024", len(a), cap(a))
	}
	for i := range a[:cap(a)] {
		a[:cap(a)][i] = 0xff
	}
	r.Free(a)
	b := r.Allocate(900)
	if unsafe.SliceData(b) != unsafe.SliceData(a) {
		t.Fatal("a freed buffer of the same class was not reused")
	}
	for i, v := range b[:cap(b)] {
		if v != 0 {
			t.Fatalf("reused buffer not cleared at byte %d", i)
		}
	}
	if c := r.Allocate(2000); unsafe.SliceData(c) == unsafe.SliceData(a) {
		t.Fatal("a buffer was reused for a larger class")
	}
	grown := r.Reallocate(1024, b)
	if unsafe.SliceData(grown) != unsafe.SliceData(b) {
		t.Fatal("Reallocate within capacity moved the buffer")
	}
	r.Free(grown)
	r.close()
	if mem.CurrentAlloc() != 2048 { // the 2000-byte buffer is still out
		t.Fatalf("after close %d bytes allocated, want 2048", mem.CurrentAlloc())
	}
}

func TestRecyclerKeepsAtMostMaxIdle(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	r := newRecycler(mem, 4096)
	bufs := [][]byte{r.Allocate(2048), r.Allocate(2048), r.Allocate(2048)}
	for _, b := range bufs {
		r.Free(b)
	}
	if r.idle != 4096 || mem.CurrentAlloc() != 4096 {
		t.Fatalf("idle %d, allocated %d; want 4096 kept and the third buffer returned", r.idle, mem.CurrentAlloc())
	}
	r.close()
	mem.AssertSize(t, 0)
	late := r.Allocate(64)
	r.Free(late) // after close: straight back to mem
	mem.AssertSize(t, 0)
}
