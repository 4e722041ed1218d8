package main

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/calee-data/mspo-spoc/pkg/geo"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// testBucket is the bucket the BigQuery tests render the Terraform with.
const testBucket = "my-project-mspo-spoc"

// bigQueryLists are deploy/'s locals with BigQuery on and every dataset
// enabled (the reference lists through their group): each list's
// each.value of the BigQuery resources, and of those over its
// geolocation layer.
func bigQueryLists(t *testing.T, tf *terraform) (lists, layers map[string]cty.Value) {
	t.Helper()
	ev := newTFLocals(t, tf, map[string]cty.Value{"datasets": everyDataset(), "bigquery_dataset": cty.StringVal(testBQ)})
	return ev.local("bigquery_datasets").AsValueMap(), ev.local("bigquery_geo_datasets").AsValueMap()
}

// everyDataset is var.datasets enabling every list, the reference lists
// through their group.
func everyDataset() cty.Value {
	var names []cty.Value
	for name, ds := range spoc.Datasets() {
		if ds.Group == "" {
			names = append(names, cty.StringVal(name))
		}
	}
	for _, group := range spoc.Groups() {
		names = append(names, cty.StringVal(group))
	}
	return cty.SetVal(names)
}

// renderBigQuery is the attribute attr of b as a plan gives it for the
// list key with each.value value, with the native tables or the
// external ones (bigquery_tables), named as Terraform names them.
func renderBigQuery(t *testing.T, b *hclsyntax.Block, attr, key string, value cty.Value, native bool) string {
	t.Helper()
	a, ok := b.Body.Attributes[attr]
	if !ok {
		t.Fatalf("%s %v: no attribute %s", b.Type, b.Labels, attr)
	}
	ctx := &hcl.EvalContext{Functions: terraformFunctions(), Variables: map[string]cty.Value{
		"each": cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(key), "value": value}),
		"var": cty.ObjectVal(map[string]cty.Value{
			"project_id":       cty.StringVal(testProject),
			"bigquery_dataset": cty.StringVal(testBQ),
		}),
		"local":                 cty.ObjectVal(map[string]cty.Value{"bucket_name": cty.StringVal(testBucket), "bigquery_native": cty.BoolVal(native)}),
		"google_bigquery_table": bigQueryTablesOf(key, native),
	}}
	v, diags := a.Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("%s %v: %s for %s: %s", b.Type, b.Labels, attr, key, diags.Error())
	}
	if v.Type().IsTupleType() || v.Type().IsListType() {
		var parts []string
		for _, e := range v.AsValueSlice() {
			parts = append(parts, e.AsString())
		}
		return strings.Join(parts, " ")
	}
	return v.AsString()
}

// geogPoint is the snapshots view's GEOGRAPHY of a dataset's point.
func geogPoint(ds *spoc.Dataset) string {
	lon, lat, _ := ds.Point()
	return "ST_GEOGPOINT(" + ds.Columns[lon].Name + ", " + ds.Columns[lat].Name + ") AS geog"
}

// The snapshots view of every dataset with a point has the GEOGRAPHY
// geog, made of its longitude and latitude columns in that order (ST_GEOGPOINT
// takes the longitude first); a reference list's view has none, as it
// has no point. Rendered from the Terraform with deploy/datasets.json,
// as a plan renders it.
func TestTerraformBigQuerySnapshotsGeog(t *testing.T) {
	tf := parseTerraform(t)
	view := tf.resources("google_bigquery_table")["snapshots_by_date"]
	if view == nil {
		t.Fatal("no google_bigquery_table.snapshots_by_date")
	}
	lists, _ := bigQueryLists(t, tf)
	if got, want := slices.Sorted(maps.Keys(lists)), slices.Sorted(maps.Keys(spoc.Datasets())); !slices.Equal(got, want) {
		t.Fatalf("BigQuery objects for %v, want every list %v", got, want)
	}
	for name, value := range lists {
		ds := spoc.Datasets()[name]
		sql := renderBigQuery(t, path(t, view, "view"), "query", name, value, false)
		if !strings.Contains(sql, "FROM `"+testProject+"."+testBQ+"."+name+"_snapshots_external`") {
			t.Errorf("%s: the view does not read its snapshots:\n%s", name, sql)
		}
		if ds.Schema().HasField("geog") {
			t.Errorf("%s has a column geog, which the view adds", name)
		}
		switch {
		case geo.HasLayer(ds) && strings.Count(sql, geogPoint(ds)) != 1:
			t.Errorf("%s: the view does not give %s once:\n%s", name, geogPoint(ds), sql)
		case !geo.HasLayer(ds) && strings.Contains(sql, "geog"):
			t.Errorf("%s has no point, and its view has a geog:\n%s", name, sql)
		}
	}
}

