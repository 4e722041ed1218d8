package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/calee-data/mspo-spoc/internal/outside"
	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/history/historytest"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// docsHistory is the page of the history's globs and queries.
var docsHistory = filepath.Join(repoRoot, "docs", "history.md")

// historySection is the text of docs/history.md's section under heading,
// up to the next section of its level.
func historySection(t *testing.T, heading string) string {
	t.Helper()
	return markdownSection(t, docsHistory, heading)
}

// historyQueries are the SQL blocks of docs/history.md's queries, in
// order, each without its closing semicolon, so that it can be nested.
func historyQueries(t *testing.T) []string {
	t.Helper()
	var qs []string
	for _, b := range sqlBlocks(historySection(t, "Querying the history with DuckDB")) {
		qs = append(qs, strings.TrimSuffix(strings.TrimSpace(b.sql), ";"))
	}
	return qs
}

// historyGlobs are the globs of docs/history.md's table, in order:
// the versions, the snapshots, the change tables.
func historyGlobs(t *testing.T) []string {
	t.Helper()
	var globs []string
	for _, m := range regexp.MustCompile("(?m)^\\| `\\{SPOC_PREFIX\\}(/[^`]*)` \\|").FindAllStringSubmatch(historySection(t, "One glob for the whole history"), -1) {
		globs = append(globs, m[1])
	}
	want := []string{"/*/history/*.parquet", "/*/*.parquet", "/*/changes/*.parquet"}
	if !slices.Equal(globs, want) {
		t.Fatalf("docs/history.md gives the globs %q, want %q", globs, want)
	}
	return globs
}

// historyDay is a day TestDocsHistoryQueries publishes, made from the
// first day's records as next says; a skipped day is not published.
type historyDay struct {
	date    string
	next    spoctest.Changes
	skipped bool
}

// The days: the second removes, adds and changes statuses and areas;
// the third is skipped; the fourth brings most removed plots back, turns
// the areas and some statuses back and changes others; the fifth removes
// some of the plots the fourth added. Each day is made from the first
// one's records (spoctest's NextDay), so a status or area a day does not
// change is the first day's again.
var historyDays = []historyDay{
	{date: "20261201"},
	{date: "20261202", next: spoctest.Changes{RemoveEvery: 10, StatusEvery: 7, AreaEvery: 5, Added: 20}},
	{date: "20261203", skipped: true},
	{date: "20261204", next: spoctest.Changes{RemoveEvery: 15, StatusEvery: 3, Added: 30}},
	{date: "20261205", next: spoctest.Changes{RemoveEvery: 15, StatusEvery: 4, AreaEvery: 9, Added: 10}},
}

// snapPlot is a plot of a published snapshot, read in Go: each tidy
// column's value as exact text, by column name.
type snapPlot map[string]string

// snapshotRead is a published snapshot: its plots by id (the first row
// of an id standing for it) and its number of rows.
type snapshotRead struct {
	plots map[string]snapPlot
	rows  int
}

// readRows reads a Parquet file's rows, each cell as
// historytest.CellExact gives it, by column name.
func readRows(t *testing.T, data []byte) []snapPlot {
	t.Helper()
	r := array.NewTableReader(parquettest.ReadTable(t, data), 0)
	defer r.Release()
	var rows []snapPlot
	for r.Next() {
		rec := r.RecordBatch()
		for i := range int(rec.NumRows()) {
			p := snapPlot{}
			for c, f := range rec.Schema().Fields() {
				p[f.Name] = historytest.CellExact(rec.Column(c), i)
			}
			rows = append(rows, p)
		}
	}
	return rows
}

// firstByKey are rows as plots by their key, the first row of a key
// standing for it.
func firstByKey(rows []snapPlot, key string) snapshotRead {
	s := snapshotRead{plots: map[string]snapPlot{}, rows: len(rows)}
	for _, p := range rows {
		if _, dup := s.plots[p[key]]; !dup {
			s.plots[p[key]] = p
		}
	}
	return s
}

// goVersion is a version of a plot as the consecutive snapshots give
// it, computed in Go without the versions objects.
type goVersion struct {
	from, change string
	plot         snapPlot
}

