package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/calee-data/mspo-spoc/internal/outside"
	"github.com/calee-data/mspo-spoc/pkg/history"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// The BigQuery names the history tests render the Terraform with.
const (
	testProject = "my-project"
	testBQ      = "mspo"
)

// bigQueryHistory are the history objects of deploy/bigquery.tf: the
// versions external table, the view and the table function.
type bigQueryHistory struct {
	versions, view, asOf *hclsyntax.Block
}

// parseBigQueryHistory finds the history objects in tf, failing the test
// when one is missing.
func parseBigQueryHistory(t *testing.T, tf *terraform) bigQueryHistory {
	t.Helper()
	h := bigQueryHistory{
		versions: tf.resources("google_bigquery_table")["versions"],
		view:     tf.resources("google_bigquery_table")["history"],
		asOf:     tf.resources("google_bigquery_routine")["as_of"],
	}
	if h.versions == nil || h.view == nil || h.asOf == nil {
		t.Fatalf("want google_bigquery_table.versions, google_bigquery_table.history and google_bigquery_routine.as_of; have %v, %v, %v", h.versions != nil, h.view != nil, h.asOf != nil)
	}
	return h
}

// datasetContext is what Terraform evaluates the BigQuery resources of
// the dataset name with (bigquery_dataset "mspo" in the project
// my-project, the catalog's prefix): each.key and each.value as
// local.datasets gives them, var, the versions table's id, and the
// functions the blocks call.
func datasetContext(t *testing.T, name string, native bool) *hcl.EvalContext {
	t.Helper()
	d, ok := deployDatasets()[name]
	if !ok {
		t.Fatalf("no dataset %s in deploy/datasets.json", name)
	}
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"each": cty.ObjectVal(map[string]cty.Value{
				"key": cty.StringVal(name),
				"value": cty.ObjectVal(map[string]cty.Value{
					"key":            cty.StringVal(d.Key),
					"object":         cty.StringVal(d.Object),
					"output_prefix":  cty.StringVal(d.Prefix),
					"bigquery_table": cty.StringVal(name),
				}),
			}),
			"var": cty.ObjectVal(map[string]cty.Value{
				"project_id":       cty.StringVal(testProject),
				"bigquery_dataset": cty.StringVal(testBQ),
			}),
			"local":                 cty.ObjectVal(map[string]cty.Value{"bucket_name": cty.StringVal("my-project-mspo-spoc"), "bigquery_native": cty.BoolVal(native)}),
			"google_bigquery_table": bigQueryTablesOf(name, native),
		},
		Functions: map[string]function.Function{"jsonencode": stdlib.JSONEncodeFunc},
	}
}

// evalString is the attribute attr of b as Terraform gives it for the
// dataset name, with the external tables.
func evalString(t *testing.T, b *hclsyntax.Block, attr, name string) string {
	t.Helper()
	return evalStringIn(t, b, attr, name, false)
}

// evalStringIn is the attribute attr of b as Terraform gives it for the
// dataset name, with the native tables or the external ones.
func evalStringIn(t *testing.T, b *hclsyntax.Block, attr, name string, native bool) string {
	t.Helper()
	a, ok := b.Body.Attributes[attr]
	if !ok {
		t.Fatalf("%s %v: no attribute %s", b.Type, b.Labels, attr)
	}
	v, diags := a.Expr.Value(datasetContext(t, name, native))
	if diags.HasErrors() {
		t.Fatalf("%s %v: %s for %s: %s", b.Type, b.Labels, attr, name, diags.Error())
	}
	return v.AsString()
}

// versionsTable is the versions external table's full name, as the view
// and the function must write it (a table function must name a table
// with its project).
func versionsTable(name string) string {
	return "`" + testProject + "." + testBQ + "." + name + "_versions_external`"
}

