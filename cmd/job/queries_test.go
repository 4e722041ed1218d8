package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/internal/outside"
	"github.com/calee-data/mspo-spoc/pkg/boundary"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// docQuery is one SQL block of docs/queries.md with the engine its
// paragraph names ("DuckDB:" or "BigQuery:").
type docQuery struct{ engine, sql string }

// docsQueries are the SQL blocks of docs/queries.md, in order.
func docsQueries(t *testing.T) []docQuery {
	t.Helper()
	var qs []docQuery
	for _, b := range sqlBlocks(string(mustRead(t, filepath.Join(repoRoot, "docs", "queries.md")))) {
		lines := strings.Split(strings.TrimSpace(b.lead), "\n")
		qs = append(qs, docQuery{strings.TrimSuffix(lines[len(lines)-1], ":"), b.sql})
	}
	return qs
}

// queryDays are the days the test publishes: SPOC and OSH both, GM the
// first.
var queryDays = []string{"20261201", "20261202"}

// blankLicences gives a few of body's licences no licence: the first
// plots of its 5th distinct licence an empty string, of its 9th a null,
// of its 13th spaces, of its 17th a tab and line breaks (which DuckDB's
// trim(x) keeps, BigQuery's TRIM(x) not), so that the queries must
// leave such plots out, in both engines alike.
func blankLicences(body []byte) []byte {
	re := regexp.MustCompile(`"mpob_no":"[^"]*"`)
	var seen [][]byte
	for _, m := range re.FindAll(body, -1) {
		if !slices.ContainsFunc(seen, func(s []byte) bool { return bytes.Equal(s, m) }) {
			seen = append(seen, m)
		}
	}
	for i, blank := range map[int]string{4: `"mpob_no":""`, 8: `"mpob_no":null`, 12: `"mpob_no":"  "`, 16: `"mpob_no":"\t\r\n"`} {
		body = bytes.ReplaceAll(body, seen[i], []byte(blank))
	}
	return body
}

// plot is what the queries read of a published record: the zone is
// nil in OSH, which has none.
type plot struct {
	licence      *string
	code, status string
	deleted      bool
	state, zone  *place
	// lon and lat are the plot's point, nil when a coordinate is
	// missing, not a number or out of range (as the job nulls it).
	lon, lat *float64
}

// place is a plot's state or zone: the id and the name it sends.
type place struct {
	id   int
	name string
}

// plotsOf are the records of a generated body of ds, read with
// encoding/json, independently of the job.
func plotsOf(t *testing.T, ds *spoc.Dataset, body []byte) []plot {
	t.Helper()
	var envelope map[string]json.RawMessage
	var data map[string]json.RawMessage
	var records []map[string]any
	if err := json.Unmarshal(body, &envelope); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(envelope[ds.Records[0]], &data); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data[ds.Records[1]], &records); err != nil {
		t.Fatal(err)
	}
	var plots []plot
	for _, r := range records {
		if r["entity_smallholder_id"] == nil {
			continue
		}
		p := plot{status: r["cert_status"].(string), deleted: r["deleted"] == true}
		if s, ok := r["mpob_no"].(string); ok {
			p.licence = &s
		}
		for _, c := range []string{"spoc_code", "gm_code"} {
			if s, ok := r[c].(string); ok {
				p.code = s
			}
		}
		p.state = placeOf(r, "stateId", "state")
		p.zone = placeOf(r, "zoneId", "zone")
		lon, lonOK := coordinateOf(r, "gps_coordinate_long", 180)
		lat, latOK := coordinateOf(r, "gps_coordinate_lat", 90)
		if lonOK && latOK {
			p.lon, p.lat = &lon, &lat
		}
		plots = append(plots, p)
	}
	return plots
}

// coordinateOf is a record's coordinate field, a number or a number's
// text between spaces, if it is one within [-limit, limit].
func coordinateOf(r map[string]any, field string, limit float64) (float64, bool) {
	var v float64
	switch x := r[field].(type) {
	case float64:
		v = x
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, false
		}
		v = f
	default:
		return 0, false
	}
	return v, !math.IsNaN(v) && v >= -limit && v <= limit
}

// placeOf is the id and name fields of a record, nil when it has no id.
func placeOf(r map[string]any, id, name string) *place {
	n, ok := r[id].(float64)
	if !ok {
		return nil
	}
	s, _ := r[name].(string)
	return &place{int(n), s}
}