// versionsOf are the versions of every plot that the published
// snapshots give, in date order: a plot begins a version on a day it
// appears (added), differs from the day before (changed) or is gone
// (removed, with its last values).
func versionsOf(snaps map[string]snapshotRead, dates []string) map[string][]goVersion {
	vs := map[string][]goVersion{}
	prev := map[string]snapPlot{}
	for _, d := range dates {
		cur := snaps[d].plots
		for id, p := range cur {
			switch before, ok := prev[id]; {
			case !ok:
				vs[id] = append(vs[id], goVersion{d, "added", p})
			case !maps.Equal(before, p):
				vs[id] = append(vs[id], goVersion{d, "changed", p})
			}
		}
		for id, p := range prev {
			if _, ok := cur[id]; !ok {
				vs[id] = append(vs[id], goVersion{d, "removed", p})
			}
		}
		prev = cur
	}
	for id := range vs {
		slices.SortFunc(vs[id], func(a, b goVersion) int { return strings.Compare(a.from, b.from) })
	}
	return vs
}

// isoDate is a YYYYMMDD day as DuckDB's dates read, YYYY-MM-DD.
func isoDate(d string) string { return d[:4] + "-" + d[4:6] + "-" + d[6:] }

// jsonText is a snapshot cell rendered as DuckDB's JSON rows render it,
// read back with encoding/json and printed with fmt.Sprint: a float as
// its shortest text, a null as Go's nil.
func jsonText(cell string, float bool) string {
	if cell == "null" {
		return fmt.Sprint(nil)
	}
	if float {
		// CellExact writes a float in hexadecimal, which ParseFloat reads
		// back to the same bits.
		f, _ := strconv.ParseFloat(cell, 64)
		return fmt.Sprint(f)
	}
	return cell
}

