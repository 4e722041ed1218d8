package changes_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

const benchRecords = 131_072

// generatedDay is a day of the project's generator decoded into batches,
// and those batches written as the job writes its snapshot.
func generatedDay(records int) ([]arrow.RecordBatch, []byte, error) {
	return generatedDayOf(spoc.SPOC, spoctest.GenOptions{Records: records, Seed: 1})
}

// generatedDayOf is generatedDay for any dataset and generator options.
func generatedDayOf(ds *spoc.Dataset, opts spoctest.GenOptions) ([]arrow.RecordBatch, []byte, error) {
	var body bytes.Buffer
	opts.Dataset = ds
	if _, err := spoctest.Generate(&body, opts); err != nil {
		return nil, nil, err
	}
	dec := spoc.NewDecoder(&body, spoc.WithDataset(ds))
	defer dec.Release()
	var file bytes.Buffer
	pw, err := sink.NewParquetWriter(&file, ds.Schema(), sink.WithDictionary(ds.DictionaryColumns()...))
	if err != nil {
		return nil, nil, err
	}
	var batches []arrow.RecordBatch
	for dec.Next() {
		rec := dec.RecordBatch()
		if err := pw.Write(rec); err != nil {
			return nil, nil, err
		}
		rec.Retain()
		batches = append(batches, rec)
	}
	if err := dec.Err(); err != nil {
		return nil, nil, err
	}
	if err := pw.Close(); err != nil {
		return nil, nil, err
	}
	return batches, file.Bytes(), nil
}

var benchSnapshot = sync.OnceValues(func() ([]arrow.RecordBatch, []byte) {
	batches, file, err := generatedDay(benchRecords)
	if err != nil {
		panic(err)
	}
	return batches, file
})

// BenchmarkReadBaseline reads the digest of a previous snapshot; SetBytes
// is the Parquet file's size.
func BenchmarkReadBaseline(b *testing.B) {
	_, file := benchSnapshot()
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		base, err := changes.ReadBaseline(context.Background(), spoc.SPOC, "20261125", bytes.NewReader(file))
		if err != nil {
			b.Fatal(err)
		}
		if base.Len() == 0 {
			b.Fatal("empty baseline")
		}
	}
}

// BenchmarkReadDigest reads the Baseline of the same snapshot from the
// digest its run wrote, which a run reads instead of the Parquet file
// (BenchmarkReadBaseline); SetBytes is the Parquet file's size, so that
// the two compare in MB/s.
func BenchmarkReadDigest(b *testing.B) {
	batches, file := benchSnapshot()
	d, err := changes.NewDigester(spoc.SPOC)
	if err != nil {
		b.Fatal(err)
	}
	for _, rec := range batches {
		if err := d.Add(rec); err != nil {
			b.Fatal(err)
		}
	}
	var digest bytes.Buffer
	if _, err := d.WriteDigest(&digest, "20261125"); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		base, err := changes.ReadDigest(context.Background(), spoc.SPOC, "20261125", bytes.NewReader(digest.Bytes()), int64(digest.Len()), bytes.NewReader(file))
		if err != nil {
			b.Fatal(err)
		}
		if base.Len() == 0 {
			b.Fatal("empty baseline")
		}
	}
}

// BenchmarkComparison compares a day with the baseline of the same day
// with every 50th plot's certified_area changed, then finishes, which reads
// the previous file again for the before-values.
func BenchmarkComparison(b *testing.B) {
	batches, file := benchSnapshot()
	base, err := changes.ReadBaseline(context.Background(), spoc.SPOC, "20261125", bytes.NewReader(file))
	if err != nil {
		b.Fatal(err)
	}
	day2 := changedAreas(b, batches, 50)
	b.ReportAllocs()
	for b.Loop() {
		cmp := base.NewComparison()
		for _, rec := range day2 {
			if err := cmp.Add(rec); err != nil {
				b.Fatal(err)
			}
		}
		res, err := cmp.Finish(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if res.Summary.Changed == 0 {
			b.Fatal("nothing changed")
		}
	}
}

// changedAreas copies batches with certified_area set to 99.75 on every
// nth row.
func changedAreas(tb testing.TB, batches []arrow.RecordBatch, nth int) []arrow.RecordBatch {
	idx := spoc.Schema.FieldIndices("certified_area")[0]
	var out []arrow.RecordBatch
	row := 0
	for _, rec := range batches {
		old := rec.Column(idx).(*array.Float64)
		bld := array.NewFloat64Builder(memory.DefaultAllocator)
		for i := range old.Len() {
			switch {
			case row%nth == 0:
				bld.Append(99.75)
			case old.IsNull(i):
				bld.AppendNull()
			default:
				bld.Append(old.Value(i))
			}
			row++
		}
		area := bld.NewArray()
		bld.Release()
		cols := slices.Clone(rec.Columns())
		cols[idx] = area
		out = append(out, array.NewRecordBatch(rec.Schema(), cols, rec.NumRows()))
		area.Release()
	}
	tb.Cleanup(func() {
		for _, rec := range out {
			rec.Release()
		}
	})
	return out
}
