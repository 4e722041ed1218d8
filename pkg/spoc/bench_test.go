package spoc_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// benchRecords is the size of the generated body the benchmarks decode:
// large enough for several full batches, small enough to build quickly.
const benchRecords = 200_000

var benchBody = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	if _, err := spoctest.Generate(&buf, spoctest.GenOptions{Records: benchRecords, Seed: 1}); err != nil {
		panic(err)
	}
	return buf.Bytes()
})

// BenchmarkDecoder measures the decoder alone, from a body in memory to
// record batches: MB/s of JSON, and allocations per record.
func BenchmarkDecoder(b *testing.B) {
	body := benchBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		dec := spoc.NewDecoder(bytes.NewReader(body))
		rows := 0
		for dec.Next() {
			rows += int(dec.RecordBatch().NumRows())
		}
		if err := dec.Err(); err != nil {
			b.Fatal(err)
		}
		dec.Release()
		if rows == 0 {
			b.Fatal("no rows decoded")
		}
	}
	b.StopTimer()
	perOp := testing.AllocsPerRun(1, func() {
		dec := spoc.NewDecoder(bytes.NewReader(body))
		for dec.Next() {
		}
		dec.Release()
	})
	b.ReportMetric(perOp/benchRecords, "allocs/record")
}
