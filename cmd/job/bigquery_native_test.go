package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/geo"
	"github.com/calee-data/mspo-spoc/pkg/history"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// bigQueryColumn is a column of a BigQuery table's schema, as the
// API's TableFieldSchema and the provider's schema argument write it.
type bigQueryColumn struct {
	Name   string           `json:"name"`
	Type   string           `json:"type"`
	Mode   string           `json:"mode"`
	Fields []bigQueryColumn `json:"fields,omitempty"`
}

// bigQueryColumns is what BigQuery's Parquet loader makes of a file the
// job writes with schema: one column per field, by name. geography names
// the column that a GeoParquet file's metadata declares its primary
// geometry ("" for a file without one).
//
// The rules are those of "Loading Parquet data from Cloud Storage"
// (cloud.google.com/bigquery/docs/loading-data-cloud-storage-parquet),
// sections "Parquet conversions" and "Geospatial data", for the Parquet
// types pqarrow writes for each Arrow type:
//   - BOOLEAN -> BOOLEAN.
//   - INT32 and INT64, plain or INT(8|16|32|64, signed) -> INTEGER
//     (INT64); Arrow int8..int64 are written as these.
//   - FLOAT and DOUBLE -> FLOAT (FLOAT64).
//   - BYTE_ARRAY with the STRING (UTF8) annotation -> STRING; Arrow's
//     utf8 is written so, and a dictionary of strings too: dictionary
//     encoding is how the values are stored, not their logical type.
//   - BYTE_ARRAY without annotation -> BYTES; but a GeoParquet file's
//     geometry column (WKB, named in the file's "geo" metadata) is
//     loaded as GEOGRAPHY.
//   - INT32 DATE -> DATE (Arrow date32).
//   - INT64 TIMESTAMP(isAdjustedToUTC = true, MILLIS|MICROS) ->
//     TIMESTAMP; pqarrow sets isAdjustedToUTC for an Arrow timestamp
//     with a time zone. Without one (isAdjustedToUTC = false) BigQuery
//     gives DATETIME or TIMESTAMP depending on the load's options: no
//     rule here, so such a column fails the test.
//   - LIST -> with enable_list_inference (the job's loads set it), a
//     REPEATED column of the element's type; without it a RECORD
//     list.element, which the tables are not.
//   - A group (Arrow struct) -> RECORD of its fields.
//
// Every column is NULLABLE (a list REPEATED), whatever the file says: a
// load may write a REQUIRED Parquet column into a NULLABLE one, not the
// reverse, and with ALLOW_FIELD_RELAXATION a file whose column became
// optional still loads. Any other Arrow type is an error: no documented
// rule was checked for it.
func bigQueryColumns(schema *arrow.Schema, geography string) ([]bigQueryColumn, error) {
	var cols []bigQueryColumn
	for _, f := range schema.Fields() {
		if f.Name == geography {
			cols = append(cols, bigQueryColumn{Name: f.Name, Type: "GEOGRAPHY", Mode: "NULLABLE"})
			continue
		}
		c, err := bigQueryColumnOf(f.Name, f.Type)
		if err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// bigQueryColumnOf is the column of one Arrow field (see bigQueryColumns).
func bigQueryColumnOf(name string, dt arrow.DataType) (bigQueryColumn, error) {
	c := bigQueryColumn{Name: name, Mode: "NULLABLE"}
	switch t := dt.(type) {
	case *arrow.BooleanType:
		c.Type = "BOOLEAN"
	case *arrow.Int8Type, *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type:
		c.Type = "INTEGER"
	case *arrow.Float32Type, *arrow.Float64Type:
		c.Type = "FLOAT"
	case *arrow.StringType, *arrow.LargeStringType:
		c.Type = "STRING"
	case *arrow.DictionaryType:
		if t.ValueType.ID() != arrow.STRING {
			return c, fmt.Errorf("%s: a dictionary of %s: no rule", name, t.ValueType)
		}
		c.Type = "STRING"
	case *arrow.BinaryType, *arrow.LargeBinaryType:
		c.Type = "BYTES"
	case *arrow.Date32Type:
		c.Type = "DATE"
	case *arrow.TimestampType:
		if t.TimeZone == "" || t.Unit == arrow.Second || t.Unit == arrow.Nanosecond {
			return c, fmt.Errorf("%s: %s: no rule (only UTC-adjusted milli- or microseconds)", name, t)
		}
		c.Type = "TIMESTAMP"
	case *arrow.ListType:
		elem, err := bigQueryColumnOf(name, t.Elem())
		if err != nil {
			return c, err
		}
		if elem.Mode == "REPEATED" {
			return c, fmt.Errorf("%s: a list of lists: BigQuery has no array of arrays", name)
		}
		elem.Mode = "REPEATED"
		return elem, nil
	case *arrow.StructType:
		c.Type = "RECORD"
		for _, f := range t.Fields() {
			sub, err := bigQueryColumnOf(f.Name, f.Type)
			if err != nil {
				return c, fmt.Errorf("%s.%w", name, err)
			}
			c.Fields = append(c.Fields, sub)
		}
	default:
		return c, fmt.Errorf("%s: %s: no rule", name, dt)
	}
	return c, nil
}

// nativeSchemaFiles are the native tables' schemas of every dataset, by
// file name in deploy/schema/ (deploy/datasets.json's bigquery_schemas):
// the snapshot's, the change table's, the versions' and, for a dataset
// with a point, its geolocation layer's, whose geometry is a GEOGRAPHY.
func nativeSchemaFiles(t *testing.T) map[string][]bigQueryColumn {
	t.Helper()
	files := map[string][]bigQueryColumn{}
	for name, d := range deployDatasets() {
		ds := spoc.Datasets()[name]
		schemas := map[string]*arrow.Schema{"snapshots": ds.Schema(), "changes": changes.Schema(ds), "versions": history.Schema(ds)}
		if geo.HasLayer(ds) {
			schemas["geo"] = geo.Schema(ds)
		}
		if len(schemas) != len(d.BigQuerySchemas) {
			t.Fatalf("%s: %d tables, datasets.json names %d schemas", name, len(schemas), len(d.BigQuerySchemas))
		}
		for kind, schema := range schemas {
			geography := ""
			if kind == "geo" {
				geography = geo.Geometry
			}
			cols, err := bigQueryColumns(schema, geography)
			if err != nil {
				t.Fatalf("%s's %s: %v", name, kind, err)
			}
			files[d.BigQuerySchemas[kind]] = cols
		}
	}
	return files
}

// The native tables are created with these schemas (Terraform's
// schema argument): what BigQuery's Parquet loader makes of the job's
// files, so that the first load finds the table as it would have made
// it. This test fails when a committed file differs from the job's
// schemas (go test ./cmd/job -run TestBigQueryNativeSchemaFiles -update
// rewrites them).
func TestBigQueryNativeSchemaFiles(t *testing.T) {
	for name, cols := range nativeSchemaFiles(t) {
		t.Run(name, func(t *testing.T) {
			want, err := json.MarshalIndent(cols, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			file := filepath.Join(repoRoot, "deploy", "schema", name)
			if *updateDeploy {
				if err := os.WriteFile(file, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (go test ./cmd/job -run TestBigQueryNativeSchemaFiles -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s holds\n%s\nthe job's files load as\n%s", file, got, want)
			}
		})
	}
}

// The rules of bigQueryColumns on the types the job writes, and a
// refusal of the types it has no documented rule for.
func TestBigQueryColumnOf(t *testing.T) {
	for _, tc := range []struct {
		dt   arrow.DataType
		want string // type and mode, or "error"
	}{
		{arrow.FixedWidthTypes.Boolean, "BOOLEAN NULLABLE"},
		{arrow.PrimitiveTypes.Int32, "INTEGER NULLABLE"},
		{arrow.PrimitiveTypes.Int64, "INTEGER NULLABLE"},
		{arrow.PrimitiveTypes.Float64, "FLOAT NULLABLE"},
		{arrow.BinaryTypes.String, "STRING NULLABLE"},
		{&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, "STRING NULLABLE"},
		{arrow.BinaryTypes.Binary, "BYTES NULLABLE"},
		{arrow.FixedWidthTypes.Date32, "DATE NULLABLE"},
		{&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, "TIMESTAMP NULLABLE"},
		{arrow.ListOf(arrow.BinaryTypes.String), "STRING REPEATED"},
		{arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Float64}), "RECORD NULLABLE"},
		{&arrow.TimestampType{Unit: arrow.Microsecond}, "error"},
		{arrow.PrimitiveTypes.Uint64, "error"},
		{arrow.ListOf(arrow.ListOf(arrow.BinaryTypes.String)), "error"},
	} {
		c, err := bigQueryColumnOf("c", tc.dt)
		got := c.Type + " " + c.Mode
		if err != nil {
			got = "error"
		}
		if got != tc.want {
			t.Errorf("%s: %s (%v), want %s", tc.dt, got, err, tc.want)
		}
	}
}

// bigQueryTablesOf is google_bigquery_table as the views of the list key
// see it in a plan: the tables of one mode only, named as Terraform
// names them (the native ones keyed "LIST/KIND"), so that a view that
// named the other mode's table would fail to render.
func bigQueryTablesOf(key string, native bool) cty.Value {
	named := func(id string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"table_id": cty.StringVal(id)})
	}
	kinds := []string{"snapshots", "changes", "versions", "geo"}
	tables := map[string]cty.Value{}
	if native {
		for _, k := range kinds {
			tables[key+"/"+k] = named(key + "_" + k + "_native")
		}
		return cty.ObjectVal(map[string]cty.Value{"native": cty.MapVal(tables)})
	}
	for _, k := range kinds {
		tables[k] = cty.MapVal(map[string]cty.Value{key: named(key + "_" + k + "_external")})
	}
	return cty.ObjectVal(tables)
}

// checkReplacedWithTable checks that view is replaced whenever the table
// it reads is new: through terraform_data.data, one per view, whose input
// is the creation time of the native table of that kind or of the
// external table (google_bigquery_table.external), by the mode.
func checkReplacedWithTable(t *testing.T, tf *terraform, view *hclsyntax.Block, data, external, kind string) {
	t.Helper()
	if got := strings.Join(strings.Fields(source(path(t, view, "lifecycle"), "replace_triggered_by")), ""); got != "[terraform_data."+data+"[each.key]]" {
		t.Errorf("%s: replace_triggered_by = %s, want the view replaced with the table it reads (terraform_data.%s)", view.Labels[1], got, data)
	}
	d := tf.resources("terraform_data")[data]
	if d == nil {
		t.Fatalf("no terraform_data.%s", data)
	}
	if got, want := source(d, "for_each"), source(view, "for_each"); got != want {
		t.Errorf("terraform_data.%s: for_each = %s, the view's is %s", data, got, want)
	}
	want := `local.bigquery_native ? google_bigquery_table.native["${each.key}/` + kind + `"].creation_time : google_bigquery_table.` + external + `[each.key].creation_time`
	if got := source(d, "input"); got != want {
		t.Errorf("terraform_data.%s: input = %s\nwant %s", data, got, want)
	}
}

// nativeLocals are deploy/'s locals with BigQuery on, every dataset
// enabled (the reference lists through their group) and the tables
// bigquery_tables says.
func nativeLocals(t *testing.T, tf *terraform, tables string) *tfLocals {
	t.Helper()
	ev := newTFLocals(t, tf, map[string]cty.Value{
		"datasets":         everyDataset(),
		"bigquery_dataset": cty.StringVal(testBQ),
		"bigquery_tables":  cty.StringVal(tables),
		"project_id":       cty.StringVal(testProject),
	})
	ev.done["bucket_name"] = cty.StringVal(testBucket) // a resource's attribute
	return ev
}

// The native tables, as a plan makes them from deploy/datasets.json: one
// per list and kind of object the job publishes (the geolocation layer
// only for a list with a point), named LIST_KIND_native, created with
// the schema file TestBigQueryNativeSchemaFiles checks, partitioned by
// ingestion day, requiring a partition filter except the versions
// (which the history view reads whole), and clustered by state and
// cert_status where the table has them, by columns of its schema only.
// With external tables, none.
func TestTerraformBigQueryNativeTables(t *testing.T) {
	tf := parseTerraform(t)
	v := tf.block("variable", "bigquery_tables")
	if v == nil {
		t.Fatal("no variable bigquery_tables")
	}
	if got := literal(t, v, "default").AsString(); got != "native" {
		t.Errorf("bigquery_tables defaults to %q, want native", got)
	}
	if got := source(path(t, v, "validation"), "condition"); got != `contains(["native", "external"], var.bigquery_tables)` {
		t.Errorf("bigquery_tables' validation: %s", got)
	}

	tables := nativeLocals(t, tf, "native").local("bigquery_native_tables").AsValueMap()
	want := map[string]*arrow.Schema{}
	for name, ds := range spoc.Datasets() {
		want[name+"/snapshots"], want[name+"/changes"], want[name+"/versions"] = ds.Schema(), changes.Schema(ds), history.Schema(ds)
		if geo.HasLayer(ds) {
			want[name+"/geo"] = geo.Schema(ds)
		}
	}
	if got, keys := slices.Sorted(maps.Keys(tables)), slices.Sorted(maps.Keys(want)); !slices.Equal(got, keys) {
		t.Fatalf("native tables %v, want %v", got, keys)
	}
	clustered := 0
	for key, table := range tables {
		name, kind, _ := strings.Cut(key, "/")
		if got := table.GetAttr("table_id").AsString(); got != name+"_"+kind+"_native" {
			t.Errorf("%s: table_id %s", key, got)
		}
		file := filepath.Join(repoRoot, "deploy", "schema", deployDatasets()[name].BigQuerySchemas[kind])
		if got := table.GetAttr("schema").AsString(); filepath.Clean(got) != filepath.Clean(file) {
			t.Errorf("%s: schema %s, want %s", key, got, file)
		}
		if got := table.GetAttr("require_partition_filter").True(); got != (kind != "versions") {
			t.Errorf("%s: require_partition_filter %v", key, got)
		}
		var cols []string
		for _, c := range table.GetAttr("clustering").AsValueSlice() {
			cols = append(cols, c.AsString())
		}
		var wantCols []string
		for _, c := range []string{"state", "cert_status"} {
			if want[key].HasField(c) {
				wantCols = append(wantCols, c)
			}
		}
		if !slices.Equal(cols, wantCols) {
			t.Errorf("%s: clustered by %v, want %v", key, cols, wantCols)
		}
		// Every clustering column is one the job writes, and so a column
		// of the table as its first load leaves it.
		for _, c := range cols {
			if !want[key].HasField(c) {
				t.Errorf("%s: clustered by %s, which the job's %s do not have", key, c, kind)
			}
		}
		clustered += len(cols)
	}
	if tables["spoc/snapshots"].GetAttr("clustering").LengthInt() != 2 || clustered == 0 {
		t.Error("the spoc snapshots are not clustered by state and cert_status")
	}
	if got := nativeLocals(t, tf, "external").local("bigquery_native_tables"); got.LengthInt() != 0 {
		t.Errorf("external tables chosen, and native ones planned: %#v", got)
	}

	b := tf.resources("google_bigquery_table")["native"]
	if b == nil {
		t.Fatal("no google_bigquery_table.native")
	}
	for attr, want := range map[string]string{
		"for_each":                 "local.bigquery_native_tables",
		"table_id":                 "each.value.table_id",
		"schema":                   "file(each.value.schema)",
		"require_partition_filter": "each.value.require_partition_filter",
		"clustering":               "each.value.clustering",
		"deletion_protection":      "true",
	} {
		if got := source(b, attr); got != want {
			t.Errorf("google_bigquery_table.native: %s = %q, want %q", attr, got, want)
		}
	}
	// Ingestion-time partitions, by day: the load names its day with
	// the decorator, and the objects have no date column.
	part := path(t, b, "time_partitioning")
	if got := literal(t, part, "type").AsString(); got != "DAY" {
		t.Errorf("time_partitioning.type %s", got)
	}
	for _, attr := range []string{"field", "require_partition_filter", "expiration_ms"} {
		if got := source(part, attr); got != "" {
			t.Errorf("time_partitioning.%s = %s: want ingestion-time partitions, the filter required at the top level, and every day kept", attr, got)
		}
	}
	if got := source(path(t, b, "lifecycle"), "ignore_changes"); !strings.Contains(got, "schema") {
		t.Errorf("ignore_changes = %s: an apply would drop the columns the loads added, or replace the table", got)
	}
}

// The views have the same names with either tables, so the queries do
// not change with bigquery_tables: over the native tables, snapshot_date
// is the partition's day (_PARTITIONDATE, which a filter on it prunes),
// over the external ones the file's date folder; and the history view
// and the as-of function are the same SQL over either versions table,
// which TestBigQueryHistorySQL runs.
func TestTerraformBigQueryNativeViews(t *testing.T) {
	tf := parseTerraform(t)
	tables := tf.resources("google_bigquery_table")
	views := map[string]*hclsyntax.Block{"snapshots": tables["snapshots_by_date"], "changes": tables["changes_by_date"], "geo": tables["geo_by_date"], "history": tables["history"]}
	for kind, v := range views {
		if v == nil {
			t.Fatalf("no view of the %s", kind)
		}
	}
	h := parseBigQueryHistory(t, tf)
	lists, layers := bigQueryLists(t, tf)
	for name, value := range lists {
		for _, native := range []bool{true, false} {
			suffix := "_external"
			if native {
				suffix = "_native"
			}
			for kind, v := range views {
				table := kind
				if kind == "history" {
					table = "versions"
				}
				if _, ok := layers[name]; kind == "geo" && !ok {
					continue
				}
				if got := renderBigQuery(t, v, "table_id", name, value, native); got != name+"_"+kind {
					t.Errorf("%s: the %s view is %s, want %s_%s", name, kind, got, name, kind)
				}
				sql := renderBigQuery(t, path(t, v, "view"), "query", name, value, native)
				if from := "FROM `" + testProject + "." + testBQ + "." + name + "_" + table + suffix + "`"; !strings.Contains(sql, from) {
					t.Errorf("%s: the %s view does not read %s:\n%s", name, kind, from, sql)
				}
				if kind == "history" {
					continue
				}
				if got := strings.Contains(sql, "_PARTITIONDATE AS snapshot_date,"); got != native {
					t.Errorf("%s (native %v): the %s view's snapshot_date is the partition's day: %v\n%s", name, native, kind, got, sql)
				}
				if got := strings.Contains(sql, "_FILE_NAME"); got == native {
					t.Errorf("%s (native %v): the %s view reads _FILE_NAME: %v\n%s", name, native, kind, got, sql)
				}
			}
			if got := evalStringIn(t, h.asOf, "definition_body", name, native); !strings.Contains(got, "FROM `"+testProject+"."+testBQ+"."+name+"_versions"+suffix+"`") {
				t.Errorf("%s: as_of does not read the %s versions:\n%s", name, suffix, got)
			}
		}
		for b, attr := range map[*hclsyntax.Block]string{path(t, h.view, "view"): "query", h.asOf: "definition_body"} {
			native := strings.ReplaceAll(evalStringIn(t, b, attr, name, true), "_versions_native`", "_versions_external`")
			if external := evalStringIn(t, b, attr, name, false); native != external {
				t.Errorf("%s: the %s differs with the native versions but for the table's name:\n%s\n%s", name, attr, native, external)
			}
		}
	}
	checkReplacedWithTable(t, tf, views["history"], "versions_table", "versions", "versions")
}

// With native tables, and only then, the runtime account may run load
// jobs in the project and write the BigQuery dataset's tables (nothing
// wider), and every job gets SPOC_BIGQUERY_DATASET=PROJECT.DATASET.
func TestTerraformBigQueryNativeLoads(t *testing.T) {
	tf := parseTerraform(t)
	jobs := tf.resources("google_project_iam_member")["runtime_bigquery_jobs"]
	loads := tf.resources("google_bigquery_dataset_iam_member")["runtime_loads"]
	if jobs == nil || loads == nil {
		t.Fatalf("want google_project_iam_member.runtime_bigquery_jobs and google_bigquery_dataset_iam_member.runtime_loads; have %v, %v", jobs != nil, loads != nil)
	}
	for b, role := range map[*hclsyntax.Block]string{jobs: "roles/bigquery.jobUser", loads: "roles/bigquery.dataEditor"} {
		if got := source(b, "count"); got != "local.bigquery_native ? 1 : 0" {
			t.Errorf("%s: count = %s, want one with native tables only", b.Labels[1], got)
		}
		if got := literal(t, b, "role").AsString(); got != role {
			t.Errorf("%s: role %s, want %s", b.Labels[1], got, role)
		}
		if got := source(b, "member"); got != "google_service_account.runtime.member" {
			t.Errorf("%s: member %s", b.Labels[1], got)
		}
	}
	if got := source(jobs, "project"); got != "var.project_id" {
		t.Errorf("runtime_bigquery_jobs: project %s", got)
	}
	if got := source(loads, "dataset_id"); got != "google_bigquery_dataset.spoc[0].dataset_id" {
		t.Errorf("runtime_loads: dataset_id %s, want the deployment's BigQuery dataset", got)
	}
	// Beside the loads', only bigquery_readers' Data Viewer
	// (TestTerraformBigQueryReaders).
	if len(tf.resources("google_bigquery_dataset_iam_member")) != 2 || tf.resources("google_bigquery_dataset_iam_member")["readers"] == nil || len(tf.resources("google_bigquery_table_iam_member")) != 0 {
		t.Error("BigQuery IAM beyond the runtime account's loads")
	}

	for _, tc := range []struct {
		name, dataset, tables, want string // want "" for no setting
	}{
		{"native tables", testBQ, "native", testProject + "." + testBQ},
		{"external tables", testBQ, "external", ""},
		{"no BigQuery", "", "native", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := nativeLocals(t, tf, tc.tables)
			ev.vars["bigquery_dataset"] = cty.StringVal(tc.dataset)
			for job, env := range ev.local("job_env").AsValueMap() {
				v, ok := env.AsValueMap()["SPOC_BIGQUERY_DATASET"]
				switch {
				case tc.want == "" && ok:
					t.Errorf("%s: SPOC_BIGQUERY_DATASET=%s without native tables", job, v.AsString())
				case tc.want != "" && (!ok || v.AsString() != tc.want):
					t.Errorf("%s: SPOC_BIGQUERY_DATASET %#v, want %s", job, v, tc.want)
				}
			}
		})
	}
}

