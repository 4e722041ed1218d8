package snapshot

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"path"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/transaction"
)

// readBaseline opens the previous snapshot's Parquet object, checks it is
// the one its manifest describes, and reads its Baseline: from the
// snapshot's digest if the manifest records one and it can be used, from
// the Parquet object otherwise. from says which (BaselineFromDigest,
// BaselineFromParquet). The Baseline keeps the Parquet object for
// Comparison.Finish; the caller closes it at the end of the run.
func readBaseline(ctx context.Context, opts Options, names Names, previous *Manifest, log *slog.Logger) (_ *changes.Baseline, _ sink.ReaderAt, from string, _ error) {
	store, ds := opts.Store, opts.Dataset
	dir := path.Join(opts.Prefix, previous.Snapshot)
	name := path.Join(dir, names.Parquet)
	f, err := store.NewReaderAt(ctx, name)
	if err != nil {
		return nil, nil, "", fmt.Errorf("compare with the previous snapshot: %w", err)
	}
	if f.Size() != previous.Parquet.Size {
		f.Close()
		return nil, nil, "", fmt.Errorf("compare with the previous snapshot: %s holds %d bytes, its manifest says %d", store.URL(name), f.Size(), previous.Parquet.Size)
	}
	digest := path.Join(dir, names.Digest)
	if previous.Digest == nil {
		log.InfoContext(ctx, "the previous snapshot has no digest: reading its Parquet file", "snapshot", previous.Snapshot)
	} else if base, err := readDigest(ctx, store, digest, *previous.Digest, ds, previous.Snapshot, f); err == nil {
		return base, f, BaselineFromDigest, nil
	} else if ctx.Err() != nil {
		f.Close()
		return nil, nil, "", fmt.Errorf("compare with the previous snapshot: %w", err)
	} else {
		log.WarnContext(ctx, "the previous snapshot's digest cannot be used: reading its Parquet file instead",
			"snapshot", previous.Snapshot, "digest", store.URL(digest), "error", err.Error())
	}
	base, err := changes.ReadBaseline(ctx, ds, previous.Snapshot, f)
	if err != nil {
		f.Close()
		return nil, nil, "", fmt.Errorf("compare with the previous snapshot %s: %w", store.URL(name), err)
	}
	return base, f, BaselineFromParquet, nil
}

// readDigest reads the Baseline of snapshot from its digest at name, which
// must have the size and CRC32C its manifest recorded (want); f is the
// snapshot's Parquet object.
func readDigest(ctx context.Context, store sink.Store, name string, want sink.ObjectInfo, ds *spoc.Dataset, snapshot string, f changes.File) (*changes.Baseline, error) {
	r, err := store.NewReader(ctx, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if r.Size() != want.Size {
		return nil, fmt.Errorf("it holds %d bytes, its manifest says %d", r.Size(), want.Size)
	}
	sum := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	base, err := changes.ReadDigest(ctx, ds, snapshot, io.TeeReader(r, sum), want.Size, f)
	if err != nil {
		return nil, err
	}
	if sum.Sum32() != want.CRC32C {
		return nil, fmt.Errorf("its CRC32C is %08x, its manifest says %08x", sum.Sum32(), want.CRC32C)
	}
	return base, nil
}

// writeDigest writes the digest d of the day's snapshot to the object
// staged in tx as name.
func writeDigest(ctx context.Context, tx *transaction.Tx, opts Options, d *changes.Digester, name string) error {
	obj, err := tx.Stage(ctx, name, "application/octet-stream")
	if err != nil {
		return err
	}
	if _, err := d.WriteDigest(obj, opts.Day.Format(DateLayout)); err != nil {
		return fmt.Errorf("write %s: %w", obj.URL(), err)
	}
	return nil
}

// changeTableBatch is the change table's rows per record batch: the
// table is small, so one batch holds a day of ordinary changes. Rows
// alone bound a batch's bytes: no value of a row is long (a cert_status
// is kept to spoc.MaxStatusBytes, the other text is column names), so a
// batch holds at most about 450 bytes a row, 30 MB, on a day when every
// column of every plot changed.
const changeTableBatch = 64 << 10

// writeChanges finishes the comparison cmp (nil on the first run: an empty
// change table), handing removed the removed plots' last versions, and
// writes the change table to the object staged in tx
// as name.
func writeChanges(ctx context.Context, tx *transaction.Tx, opts Options, cmp *changes.Comparison, name string, removed changes.RemovedRows) (*ChangesInfo, error) {
	result := changes.FirstRun(opts.Dataset)
	if cmp != nil {
		var err error
		if result, err = cmp.FinishVersions(ctx, removed); err != nil {
			return nil, fmt.Errorf("compare with the previous snapshot: %w", err)
		}
	}
	obj, err := tx.Stage(ctx, name, sink.ParquetContentType)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*ChangesInfo, error) {
		return nil, fmt.Errorf("write %s: %w", obj.URL(), err)
	}
	pw, err := sink.NewParquetWriter(obj, changes.Schema(opts.Dataset), opts.Layouts.Changes...)
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
	return &ChangesInfo{Rows: pw.Rows(), Summary: result.Summary}, nil
}
