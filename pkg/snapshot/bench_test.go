package snapshot_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// BenchmarkRun measures the whole path the job takes from a saved body to
// a committed Parquet file and manifest on local disk: open, decode,
// encode, fsync, rename.
func BenchmarkRun(b *testing.B) {
	const records = 200_000
	body := filepath.Join(b.TempDir(), "body.json")
	f, err := os.Create(body)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := spoctest.Generate(f, spoctest.GenOptions{Records: records, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(body)
	if err != nil {
		b.Fatal(err)
	}
	store, err := sink.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	opts := options(b, body, store)
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		m, err := snapshot.Run(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		if m.Parquet.Rows == 0 {
			b.Fatal("no rows written")
		}
	}
}