// viewRead is a read of a view over a table that requires a partition
// filter, and what follows it; dayFilter is the constant filter on the
// partition's day that must follow.
var (
	viewRead  = regexp.MustCompile(`FROM mspo\.\w+_(?:snapshots|changes|geo)\b`)
	dayFilter = regexp.MustCompile(`^\s+WHERE snapshot_date (?:=|>=|BETWEEN) (?:DATE '|DATE_SUB\(CURRENT_DATE\(|CURRENT_DATE\()`)
)

// The native snapshot, change and layer tables require a partition
// filter: every BigQuery query of the docs filters each read of their
// views on snapshot_date, right after it and with a constant, or
// BigQuery would refuse it (a subquery's day is no such filter).
func TestBigQueryDocsQueriesNameTheirDays(t *testing.T) {
	var queries []string
	for _, q := range docsQueries(t) {
		if q.engine == "BigQuery" {
			queries = append(queries, q.sql)
		}
	}
	for _, b := range sqlBlocks(string(mustRead(t, filepath.Join(repoRoot, "deploy", "README.md")))) {
		queries = append(queries, b.sql)
	}
	reads := 0
	for _, sql := range queries {
		for _, at := range viewRead.FindAllStringIndex(sql, -1) {
			reads++
			if rest := sql[at[1]:]; !dayFilter.MatchString(rest) {
				line, _, _ := strings.Cut(rest, "\n")
				t.Errorf("%s%s is not followed by a constant filter on snapshot_date:\n%s", sql[at[0]:at[1]], line, sql)
			}
		}
	}
	if reads < 10 {
		t.Errorf("%d reads of the views in the docs' BigQuery queries: the test does not find them", reads)
	}
}
