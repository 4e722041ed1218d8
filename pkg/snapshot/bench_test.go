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
	body, size := generatedBody(b, spoctest.GenOptions{Records: 200_000, Seed: 1})
	store, err := sink.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	opts := options(b, body, store)
	b.SetBytes(size)
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

// BenchmarkRunDay2 measures the run of every day but the first, with the
// job's defaults: the raw archive (compressed here: the body is a plain
// file) and the change table against the day before, whose snapshot is
// published once, outside the timing.
func BenchmarkRunDay2(b *testing.B) {
	const records = 100_000
	day1, _ := generatedBody(b, spoctest.GenOptions{Records: records, Seed: 1})
	// As bench/compare.sh's day 2: about 0.3% of the plots gone, 0.4%
	// with another status, 0.1% with another area, 0.5% new.
	day2, size := generatedBody(b, spoctest.GenOptions{Records: records, Seed: 1,
		NextDay: spoctest.Changes{RemoveEvery: 306, StatusEvery: 383, AreaEvery: 1020, Added: records / 204}})
	out := b.TempDir()
	store, err := sink.NewLocal(out)
	if err != nil {
		b.Fatal(err)
	}
	opts := options(b, day1, store)
	opts.Outputs.Archive, opts.Outputs.Changes = true, true
	opts.Day = day.AddDate(0, 0, -1)
	if _, err := snapshot.Run(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	opts.Source, opts.Day = day2, day
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if err := os.RemoveAll(filepath.Join(out, snapshot.Dir(opts.Prefix, day))); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		m, err := snapshot.Run(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		if m.Changes == nil || m.Changes.Rows == 0 {
			b.Fatal("no changes found")
		}
	}
}

// generatedBody writes a generated body to a file and returns its path
// and size.
func generatedBody(b *testing.B, opts spoctest.GenOptions) (string, int64) {
	b.Helper()
	name := filepath.Join(b.TempDir(), "body.json")
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := spoctest.Generate(f, opts); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		b.Fatal(err)
	}
	return name, fi.Size()
}
