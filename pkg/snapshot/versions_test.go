package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/history"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// historyBody is a generated body of ds taken apart, so that the days of
// a test can be made from it: its document, and its records.
type historyBody struct {
	ds      *spoc.Dataset
	doc     map[string]any
	records []map[string]any
}

func newHistoryBody(t *testing.T, ds *spoc.Dataset, records int) historyBody {
	t.Helper()
	var buf bytes.Buffer
	if _, err := spoctest.Generate(&buf, spoctest.GenOptions{Dataset: ds, Records: records, Seed: 34}); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	dec.UseNumber()
	b := historyBody{ds: ds}
	if err := dec.Decode(&b.doc); err != nil {
		t.Fatal(err)
	}
	for _, r := range b.list() {
		b.records = append(b.records, r.(map[string]any))
	}
	return b
}

// list is the records array of the document.
func (b historyBody) list() []any {
	var v any = b.doc
	for _, k := range b.ds.Records {
		v = v.(map[string]any)[k]
	}
	return v.([]any)
}

// with is a body of the records recs (copies of which a day may change).
func (b historyBody) with(t *testing.T, recs []map[string]any) []byte {
	t.Helper()
	var v any = b.doc
	keys := b.ds.Records
	for _, k := range keys[:len(keys)-1] {
		v = v.(map[string]any)[k]
	}
	list := make([]any, len(recs))
	for i, r := range recs {
		list[i] = r
	}
	v.(map[string]any)[keys[len(keys)-1]] = list
	out, err := json.Marshal(b.doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// textField is the JSON field of the first string column that is not
// the key: the one a day changes.
func textField(ds *spoc.Dataset) string {
	for _, c := range ds.Columns[1:] {
		if c.Kind == spoc.KindString && c.JSON != "" {
			return c.JSON
		}
	}
	return ""
}

// historyDays are the days of TestVersionsGiveEverySnapshotAsOfItsDay,
// made from day 1's records: day 2 removes some plots, changes a value
// of others and adds two; day 3 is skipped; day 4 brings the removed
// plots back and changes the values back, and changes others; day 2
// also repeats two ids with other values (the first row stands); day 5
// removes the plots day 2 added and one that came back.
func historyDays(t *testing.T, b historyBody) map[string][]byte {
	t.Helper()
	ds := b.ds
	key, text := ds.Columns[0].JSON, textField(ds)
	if text == "" {
		t.Fatalf("%s has no string column to change", ds.Name)
	}
	n := len(b.records)
	removedOn2 := func(i int) bool { return i%7 == 3 && i < n-1 }
	changedOn2 := func(i int) bool { return i%5 == 1 }
	changedOn4 := func(i int) bool { return i%6 == 2 }
	clone := func(r map[string]any, suffix string) map[string]any {
		c := maps.Clone(r)
		if suffix != "" {
			s, _ := c[text].(string)
			c[text] = s + suffix
		}
		return c
	}
	var maxID int64
	for _, r := range b.records {
		if id, err := r[key].(json.Number).Int64(); err == nil {
			maxID = max(maxID, id)
		}
	}
	newPlots := []map[string]any{clone(b.records[0], " (new)"), clone(b.records[1], " (new)")}
	for k, r := range newPlots {
		r[key] = json.Number(fmt.Sprint(maxID + 1 + int64(k)))
	}

	var day2, day4, day5 []map[string]any
	for i, r := range b.records {
		switch {
		case removedOn2(i):
		case changedOn2(i):
			day2 = append(day2, clone(r, " v2"))
		default:
			day2 = append(day2, clone(r, ""))
		}
		if changedOn4(i) {
			day4 = append(day4, clone(r, " v4"))
		} else {
			day4 = append(day4, clone(r, ""))
		}
	}
	// Later rows of an id, with other values, which the first stands for:
	// one of a plot kept, one of a plot added.
	day2 = append(day2, newPlots...)
	day2 = append(day2, clone(b.records[4], " repeated"), clone(newPlots[0], " repeated"))
	day4 = append(day4, newPlots...)
	const cameBack = 3 // removed on day 2
	for i, r := range day4[:n] {
		if i != cameBack {
			day5 = append(day5, r)
		}
	}
	return map[string][]byte{
		"20261201": b.with(t, b.records),
		"20261202": b.with(t, day2),
		"20261204": b.with(t, day4),
		"20261205": b.with(t, day5),
	}
}

// rowTexts are the rows of a Parquet file's first len(columns) columns,
// each as the text of its cells, with the values of extra columns.
func rowTexts(t *testing.T, data []byte, columns int, extra ...string) (rows []string, ids []string, extras [][]string) {
	t.Helper()
	tbl := parquettest.ReadTable(t, data)
	r := array.NewTableReader(tbl, 0)
	defer r.Release()
	for r.Next() {
		rec := r.RecordBatch()
		idx := make([]int, len(extra))
		for k, name := range extra {
			idx[k] = rec.Schema().FieldIndices(name)[0]
		}
		for i := range int(rec.NumRows()) {
			cells := make([]string, columns)
			for c := range columns {
				cells[c] = cellExact(rec.Column(c), i)
			}
			rows, ids = append(rows, strings.Join(cells, "|")), append(ids, cells[0])
			var ex []string
			for _, k := range idx {
				ex = append(ex, cellExact(rec.Column(k), i))
			}
			extras = append(extras, ex)
		}
	}
	return rows, ids, extras
}

// cellExact is a cell as text that tells every two values apart: a
// float by its bits.
func cellExact(col arrow.Array, i int) string {
	if f, ok := col.(*array.Float64); ok && f.IsValid(i) {
		return fmt.Sprintf("%x", f.Value(i))
	}
	if d, ok := col.(*array.Date32); ok && d.IsValid(i) {
		return d.Value(i).FormattedString()
	}
	return parquettest.CellText(col, i)
}

// TestVersionsGiveEverySnapshotAsOfItsDay publishes days of every
// dataset, on both stores, with plots removed and coming back, values
// changed and changed back, and a skipped day, and checks that for every
// day D the newest version of each plot with valid_from <= D, without
// the removed ones, is day D's snapshot row for row (the first row of an
// id standing for it, as in the change table).
func TestVersionsGiveEverySnapshotAsOfItsDay(t *testing.T) {
	for _, ds := range slices.SortedFunc(maps.Values(spoc.Datasets()), func(a, b *spoc.Dataset) int { return strings.Compare(a.Name, b.Name) }) {
		for _, st := range []struct {
			name  string
			store func(t *testing.T) sink.Store
		}{
			{"local", func(t *testing.T) sink.Store { s, _ := sink.NewLocal(t.TempDir()); return s }},
			{"gcs", func(t *testing.T) sink.Store { return fakeGCS(t) }},
		} {
			t.Run(ds.Name+"/"+st.name, func(t *testing.T) {
				store := st.store(t)
				days := historyDays(t, newHistoryBody(t, ds, 300))
				dates := slices.Sorted(maps.Keys(days))
				columns := len(ds.Columns)
				for _, d := range dates {
					opts := options(t, serve(t, days[d]), store)
					opts.Dataset, opts.Prefix = ds, ds.Prefix
					opts.Day, _ = time.Parse(snapshot.DateLayout, d)
					opts.Outputs.Changes = true
					opts.Guards.MaxFallPercent = 100 // day 2 and day 5 remove plots on purpose
					opts.Decoder = []spoc.DecoderOption{spoc.WithBatchSize(64)}
					opts.Layouts = snapshot.NewLayouts(ds, "test", snapshot.Layout{RowGroupRows: 100}, snapshot.Layout{})
					m, err := snapshot.Run(context.Background(), opts)
					if err != nil {
						t.Fatalf("%s: %v", d, err)
					}
					if m.Versions == nil || m.Versions.URL == "" {
						t.Fatalf("%s: the manifest names no versions object", d)
					}
				}
				names := snapshot.NamesOf(ds)
				type version struct {
					from, change, row string
				}
				byID := map[string][]version{}
				for _, d := range dates {
					data := readAll(t, store, path.Join(ds.Prefix, d, names.Versions))
					rows, ids, extras := rowTexts(t, data, columns, history.ValidFrom, history.Change)
					for i, id := range ids {
						from := strings.ReplaceAll(extras[i][0], "-", "")
						if from != d {
							t.Fatalf("%s: a version valid from %s", d, from)
						}
						byID[id] = append(byID[id], version{from, extras[i][1], rows[i]})
					}
					if d == dates[0] && slices.ContainsFunc(extras, func(e []string) bool { return e[1] != changes.Added }) {
						t.Errorf("%s, the first day: a version that is not added", d)
					}
				}
				kinds := map[string]bool{}
				for _, d := range dates {
					want := map[string]string{}
					rows, ids, _ := rowTexts(t, readAll(t, store, path.Join(ds.Prefix, d, names.Parquet)), columns)
					for i, id := range ids {
						if _, dup := want[id]; !dup {
							want[id] = rows[i]
						}
					}
					got := map[string]string{}
					for id, vs := range byID {
						var last *version
						for k := range vs {
							if vs[k].from <= d && (last == nil || vs[k].from > last.from) {
								last = &vs[k]
							}
						}
						if last != nil && last.change != changes.Removed {
							got[id] = last.row
						}
						if last != nil && last.from == d {
							kinds[last.change] = true
						}
					}
					for id, row := range want {
						if got[id] != row {
							t.Errorf("as of %s, plot %s is\n%q\nin the versions, and\n%q\nin the snapshot", d, id, got[id], row)
						}
					}
					for id := range got {
						if _, ok := want[id]; !ok {
							t.Errorf("as of %s, plot %s is in the versions, not in the snapshot", d, id)
						}
					}
				}
				for _, k := range []string{changes.Added, changes.Changed, changes.Removed} {
					if !kinds[k] {
						t.Errorf("no day began a version %s: the days test less than they should", k)
					}
				}
			})
		}
	}
}