// The globs and the DuckDB queries of docs/history.md, as written there,
// run over days of SPOC published by the job, a skipped day among them,
// and give what the published snapshots, read in Go, say: the snapshot
// glob each day's snapshot rows and nothing else, the history glob the
// versions objects and nothing else; the list as of every day that
// day's snapshot (the first row of an id), as of a skipped day the day
// before's, as of a day before the first nothing; the timeline of the
// plots with the most versions and of one that came back the versions
// consecutive snapshots give, with valid_to the next one's valid_from;
// the status changes of a period those of consecutive snapshots.
func TestDocsHistoryQueries(t *testing.T) {
	query := outside.DuckDB(t)
	queries := historyQueries(t)
	if len(queries) != 3 {
		t.Fatalf("%d SQL blocks in docs/history.md's queries, want the timeline, the list as of a date and the status changes", len(queries))
	}
	timeline, asOf, statusChanges := queries[0], queries[1], queries[2]
	ds := spoc.SPOC
	key := ds.Columns[0].Name
	out := t.TempDir()
	var dates []string
	for _, day := range historyDays {
		if day.skipped {
			continue
		}
		var body bytes.Buffer
		if _, err := spoctest.Generate(&body, spoctest.GenOptions{Dataset: ds, Records: 600, Seed: 34, NextDay: day.next}); err != nil {
			t.Fatal(err)
		}
		up := spoctest.NewServer(spoctest.WithBody(body.Bytes()))
		code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out, "SPOC_DATE": day.date})
		up.Close()
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s", day.date, code, logs)
		}
		dates = append(dates, day.date)
	}
	names := snapshot.NamesOf(ds)
	prefix := filepath.Join(out, ds.Prefix)
	snaps := map[string]snapshotRead{}
	for _, d := range dates {
		snaps[d] = firstByKey(readRows(t, mustRead(t, filepath.Join(prefix, d, names.Parquet))), key)
	}
	local := localBucket(t, out)

	// The globs: each reads its own objects of every published day, and
	// nothing else.
	globs := historyGlobs(t)
	var versionColumns []string
	for _, c := range ds.Columns {
		versionColumns = append(versionColumns, c.Name)
	}
	versionColumns = append(versionColumns, "valid_from", "change")
	for i, want := range []struct {
		object  string
		columns []string
	}{
		{names.Versions, versionColumns},
		{names.Parquet, nil},
		{names.Changes, nil},
	} {
		glob := filepath.ToSlash(prefix) + globs[i]
		var wantFiles, wantRows []string
		for _, d := range dates {
			f := filepath.ToSlash(filepath.Join(prefix, d, want.object))
			wantFiles = append(wantFiles, f)
			// A file without rows, the first day's change table, is
			// in no group of the count.
			if rows := len(readRows(t, mustRead(t, f))); rows > 0 {
				wantRows = append(wantRows, fmt.Sprintf("%s|%d", f, rows))
			}
		}
		files := rowsText(query(fmt.Sprintf("SELECT file FROM glob('%s') ORDER BY file", glob)), "file")
		if !slices.Equal(files, wantFiles) {
			t.Errorf("%s matches the files\n%q\nwant\n%q", globs[i], files, wantFiles)
		}
		got := rowsText(query(fmt.Sprintf("SELECT filename, count(*) AS n FROM read_parquet('%s', filename = true) GROUP BY filename ORDER BY filename", glob)), "filename", "n")
		if !slices.Equal(got, wantRows) {
			t.Errorf("%s reads the rows\n%q\nwant\n%q", globs[i], got, wantRows)
		}
		if want.columns != nil {
			cols := rowsText(query(fmt.Sprintf("DESCRIBE SELECT * FROM read_parquet('%s')", glob)), "column_name")
			if !slices.Equal(cols, want.columns) {
				t.Errorf("%s has the columns %q, want %q", globs[i], cols, want.columns)
			}
		}
	}

	// The snapshot glob's rows of each day are that day's snapshot, row
	// for row.
	file := filepath.Join(t.TempDir(), "snapshots.parquet")
	query(fmt.Sprintf("COPY (SELECT regexp_extract(filename, '/([0-9]{8})/[^/]*$', 1) AS day, * EXCLUDE (filename) FROM read_parquet('%s', filename = true)) TO '%s' (FORMAT parquet)",
		filepath.ToSlash(prefix)+globs[1], filepath.ToSlash(file)))
	globRows := map[string][]string{}
	for _, p := range readRows(t, mustRead(t, file)) {
		d := p["day"]
		delete(p, "day")
		globRows[d] = append(globRows[d], fmt.Sprint(p))
	}
	for _, d := range dates {
		var want []string
		for _, p := range readRows(t, mustRead(t, filepath.Join(prefix, d, names.Parquet))) {
			want = append(want, fmt.Sprint(p))
		}
		if got := globRows[d]; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
			t.Errorf("%s gives %d rows of %s that are not its %d snapshot rows", globs[1], len(got), d, len(want))
		}
	}

	// The list as of each day.
	const asOfDate = "DATE '2026-12-04'"
	if strings.Count(asOf, asOfDate) != 1 {
		t.Fatalf("the list as of a date does not name %s once:\n%s", asOfDate, asOf)
	}
	wantAsOf := map[string]snapshotRead{"20261130": {plots: map[string]snapPlot{}}}
	for _, day := range historyDays {
		// A skipped day's list is the newest published before it.
		i, found := slices.BinarySearch(dates, day.date)
		if !found {
			i--
		}
		wantAsOf[day.date] = snaps[dates[i]]
	}
	// One DuckDB run for every day, each day's rows labelled, written
	// to Parquet so that every value reads back exactly.
	var each []string
	for _, d := range slices.Sorted(maps.Keys(wantAsOf)) {
		each = append(each, fmt.Sprintf("SELECT '%s' AS as_of_day, * FROM (%s)", d, local(strings.Replace(asOf, asOfDate, "DATE '"+isoDate(d)+"'", 1))))
	}
	file = filepath.Join(t.TempDir(), "as-of.parquet")
	query(fmt.Sprintf("COPY (%s) TO '%s' (FORMAT parquet)", strings.Join(each, "\nUNION ALL\n"), filepath.ToSlash(file)))
	byDay := map[string][]snapPlot{}
	for _, p := range readRows(t, mustRead(t, file)) {
		byDay[p["as_of_day"]] = append(byDay[p["as_of_day"]], p)
		delete(p, "as_of_day")
		delete(p, "valid_from")
	}
	for _, d := range slices.Sorted(maps.Keys(wantAsOf)) {
		got := firstByKey(byDay[d], key)
		want := wantAsOf[d].plots
		for id, p := range got.plots {
			if w, ok := want[id]; !ok {
				t.Errorf("as of %s: plot %s, which the day's snapshot lacks", d, id)
			} else if !maps.Equal(p, w) {
				t.Errorf("as of %s: plot %s is\n%v\nthe snapshot has\n%v", d, id, p, w)
			}
		}
		for id := range want {
			if _, ok := got.plots[id]; !ok {
				t.Errorf("as of %s: no plot %s, which the day's snapshot has", d, id)
			}
		}
		if got.rows != len(got.plots) {
			t.Errorf("as of %s: %d rows for %d plots", d, got.rows, len(got.plots))
		}
	}

	// The timeline of the plots with the most versions, and of the first
	// that was removed and came back.
	versions := versionsOf(snaps, dates)
	ids := slices.SortedFunc(maps.Keys(versions), byNumber)
	most := slices.MaxFunc(ids, func(a, b string) int { return len(versions[a]) - len(versions[b]) })
	cameBack := ""
	for _, id := range ids {
		vs := versions[id]
		for k := 1; k < len(vs); k++ {
			if vs[k-1].change == "removed" && vs[k].change == "added" && cameBack == "" {
				cameBack = id
			}
		}
	}
	if len(versions[most]) < 3 || cameBack == "" {
		t.Fatalf("plot %s has %d versions, and no plot came back (%q): the data cannot tell a timeline from another", most, len(versions[most]), cameBack)
	}
	const plotID = "= 12345"
	if strings.Count(timeline, plotID) != 1 {
		t.Fatalf("the timeline does not name the plot %q once:\n%s", plotID, timeline)
	}
	for _, id := range []string{most, cameBack} {
		vs := versions[id]
		var want []string
		for k, v := range vs {
			to := fmt.Sprint(nil)
			if k+1 < len(vs) {
				to = isoDate(vs[k+1].from)
			}
			want = append(want, strings.Join([]string{isoDate(v.from), to, v.change, jsonText(v.plot["cert_status"], false), jsonText(v.plot["certified_area"], true)}, "|"))
		}
		got := rowsText(query(local(strings.Replace(timeline, plotID, "= "+id, 1))), "valid_from", "valid_to", "change", "cert_status", "certified_area")
		if !slices.Equal(got, want) {
			t.Errorf("the timeline of plot %s:\n%q\nwant\n%q", id, got, want)
		}
	}

	// The status changes of a period: from the second day to the fourth,
	// the skipped third between them, so that the first and the last
	// day are out of it.
	const from, to = "DATE '2026-12-02'", "DATE '2026-12-04'"
	if !strings.Contains(statusChanges, "BETWEEN "+from+" AND "+to) {
		t.Fatalf("the status changes are not those between %s and %s:\n%s", from, to, statusChanges)
	}
	var want []string
	for k := 1; k < len(dates); k++ {
		d := dates[k]
		if d < "20261202" || d > "20261204" {
			continue
		}
		before, after := snaps[dates[k-1]].plots, snaps[d].plots
		for _, id := range slices.SortedFunc(maps.Keys(after), byNumber) {
			b, ok := before[id]
			if ok && b["cert_status"] != after[id]["cert_status"] {
				want = append(want, strings.Join([]string{isoDate(d), id, jsonText(b["cert_status"], false), jsonText(after[id]["cert_status"], false)}, "|"))
			}
		}
	}
	inPeriod := map[string]bool{}
	for _, w := range want {
		inPeriod[w[:10]] = true
	}
	if len(inPeriod) < 2 {
		t.Fatalf("status changes on %d days of the period: the data cannot tell a period from a day", len(inPeriod))
	}
	got := rowsText(query(local(statusChanges)), "day", "entity_smallholder_id", "from_status", "to_status")
	if !slices.Equal(got, want) {
		t.Errorf("the status changes: %d rows\n%q\nwant %d\n%q", len(got), got, len(want), want)
	}
}