// Every dataset with BigQuery gets the history objects: the versions
// external table over its versions (with the reference schema of
// TestBigQuerySchemaFiles), the view {table}_history with valid_to and
// is_current over the dataset's key, and the table function
// {table}_as_of(d DATE), both reading the external table by its full
// name.
func TestTerraformBigQueryHistory(t *testing.T) {
	tf := parseTerraform(t)
	h := parseBigQueryHistory(t, tf)
	schema := tf.resources("google_storage_bucket_object")["versions_schema"]
	if schema == nil {
		t.Fatal("no google_storage_bucket_object.versions_schema")
	}
	// The external table and its reference schema with external tables
	// only; the view and the function whichever tables they read.
	for b, want := range map[*hclsyntax.Block]string{h.versions: "local.bigquery_external_datasets", schema: "local.bigquery_external_datasets", h.view: "local.bigquery_datasets", h.asOf: "local.bigquery_datasets"} {
		if got := source(b, "for_each"); got != want {
			t.Errorf("%s.%s: for_each = %s, want one per dataset with BigQuery (%s)", b.Labels[0], b.Labels[1], got, want)
		}
	}
	// each.value.key is the catalog's key column (deploy/datasets.json).
	if got := strings.Join(strings.Fields(exprSource(tf.locals["datasets"])), " "); !strings.Contains(got, "key = local.catalog[name].key") {
		t.Errorf("local.datasets does not give each dataset its catalog key: %s", got)
	}
	if got := literal(t, path(t, h.view, "view"), "use_legacy_sql"); !got.False() {
		t.Error("the history view uses legacy SQL")
	}
	if got := literal(t, h.asOf, "routine_type").AsString(); got != "TABLE_VALUED_FUNCTION" {
		t.Errorf("as_of: routine_type %s", got)
	}
	if got := literal(t, h.asOf, "language").AsString(); got != "SQL" {
		t.Errorf("as_of: language %s", got)
	}
	args := child(h.asOf, "arguments")
	if len(args) != 1 {
		t.Fatalf("as_of: %d arguments, want d DATE", len(args))
	}
	for name, ds := range spoc.Datasets() {
		key := ds.Schema().Field(0).Name
		if got := deployDatasets()[name].Key; got != key {
			t.Errorf("%s: datasets.json's key is %s, the dataset's first column %s", name, got, key)
		}
		if got := evalString(t, args[0], "name", name); got != "d" {
			t.Errorf("as_of's argument is %s, want d", got)
		}
		if got := evalString(t, args[0], "data_type", name); got != `{"typeKind":"DATE"}` {
			t.Errorf("as_of's argument's type is %s, want DATE", got)
		}
		for b, want := range map[*hclsyntax.Block]string{h.versions: name + "_versions_external", h.view: name + "_history"} {
			if got := evalString(t, b, "table_id", name); got != want {
				t.Errorf("%s: table_id %s, want %s", name, got, want)
			}
		}
		if got := evalString(t, h.asOf, "routine_id", name); got != name+"_as_of" {
			t.Errorf("%s: routine_id %s, want %s_as_of", name, got, name)
		}
		view := evalString(t, path(t, h.view, "view"), "query", name)
		body := evalString(t, h.asOf, "definition_body", name)
		for what, sql := range map[string]string{"the view": view, "the function": body} {
			if !strings.Contains(sql, "PARTITION BY "+key+" ") {
				t.Errorf("%s: %s does not partition the versions by the key %s:\n%s", name, what, key, sql)
			}
			if !strings.Contains(sql, "FROM "+versionsTable(name)) {
				t.Errorf("%s: %s does not read %s:\n%s", name, what, versionsTable(name), sql)
			}
		}
		// The names the SQL adds must not hide a column of the versions.
		for _, added := range []string{"valid_to", "is_current", "newest", "d"} {
			if history.Schema(ds).HasField(added) {
				t.Errorf("%s has a column %s, which the history SQL adds", name, added)
			}
		}
	}
	// The table is replaced with its schema (TestTerraformBigQuerySchemas),
	// and the view with the table, so that the view's listed schema is
	// the new one.
	checkReplacedWithTable(t, tf, h.view, "versions_table", "versions", "versions")
}

// duckDBHistory is the SQL of the view and of the table function of the
// dataset name, as Terraform renders it, in DuckDB's dialect: the
// external table is the versions' glob under out, and * EXCEPT is
// DuckDB's * EXCLUDE. The function becomes a table macro, as_of(d).
func duckDBHistory(t *testing.T, h bigQueryHistory, name, out string) (view, macro string) {
	t.Helper()
	ds := spoc.Datasets()[name]
	glob := fmt.Sprintf("read_parquet('%s')", filepath.ToSlash(filepath.Join(out, ds.Prefix, "*", snapshot.NamesOf(ds).Versions)))
	translate := func(sql string) string {
		if !strings.Contains(sql, versionsTable(name)) {
			t.Fatalf("%s: the SQL does not read %s:\n%s", name, versionsTable(name), sql)
		}
		sql = strings.ReplaceAll(sql, versionsTable(name), glob)
		sql = strings.ReplaceAll(sql, "* EXCEPT (", "* EXCLUDE (")
		if strings.Contains(sql, "`") {
			t.Fatalf("%s: the SQL names another BigQuery table:\n%s", name, sql)
		}
		return sql
	}
	view = translate(evalString(t, path(t, h.view, "view"), "query", name))
	body := translate(evalString(t, h.asOf, "definition_body", name))
	return view, "CREATE MACRO as_of(d) AS TABLE " + body + ";\n"
}

