package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

var updateSchemas = flag.Bool("update", false, "rewrite deploy/schema/ from the job's schemas")

// The BigQuery external tables take their schema from these reference
// files (reference_file_schema_uri), so that Terraform can create them on
// an empty bucket: Parquet tables accept no schema of their own, and
// autodetect needs a file. They are zero-row Parquet files written by the
// job's own writer; this test fails when they no longer hold the job's
// schemas (go test ./cmd/job -run TestBigQuerySchemaFiles -update
// rewrites them).
func TestBigQuerySchemaFiles(t *testing.T) {
	for name, schema := range map[string]*arrow.Schema{
		"spoc-list-public.schema.parquet":         spoc.Schema,
		"spoc-list-public.changes.schema.parquet": changes.Schema,
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(repoRoot, "deploy", "schema", name)
			if *updateSchemas {
				var b bytes.Buffer
				pw, err := sink.NewParquetWriter(&b, schema, sink.WithCreatedBy("mspo-spoc schema"))
				if err != nil {
					t.Fatal(err)
				}
				if err := pw.Close(); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
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
		})
	}
}