// namesOf are the names of a generated reference list's body, by id,
// read with encoding/json.
func namesOf(t *testing.T, ds *spoc.Dataset, body []byte) map[int]string {
	t.Helper()
	var envelope map[string][]map[string]any
	if err := json.Unmarshal(body, &envelope); err != nil {
		t.Fatal(err)
	}
	names := map[int]string{}
	for _, r := range envelope[ds.Records[0]] {
		p := placeOf(r, ds.Columns[0].JSON, ds.Columns[1].JSON)
		names[p.id] = p.name
	}
	return names
}

// referenceDays are the bodies of the states and the zones the test
// publishes each day: every state and zone the first day; the second,
// the states without their 10th, the zones without their 8th (each
// within the record count's fall limit), and Kedah's name in capitals
// with a tab after it, so that the queries must take the newest day of
// each reference list, leave no plot out whose id the list lacks, and
// compare names trimmed of white space, in both engines alike, and
// without regard to case.
func referenceDays(t *testing.T) []map[*spoc.Dataset][]byte {
	t.Helper()
	var days []map[*spoc.Dataset][]byte
	for i := range queryDays {
		day := map[*spoc.Dataset][]byte{}
		for ds, n := range map[*spoc.Dataset]int{spoc.States: 16, spoc.Zones: 11} {
			gen := spoctest.GenOptions{Dataset: ds, Records: n}
			if i > 0 {
				gen.NextDay.RemoveEvery = map[*spoc.Dataset]int{spoc.States: 10, spoc.Zones: 8}[ds]
			}
			var body bytes.Buffer
			if _, err := spoctest.Generate(&body, gen); err != nil {
				t.Fatal(err)
			}
			day[ds] = body.Bytes()
			if i > 0 && ds == spoc.States {
				day[ds] = bytes.Replace(day[ds], []byte(`"Kedah"`), []byte(`"KEDAH\t"`), 1)
			}
		}
		days = append(days, day)
	}
	return days
}

// orNil renders a name that may be missing as DuckDB's null is.
func orNil(name string, ok bool) string {
	if !ok {
		return fmt.Sprint(nil)
	}
	return name
}

// rowsText renders query rows, keys in the given order, one line each,
// so that DuckDB's numbers (JSON numbers or strings) compare with Go's.
func rowsText(rows []map[string]any, keys ...string) []string {
	var out []string
	for _, r := range rows {
		var f []string
		for _, k := range keys {
			f = append(f, fmt.Sprint(r[k]))
		}
		out = append(out, strings.Join(f, "|"))
	}
	return out
}

