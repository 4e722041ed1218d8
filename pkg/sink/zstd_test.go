package sink

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// TestZstdCodecRoundTrip compresses pages of every size class at every
// speed, including pages longer than the window, and checks that a
// standard decoder gives back the same bytes.
func TestZstdCodecRoundTrip(t *testing.T) {
	RegisterZstdCodec()
	codec, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := codec.(*zstdCodec); !ok {
		t.Fatalf("the registered zstd codec is %T, want *zstdCodec", codec)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()

	rng := rand.New(rand.NewPCG(1, 2))
	page := func(n int) []byte {
		// Half repetitive, half random, like a column of coordinates.
		b := make([]byte, n)
		for i := range b {
			if i%16 < 8 {
				b[i] = byte(i / 4096)
			} else {
				b[i] = byte(rng.Uint32())
			}
		}
		return b
	}
	for _, level := range []int{compress.DefaultCompressionLevel, 1, 7, 11} {
		for _, n := range []int{0, 1000, 200 << 10, 2*zstdWindow + 1} {
			t.Run(fmt.Sprintf("level=%d/len=%d", level, n), func(t *testing.T) {
				src := page(n)
				out := codec.EncodeLevel(nil, src, level)
				got, err := dec.DecodeAll(out, nil)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if !bytes.Equal(got, src) {
					t.Fatalf("round trip changed the page: %d bytes in, %d out", len(src), len(got))
				}
				// arrow-go's own decoder reads it too (Parquet readers
				// in this process use it).
				back := codec.Decode(nil, out)
				if !bytes.Equal(back, src) {
					t.Fatal("codec.Decode differs from the input")
				}
			})
		}
	}
}

// TestZstdCodecReusesEncoders checks the memory bound: once each speed has
// its encoder, compressing more pages builds no new one (a best-speed
// encoder is tens of MiB, so even one extra per page would show as
// thousands of allocations).
func TestZstdCodecReusesEncoders(t *testing.T) {
	codec := newZstdCodec(nil)
	src := bytes.Repeat([]byte("MUKIM SUNGAI RAYA 2.512345 101.234567 "), 20000)
	dst := make([]byte, 0, len(src)+len(src)/8+1024)
	for _, level := range []int{3, 11} {
		codec.EncodeLevel(dst, src, level) // warm up
		allocs := testing.AllocsPerRun(20, func() {
			codec.EncodeLevel(dst, src, level)
		})
		if allocs > 2 {
			t.Errorf("level %d: %.0f allocations per page after warm-up, want an idle encoder reused", level, allocs)
		}
	}
	if n := len(codec.idle); n != 2 {
		t.Errorf("%d idle encoders, want one per speed used (2)", n)
	}
}