// Every dataset with a point, and no other, gets the BigQuery objects of
// its geolocation layer: the reference schema (a layer file, checked by
// TestBigQuerySchemaFiles), the external table over every day's layer,
// and a view with snapshot_date and the GEOGRAPHY geog. BigQuery maps a
// GeoParquet file's geometry column to GEOGRAPHY in an external table,
// so geog is that column, renamed as the snapshots view names its own.
func TestTerraformBigQueryGeo(t *testing.T) {
	tf := parseTerraform(t)
	tables := tf.resources("google_bigquery_table")
	object, table, view := tf.resources("google_storage_bucket_object")["geo_schema"], tables["geo"], tables["geo_by_date"]
	if object == nil || table == nil || view == nil {
		t.Fatalf("want google_storage_bucket_object.geo_schema, google_bigquery_table.geo and google_bigquery_table.geo_by_date; have %v, %v, %v", object != nil, table != nil, view != nil)
	}
	// The external table and its reference schema with external
	// tables only; the view whichever tables it reads.
	for b, want := range map[*hclsyntax.Block]string{object: "local.bigquery_external_geo_datasets", table: "local.bigquery_external_geo_datasets", view: "local.bigquery_geo_datasets"} {
		if got := source(b, "for_each"); got != want {
			t.Errorf("%s.%s: for_each = %s, want one per dataset with a layer (%s)", b.Labels[0], b.Labels[1], got, want)
		}
	}
	_, layers := bigQueryLists(t, tf)
	var want []string
	for name, ds := range spoc.Datasets() {
		if geo.HasLayer(ds) {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	if got := slices.Sorted(maps.Keys(layers)); !slices.Equal(got, want) {
		t.Fatalf("geolocation objects for %v, want the datasets with a point %v", got, want)
	}
	ext := path(t, table, "external_data_configuration")
	if literal(t, ext, "autodetect").True() || literal(t, ext, "source_format").AsString() != "PARQUET" {
		t.Error("the geo table is not a Parquet table with a reference schema")
	}
	// The view is replaced with the table, so that its listed schema
	// follows a new one.
	checkReplacedWithTable(t, tf, view, "geo_table", "geo", "geo")
	if got := literal(t, path(t, view, "view"), "use_legacy_sql"); !got.False() {
		t.Error("the geo view uses legacy SQL")
	}
	for name, value := range layers {
		ds := spoc.Datasets()[name]
		prefix := "gs://" + testBucket + "/" + ds.Prefix + "/"
		if got, want := renderBigQuery(t, ext, "source_uris", name, value, false), prefix+"*/"+snapshot.NamesOf(ds).Geo; got != want {
			t.Errorf("%s: the geo table reads %s, want %s", name, got, want)
		}
		for b, want := range map[*hclsyntax.Block]string{table: name + "_geo_external", view: name + "_geo"} {
			if got := renderBigQuery(t, b, "table_id", name, value, false); got != want {
				t.Errorf("%s: table_id %s, want %s", name, got, want)
			}
		}
		sql := renderBigQuery(t, path(t, view, "view"), "query", name, value, false)
		if !strings.Contains(sql, "FROM `"+testProject+"."+testBQ+"."+name+"_geo_external`") {
			t.Errorf("%s: the geo view does not read its table:\n%s", name, sql)
		}
		if !strings.Contains(sql, "* EXCEPT ("+geo.Geometry+")") || !strings.Contains(sql, geo.Geometry+" AS geog") {
			t.Errorf("%s: the geo view does not give %s as geog:\n%s", name, geo.Geometry, sql)
		}
		if geo.Schema(ds).HasField("geog") || geo.Schema(ds).HasField("snapshot_date") {
			t.Errorf("%s: the layer has a column the geo view adds", name)
		}
		// snapshot_date is the layer's day folder, as BigQuery's
		// REGEXP_EXTRACT (RE2, as Go's regexp) takes it from _FILE_NAME.
		m := regexp.MustCompile(`PARSE_DATE\('%Y%m%d', REGEXP_EXTRACT\(_FILE_NAME, r'([^']+)'\)\) AS snapshot_date`).FindStringSubmatch(sql)
		if m == nil {
			t.Fatalf("%s: the geo view has no snapshot_date from _FILE_NAME:\n%s", name, sql)
		}
		re, err := regexp.Compile(m[1])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := re.FindStringSubmatch(prefix + "20261127/" + snapshot.NamesOf(ds).Geo); len(got) != 2 || got[1] != "20261127" {
			t.Errorf("%s: %s takes %q from the layer of 20261127", name, m[1], got)
		}
	}
}
