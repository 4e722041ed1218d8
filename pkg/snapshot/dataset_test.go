package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

func TestNamesOfSPOCAreTheConstants(t *testing.T) {
	got := snapshot.NamesOf(spoc.SPOC)
	want := snapshot.Names{Parquet: snapshot.ParquetName, Manifest: snapshot.ManifestName, Archive: snapshot.ArchiveName, Changes: snapshot.ChangesName, Digest: snapshot.DigestName, Versions: snapshot.VersionsName, Geo: snapshot.GeoName, Lock: snapshot.LockName}
	if got != want {
		t.Errorf("NamesOf(SPOC) = %+v, want %+v", got, want)
	}
}

// oshBody is an OSH body of the records with ids, whose cert_status is
// EXPIRED for the ids in expired.
func oshBody(ids []int, expired ...int) []byte {
	var recs []string
	for _, id := range ids {
		status := "ACTIVE"
		if slices.Contains(expired, id) {
			status = "EXPIRED"
		}
		recs = append(recs, fmt.Sprintf(`{"entity_smallholder_id":%d,"entity_code":"ORS%05d","entity_name":"FELDA %d","mpob_no":null,`+
			`"planted_area":"4.0000","certified_area":"3.5000","gps_coordinate_lat":"3.12345","gps_coordinate_long":"101.12345",`+
			`"name":"A BIN B","stateId":6,"state":"PAHANG","daerahId":null,"daerah":null,"lot_no":"L%d","cert_status":"%s",`+
			`"cert_no":"MYMS%08d","created_at":"2024-01-02T03:04:05.000Z","updated_at":"2024-01-02T03:04:05.000Z","track_id":"MTS%07d"}`,
			id, id, id%7, id, status, id, id))
	}
	return []byte(`{"status":true,"data":{"page":1,"page_size":10,"data":[` + strings.Join(recs, ",") + `]}}`)
}

// The OSH dataset publishes through the same run as SPOC: its own object
// names and schema, the archive, and a change table on the second day.
func TestOSHDayOneDayTwo(t *testing.T) {
	out := t.TempDir()
	store, _ := sink.NewLocal(out)
	var day1, day2 []int
	for id := 1; id <= 60; id++ {
		day1 = append(day1, id)
		if id != 10 {
			day2 = append(day2, id)
		}
	}
	day2 = append(day2, 61)
	for i, body := range [][]byte{oshBody(day1), oshBody(day2, 3, 4, 5)} {
		opts := options(t, serve(t, body), store)
		opts.Dataset, opts.Prefix = spoc.OSH, spoc.OSH.Prefix
		opts.Day = day.AddDate(0, 0, i)
		opts.Outputs.Archive, opts.Outputs.Changes = true, true
		m, err := snapshot.Run(context.Background(), opts)
		if err != nil {
			t.Fatalf("day %d: %v", i+1, err)
		}
		dir := filepath.Join(out, spoc.OSH.Prefix, opts.Day.Format(snapshot.DateLayout))
		names := snapshot.NamesOf(spoc.OSH)
		want := []string{names.Changes, names.Versions, names.Digest, names.Archive, names.Manifest, names.Parquet}
		if got := files(t, dir); !slices.Equal(got, want) {
			t.Errorf("day %d holds %v, want %v", i+1, got, want)
		}
		data, err := os.ReadFile(filepath.Join(dir, names.Parquet))
		if err != nil {
			t.Fatal(err)
		}
		tbl := parquettest.ReadTable(t, data)
		if tbl.NumRows() != int64(len([][]int{day1, day2}[i])) || tbl.Schema().NumFields() != len(spoc.OSH.Columns) ||
			tbl.Schema().Field(1).Name != "entity_code" {
			t.Errorf("day %d: %d rows, schema %s", i+1, tbl.NumRows(), tbl.Schema())
		}
		if i == 1 {
			c := m.Changes
			if c == nil || c.FirstRun || c.Added != 1 || c.Removed != 1 || c.Changed != 3 {
				t.Errorf("day 2 changes %+v, want 1 added, 1 removed, 3 changed", c)
			}
		}
	}
}

// A SPOC body published as OSH fails, naming where the records were
// looked for, and publishes nothing.
func TestWrongDatasetBodyPublishesNothing(t *testing.T) {
	out := t.TempDir()
	store, _ := sink.NewLocal(out)
	opts := options(t, serve(t, generated(t, 50, 1)), store)
	opts.Dataset, opts.Prefix = spoc.OSH, spoc.OSH.Prefix
	_, err := snapshot.Run(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "no data.data array, where the osh dataset has its records") {
		t.Fatalf("run: %v, want the records path named", err)
	}
	if got := files(t, out); len(got) != 0 {
		t.Errorf("left behind: %v", got)
	}
}