// byNumber orders ids, decimal integers, by their value.
func byNumber(a, b string) int {
	return cmp.Or(len(a)-len(b), strings.Compare(a, b))
}

// asOfVersions is the list as of each day that the versions objects of
// days give: per plot, its newest version valid from that day or
// earlier, unless it is a removal; each plot without valid_from and
// change, as a snapshot's plots are.
func asOfVersions(t *testing.T, prefix, object, key string, days []string) map[string]map[string]snapPlot {
	t.Helper()
	var all []snapPlot
	for _, d := range days {
		data, err := os.ReadFile(filepath.Join(prefix, d, object))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, readRows(t, data)...)
	}
	lists := map[string]map[string]snapPlot{}
	for _, d := range days {
		newest := map[string]snapPlot{}
		for _, v := range all {
			if from := strings.ReplaceAll(v["valid_from"], "-", ""); from <= d && from > strings.ReplaceAll(newest[v[key]]["valid_from"], "-", "") {
				newest[v[key]] = v
			}
		}
		lists[d] = map[string]snapPlot{}
		for id, v := range newest {
			if v["change"] != "removed" {
				p := maps.Clone(v)
				delete(p, "valid_from")
				delete(p, "change")
				lists[d][id] = p
			}
		}
	}
	return lists
}

// differing are the ids whose plot differs between a and b, or is in
// one only.
func differing(a, b map[string]snapPlot) []string {
	var ids []string
	for id := range a {
		if q, ok := b[id]; !ok || !maps.Equal(a[id], q) {
			ids = append(ids, id)
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			ids = append(ids, id)
		}
	}
	return slices.SortedFunc(slices.Values(ids), byNumber)
}

