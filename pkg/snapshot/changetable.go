package snapshot

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// readBaseline opens the previous snapshot's Parquet object, checks it is
// the one its manifest describes, and reads its digest. The Baseline
// keeps the object for Comparison.Finish; the caller closes it at the
// end of the run.
func readBaseline(ctx context.Context, store sink.Store, name string, previous *Manifest, schema *arrow.Schema) (*changes.Baseline, sink.ReaderAt, error) {
	f, err := store.NewReaderAt(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("compare with the previous snapshot: %w", err)
	}
	if f.Size() != previous.Parquet.Size {
		f.Close()
		return nil, nil, fmt.Errorf("compare with the previous snapshot: %s holds %d bytes, its manifest says %d", store.URL(name), f.Size(), previous.Parquet.Size)
	}
	base, err := changes.ReadBaseline(ctx, schema, previous.Snapshot, f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("compare with the previous snapshot %s: %w", store.URL(name), err)
	}
	return base, f, nil
}

// changeTableBatch is the change table's rows per record batch: the
// table is small, so one batch holds a day of ordinary changes.
const changeTableBatch = 64 << 10

// writeChanges finishes the comparison cmp (nil on the first run: an empty
// change table) and writes the change table to a new object at name,
// which it returns uncommitted.
func writeChanges(ctx context.Context, opts Options, cmp *changes.Comparison, name string) (*sink.Object, *ChangesInfo, error) {
	result := &changes.Result{Summary: changes.Summary{FirstRun: true}}
	if cmp != nil {
		var err error
		if result, err = cmp.Finish(ctx); err != nil {
			return nil, nil, fmt.Errorf("compare with the previous snapshot: %w", err)
		}
	}
	obj, err := opts.Store.NewObject(ctx, name, sink.ParquetContentType)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*sink.Object, *ChangesInfo, error) {
		obj.Abort()
		return nil, nil, fmt.Errorf("write %s: %w", obj.URL(), err)
	}
	pw, err := sink.NewParquetWriter(obj, changes.Schema, opts.ChangesLayout.orDefault(DefaultChangesLayout()).options(opts.Version)...)
	if err != nil {
		return fail(err)
	}
	if err := result.WriteBatches(pw, memory.DefaultAllocator, changeTableBatch); err != nil {
		return fail(err)
	}
	if err := pw.SetMetadata("spoc.previous_snapshot", result.Summary.Previous); err != nil {
		return fail(err)
	}
	if err := pw.Close(); err != nil {
		return fail(err)
	}
	return obj, &ChangesInfo{Rows: pw.Rows(), Summary: result.Summary}, nil
}
