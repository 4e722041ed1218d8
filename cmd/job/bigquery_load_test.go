package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/calee-data/mspo-spoc/internal/fakebigquery"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

const testBigQueryDataset = "my-project.mspo"

// startFakeBigQuery starts the fake BigQuery API with list ds's native
// tables, reading the loads' sources from the GCS emulator as BigQuery
// reads them from Cloud Storage.
func startFakeBigQuery(t *testing.T, client *storage.Client, ds *spoc.Dataset) *fakebigquery.Server {
	t.Helper()
	read := func(ctx context.Context, uri string) ([]byte, error) {
		bucket, name, err := sink.ParseGCSURL(uri)
		if err != nil {
			return nil, err
		}
		r, err := client.Bucket(bucket).Object(name).NewReader(ctx)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		var b bytes.Buffer
		_, err = b.ReadFrom(r)
		return b.Bytes(), err
	}
	var tables []string
	for _, kind := range []string{tableSnapshots, tableChanges, tableVersions, tableGeo} {
		tables = append(tables, testBigQueryDataset+"."+nativeTable(ds, kind))
	}
	srv := fakebigquery.New(read, tables...)
	t.Cleanup(srv.Close)
	return srv
}

// gcsDay is every object of a day's folder, by name: its bytes and
// generation.
func gcsDay(t *testing.T, c *storage.Client, bucket, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range bucketObjects(t, c, bucket) {
		if strings.HasPrefix(name, dir+"/") {
			attrs, err := c.Bucket(bucket).Object(name).Attrs(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			out[name] = fmt.Sprintf("generation %d, %x", attrs.Generation, readObject(t, c, bucket, name))
		}
	}
	return out
}

// checkDayLoaded checks that BigQuery's partitions of day hold the day's
// committed objects, byte for byte, one table each, and that the loads
// since the first of from were the day's, one per object.
func checkDayLoaded(t *testing.T, bq *fakebigquery.Server, c *storage.Client, dir, day string, from int) {
	t.Helper()
	m := readManifest(t, readObject(t, c, "calee-test", dir+"/"+snapshot.NamesOf(spoc.SPOC).Manifest))
	objects := dayObjects(spoc.SPOC, &m, dir, func(name string) string { return "gs://calee-test/" + name })
	if len(objects) != 4 {
		t.Fatalf("the day has %d objects to load, want the snapshot, the change table, the versions and the layer: %+v", len(objects), objects)
	}
	loads := bq.Loads()[from:]
	var tables []string
	for _, l := range loads {
		tables = append(tables, l.Table)
	}
	partitions := bq.Partitions()
	for _, o := range objects {
		table := testBigQueryDataset + "." + o.Table + "$" + day
		if !slices.Contains(tables, table) {
			t.Errorf("no load into %s; the loads were %v", table, tables)
		}
		p := partitions[table]
		bucket, name, _ := sink.ParseGCSURL(o.URI)
		if !strings.HasPrefix(o.URI, "gs://calee-test/"+dir+"/") {
			t.Errorf("%s loads %s, not an object of the day", table, o.URI)
		}
		if p.URI != o.URI || !bytes.Equal(p.Data, readObject(t, c, bucket, name)) || p.Rows != o.Rows {
			t.Errorf("%s holds %s (%d rows), want the committed %s (%d rows)", table, p.URI, p.Rows, o.URI, o.Rows)
		}
	}
	if len(loads) != len(objects) {
		t.Errorf("%d loads, want %d: %v", len(loads), len(objects), tables)
	}
}

// TestJobLoadsTheDayIntoBigQuery: a run loads each of the day's committed
// objects into its native table's partition of the day, replacing it; a
// rerun while BigQuery fails exits 1 within SPOC_BIGQUERY_TIMEOUT and
// leaves the day (objects and partitions) as it was; once BigQuery is
// back, a rerun that finds the day unchanged loads it; a day published
// while its load failed does not block the next day, and is loaded by
// the next run of the day.
func TestJobLoadsTheDayIntoBigQuery(t *testing.T) {
	startFakeGCS(t, "calee-test")
	client := gcsClient(t)
	bq := startFakeBigQuery(t, client, spoc.SPOC)
	env := func(up *spoctest.Server, day string) map[string]string {
		return map[string]string{
			"SPOC_URL": up.URL, "SPOC_OUTPUT": "gs://calee-test", "SPOC_DATE": day,
			"SPOC_BIGQUERY_DATASET": testBigQueryDataset, "SPOC_BIGQUERY_ENDPOINT": bq.URL, "SPOC_BIGQUERY_TIMEOUT": "3s",
		}
	}
	day1, day2 := "20261125", "20261126"
	dir1, dir2 := testPrefix+"/"+day1, testPrefix+"/"+day2
	up1 := spoctest.NewServer(spoctest.WithRecords(3000), spoctest.WithSeed(1))
	defer up1.Close()
	up2 := spoctest.NewServer(spoctest.WithRecords(3000), spoctest.WithSeed(2))
	defer up2.Close()

	for _, d := range []struct {
		up       *spoctest.Server
		day, dir string
	}{{up1, day1, dir1}, {up2, day2, dir2}} {
		from := len(bq.Loads())
		if code, logs := runJob(t, context.Background(), env(d.up, d.day)); code != exitOK {
			t.Fatalf("day %s: exit %d\n%s", d.day, code, logs)
		}
		checkDayLoaded(t, bq, client, d.dir, d.day, from)
	}
	day1Partitions := func() map[string]fakebigquery.Partition {
		out := map[string]fakebigquery.Partition{}
		for k, v := range bq.Partitions() {
			if strings.HasSuffix(k, "$"+day1) {
				out[k] = v
			}
		}
		return out
	}
	wantDay1 := day1Partitions()

	// BigQuery down: the rerun finds the day unchanged, tries to load it,
	// and fails once the timeout passes.
	bq.Fail(fakebigquery.Unavailable)
	before, partitionsBefore := gcsDay(t, client, "calee-test", dir2), bq.Partitions()
	recv := startReceiver(t)
	start := time.Now()
	code, logs := execJob(t, "SPOC_URL="+up2.URL, "SPOC_OUTPUT=gs://calee-test", "SPOC_DATE="+day2,
		"SPOC_BIGQUERY_DATASET="+testBigQueryDataset, "SPOC_BIGQUERY_ENDPOINT="+bq.URL, "SPOC_BIGQUERY_TIMEOUT=3s",
		"OTEL_METRICS_EXPORTER=otlp", "OTEL_TRACES_EXPORTER=none",
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT="+recv.URL)
	elapsed := time.Since(start)
	if code != exitFailed {
		t.Fatalf("rerun with BigQuery down: exit %d, want %d\n%s", code, exitFailed, logs)
	}
	// It waited for the timeout, and stopped there: the client library
	// alone would retry the 500s for as long as the run's deadline (45m).
	if elapsed < 3*time.Second || elapsed > 3*time.Second+time.Minute {
		t.Errorf("the failing rerun took %s, want the 3s timeout and no more than the rest of a run", elapsed)
	}
	lines := logLines(t, logs)
	last := lines[len(lines)-1]
	if last["message"] != "run failed: the day is published, but its BigQuery load failed" || last["reason"] != reasonBigQuery ||
		!strings.Contains(fmt.Sprint(last["error"]), "the BigQuery load timeout of 3s (SPOC_BIGQUERY_TIMEOUT) passed") ||
		!strings.Contains(fmt.Sprint(last["fix"]), "SPOC_BIGQUERY_TIMEOUT") || !strings.Contains(fmt.Sprint(last["fix"]), "rerun the day") {
		t.Errorf("last log line %v", last)
	}
	if !strings.Contains(logs, "snapshot unchanged, nothing published") {
		t.Errorf("the rerun did not find the day unchanged:\n%s", logs)
	}
	points, _ := recv.points()
	for _, kind := range []string{tableSnapshots, tableChanges, tableVersions, tableGeo} {
		if k := "spoc.bigquery.loads{outcome=failed,table=" + nativeTable(spoc.SPOC, kind) + "}"; points[k] != 1 {
			t.Errorf("%s = %d, want 1; exported %v", k, points[k], slices.Sorted(maps.Keys(points)))
		}
	}
	if after := gcsDay(t, client, "calee-test", dir2); !maps.Equal(before, after) {
		t.Errorf("the failed rerun changed the day's objects: %v, were %v", slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(before)))
	}
	if !samePartitions(bq.Partitions(), partitionsBefore) {
		t.Error("the failed rerun changed BigQuery's partitions")
	}

	// BigQuery back: the rerun finds the day unchanged and loads it.
	bq.Fail(fakebigquery.None)
	from := len(bq.Loads())
	if code, logs := runJob(t, context.Background(), env(up2, day2)); code != exitOK || !strings.Contains(logs, "snapshot unchanged, nothing published") {
		t.Fatalf("rerun with BigQuery back: exit %d\n%s", code, logs)
	}
	checkDayLoaded(t, bq, client, dir2, day2, from)

	// A new body published while every load job fails: the day is the new
	// body's, BigQuery still holds the old one, and the run exits 1. The
	// next run of the day finds it unchanged and loads it.
	up3 := spoctest.NewServer(spoctest.WithRecords(3000), spoctest.WithSeed(3))
	defer up3.Close()
	bq.Fail(fakebigquery.JobError)
	partitionsBefore = bq.Partitions()
	code, logs = runJob(t, context.Background(), env(up3, day2))
	if code != exitFailed || !strings.Contains(logs, "snapshot published") || !strings.Contains(logs, "Provided Schema does not match") {
		t.Fatalf("new body with failing loads: exit %d\n%s", code, logs)
	}
	m := readManifest(t, readObject(t, client, "calee-test", dir2+"/"+snapshot.NamesOf(spoc.SPOC).Manifest))
	if !strings.HasPrefix(m.Source.URL, up3.URL) {
		t.Fatalf("the day is not the new body's: %s", m.Source.URL)
	}
	if !samePartitions(bq.Partitions(), partitionsBefore) {
		t.Error("failed load jobs changed BigQuery's partitions")
	}
	// A day whose load failed does not block the next day's publish and
	// load.
	bq.Fail(fakebigquery.None)
	day3, dir3 := "20261127", testPrefix+"/20261127"
	from = len(bq.Loads())
	if code, logs := runJob(t, context.Background(), env(up3, day3)); code != exitOK {
		t.Fatalf("the next day after a failed load: exit %d\n%s", code, logs)
	}
	checkDayLoaded(t, bq, client, dir3, day3, from)
	from = len(bq.Loads())
	if code, logs := runJob(t, context.Background(), env(up3, day2)); code != exitOK || !strings.Contains(logs, "snapshot unchanged, nothing published") {
		t.Fatalf("the next run of the day: exit %d\n%s", code, logs)
	}
	checkDayLoaded(t, bq, client, dir2, day2, from)

	if !samePartitions(day1Partitions(), wantDay1) {
		t.Error("loads of the second day changed the first day's partitions")
	}
}

func samePartitions(a, b map[string]fakebigquery.Partition) bool {
	return maps.EqualFunc(a, b, func(x, y fakebigquery.Partition) bool {
		return x.URI == y.URI && x.Rows == y.Rows && bytes.Equal(x.Data, y.Data)
	})
}

// TestBigQuerySettingsRefused: the loads' settings are checked before
// anything is fetched.
func TestBigQuerySettingsRefused(t *testing.T) {
	up := spoctest.NewServer(spoctest.WithRecords(10))
	defer up.Close()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"local output", map[string]string{"SPOC_BIGQUERY_DATASET": "my-project.mspo"}, "SPOC_OUTPUT must be gs://BUCKET"},
		{"no project", map[string]string{"SPOC_OUTPUT": "gs://calee-test", "SPOC_BIGQUERY_DATASET": "mspo"}, "is not PROJECT.DATASET"},
		{"endpoint without dataset", map[string]string{"SPOC_BIGQUERY_ENDPOINT": "https://bq.example"}, "set without SPOC_BIGQUERY_DATASET"},
		{"plain http off loopback", map[string]string{"SPOC_OUTPUT": "gs://calee-test", "SPOC_BIGQUERY_DATASET": "my-project.mspo", "SPOC_BIGQUERY_ENDPOINT": "http://bq.example"}, "plain http is only for a test server on a loopback address"},
		{"zero timeout", map[string]string{"SPOC_BIGQUERY_TIMEOUT": "0s"}, "SPOC_BIGQUERY_TIMEOUT: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": t.TempDir()}
			maps.Copy(env, tt.env)
			code, logs := runJob(t, context.Background(), env)
			if code != exitConfig || !strings.Contains(logs, tt.want) {
				t.Errorf("exit %d, want %d with %q\n%s", code, exitConfig, tt.want, logs)
			}
		})
	}
	if up.Requests() != 0 {
		t.Errorf("the upstream got %d requests", up.Requests())
	}
}

