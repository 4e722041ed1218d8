// Package historytest checks versions tables against the snapshots they
// stand for, for the tests of every package that publishes them: the
// list as of a day D rebuilt from the versions (the newest version of
// each plot with valid_from <= D, unless it is a removal) must be day
// D's snapshot row for row, the first row of a repeated id standing for
// it.
package historytest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/history"
)

// RowTexts are the rows of a Parquet file's first columns columns, each
// as the text of its cells joined by "|", the first cell (the plot's id)
// apart, and the cells of the extra columns named.
func RowTexts(t testing.TB, data []byte, columns int, extra ...string) (rows []string, ids []string, extras [][]string) {
	t.Helper()
	tbl := parquettest.ReadTable(t, data)
	r := array.NewTableReader(tbl, 0)
	defer r.Release()
	for r.Next() {
		rec := r.RecordBatch()
		idx := make([]int, len(extra))
		for k, name := range extra {
			found := rec.Schema().FieldIndices(name)
			if len(found) == 0 {
				t.Fatalf("no column %s", name)
			}
			idx[k] = found[0]
		}
		for i := range int(rec.NumRows()) {
			cells := make([]string, columns)
			for c := range columns {
				cells[c] = CellExact(rec.Column(c), i)
			}
			rows, ids = append(rows, strings.Join(cells, "|")), append(ids, cells[0])
			var ex []string
			for _, k := range idx {
				ex = append(ex, CellExact(rec.Column(k), i))
			}
			extras = append(extras, ex)
		}
	}
	return rows, ids, extras
}

// CellExact is a cell as text that tells every two values apart: a
// float by its bits, a date as YYYY-MM-DD.
func CellExact(col arrow.Array, i int) string {
	if f, ok := col.(*array.Float64); ok && f.IsValid(i) {
		return fmt.Sprintf("%x", f.Value(i))
	}
	if d, ok := col.(*array.Date32); ok && d.IsValid(i) {
		return d.Value(i).FormattedString()
	}
	return parquettest.CellText(col, i)
}

// Version is one row of a versions table.
type Version struct {
	From   string // valid_from as YYYYMMDD, the layout of the day folders
	Change string
	Row    string // the tidy columns, as RowTexts gives them
}

// History is the versions of a prefix's days, by plot id.
type History map[string][]Version

// Add adds a day's versions table (columns tidy columns, then valid_from
// and change), and fails the test if a version in it is not valid from
// day (YYYYMMDD), or if two of its versions are of one plot (the first
// row of a repeated id stands for it). It returns the day's versions, each as its row, its
// valid_from and its change, sorted: two runs that wrote the same
// versions give the same list, whatever their row order.
func (h History) Add(t testing.TB, day string, data []byte, columns int) []string {
	t.Helper()
	rows, ids, extras := RowTexts(t, data, columns, history.ValidFrom, history.Change)
	out := make([]string, len(rows))
	seen := map[string]bool{}
	for i, id := range ids {
		from := strings.ReplaceAll(extras[i][0], "-", "")
		if from != day {
			t.Fatalf("%s: a version valid from %s", day, from)
		}
		if seen[id] {
			t.Errorf("%s: two versions of plot %s", day, id)
		}
		seen[id] = true
		h[id] = append(h[id], Version{from, extras[i][1], rows[i]})
		out[i] = rows[i] + "|" + from + "|" + extras[i][1]
	}
	slices.Sort(out)
	return out
}

// AsOf is the list as of day (YYYYMMDD) by plot id: the newest version
// of each plot valid from day or before, unless it is a removal. kinds,
// if not nil, is given the changes of the versions that begin on day and
// stand in it.
func (h History) AsOf(day string, kinds map[string]bool) map[string]string {
	got := map[string]string{}
	for id, vs := range h {
		var last *Version
		for k := range vs {
			if vs[k].From <= day && (last == nil || vs[k].From > last.From) {
				last = &vs[k]
			}
		}
		if last != nil && last.Change != changes.Removed {
			got[id] = last.Row
		}
		if last != nil && last.From == day && kinds != nil {
			kinds[last.Change] = true
		}
	}
	return got
}

// Snapshot is a snapshot's rows (its first columns columns) by plot id,
// the first row of a repeated id standing for it.
func Snapshot(t testing.TB, data []byte, columns int) map[string]string {
	t.Helper()
	want := map[string]string{}
	rows, ids, _ := RowTexts(t, data, columns)
	for i, id := range ids {
		if _, dup := want[id]; !dup {
			want[id] = rows[i]
		}
	}
	return want
}

// Differing are the ids of the plots that the list as of a day (got)
// and the day's snapshot (want) do not hold alike, sorted.
func Differing(want, got map[string]string) []string {
	var ids []string
	for id, row := range want {
		if g, ok := got[id]; !ok || g != row {
			ids = append(ids, id)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Diff says how the list as of a day (got) differs from the day's
// snapshot (want), a line a plot, sorted by id; nil if they are equal.
func Diff(want, got map[string]string) []string {
	var d []string
	for id, row := range want {
		switch g, ok := got[id]; {
		case !ok:
			d = append(d, fmt.Sprintf("plot %s is in the snapshot, not in the versions", id))
		case g != row:
			d = append(d, fmt.Sprintf("plot %s is\n%q\nin the versions, and\n%q\nin the snapshot", id, g, row))
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			d = append(d, fmt.Sprintf("plot %s is in the versions, not in the snapshot", id))
		}
	}
	slices.Sort(d)
	return d
}

// Day is one published day: its folder's name (YYYYMMDD), and the bytes
// of its snapshot and versions table.
type Day struct {
	Date               string
	Snapshot, Versions []byte
}

// AsOfDiffs rebuilds the list as of each day from the versions of the
// days (in date order) and gives, by day, how it differs from the day's
// snapshot; days that match are left out. It fails the test if a version
// is not valid from the day that holds it.
func AsOfDiffs(t testing.TB, days []Day, columns int) map[string][]string {
	t.Helper()
	h := History{}
	for _, d := range days {
		h.Add(t, d.Date, d.Versions, columns)
	}
	out := map[string][]string{}
	for _, d := range days {
		if diff := Diff(Snapshot(t, d.Snapshot, columns), h.AsOf(d.Date, nil)); diff != nil {
			out[d.Date] = diff
		}
	}
	return out
}

// CheckAsOf fails the test unless the list as of every day, rebuilt
// from the versions of the days, is the day's snapshot.
func CheckAsOf(t testing.TB, days []Day, columns int) {
	t.Helper()
	diffs := AsOfDiffs(t, days, columns)
	for _, d := range days {
		for k, line := range diffs[d.Date] {
			if k == 5 {
				t.Errorf("as of %s: %d plots differ in all", d.Date, len(diffs[d.Date]))
				break
			}
			t.Errorf("as of %s, %s", d.Date, line)
		}
	}
}
