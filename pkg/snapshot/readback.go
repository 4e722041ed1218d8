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
// its row order, a decoder batch's worth of rows at a time, and hands
// each batch to f. A batch is valid during f only.
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
	rr, err := fr.GetRecordReader(ctx, leaves, nil)
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