// TestDayObjects: each list loads the objects its day has, each into its
// own native table: a list without coordinates has no layer, a day
// without change detection no change table and versions.
func TestDayObjects(t *testing.T) {
	// The manifest's URLs are not where a load reads from.
	info := sink.ObjectInfo{URL: "gs://elsewhere/x"}
	full := &snapshot.Manifest{
		Parquet:  snapshot.ParquetInfo{ObjectInfo: info, Rows: 10},
		Changes:  &snapshot.ChangesInfo{ObjectInfo: info, Rows: 2},
		Versions: &snapshot.VersionsInfo{ObjectInfo: info, Rows: 3},
		Geo:      &snapshot.GeoInfo{ObjectInfo: info, Rows: 10},
	}
	states := *full
	states.Geo = nil
	noChanges := *full
	noChanges.Changes, noChanges.Versions = nil, nil
	tests := []struct {
		ds   *spoc.Dataset
		m    *snapshot.Manifest
		want []string
	}{
		{spoc.SPOC, full, []string{
			"spoc_snapshots_native gs://b/p/20261126/spoc-list-public.parquet 10",
			"spoc_changes_native gs://b/p/20261126/changes/spoc-list-public.changes.parquet 2",
			"spoc_versions_native gs://b/p/20261126/history/spoc-list-public.versions.parquet 3",
			"spoc_geo_native gs://b/p/20261126/geo/spoc-list-public.geo.parquet 10"}},
		{spoc.Datasets()["states"], &states, []string{
			"states_snapshots_native gs://b/p/20261126/references-states.parquet 10",
			"states_changes_native gs://b/p/20261126/changes/references-states.changes.parquet 2",
			"states_versions_native gs://b/p/20261126/history/references-states.versions.parquet 3"}},
		{spoc.OSH, &noChanges, []string{
			"osh_snapshots_native gs://b/p/20261126/osh-all-smallholder.parquet 10",
			"osh_geo_native gs://b/p/20261126/geo/osh-all-smallholder.geo.parquet 10"}},
	}
	for _, tt := range tests {
		var got []string
		for _, o := range dayObjects(tt.ds, tt.m, "p/20261126", func(name string) string { return "gs://b/" + name }) {
			got = append(got, fmt.Sprintf("%s %s %d", o.Table, o.URI, o.Rows))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.ds.Name, got, tt.want)
		}
	}
}