// The DuckDB queries of docs/queries.md, as written there, run over two
// published days of SPOC, OSH, states and zones and one of GM (so that
// each list's newest day is not the same) and give the rows computed in
// Go from the generated bodies. The generator issues licences in one
// sequence from the same first number, so lists of different seeds and
// sizes share some licences and not others, and a licence holds several
// plots now and then; a few licences are made blank or null on purpose.
// The generator numbers the plots' states and zones otherwise than the
// reference lists do, for some of them, as the public documentation's
// example plot does (its zone 11 is "Zon Timur 2", the zones list's 11
// "Zon Sarawak"), so that a join on the name would not give the rows a
// join on the id gives.
// The plots outside Malaysia are read from the geolocation layers the
// job publishes beside the snapshots, and counted in Go with
// boundary.InMalaysia on the bodies' coordinates; the generator draws
// each state's points in a box around it, so some fall in Singapore, the
// sea or a neighbour.
// The BigQuery queries cannot run here: they are checked to read the
// same lists' views and to name the same columns.
func TestDocsQueriesAcrossLists(t *testing.T) {
	query := outside.DuckDB(t)
	queries := docsQueries(t)
	if len(queries) != 12 {
		t.Fatalf("%d SQL blocks in docs/queries.md, want a DuckDB and a BigQuery form of six queries", len(queries))
	}
	lists := []*spoc.Dataset{spoc.SPOC, spoc.OSH, spoc.GM}
	records := map[*spoc.Dataset]int{spoc.SPOC: 800, spoc.OSH: 600, spoc.GM: 300}
	out := t.TempDir()
	plots := map[string]map[string][]plot{} // list, day
	refDays := referenceDays(t)
	for i, date := range queryDays {
		bodies := map[*spoc.Dataset][]spoctest.Option{}
		var names []string
		for _, ds := range []*spoc.Dataset{spoc.States, spoc.Zones} {
			names = append(names, ds.Name)
			bodies[ds] = []spoctest.Option{spoctest.WithBody(refDays[i][ds])}
		}
		for _, ds := range lists {
			if ds == spoc.GM && i > 0 {
				continue // GM's newest day is older than the others'
			}
			names = append(names, ds.Name)
			gen := spoctest.GenOptions{Dataset: ds, Records: records[ds], Seed: uint64(len(ds.Name))}
			if i == 1 {
				gen.NextDay = spoctest.Changes{RemoveEvery: 10, StatusEvery: 7, Added: 40}
			}
			var body bytes.Buffer
			if _, err := spoctest.Generate(&body, gen); err != nil {
				t.Fatal(err)
			}
			b := blankLicences(body.Bytes())
			bodies[ds] = []spoctest.Option{spoctest.WithBody(b)}
			if plots[ds.Name] == nil {
				plots[ds.Name] = map[string][]plot{}
			}
			plots[ds.Name][date] = plotsOf(t, ds, b)
		}
		api, _ := fakeAPI(t, bodies)
		code, logs := runJob(t, context.Background(), map[string]string{"SPOC_DATASET": strings.Join(names, ","), "SPOC_API_BASE": api.URL, "SPOC_OUTPUT": out, "SPOC_DATE": date})
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s", date, code, logs)
		}
	}
	local := localBucket(t, out)
	// The licences in more than one list on the newest day.
	type held struct{ spoc, osh, gm int }
	byLicence := map[string]*held{}
	for list, days := range plots {
		for _, p := range days[slices.Max(slices.Collect(maps.Keys(days)))] {
			if p.deleted || p.licence == nil || strings.TrimSpace(*p.licence) == "" {
				continue
			}
			h := byLicence[*p.licence]
			if h == nil {
				h = &held{}
				byLicence[*p.licence] = h
			}
			switch list {
			case "spoc":
				h.spoc++
			case "osh":
				h.osh++
			case "gm":
				h.gm++
			}
		}
	}
	var want []string
	inThree, severalPlots, leadingZero := 0, 0, 0
	for _, l := range slices.Sorted(maps.Keys(byLicence)) {
		h := byLicence[l]
		var in []string
		for _, x := range []struct {
			name string
			n    int
		}{{"gm", h.gm}, {"osh", h.osh}, {"spoc", h.spoc}} {
			if x.n > 0 {
				in = append(in, x.name)
			}
		}
		if len(in) < 2 {
			continue
		}
		want = append(want, fmt.Sprintf("%s|%s|%d|%d|%d", l, strings.Join(in, ","), h.spoc, h.osh, h.gm))
		if len(in) == 3 {
			inThree++
		}
		if max(h.spoc, h.osh, h.gm) > 1 {
			severalPlots++
		}
		if strings.HasPrefix(l, "0") {
			leadingZero++
		}
	}
	if len(want) == 0 || len(want) == len(byLicence) || inThree == 0 || severalPlots == 0 || leadingZero == 0 {
		t.Fatalf("%d licences in several lists of %d (%d in three, %d with several plots in a list, %d with a leading zero): the data cannot tell a right match from a wrong one", len(want), len(byLicence), inThree, severalPlots, leadingZero)
	}
	t.Logf("%d licences in several lists of %d: %d in three, %d with several plots in a list, %d with a leading zero", len(want), len(byLicence), inThree, severalPlots, leadingZero)
	got := rowsText(query(local(queries[0].sql)), "mpob_no", "lists", "spoc_plots", "osh_plots", "gm_plots")
	if !slices.Equal(got, want) {
		t.Errorf("licences in several lists: %d rows\n%v\nwant %d\n%v", len(got), got, len(want), want)
	}

	// Plots per code and status, per day, of SPOC and of GM.
	for _, c := range []struct {
		q    docQuery
		list string
		code string
	}{{queries[2], "spoc", "spoc_code"}, {queries[4], "gm", "gm_code"}} {
		counts := map[string]int{}
		for day, ps := range plots[c.list] {
			for _, p := range ps {
				if !p.deleted {
					counts[day+"|"+p.code+"|"+p.status]++
				}
			}
		}
		var want []string
		for _, k := range slices.Sorted(maps.Keys(counts)) {
			want = append(want, fmt.Sprintf("%s|%d", k, counts[k]))
		}
		got := rowsText(query(local(c.q.sql)), "day", c.code, "cert_status", "plots")
		if !slices.Equal(got, want) {
			t.Errorf("%s plots per %s: %d rows\n%v\nwant %d\n%v", c.list, c.code, len(got), got, len(want), want)
		}
	}

	// Plots per state and zone named from the reference lists' newest
	// day, and the names the plots send that the lists do not give.
	last := refDays[len(refDays)-1]
	refs := map[string]map[int]string{"state": namesOf(t, spoc.States, last[spoc.States]), "zone": namesOf(t, spoc.Zones, last[spoc.Zones])}
	type placed struct {
		list        string
		state, zone int // zone 0 in OSH
	}
	perPlace := map[placed]int{}
	type sent struct {
		list, field string
		id          int
		name        string
	}
	disagree := map[sent]int{}
	kedah := 0
	for list, days := range plots {
		for _, p := range days[slices.Max(slices.Collect(maps.Keys(days)))] {
			if p.deleted {
				continue
			}
			k := placed{list: list, state: p.state.id}
			fields := map[string]*place{"state": p.state}
			if p.zone != nil {
				k.zone = p.zone.id
				fields["zone"] = p.zone
			}
			perPlace[k]++
			for field, pl := range fields {
				listed, ok := refs[field][pl.id]
				if !ok || !strings.EqualFold(strings.TrimSpace(pl.name), strings.TrimSpace(listed)) {
					disagree[sent{list, field, pl.id, pl.name}]++
				}
			}
			if p.state.id == 2 {
				kedah++
			}
		}
	}
	want = nil
	unnamed := map[string]int{}
	for _, k := range slices.SortedFunc(maps.Keys(perPlace), func(a, b placed) int {
		return cmp.Or(strings.Compare(a.list, b.list), a.state-b.state, a.zone-b.zone)
	}) {
		state, ok := refs["state"][k.state]
		if !ok {
			unnamed["state"]++
		}
		zoneID, zone := fmt.Sprint(nil), fmt.Sprint(nil)
		if k.zone != 0 {
			zoneID = fmt.Sprint(k.zone)
			z, ok := refs["zone"][k.zone]
			if !ok {
				unnamed["zone"]++
			}
			zone = orNil(z, ok)
		}
		want = append(want, fmt.Sprintf("%s|%d|%s|%s|%s|%d", k.list, k.state, orNil(state, ok), zoneID, zone, perPlace[k]))
	}
	if unnamed["state"] == 0 || unnamed["zone"] == 0 || kedah == 0 {
		t.Fatalf("%d rows of a state and %d of a zone the newest lists lack, %d plots in Kedah: the data cannot tell a join on the newest day from another, or a comparison without case", unnamed["state"], unnamed["zone"], kedah)
	}
	got = rowsText(query(local(queries[6].sql)), "list", "state_id", "state", "zone_id", "zone", "plots")
	if !slices.Equal(got, want) {
		t.Errorf("plots per state and zone: %d rows\n%v\nwant %d\n%v", len(got), got, len(want), want)
	}
	want = nil
	listedElse := 0
	for _, k := range slices.SortedFunc(maps.Keys(disagree), func(a, b sent) int {
		return cmp.Or(strings.Compare(a.list, b.list), strings.Compare(a.field, b.field), a.id-b.id, strings.Compare(a.name, b.name))
	}) {
		listed, ok := refs[k.field][k.id]
		if ok {
			listedElse++
		}
		want = append(want, fmt.Sprintf("%s|%s|%d|%s|%s|%d", k.list, k.field, k.id, k.name, orNil(listed, ok), disagree[k]))
	}
	if listedElse == 0 || listedElse == len(want) {
		t.Fatalf("%d of %d names that disagree are under an id the lists give: the data cannot tell a missing id from another name", listedElse, len(want))
	}
	got = rowsText(query(local(queries[8].sql)), "list", "field", "id", "name", "listed", "plots")
	if !slices.Equal(got, want) {
		t.Errorf("names that disagree with the reference lists: %d rows\n%v\nwant %d\n%v", len(got), got, len(want), want)
	}

	// Plots outside Malaysia on each list's newest day, per list and the
	// state the plots give, soft-deleted ones left out.
	outside := map[string]int{}
	for list, days := range plots {
		for _, p := range days[slices.Max(slices.Collect(maps.Keys(days)))] {
			if p.lon != nil && !p.deleted && !boundary.InMalaysia(*p.lon, *p.lat) {
				outside[fmt.Sprintf("%s|%d|%s", list, p.state.id, p.state.name)]++
			}
		}
	}
	want = nil
	for _, k := range slices.SortedFunc(maps.Keys(outside), func(a, b string) int {
		fa, fb := strings.SplitN(a, "|", 3), strings.SplitN(b, "|", 3)
		ia, _ := strconv.Atoi(fa[1])
		ib, _ := strconv.Atoi(fb[1])
		return cmp.Or(strings.Compare(fa[0], fb[0]), ia-ib, strings.Compare(fa[2], fb[2]))
	}) {
		want = append(want, fmt.Sprintf("%s|%d", k, outside[k]))
	}
	if len(outside) == 0 {
		t.Fatal("no plot outside Malaysia: the data cannot tell the query from one that finds none")
	}
	got = rowsText(query(local(queries[10].sql)), "list", "state_id", "state", "plots")
	if !slices.Equal(got, want) {
		t.Errorf("plots outside Malaysia: %d rows\n%v\nwant %d\n%v", len(got), got, len(want), want)
	}

	// The BigQuery forms: each follows its DuckDB form, reads the views
	// Terraform creates for the same lists (a layer's glob its geo
	// view), leaves out the same deleted plots and blank licences, and
	// names the same columns.
	for i := 0; i < len(queries); i += 2 {
		duck, bq := queries[i], queries[i+1]
		if duck.engine != "DuckDB" || bq.engine != "BigQuery" {
			t.Fatalf("blocks %d and %d are for %q and %q, want DuckDB then BigQuery", i, i+1, duck.engine, bq.engine)
		}
		for _, ds := range append(slices.Clone(lists), spoc.States, spoc.Zones) {
			for glob, view := range map[string]string{"/*/*.parquet": "_snapshots", "/*/geo/*.geo.parquet": "_geo"} {
				reads := strings.Contains(duck.sql, docsBucket+ds.Prefix+glob)
				view := "mspo." + ds.Name + view
				if regexp.MustCompile(regexp.QuoteMeta(view)+`\b`).MatchString(bq.sql) != reads {
					t.Errorf("query %d: DuckDB reads %s%s: %v, BigQuery reads %s: %v", i/2+1, ds.Name, glob, reads, view, !reads)
				}
			}
		}
		for _, filter := range []string{"deleted IS NOT TRUE", blankLicence, whiteSpace} {
			d, b := strings.Count(strings.ToLower(duck.sql), strings.ToLower(filter)), strings.Count(strings.ToLower(bq.sql), strings.ToLower(filter))
			if d != b || i == 0 && d == 0 {
				t.Errorf("query %d: %q %d times in DuckDB, %d in BigQuery", i/2+1, filter, d, b)
			}
		}
		if d, b := outputColumns(duck.sql), outputColumns(bq.sql); len(d) == 0 || !slices.Equal(d, b) {
			t.Errorf("query %d: DuckDB gives the columns %v, BigQuery %v", i/2+1, d, b)
		}
	}
}

// whiteSpace is the characters both forms of a query trim (case aside),
// named since DuckDB's trim(x) removes only spaces and BigQuery's
// TRIM(x) every white space; blankLicence is how they leave out a blank
// licence.
const (
	whiteSpace   = "' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13))"
	blankLicence = "trim(mpob_no, " + whiteSpace + " <> ''"
)

// outputColumns are the names of the columns a query's last SELECT
// gives: the select list is one column a line, named by its last word.
func outputColumns(sql string) []string {
	i := strings.LastIndex(sql, "SELECT\n")
	if i < 0 {
		return nil
	}
	list, _, _ := strings.Cut(sql[i+len("SELECT\n"):], "\nFROM ")
	var cols []string
	for l := range strings.Lines(list) {
		f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(l), ","))
		cols = append(cols, f[len(f)-1])
	}
	return cols
}
