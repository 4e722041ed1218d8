package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// docQuery is one SQL block of docs/queries.md with the engine its
// paragraph names ("DuckDB:" or "BigQuery:").
type docQuery struct{ engine, sql string }

// docsQueries are the SQL blocks of docs/queries.md, in order.
func docsQueries(t *testing.T) []docQuery {
	t.Helper()
	doc := string(mustRead(t, filepath.Join(repoRoot, "docs", "queries.md")))
	var qs []docQuery
	for {
		before, rest, ok := strings.Cut(doc, "```sql\n")
		if !ok {
			return qs
		}
		lines := strings.Split(strings.TrimSpace(before), "\n")
		engine := strings.TrimSuffix(lines[len(lines)-1], ":")
		var q string
		q, doc, _ = strings.Cut(rest, "```")
		qs = append(qs, docQuery{engine, q})
	}
}

// queryDays are the days the test publishes: SPOC and OSH both, GM the
// first.
var queryDays = []string{"20261201", "20261202"}

// blankLicences gives a few of body's licences no licence: the first
// plots of its 5th distinct licence an empty string, of its 9th a null,
// of its 13th spaces, so that the queries must leave such plots out.
func blankLicences(body []byte) []byte {
	re := regexp.MustCompile(`"mpob_no":"[^"]*"`)
	var seen [][]byte
	for _, m := range re.FindAll(body, -1) {
		if !slices.ContainsFunc(seen, func(s []byte) bool { return bytes.Equal(s, m) }) {
			seen = append(seen, m)
		}
	}
	for i, blank := range map[int]string{4: `"mpob_no":""`, 8: `"mpob_no":null`, 12: `"mpob_no":"  "`} {
		body = bytes.ReplaceAll(body, seen[i], []byte(blank))
	}
	return body
}

// plot is what the queries read of a published record.
type plot struct {
	licence      *string
	code, status string
	deleted      bool
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
		plots = append(plots, p)
	}
	return plots
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
// published days of SPOC and OSH and one of GM (so that each list's
// newest day is not the same) and give the rows computed in Go
// from the generated bodies. The generator issues licences in one
// sequence from the same first number, so lists of different seeds and
// sizes share some licences and not others, and a licence holds several
// plots now and then; a few licences are made blank or null on purpose.
// The BigQuery queries cannot run here: they are checked to read the
// same lists' views and to name the same columns.
func TestDocsQueriesAcrossLists(t *testing.T) {
	query := duckDB(t)
	queries := docsQueries(t)
	if len(queries) != 6 {
		t.Fatalf("%d SQL blocks in docs/queries.md, want a DuckDB and a BigQuery form of three queries", len(queries))
	}
	lists := []*spoc.Dataset{spoc.SPOC, spoc.OSH, spoc.GM}
	records := map[*spoc.Dataset]int{spoc.SPOC: 800, spoc.OSH: 600, spoc.GM: 300}
	out := t.TempDir()
	plots := map[string]map[string][]plot{} // list, day
	for i, date := range queryDays {
		bodies := map[*spoc.Dataset][]spoctest.Option{}
		var names []string
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

	// The BigQuery forms: each follows its DuckDB form, reads the views
	// Terraform creates for the same lists, leaves out the same deleted
	// plots and blank licences, and names the same columns.
	for i := 0; i < len(queries); i += 2 {
		duck, bq := queries[i], queries[i+1]
		if duck.engine != "DuckDB" || bq.engine != "BigQuery" {
			t.Fatalf("blocks %d and %d are for %q and %q, want DuckDB then BigQuery", i, i+1, duck.engine, bq.engine)
		}
		for _, ds := range lists {
			reads := strings.Contains(duck.sql, docsBucket+ds.Prefix+"/*/*.parquet")
			view := "mspo." + ds.Name + "_snapshots"
			if regexp.MustCompile(regexp.QuoteMeta(view)+`\b`).MatchString(bq.sql) != reads {
				t.Errorf("query %d: DuckDB reads %s: %v, BigQuery reads %s: %v", i/2+1, ds.Name, reads, view, !reads)
			}
		}
		for _, filter := range []string{"deleted IS NOT TRUE", "(mpob_no) <> ''"} {
			if d, b := strings.Count(duck.sql, filter), strings.Count(bq.sql, filter); d != b {
				t.Errorf("query %d: %q %d times in DuckDB, %d in BigQuery", i/2+1, filter, d, b)
			}
		}
		if d, b := outputColumns(duck.sql), outputColumns(bq.sql); len(d) == 0 || !slices.Equal(d, b) {
			t.Errorf("query %d: DuckDB gives the columns %v, BigQuery %v", i/2+1, d, b)
		}
	}
}

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
