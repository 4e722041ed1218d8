package snapshot

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// readColumns reads the named top-level columns of the Parquet file r in
// its row order, one row group at a time, in batches of at most a
// decoder batch's rows and of about its bytes (spoc.DefaultMaxBatchBytes
// of the columns' values, as the row group's column chunks measure
// them), and hands each batch to f. A batch is valid during f only.
//
// The bytes are what bounds the memory: a batch of 16,384 rows of a
// snapshot whose licence numbers are 20 KB each would hold 320 MB. The
// chunks' sizes undercount a dictionary-encoded column of long repeated
// values, which decodes to a copy of the value per row; a batch stays
// within its row group, whose text the snapshot's writer bounds
// (sink.DefaultMaxRowGroupBytes).
func readColumns(ctx context.Context, r sink.ReaderAt, names []string, f func(arrow.RecordBatch) error) error {
	pf, err := file.NewParquetReader(r)
	if err != nil {
		return err
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: spoc.DefaultBatchSize}, memory.DefaultAllocator)
	if err != nil {
		return err
	}
	leaves := make([]int, len(names))
	for i, name := range names {
		if leaves[i] = pf.MetaData().Schema.ColumnIndexByName(name); leaves[i] < 0 {
			return fmt.Errorf("no column %s", name)
		}
	}
	for rg := range pf.NumRowGroups() {
		md := pf.MetaData().RowGroup(rg)
		var size int64
		for _, leaf := range leaves {
			chunk, err := md.ColumnChunk(leaf)
			if err != nil {
				return err
			}
			size += chunk.TotalUncompressedSize()
		}
		fr.Props.BatchSize = batchRows(md.NumRows(), size)
		if err := readRowGroup(ctx, fr, leaves, rg, f); err != nil {
			return err
		}
	}
	return nil
}

// batchRows is the rows of a batch of a row group of rows rows whose
// read columns take size bytes: a decoder batch's rows at most, and
// about its bytes.
func batchRows(rows, size int64) int64 {
	perRow := max(size/max(rows, 1), 1)
	return min(max(spoc.DefaultMaxBatchBytes/perRow, 1), spoc.DefaultBatchSize)
}

func readRowGroup(ctx context.Context, fr *pqarrow.FileReader, leaves []int, rg int, f func(arrow.RecordBatch) error) error {
	rr, err := fr.GetRecordReader(ctx, leaves, []int{rg})
	if err != nil {
		return err
	}
	defer rr.Release()
	for rr.Next() {
		if err := f(rr.RecordBatch()); err != nil {
			return err
		}
	}
	return rr.Err()
}
