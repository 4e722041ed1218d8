package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

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
