package snapshot

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/geo"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// bytesFile is a Parquet file in memory as a store's ReaderAt, failing
// every read past failAt (0: none), counting the bytes read.
type bytesFile struct {
	*bytes.Reader
	failAt int64
	read   *atomic.Int64
}

var errReadFault = errors.New("read fault")

func (f bytesFile) ReadAt(p []byte, off int64) (int, error) {
	if f.failAt > 0 && off+int64(len(p)) > f.failAt {
		return 0, errReadFault
	}
	n, err := f.Reader.ReadAt(p, off)
	f.read.Add(int64(n))
	return n, err
}
func (f bytesFile) Close() error      { return nil }
func (f bytesFile) Generation() int64 { return 1 }

// layerInputs are a snapshot of 100,000 generated plots, written as the
// job writes it, with the point count and the decimals of its layer.
func layerInputs(t *testing.T) ([]byte, *geo.Points, []uint8) {
	t.Helper()
	var body bytes.Buffer
	if _, err := spoctest.Generate(&body, spoctest.GenOptions{Records: 100_000, Seed: 3, Geo: 97}); err != nil {
		t.Fatal(err)
	}
	dec := spoc.NewDecoder(&body)
	defer dec.Release()
	var snap bytes.Buffer
	// Row groups of 8,192 rows: the snapshot is read a group at a time.
	pw, err := sink.NewParquetWriter(&snap, spoc.Schema, sink.WithMaxRowGroupLength(8192))
	if err != nil {
		t.Fatal(err)
	}
	points, err := geo.NewPoints(spoc.SPOC)
	if err != nil {
		t.Fatal(err)
	}
	for dec.Next() {
		if err := pw.Write(dec.RecordBatch()); err != nil {
			t.Fatal(err)
		}
		if err := points.Add(dec.RecordBatch()); err != nil {
			t.Fatal(err)
		}
	}
	if err := dec.Err(); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	return snap.Bytes(), points, dec.CoordinateDecimals()
}

// TestWriteLayerFails checks that a layer whose encoding fails (a full
// disk, a failed upload) or whose snapshot cannot be read back ends with
// that error; that a failed encoding stops the reading of the snapshot
// at once rather than at its end; and that the goroutine reading it is
// gone soon after writeLayer returns: a failed attempt leaves nothing
// running into the next.
func TestWriteLayerFails(t *testing.T) {
	snap, points, decimals := layerInputs(t)
	// The bytes a whole layer reads of the snapshot (its columns only).
	var whole atomic.Int64
	w, err := geo.NewWriter(nil, spoc.SPOC, points, decimals)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := sink.NewParquetWriter(io.Discard, geo.Schema(spoc.SPOC))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeLayer(context.Background(), bytesFile{Reader: bytes.NewReader(snap), read: &whole}, geo.SnapshotColumns(spoc.SPOC), w, pw); err != nil {
		t.Fatal(err)
	}
	if err := w.Check(); err != nil || w.Rows() != int64(len(decimals)) {
		t.Fatalf("%d rows of %d written (%v)", w.Rows(), len(decimals), err)
	}
	for _, tc := range []struct {
		name   string
		failAt int64     // of the snapshot's reads
		out    io.Writer // of the layer's bytes
		want   error
		// readAtMost is the share of the bytes a whole layer reads that
		// may be read before writeLayer returns. The layer's writer
		// fails only once a row group and the sink's write buffer are
		// full, about two thirds in; read to its end, the snapshot
		// would be read whole.
		readAtMost float64
	}{
		{"the layer's writer fails", 0, &failAfter{n: 64 << 10}, errDiskFull, 0.9},
		{"the snapshot's reads fail", int64(len(snap)) / 2, io.Discard, errReadFault, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			w, err := geo.NewWriter(nil, spoc.SPOC, points, decimals)
			if err != nil {
				t.Fatal(err)
			}
			// Row groups of a few thousand rows, so that the layer's
			// bytes reach the writer before the snapshot is read whole.
			pw, err := sink.NewParquetWriter(tc.out, geo.Schema(spoc.SPOC), sink.WithMaxRowGroupLength(4096))
			if err != nil {
				t.Fatal(err)
			}
			var read atomic.Int64
			err = writeLayer(context.Background(), bytesFile{Reader: bytes.NewReader(snap), failAt: tc.failAt, read: &read}, geo.SnapshotColumns(spoc.SPOC), w, pw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("writeLayer = %v, want %v", err, tc.want)
			}
			if share := float64(read.Load()) / float64(whole.Load()); share > tc.readAtMost {
				t.Errorf("%.0f%% of what a whole layer reads was read before writeLayer returned, want at most %.0f%%", 100*share, 100*tc.readAtMost)
			}
			for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; {
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines left running after writeLayer returned", runtime.NumGoroutine()-before)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}