// generatedOSH is a generated OSH body of n records.
func generatedOSH(t *testing.T, n int, seed uint64) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := spoctest.Generate(&b, spoctest.GenOptions{Records: n, Seed: seed, Dataset: spoc.OSH}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The OSH raw archive replays to the same table, and the record-count
// guard refuses an OSH day that fell, keeping its body under rejected/.
func TestOSHReplayAndGuard(t *testing.T) {
	out := t.TempDir()
	store, _ := sink.NewLocal(out)
	names := snapshot.NamesOf(spoc.OSH)
	oshOptions := func(source string, d int) snapshot.Options {
		opts := options(t, source, store)
		opts.Dataset, opts.Prefix = spoc.OSH, spoc.OSH.Prefix
		opts.Day, opts.Outputs.Archive, opts.Guards.MaxFallPercent = day.AddDate(0, 0, d), true, 10
		return opts
	}
	dayDir := func(d int) string {
		return filepath.Join(out, spoc.OSH.Prefix, day.AddDate(0, 0, d).Format(snapshot.DateLayout))
	}
	if _, err := snapshot.Run(context.Background(), oshOptions(serve(t, generatedOSH(t, 3000, 1)), 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.Run(context.Background(), oshOptions(filepath.Join(dayDir(0), names.Archive), 1)); err != nil {
		t.Fatalf("replay: %v", err)
	}
	original, _ := os.ReadFile(filepath.Join(dayDir(0), names.Parquet))
	replayed, _ := os.ReadFile(filepath.Join(dayDir(1), names.Parquet))
	if dumpParquet(t, original) != dumpParquet(t, replayed) {
		t.Error("the replayed archive gives another table")
	}
	_, err := snapshot.Run(context.Background(), oshOptions(serve(t, generatedOSH(t, 1500, 2)), 2))
	if !errors.Is(err, snapshot.ErrRecordsFell) {
		t.Fatalf("a day with half the records: %v, want ErrRecordsFell", err)
	}
	if got := files(t, dayDir(2)); !slices.Equal(got, []string{"rejected/" + names.Archive}) {
		t.Errorf("the refused day holds %v, want only its rejected body", got)
	}
}

// An OSH run's metrics are named for its dataset: osh.records, not
// spoc.records, so that two lists never share a series.
func TestOSHMetricNames(t *testing.T) {
	reader, mp, _, _ := newTelemetry()
	store, _ := sink.NewLocal(t.TempDir())
	opts := options(t, serve(t, generatedOSH(t, 500, 4)), store)
	opts.Dataset, opts.Prefix, opts.Telemetry.MeterProvider = spoc.OSH, spoc.OSH.Prefix, mp
	if _, err := snapshot.Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	got := points(t, reader)
	var osh, other int
	for name := range got {
		if strings.HasPrefix(name, "osh.") {
			osh++
		} else {
			other++
			t.Errorf("metric %s is not named for the osh dataset", name)
		}
	}
	if got["osh.records{cert_status=ACTIVE,outcome=written}"] == 0 || osh == 0 {
		t.Errorf("no osh.records of written ACTIVE plots among %d osh metrics", osh)
	}
	if snapshot.MetricName(spoc.SPOC, snapshot.MetricRecords) != snapshot.MetricRecords {
		t.Error("the SPOC dataset's metric names changed")
	}
}

// The snapshot dictionary-encodes the columns its dataset marks, and no
// other, with no dictionary list in the options: it is the layout's
// default, for each dataset.
func TestSnapshotDictionaryColumnsAreTheDatasets(t *testing.T) {
	for _, tc := range []struct {
		ds   *spoc.Dataset
		body []byte
	}{
		{spoc.SPOC, generated(t, 300, 5)},
		{spoc.OSH, generatedOSH(t, 300, 5)},
		{spoc.GM, generatedGMBody(t, 300, 5)},
	} {
		t.Run(tc.ds.Name, func(t *testing.T) {
			out := t.TempDir()
			store, _ := sink.NewLocal(out)
			opts := options(t, serve(t, tc.body), store)
			opts.Dataset, opts.Prefix = tc.ds, tc.ds.Prefix
			if opts.Layouts.Snapshot != nil {
				t.Fatal("the test's options name dictionary columns")
			}
			if _, err := snapshot.Run(context.Background(), opts); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(out, tc.ds.Prefix, opts.Day.Format(snapshot.DateLayout), snapshot.NamesOf(tc.ds).Parquet))
			if err != nil {
				t.Fatal(err)
			}
			rg := parquettest.Open(t, data).MetaData().RowGroup(0)
			var dictionary []string
			for i := range rg.NumColumns() {
				cc, err := rg.ColumnChunk(i)
				if err != nil {
					t.Fatal(err)
				}
				if cc.HasDictionaryPage() {
					dictionary = append(dictionary, cc.PathInSchema().String())
				}
			}
			if want := tc.ds.DictionaryColumns(); !slices.Equal(dictionary, want) {
				t.Errorf("dictionary-encoded columns %v, want the dataset's %v", dictionary, want)
			}
		})
	}
}
