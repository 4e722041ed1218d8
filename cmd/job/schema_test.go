package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/geo"
	"github.com/calee-data/mspo-spoc/pkg/history"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// schemaDoc is where the schema tables live.
var schemaDoc = filepath.Join(repoRoot, "docs", "schema.md")

// schemaTable reads the table of doc that follows heading: each column
// named in backquotes in a row's first cell, with the row's type.
func schemaTable(t *testing.T, doc, heading string) map[string]string {
	t.Helper()
	i := strings.Index(doc, heading)
	if i < 0 {
		t.Fatalf("%s has no %q", schemaDoc, heading)
	}
	rest := doc[i:]
	start := strings.Index(rest, "| Column | Arrow type |")
	if start < 0 {
		t.Fatalf("no schema table after %q", heading)
	}
	cols := map[string]string{}
	name := regexp.MustCompile("`([a-z_]+)`")
	for _, line := range strings.Split(rest[start:], "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, "|")
		typ := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(cells[2]), ", not null"))
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			if _, dup := cols[m[1]]; dup {
				t.Errorf("%s: %s listed twice", heading, m[1])
			}
			cols[m[1]] = typ
		}
	}
	return cols
}

// docType is how docs/schema.md writes an Arrow type.
func docType(dt arrow.DataType) string {
	if dt.ID() == arrow.STRING {
		return "string"
	}
	return dt.String()
}

// checkSchemaTable reports the columns of ds that table (read after
// heading) lacks or types otherwise, and the columns it has that ds
// does not.
func checkSchemaTable(t *testing.T, heading string, table map[string]string, ds *spoc.Dataset) {
	t.Helper()
	for _, f := range ds.Schema().Fields() {
		got, ok := table[f.Name]
		switch {
		case !ok:
			t.Errorf("%s: no row for %s", heading, f.Name)
		case got != docType(f.Type):
			t.Errorf("%s: %s is %q, the schema says %q", heading, f.Name, got, docType(f.Type))
		}
		delete(table, f.Name)
	}
	for name := range table {
		t.Errorf("%s: %s is not a column of the %s dataset", heading, name, ds.Name)
	}
}