// historyDates are the days TestBigQueryHistorySQL publishes: a first
// day, a day that removes plots, changes values and adds plots, a
// skipped day, and a day that brings back the first day's list
// (removed plots back, values changed back, added plots removed).
var historyDates = []string{"20261201", "20261202", "20261204"}

// The view and the table function, rendered from the Terraform for each
// dataset and run in DuckDB (the only changes: the external table is the
// versions' glob, * EXCEPT is * EXCLUDE), give for every day D, a
// skipped one included, the snapshot of D (of the last day before D
// when D was skipped; the first row of an id standing for it): the
// function as_of(D), and the view's versions with valid_from <= D <
// valid_to that are no removal. The view's current versions are the
// newest snapshot. BigQuery cannot run here; its own SQL is what DuckDB
// runs, but for those two translations.
func TestBigQueryHistorySQL(t *testing.T) {
	query := outside.DuckDB(t)
	h := parseBigQueryHistory(t, parseTerraform(t))
	out := t.TempDir()
	datasets := slices.Sorted(maps.Keys(spoc.Datasets()))
	records := map[string]int{"spoc": 400, "osh": 300, "gm": 300, "states": 16, "zones": 11}
	for i, date := range historyDates {
		bodies := map[*spoc.Dataset][]spoctest.Option{}
		for _, name := range datasets {
			ds := spoc.Datasets()[name]
			gen := spoctest.GenOptions{Dataset: ds, Records: records[name], Seed: uint64(len(name))}
			if i == 1 {
				gen.NextDay = spoctest.Changes{RemoveEvery: 12, StatusEvery: 7, AreaEvery: 5, Added: 20}
				if ds.Group != "" {
					gen.NextDay = spoctest.Changes{RemoveEvery: records[name] - 1}
				}
			}
			var body bytes.Buffer
			if _, err := spoctest.Generate(&body, gen); err != nil {
				t.Fatal(err)
			}
			bodies[ds] = []spoctest.Option{spoctest.WithBody(body.Bytes())}
		}
		api, _ := fakeAPI(t, bodies)
		code, logs := runJob(t, context.Background(), map[string]string{"SPOC_DATASET": strings.Join(datasets, ","), "SPOC_API_BASE": api.URL, "SPOC_OUTPUT": out, "SPOC_DATE": date})
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s", date, code, logs)
		}
	}
	for _, name := range datasets {
		t.Run(name, func(t *testing.T) {
			ds := spoc.Datasets()[name]
			key := ds.Schema().Field(0).Name
			view, macro := duckDBHistory(t, h, name, out)
			// The snapshot of a day, the first row of an id standing for it.
			snapshotOf := func(date string) string {
				file := filepath.ToSlash(filepath.Join(out, ds.Prefix, date, snapshot.NamesOf(ds).Parquet))
				return fmt.Sprintf("SELECT * EXCLUDE (file_row_number) FROM read_parquet('%s', file_row_number = true) QUALIFY row_number() OVER (PARTITION BY %s ORDER BY file_row_number) = 1", file, key)
			}
			// Every check is a count in one query (DuckDB starts once per
			// query): the rows only in a or only in b, which must be none,
			// and a's rows, which must be some.
			var checks []string
			want := map[string]bool{} // check: must be zero
			same := func(what, a, b string) {
				checks = append(checks,
					fmt.Sprintf("(SELECT count(*) FROM (%s EXCEPT ALL %s)) AS \"%s: rows only in the first\"", a, b, what),
					fmt.Sprintf("(SELECT count(*) FROM (%s EXCEPT ALL %s)) AS \"%s: rows only in the second\"", b, a, what),
					fmt.Sprintf("(SELECT count(*) FROM (%s)) AS \"%s: rows\"", a, what))
				want[what+": rows only in the first"], want[what+": rows only in the second"], want[what+": rows"] = true, true, false
			}
			count := func(what, sql string, zero bool) {
				checks = append(checks, fmt.Sprintf("(%s) AS \"%s\"", sql, what))
				want[what] = zero
			}
			for _, d := range []string{"20261201", "20261202", "20261203", "20261204"} {
				published := d
				if !slices.Contains(historyDates, d) {
					published = historyDates[slices.IndexFunc(historyDates, func(p string) bool { return p > d })-1]
				}
				date := d[:4] + "-" + d[4:6] + "-" + d[6:]
				same("as_of("+date+") against the snapshot of "+published,
					fmt.Sprintf("SELECT * EXCLUDE (valid_from) FROM as_of(DATE '%s')", date), snapshotOf(published))
				same("the view's versions valid on "+date+" against the snapshot of "+published,
					fmt.Sprintf("SELECT * EXCLUDE (valid_from, change, valid_to, is_current) FROM history WHERE valid_from <= DATE '%s' AND (valid_to IS NULL OR valid_to > DATE '%s') AND change != 'removed'", date, date),
					snapshotOf(published))
			}
			count("plots as of the day before the first", "SELECT count(*) FROM as_of(DATE '2026-11-30')", true)
			same("the view's current versions against the newest snapshot",
				"SELECT * EXCLUDE (valid_from, change, valid_to, is_current) FROM history WHERE is_current",
				snapshotOf(historyDates[len(historyDates)-1]))
			count("versions that end on or before their start", "SELECT count(*) FROM history WHERE valid_to <= valid_from", true)
			// The days test what they should: plots removed and back,
			// values changed and back, a version ending on the next one's
			// day.
			count("plots removed and back", "SELECT count(*) FROM history WHERE change = 'removed' AND valid_to IS NOT NULL", false)
			count("versions from day 2 that end on day 4", "SELECT count(*) FROM history WHERE valid_from = DATE '2026-12-02' AND valid_to = DATE '2026-12-04'", false)
			if ds.Group == "" { // a reference list's day 2 only removes
				count("values changed back", "SELECT count(*) FROM history WHERE change = 'changed' AND valid_from = DATE '2026-12-04'", false)
			}
			if name == "spoc" {
				checkREADMEHistoryQueries(t, query, view, macro)
			}
			sql := macro + "CREATE VIEW history AS " + view + ";\nSELECT\n  " + strings.Join(checks, ",\n  ")
			rows := query(sql)
			if len(rows) != 1 {
				t.Fatalf("%d rows, want 1", len(rows))
			}
			for what, zero := range want {
				n, ok := rows[0][what]
				if !ok {
					t.Fatalf("no %q in %v", what, rows[0])
				}
				if got := fmt.Sprint(n); (got == "0") != zero {
					t.Errorf("%s: %s", what, got)
				}
			}
		})
	}
}

