package snapshot_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/fetch"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var day = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

func options(t testing.TB, source string, store sink.Store) snapshot.Options {
	t.Helper()
	client, err := fetch.NewClient(fetch.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return snapshot.Options{
		Source: source,
		Client: client,
		Store:  store,
		Prefix: "raw/spoc",
		Day:    day,
		Retry:  fetch.Backoff{Attempts: 1},
		// No Layouts: the default, the dataset's dictionary columns, and
		// every column at sink's zstd level (the job's default, GPS
		// columns included).
		Guards:  snapshot.Guards{MinRecords: 1, MaxWithoutIDPercent: 20},
		Version: "test",
	}
}

// TestGolden decodes a small hand-written body with every quirk, writes
// it as Parquet, reads the file back with pqarrow and compares the schema
// and every value, and the statistics, with the golden files.
func TestGolden(t *testing.T) {
	out := t.TempDir()
	store, _ := sink.NewLocal(out)
	m, err := snapshot.Run(context.Background(), options(t, "testdata/small.json", store))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, "raw/spoc/20261126", snapshot.ParquetName))
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/small.golden", dumpParquet(t, data))
	stats, _ := json.MarshalIndent(m.Stats, "", "  ")
	checkGolden(t, "testdata/small.stats.golden.json", string(stats)+"\n")
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test -update and review the diff):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// dumpParquet renders a Parquet file as text: the Arrow schema read back,
// then one line per row with every value.
func dumpParquet(t *testing.T, data []byte) string {
	t.Helper()
	tbl := parquettest.ReadTable(t, data)
	var b strings.Builder
	for _, f := range tbl.Schema().Fields() {
		fmt.Fprintf(&b, "%s: %s nullable=%v\n", f.Name, f.Type, f.Nullable)
	}
	tr := array.NewTableReader(tbl, 1<<20)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := range int(rec.NumRows()) {
			b.WriteString("\n")
			for c, col := range rec.Columns() {
				fmt.Fprintf(&b, "%s=%s ", rec.Schema().Field(c).Name, valueText(col, i))
			}
		}
	}
	return b.String() + "\n"
}

// valueText is parquettest.CellText with strings quoted, as the golden
// files have them.
func valueText(col arrow.Array, i int) string {
	if s, ok := col.(*array.String); ok && !s.IsNull(i) {
		return fmt.Sprintf("%q", s.Value(i))
	}
	return parquettest.CellText(col, i)
}

func TestManifestFailureRemovesTheParquetObject(t *testing.T) {
	out := t.TempDir()
	local, _ := sink.NewLocal(out)
	store := &failingManifestStore{Store: local}
	opts := options(t, "testdata/small.json", store)
	opts.Outputs.Changes, opts.Outputs.Archive = true, true
	_, err := snapshot.Run(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("error %v, want the manifest's failure", err)
	}
	entries, _ := os.ReadDir(filepath.Join(out, "raw/spoc/20261126"))
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// failingManifestStore fails the manifest's write.
type failingManifestStore struct{ sink.Store }

func (s *failingManifestStore) NewObject(ctx context.Context, name, contentType string) (*sink.Object, error) {
	if strings.HasSuffix(name, snapshot.ManifestName) {
		return nil, errors.New("create manifest: disk full")
	}
	return s.Store.NewObject(ctx, name, contentType)
}

func (s *failingManifestStore) Create(ctx context.Context, name, contentType string, data []byte) (sink.ObjectInfo, error) {
	if strings.HasSuffix(name, snapshot.ManifestName) {
		return sink.ObjectInfo{}, errors.New("create manifest: disk full")
	}
	return s.Store.Create(ctx, name, contentType, data)
}

func (s *failingManifestStore) Replace(ctx context.Context, name, contentType string, data []byte, generation int64) (sink.ObjectInfo, error) {
	if strings.HasSuffix(name, snapshot.ManifestName) {
		return sink.ObjectInfo{}, errors.New("replace manifest: disk full")
	}
	return s.Store.Replace(ctx, name, contentType, data, generation)
}

// archiveCopyFailingStore cannot copy the staged archive into place, the
// last object a run commits before its manifest.
type archiveCopyFailingStore struct{ sink.Store }

func (s *archiveCopyFailingStore) Copy(ctx context.Context, from string, generation int64, to string, toGeneration int64) (sink.ObjectInfo, error) {
	if strings.HasSuffix(to, snapshot.ArchiveName) {
		return sink.ObjectInfo{}, fmt.Errorf("copy %s: permission denied", to)
	}
	return s.Store.Copy(ctx, from, generation, to, toGeneration)
}

// A run whose archive cannot be published takes back the snapshot and the
// change table it had committed, and the staged archive: the day's
// folder ends as it was before the run.
func TestArchiveFailureTakesBackTheSnapshot(t *testing.T) {
	out := t.TempDir()
	local, _ := sink.NewLocal(out)
	opts := options(t, "testdata/small.json", &archiveCopyFailingStore{Store: local})
	opts.Outputs.Changes, opts.Outputs.Archive = true, true
	_, err := snapshot.Run(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("error %v, want the copy's failure", err)
	}
	entries, _ := os.ReadDir(filepath.Join(out, "raw/spoc/20261126"))
	if len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("left behind: %v", names)
	}
}

func TestDir(t *testing.T) {
	kl, _ := time.LoadLocation("Asia/Kuala_Lumpur")
	// 20:00 UTC on the 25th is already the 26th in Kuala Lumpur.
	got := snapshot.Dir("raw/mspo/api/spoc/get-spoc-list-public", time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC).In(kl))
	if got != "raw/mspo/api/spoc/get-spoc-list-public/20261126" {
		t.Errorf("Dir = %q", got)
	}
}
