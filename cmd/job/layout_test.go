package main

import (
	"context"
	"os"
	pathpkg "path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// TestOneGlobOneTable publishes several days with changes and checks the
// contract with every query already written: the seed's glob
// {prefix}/*/*.parquet matches the snapshots and nothing else, each with
// exactly the tidy schema, and {prefix}/*/changes/*.parquet matches the
// change tables and nothing else.
func TestOneGlobOneTable(t *testing.T) {
	days := []string{"20261125", "20261126", "20261127"}
	for _, backend := range []string{"local", "gcs"} {
		t.Run(backend, func(t *testing.T) {
			output := t.TempDir()
			var list func() []string
			var read func(name string) []byte
			if backend == "gcs" {
				startFakeGCS(t, "calee-test")
				output = "gs://calee-test"
				client := gcsClient(t)
				list = func() []string { return bucketObjects(t, client, "calee-test") }
				read = func(name string) []byte { return readObject(t, client, "calee-test", name) }
			} else {
				dir := output
				list = func() []string { return files(t, dir) }
				read = func(name string) []byte {
					b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
					if err != nil {
						t.Fatal(err)
					}
					return b
				}
			}
			for i, day := range days {
				// Another seed each day: plots come and go.
				up := spoctest.NewServer(spoctest.WithRecords(2000), spoctest.WithSeed(uint64(40+i)))
				code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": output, "SPOC_DATE": day})
				up.Close()
				if code != exitOK {
					t.Fatalf("day %s: exit %d\n%s", day, code, logs)
				}
			}
			var snapshots, changeTables []string
			for _, name := range list() {
				if ok, _ := pathpkg.Match(testPrefix+"/*/*.parquet", name); ok {
					snapshots = append(snapshots, name)
				}
				if ok, _ := pathpkg.Match(testPrefix+"/*/changes/*.parquet", name); ok {
					changeTables = append(changeTables, name)
				}
			}
			if len(snapshots) != len(days) || len(changeTables) != len(days) {
				t.Fatalf("the snapshot glob matches %v, the change glob %v; want %d each", snapshots, changeTables, len(days))
			}
			for _, name := range snapshots {
				if s := parquettest.Schema(t, read(name)); !sameFields(s, spoc.Schema) {
					t.Errorf("%s matches the snapshots' glob with the schema\n%s", name, s)
				}
			}
			for _, name := range changeTables {
				if s := parquettest.Schema(t, read(name)); !sameFields(s, changes.Schema(spoc.SPOC)) {
					t.Errorf("%s matches the change tables' glob with the schema\n%s", name, s)
				}
			}
			last := readManifest(t, read(testPrefix+"/"+days[2]+"/"+snapshot.ManifestName))
			if c := last.Changes; c == nil || !strings.HasSuffix(c.URL, "/"+days[2]+"/changes/spoc-list-public.changes.parquet") || c.Changed == 0 || c.FirstRun {
				t.Errorf("the last day's manifest describes the change table as %+v", c)
			}
		})
	}
}