// checkREADMEHistoryQueries runs the sample queries of deploy/README.md's
// "Plot history in BigQuery" over the spoc dataset's view and function,
// made mspo.spoc_history and mspo.spoc_as_of in DuckDB, and fails when
// one does not run or the list as of the newest day is empty.
func checkREADMEHistoryQueries(t *testing.T, query func(string) []map[string]any, view, macro string) {
	t.Helper()
	blocks := sqlBlocks(markdownSection(t, filepath.Join(repoRoot, "deploy", "README.md"), "Plot history in BigQuery"))
	if len(blocks) == 0 {
		t.Fatal("no SQL in deploy/README.md's \"Plot history in BigQuery\"")
	}
	samples := blocks[0].sql
	for _, name := range []string{"mspo.spoc_history", "mspo.spoc_as_of("} {
		if !strings.Contains(samples, name) {
			t.Errorf("the sample queries do not use %s", name)
		}
	}
	// The sample plot and day are made ones the days have: the plots
	// removed once, and the newest day.
	samples = strings.ReplaceAll(samples, "entity_smallholder_id = 12345", "entity_smallholder_id IN (SELECT entity_smallholder_id FROM mspo.spoc_history WHERE change = 'removed')")
	samples = strings.ReplaceAll(samples, "DATE '2026-06-30'", "DATE '"+historyDates[len(historyDates)-1][:4]+"-12-31'")
	setup := "CREATE SCHEMA mspo;\n" + strings.Replace(macro, "CREATE MACRO as_of(", "CREATE MACRO mspo.spoc_as_of(", 1) +
		"CREATE VIEW mspo.spoc_history AS " + view + ";\n"
	// bench/duckdb.mjs gives the rows of a script's first query: one at a time.
	qs := strings.Split(strings.TrimSpace(samples), ";\n\n")
	if len(qs) != 2 {
		t.Fatalf("%d sample queries, want the timeline of a plot and the list on a day:\n%s", len(qs), samples)
	}
	for _, q := range qs {
		if rows := query(setup + q); len(rows) == 0 {
			t.Errorf("no rows:\n%s", q)
		}
	}
}
