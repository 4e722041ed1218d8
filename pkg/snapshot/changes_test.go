package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/sink/sinktest"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// fakeGCS is a GCS store on an in-process emulator on loopback.
func fakeGCS(t testing.TB) sink.Store { return sinktest.GCSStore(t, "root") }

// plantedDay2 is day 1's body with planted changes: the records at
// removed gone, added copies of the first record under new ids, the
// cert_status of the records at statuses switched (ACTIVE <-> EXPIRED,
// anything else to ACTIVE), and the certified_area of the record at area
// set to 123.25. It returns the body and the change table's rows it must
// give, as changeRow renders them.
func plantedDay2(t *testing.T, day1 []byte, removed, statuses []int, added []int64, area int) ([]byte, []string) {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(day1))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	data := doc["data"].(map[string]any)
	results := data["results"].([]any)
	rec := func(i int) map[string]any { return results[i].(map[string]any) }
	status := func(r map[string]any) string {
		if s, ok := r["cert_status"].(string); ok {
			return s
		}
		return "-"
	}
	var want []string
	for _, i := range statuses {
		r := rec(i)
		before, after := status(r), "ACTIVE"
		if before == "ACTIVE" {
			after = "EXPIRED"
		}
		r["cert_status"] = after
		want = append(want, fmt.Sprintf("%v changed [cert_status] %s -> %s", r["entity_smallholder_id"], before, after))
	}
	r := rec(area)
	r["certified_area"] = json.Number("123.25")
	want = append(want, fmt.Sprintf("%v changed [certified_area] %s -> %s", r["entity_smallholder_id"], status(r), status(r)))
	for _, i := range removed {
		want = append(want, fmt.Sprintf("%v removed - %s -> -", rec(i)["entity_smallholder_id"], status(rec(i))))
	}
	for _, id := range added {
		copied := map[string]any{}
		for k, v := range rec(0) {
			copied[k] = v
		}
		copied["entity_smallholder_id"] = json.Number(fmt.Sprint(id))
		results = append(results, copied)
		want = append(want, fmt.Sprintf("%d added - - -> %s", id, status(copied)))
	}
	kept := results[:0]
	for i, r := range results {
		if !slices.Contains(removed, i) {
			kept = append(kept, r)
		}
	}
	data["results"] = kept
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	return body, want
}

// changeRows reads a change table and renders each row as
// "id change [columns] status_before -> status_after", "-" for a null.
func changeRows(t *testing.T, data []byte) []string {
	t.Helper()
	tbl := parquettest.ReadTable(t, data)
	for i, f := range tbl.Schema().Fields() {
		if want := changes.Schema(spoc.SPOC).Field(i); f.Name != want.Name || !arrow.TypeEqual(f.Type, want.Type) || f.Nullable != want.Nullable {
			t.Errorf("change table column %d: %s, want %s", i, f, want)
		}
	}
	tr := array.NewTableReader(tbl, 1<<20)
	defer tr.Release()
	var rows []string
	for tr.Next() {
		rec := tr.RecordBatch()
		text := func(c, i int) string {
			if rec.Column(c).IsNull(i) {
				return "-"
			}
			return rec.Column(c).ValueStr(i)
		}
		for i := range int(rec.NumRows()) {
			cols := text(2, i)
			if cols != "-" {
				cols = strings.NewReplacer(`"`, "", " ", ",").Replace(cols)
			}
			rows = append(rows, fmt.Sprintf("%s %s %s %s -> %s", text(0, i), text(1, i), cols, text(3, i), text(4, i)))
		}
	}
	slices.Sort(rows)
	return rows
}