// A day published with SPOC_DETECT_CHANGES=false writes no versions,
// and the next day compares with its snapshot: the plots that changed
// that day begin no version, and the history gives their old values as
// of that day and later, as docs/history.md says, until that day is
// rerun with change detection; then the list as of every day is that
// day's snapshot again, the next day's versions untouched.
func TestHistoryOfADayWithoutChangeDetection(t *testing.T) {
	ds := spoc.SPOC
	key := ds.Columns[0].Name
	names := snapshot.NamesOf(ds)
	out := t.TempDir()
	prefix := filepath.Join(out, ds.Prefix)
	days := []string{"20261201", "20261202", "20261203"}
	next := map[string]spoctest.Changes{
		"20261202": {RemoveEvery: 20, StatusEvery: 7, Added: 5},
		"20261203": {RemoveEvery: 20, StatusEvery: 7, AreaEvery: 9, Added: 5},
	}
	publish := func(day string, env map[string]string) {
		t.Helper()
		var body bytes.Buffer
		if _, err := spoctest.Generate(&body, spoctest.GenOptions{Dataset: ds, Records: 400, Seed: 34, NextDay: next[day]}); err != nil {
			t.Fatal(err)
		}
		up := spoctest.NewServer(spoctest.WithBody(body.Bytes()))
		defer up.Close()
		full := map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out, "SPOC_DATE": day}
		maps.Copy(full, env)
		if code, logs := runJob(t, context.Background(), full); code != exitOK {
			t.Fatalf("%s: exit %d\n%s", day, code, logs)
		}
	}
	for _, d := range days {
		env := map[string]string{}
		if d == days[1] {
			env["SPOC_DETECT_CHANGES"] = "false"
		}
		publish(d, env)
	}
	snaps := map[string]map[string]snapPlot{}
	for _, d := range days {
		snaps[d] = firstByKey(readRows(t, mustRead(t, filepath.Join(prefix, d, names.Parquet))), key).plots
	}
	if _, err := os.Stat(filepath.Join(prefix, days[1], names.Versions)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the day without change detection has versions: %v", err)
	}
	changedOn2 := differing(snaps[days[0]], snaps[days[1]])
	changedOn3 := differing(snaps[days[1]], snaps[days[2]])
	if len(changedOn2) == 0 || len(changedOn3) == 0 {
		t.Fatalf("%d plots changed on the second day, %d on the third: the days test nothing", len(changedOn2), len(changedOn3))
	}
	// Lost: the second day's changes, as of that day, and as of the
	// third those the third day did not change again.
	lists := asOfVersions(t, prefix, names.Versions, key, days)
	var lostOn3 []string
	for _, id := range changedOn2 {
		if !slices.Contains(changedOn3, id) {
			lostOn3 = append(lostOn3, id)
		}
	}
	for d, want := range map[string][]string{days[0]: nil, days[1]: changedOn2, days[2]: lostOn3} {
		if got := differing(lists[d], snaps[d]); !slices.Equal(got, want) {
			t.Errorf("as of %s, before the rerun, the history and the snapshot differ on the plots\n%v\nwant\n%v", d, got, want)
		}
	}
	third := mustRead(t, filepath.Join(prefix, days[2], names.Versions))

	publish(days[1], map[string]string{"SPOC_SKIP_IF_UNCHANGED": "false"})
	lists = asOfVersions(t, prefix, names.Versions, key, days)
	for _, d := range days {
		if got := differing(lists[d], snaps[d]); len(got) > 0 {
			t.Errorf("as of %s, after the rerun, the history and the snapshot differ on the plots %v", d, got)
		}
	}
	if !bytes.Equal(mustRead(t, filepath.Join(prefix, days[2], names.Versions)), third) {
		t.Error("the rerun changed the next day's versions")
	}
}
