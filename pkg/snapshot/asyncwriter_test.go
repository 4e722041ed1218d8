package snapshot

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func TestAsyncWriterKeepsOrder(t *testing.T) {
	var want, got bytes.Buffer
	a := newAsyncWriter(&got, 3, 7)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		p := make([]byte, rng.IntN(40))
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		want.Write(p)
		if n, err := a.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("wrote %d bytes, want %d in the same order", got.Len(), want.Len())
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

type failAfter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errDiskFull
	}
	return len(p), nil
}

func TestAsyncWriterReportsTheWritersError(t *testing.T) {
	a := newAsyncWriter(&failAfter{n: 100}, 2, 16)
	var err error
	for range 1000 {
		if _, err = a.Write(make([]byte, 10)); err != nil {
			break
		}
	}
	if !errors.Is(err, errDiskFull) {
		t.Errorf("Write after the writer failed: %v, want its error", err)
	}
	if err := a.Close(); !errors.Is(err, errDiskFull) {
		t.Errorf("Close = %v, want the writer's error", err)
	}
}