// TestChangesDayOneDayTwo publishes day 1 and then day 2, with planted
// changes, on the GCS emulator, and checks the change table, the manifest
// and the metrics against what was planted.
func TestChangesDayOneDayTwo(t *testing.T) {
	store := fakeGCS(t)
	day1Body := generated(t, 500, 7)
	day1 := options(t, serve(t, day1Body), store)
	day1.Day = day.AddDate(0, 0, -1)
	day1.Outputs.Changes, day1.Outputs.Archive = true, true
	m1, err := snapshot.Run(context.Background(), day1)
	if err != nil {
		t.Fatal(err)
	}
	c1 := m1.Changes
	if c1 == nil || !c1.FirstRun || c1.Previous != "" || c1.Rows != 0 || c1.Added+c1.Removed+c1.Changed != 0 {
		t.Fatalf("day 1 changes %+v, want an empty first run", c1)
	}
	if rows := changeRows(t, readAll(t, store, "raw/spoc/20261125/"+snapshot.ChangesName)); len(rows) != 0 {
		t.Errorf("day 1 change table has rows: %v", rows)
	}

	day2Body, want := plantedDay2(t, day1Body, []int{10, 11, 12, 13}, []int{20, 21, 22}, []int64{90000, 90001, 90002, 90003, 90004}, 30)
	day2 := options(t, serve(t, day2Body), store)
	day2.Outputs.Changes, day2.Outputs.Archive = true, true
	reader, mp, _, tp := newTelemetry()
	day2.Telemetry.MeterProvider, day2.Telemetry.TracerProvider = mp, tp
	m2, err := snapshot.Run(context.Background(), day2)
	if err != nil {
		t.Fatal(err)
	}
	dir := "raw/spoc/20261126/"
	got := changeRows(t, readAll(t, store, dir+snapshot.ChangesName))
	if !slices.Equal(got, want) {
		t.Errorf("change table\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}

	c2 := m2.Changes
	if c2 == nil {
		t.Fatal("day 2 manifest has no changes")
	}
	if c2.Previous != "20261125" || c2.FirstRun || c2.Added != 5 || c2.Removed != 4 || c2.Changed != 4 || c2.Unchanged != 500-4-4 || c2.Rows != 13 {
		t.Errorf("day 2 summary %+v, want 5 added, 4 removed, 4 changed, 492 unchanged against 20261125", c2.Summary)
	}
	if want := map[string]int64{"cert_status": 3, "certified_area": 1}; fmt.Sprint(c2.Columns) != fmt.Sprint(want) {
		t.Errorf("changed columns %v, want %v", c2.Columns, want)
	}
	transitions := map[string]int64{}
	for _, row := range want {
		var id, kind, cols, from, to string
		fmt.Sscanf(row, "%s %s %s %s -> %s", &id, &kind, &cols, &from, &to)
		if from == "-" {
			from = changes.NullStatus
		}
		if kind == changes.Changed && from != to {
			transitions["spoc.status_transitions{from="+from+",to="+to+"}"]++
		}
	}
	var sum int64
	for _, tr := range c2.StatusTransitions {
		sum += tr.Count
		if transitions["spoc.status_transitions{from="+tr.From+",to="+tr.To+"}"] != tr.Count {
			t.Errorf("manifest transition %+v, planted %v", tr, transitions)
		}
	}
	if sum != 3 {
		t.Errorf("manifest transitions %+v, want 3 in all", c2.StatusTransitions)
	}

	// The manifest on the bucket, the returned one and the metrics agree.
	if stored := readManifest(t, store, dir+snapshot.ManifestName); fmt.Sprint(stored.Changes) != fmt.Sprint(c2) {
		t.Errorf("stored manifest's changes %+v, returned %+v", stored.Changes, c2)
	}
	if obj := readAll(t, store, dir+snapshot.ChangesName); c2.Size != int64(len(obj)) || !strings.HasSuffix(c2.URL, dir+snapshot.ChangesName) {
		t.Errorf("manifest change table %+v, object of %d bytes", c2.ObjectInfo, len(obj))
	}
	// The versions that begin the day: one per plot added, removed or
	// changed.
	v2 := m2.Versions
	if v2 == nil || v2.Rows != 5+4+4 {
		t.Fatalf("manifest versions %+v, want 13 rows", v2)
	}
	if obj := readAll(t, store, dir+snapshot.VersionsName); v2.Size != int64(len(obj)) || !strings.HasSuffix(v2.URL, dir+snapshot.VersionsName) {
		t.Errorf("manifest versions %+v, object of %d bytes", v2.ObjectInfo, len(obj))
	}
	metrics := points(t, reader)
	for k, v := range map[string]int64{
		"spoc.changes{kind=added}":         5,
		"spoc.changes{kind=removed}":       4,
		"spoc.changes{kind=changed}":       4,
		"spoc.output.bytes{kind=changes}":  c2.Size,
		"spoc.output.bytes{kind=versions}": v2.Size,
	} {
		if metrics[k] != v {
			t.Errorf("%s = %d, want %d", k, metrics[k], v)
		}
	}
	for k, v := range transitions {
		if metrics[k] != v {
			t.Errorf("%s = %d, want %d", k, metrics[k], v)
		}
	}
}

// A manifest that records no CRC32C of its Parquet file (an older one)
// is checked by the file's footer: one that reads with the manifest's row
// count is compared with, one that does not is passed over.
func TestPreviousWithoutCRC32CIsCheckedByItsFooter(t *testing.T) {
	store := fakeGCS(t)
	day1 := options(t, serve(t, generated(t, 100, 1)), store)
	day1.Day = day.AddDate(0, 0, -1)
	day1.Outputs.Changes = true
	if _, err := snapshot.Run(context.Background(), day1); err != nil {
		t.Fatal(err)
	}
	const manifest1 = "raw/spoc/20261125/" + snapshot.ManifestName
	editManifest(t, store, manifest1, func(m *snapshot.Manifest) { m.Parquet.CRC32C = 0 })
	day2 := options(t, serve(t, generated(t, 100, 2)), store)
	day2.Outputs.Changes, day2.Guards.SkipIfUnchanged = true, false
	m, err := snapshot.Run(context.Background(), day2)
	if err != nil {
		t.Fatal(err)
	}
	if m.Previous == nil || m.Previous.Snapshot != "20261125" || m.Previous.Verified != snapshot.VerifiedFooter || len(m.PassedOver) != 0 {
		t.Errorf("day 2 compared with %+v, passed over %+v; want day 1, by its footer", m.Previous, m.PassedOver)
	}

	// Replace day 1's Parquet, and its manifest's size, behind its back.
	info := putObject(t, store, "raw/spoc/20261125/"+snapshot.ParquetName, []byte("not parquet"))
	editManifest(t, store, manifest1, func(m *snapshot.Manifest) { m.Parquet.Size = info.Size })
	if m, err = snapshot.Run(context.Background(), day2); err != nil {
		t.Fatal(err)
	}
	if m.Previous != nil || len(m.PassedOver) != 1 || !strings.Contains(m.PassedOver[0].Reason, "footer does not read") || !m.Changes.FirstRun {
		t.Errorf("day 2 compared with %+v, passed over %+v, changes %+v; want day 1 passed over for its footer, a first run", m.Previous, m.PassedOver, m.Changes)
	}
}