// thousands writes n as docs/schema.md does, with commas: 250,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// The list of datasets at the top of docs/schema.md is spoc.Datasets():
// a row for every declared dataset and none other, each cell what the
// dataset declares (its group, endpoint, objects, prefix, records path,
// key and floor); and every dataset has a section headed with its
// SPOC_DATASET name whose table is its schema: every column, and no
// other, with its type.
func TestDocsDatasetList(t *testing.T) {
	doc := string(mustRead(t, schemaDoc))
	const header = "| Dataset | Group | Endpoint | Objects | Prefix | Records | Key | Floor |"
	start := strings.Index(doc, header)
	if start < 0 {
		t.Fatalf("%s has no table %q", schemaDoc, header)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(doc[start:], "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows[strings.Trim(cells[0], "`")] = cells[1:]
	}
	code := func(s string) string { return "`" + s + "`" }
	for name, ds := range spoc.Datasets() {
		group := ""
		if ds.Group != "" {
			group = code(ds.Group)
		}
		key := ds.Schema().Field(0)
		want := []string{
			group,
			code(ds.URL),
			code(ds.Object + ".*"),
			code(ds.Prefix),
			code(strings.Join(ds.Records, ".")),
			code(key.Name) + " " + docType(key.Type),
			thousands(ds.Floor),
		}
		got, ok := rows[name]
		if !ok {
			t.Errorf("no row for the dataset %s: want %q", name, want)
			continue
		}
		delete(rows, name)
		if !slices.Equal(got, want) {
			t.Errorf("%s's row: %q\nwant %q", name, got, want)
		}
		heading := regexp.MustCompile("(?m)^#+ .*\\(`SPOC_DATASET=" + regexp.QuoteMeta(name) + "`\\)$").FindString(doc)
		if heading == "" {
			t.Errorf("no section headed (`SPOC_DATASET=%s`)", name)
			continue
		}
		checkSchemaTable(t, heading, schemaTable(t, doc, heading), ds)
	}
	for name := range rows {
		t.Errorf("the row %s is no declared dataset", name)
	}
}

var updateDeploy = flag.Bool("update", false, "rewrite deploy/datasets.json and deploy/schema/ from the job's datasets")

// deployDataset is what Terraform needs of a dataset (deploy/datasets.json).
type deployDataset struct {
	URL               string `json:"url"`
	Object            string `json:"object"`
	Prefix            string `json:"prefix"`
	MinRecords        int64  `json:"min_records"`
	LastSuccessMetric string `json:"last_success_metric"`
	// Key is the column that names a plot (the dataset's first): the
	// history view and the as-of function partition the versions by it.
	Key         string            `json:"key"`
	SchemaFiles map[string]string `json:"schema_files"`
	// BigQuerySchemas are the native tables' schemas, by table kind
	// (the keys of SchemaFiles): JSON files in deploy/schema/ that
	// TestBigQueryNativeSchemaFiles keeps equal to what BigQuery's
	// Parquet loader makes of the job's files.
	BigQuerySchemas map[string]string `json:"bigquery_schemas"`
	// The group (SPOC_DATASET=references) whose one job publishes this
	// list when Terraform's datasets enables the group.
	Group string `json:"group,omitempty"`
	// Point names the columns of a plot's point (spoc.Dataset.Point),
	// which the snapshots view makes a GEOGRAPHY, for a dataset with a
	// geolocation layer; nil for a list without a point (the reference
	// lists), which has neither.
	Point *deployPoint `json:"point,omitempty"`
}

// deployPoint is a dataset's point columns, by name.
type deployPoint struct {
	Longitude string `json:"longitude"`
	Latitude  string `json:"latitude"`
}

// deployDatasets is deploy/datasets.json as the datasets declare it.
func deployDatasets() map[string]deployDataset {
	out := map[string]deployDataset{}
	for name, ds := range spoc.Datasets() {
		d := deployDataset{
			URL:        ds.URL,
			Object:     ds.Object,
			Prefix:     ds.Prefix,
			MinRecords: ds.Floor,
			// As Cloud Monitoring's PromQL names the exported metric.
			LastSuccessMetric: strings.ReplaceAll(snapshot.MetricName(ds, snapshot.MetricLastSuccess), ".", "_"),
			Key:               ds.Schema().Field(0).Name,
			SchemaFiles: map[string]string{
				"snapshots": ds.Object + ".schema.parquet",
				"changes":   ds.Object + ".changes.schema.parquet",
				"versions":  ds.Object + ".versions.schema.parquet",
			},
			Group: ds.Group,
		}
		if lon, lat, ok := ds.Point(); ok {
			d.Point = &deployPoint{Longitude: ds.Columns[lon].Name, Latitude: ds.Columns[lat].Name}
			d.SchemaFiles["geo"] = ds.Object + ".geo.schema.parquet"
		}
		d.BigQuerySchemas = map[string]string{}
		for kind := range d.SchemaFiles {
			d.BigQuerySchemas[kind] = ds.Object + "." + kind + ".bigquery.json"
		}
		out[name] = d
	}
	return out
}

// schemaFile is a BigQuery reference schema: the table's schema, and
// the Parquet options the file is written with.
type schemaFile struct {
	schema *arrow.Schema
	opts   []sink.ParquetOption
	// layer is set for the geolocation layer's file: written by
	// geo.Writer, with the GeoParquet metadata, from which BigQuery
	// makes the geometry column a GEOGRAPHY.
	layer *spoc.Dataset
}

// schemaFiles are the BigQuery reference schemas of every dataset, by
// file name in deploy/schema/. The versions file is written as the job
// writes the versions table (its layout), so that its Parquet types are
// the job's. The others are written plain: their bytes name their
// uploaded objects (the MD5), and new bytes would replace their tables.
// A dataset with a point has a fourth, its geolocation layer's, written
// plain too but through geo.Writer, for the layer's GeoParquet metadata.
func schemaFiles() map[string]schemaFile {
	files := map[string]schemaFile{}
	plain := []sink.ParquetOption{sink.WithCreatedBy("mspo-spoc schema")}
	for name, d := range deployDatasets() {
		ds := spoc.Datasets()[name]
		files[d.SchemaFiles["snapshots"]] = schemaFile{schema: ds.Schema(), opts: plain}
		files[d.SchemaFiles["changes"]] = schemaFile{schema: changes.Schema(ds), opts: plain}
		layouts := snapshot.NewLayouts(ds, "schema", snapshot.Layout{}, snapshot.Layout{})
		files[d.SchemaFiles["versions"]] = schemaFile{schema: history.Schema(ds), opts: layouts.Versions}
		if geo.HasLayer(ds) {
			files[d.SchemaFiles["geo"]] = schemaFile{schema: geo.Schema(ds), opts: plain, layer: ds}
		}
	}
	return files
}

// writeSchemaFile is f as a zero-row Parquet file.
func writeSchemaFile(f schemaFile) ([]byte, error) {
	var b bytes.Buffer
	pw, err := sink.NewParquetWriter(&b, f.schema, f.opts...)
	if err != nil {
		return nil, err
	}
	if f.layer != nil {
		// A layer of no plot: the GeoParquet metadata without a bbox.
		points, err := geo.NewPoints(f.layer)
		if err != nil {
			return nil, err
		}
		w, err := geo.NewWriter(pw, f.layer, points, nil)
		if err != nil {
			return nil, err
		}
		md, err := w.Metadata()
		if err != nil {
			return nil, err
		}
		if err := pw.SetMetadata(geo.MetadataKey, md); err != nil {
			return nil, err
		}
	}
	if err := pw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// geoMetadata is the part of a layer file's GeoParquet metadata that
// BigQuery reads to make a column a GEOGRAPHY.
type geoMetadata struct {
	Version       string `json:"version"`
	PrimaryColumn string `json:"primary_column"`
	Columns       map[string]struct {
		Encoding string `json:"encoding"`
	} `json:"columns"`
}

// Terraform takes the datasets from deploy/datasets.json: this test fails
// when the file is not what the job's datasets declare (go test ./cmd/job
// -run 'TestDeployDatasets|TestBigQuerySchemaFiles' -update rewrites it).
func TestDeployDatasets(t *testing.T) {
	want, err := json.MarshalIndent(deployDatasets(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	file := filepath.Join(repoRoot, "deploy", "datasets.json")
	if *updateDeploy {
		if err := os.WriteFile(file, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale (go test ./cmd/job -run TestDeployDatasets -update rewrites it); it holds\n%s\nthe datasets declare\n%s", file, got, want)
	}
}

// The BigQuery external tables take their schema from these reference
// files (reference_file_schema_uri), so that Terraform can create them on
// an empty bucket: Parquet tables accept no schema of their own, and
// autodetect needs a file. They are zero-row Parquet files written by the
// job's own writer; this test fails when they no longer hold the
// datasets' schemas (-update rewrites them), and when deploy/schema/ has
// a file no dataset names.
func TestBigQuerySchemaFiles(t *testing.T) {
	files := schemaFiles()
	for name, f := range files {
		t.Run(name, func(t *testing.T) {
			schema := f.schema
			file := filepath.Join(repoRoot, "deploy", "schema", name)
			if *updateDeploy {
				b, err := writeSchemaFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (go test ./cmd/job -run TestBigQuerySchemaFiles -update writes it)", err)
			}
			if got := parquettest.Schema(t, data); !sameFields(got, schema) {
				t.Errorf("%s holds the schema\n%s\nthe job writes\n%s", file, got, schema)
			}
			// Without the GeoParquet metadata, BigQuery would read the
			// layer's geometry as BYTES, and the geo view's geog would
			// not be a GEOGRAPHY.
			kv := parquettest.Open(t, data).MetaData().KeyValueMetadata()
			raw := kv.FindValue(geo.MetadataKey)
			switch {
			case f.layer == nil && raw != nil:
				t.Errorf("%s has GeoParquet metadata, and is no layer", file)
			case f.layer != nil && raw == nil:
				t.Errorf("%s has no GeoParquet metadata (%q)", file, geo.MetadataKey)
			case f.layer != nil:
				var md geoMetadata
				if err := json.Unmarshal([]byte(*raw), &md); err != nil {
					t.Fatalf("%s: GeoParquet metadata: %v", file, err)
				}
				if md.Version != geo.Version || md.PrimaryColumn != geo.Geometry || md.Columns[geo.Geometry].Encoding != "WKB" {
					t.Errorf("%s: GeoParquet metadata %s, want version %s and %s a WKB primary column", file, *raw, geo.Version, geo.Geometry)
				}
			}
		})
	}
	entries, err := os.ReadDir(filepath.Join(repoRoot, "deploy", "schema"))
	if err != nil {
		t.Fatal(err)
	}
	native := nativeSchemaFiles(t)
	for _, e := range entries {
		_, reference := files[e.Name()]
		if _, table := native[e.Name()]; !reference && !table {
			t.Errorf("deploy/schema/%s is no dataset's reference schema or native table schema", e.Name())
		}
	}
}
