package sink_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

const benchRecords = 131_072

// benchBatches decodes a generated body once into two full batches.
var benchBatches = sync.OnceValues(func() ([]arrow.RecordBatch, int64) {
	var buf bytes.Buffer
	if _, err := spoctest.Generate(&buf, spoctest.GenOptions{Records: benchRecords, Seed: 1}); err != nil {
		panic(err)
	}
	jsonBytes := int64(buf.Len())
	dec := spoc.NewDecoder(&buf)
	defer dec.Release()
	var batches []arrow.RecordBatch
	for dec.Next() {
		rec := dec.RecordBatch()
		rec.Retain()
		batches = append(batches, rec)
	}
	if err := dec.Err(); err != nil {
		panic(err)
	}
	return batches, jsonBytes
})

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// BenchmarkParquetWriter measures the Parquet encoder alone at several
// zstd levels, with and without dictionary encoding of the low-cardinality
// columns. SetBytes is the JSON size of the rows, so MB/s compares with
// the decoder's; out-B/record is the size of the file.
func BenchmarkParquetWriter(b *testing.B) {
	batches, jsonBytes := benchBatches()
	cases := []struct {
		name string
		opts []sink.ParquetOption
	}{
		{"zstd=1/dict", []sink.ParquetOption{sink.WithZstdLevel(1), sink.WithDictionary(spoc.DictionaryColumns()...)}},
		{"zstd=3/dict", []sink.ParquetOption{sink.WithZstdLevel(3), sink.WithDictionary(spoc.DictionaryColumns()...)}},
		{"zstd=3/nodict", []sink.ParquetOption{sink.WithZstdLevel(3)}},
		{"zstd=6/dict", []sink.ParquetOption{sink.WithZstdLevel(6), sink.WithDictionary(spoc.DictionaryColumns()...)}},
		{"zstd=9/dict", []sink.ParquetOption{sink.WithZstdLevel(9), sink.WithDictionary(spoc.DictionaryColumns()...)}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(jsonBytes)
			b.ReportAllocs()
			var out countingWriter
			for b.Loop() {
				out = countingWriter{}
				pw, err := sink.NewParquetWriter(&out, spoc.Schema, c.opts...)
				if err != nil {
					b.Fatal(err)
				}
				for _, rec := range batches {
					if err := pw.Write(rec); err != nil {
						b.Fatal(err)
					}
				}
				if err := pw.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.n)/benchRecords, "out-B/record")
		})
	}
}