// TestSeveralListsOneNotLoaded: with several lists, one whose load fails
// does not stop the others' loads, and the run's last line names it
// apart from the lists that failed to publish.
func TestSeveralListsOneNotLoaded(t *testing.T) {
	startFakeGCS(t, "calee-test")
	client := gcsClient(t)
	// The spoc list's tables only: osh's loads are refused.
	bq := startFakeBigQuery(t, client, spoc.SPOC)
	api, _ := fakeAPI(t, map[*spoc.Dataset][]spoctest.Option{spoc.SPOC: nil, spoc.OSH: nil})
	code, logs := runJob(t, context.Background(), map[string]string{
		"SPOC_DATASET": "osh,spoc", "SPOC_API_BASE": api.URL, "SPOC_OUTPUT": "gs://calee-test", "SPOC_DATE": "20261126",
		"SPOC_BIGQUERY_DATASET": testBigQueryDataset, "SPOC_BIGQUERY_ENDPOINT": bq.URL,
	})
	if code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s", code, exitFailed, logs)
	}
	checkDayLoaded(t, bq, client, spoc.SPOC.Prefix+"/20261126", "20261126", 4)
	lines := logLines(t, logs)
	last := lines[len(lines)-1]
	if last["message"] != "run finished" || last["published"] != "spoc" || last["not_loaded"] != "osh" || last["failed"] != "" || last["severity"] != "ERROR" {
		t.Errorf("summary line %v", last)
	}
	failures := 0
	for _, l := range lines {
		if l["reason"] == reasonBigQuery {
			failures++
			if l["dataset"] != "osh" || !strings.Contains(fmt.Sprint(l["error"]), "Not found: Table my-project.mspo.osh_snapshots_native") {
				t.Errorf("load failure line %v", l)
			}
		}
	}
	if failures != 1 {
		t.Errorf("%d load failure lines, want osh's", failures)
	}
}
