package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// duckDB runs SQL in DuckDB (Node.js and @duckdb/node-api, through
// bench/duckdb.mjs) and returns the rows. The node_modules folder is
// DUCKDB_NODE_MODULES, which .ci/run installs and sets, or the one
// bench/compare.sh installs in bench/.work/duckdb; the test is skipped
// where neither is there.
func duckDB(t *testing.T) func(sql string) []map[string]any {
	t.Helper()
	node, err := exec.LookPath("node")
	modules := os.Getenv("DUCKDB_NODE_MODULES")
	if modules == "" {
		modules = filepath.Join(repoRoot, "bench", ".work", "duckdb", "node_modules")
	}
	modules, _ = filepath.Abs(modules)
	if _, serr := os.Stat(filepath.Join(modules, "@duckdb", "node-api")); err != nil || serr != nil {
		t.Skip("DuckDB is not installed: set DUCKDB_NODE_MODULES to a node_modules folder with @duckdb/node-api, or run bench/compare.sh, which installs it in bench/.work/duckdb")
	}
	dir := t.TempDir()
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "duckdb.mjs")
	if err := os.WriteFile(script, mustRead(t, filepath.Join(repoRoot, "bench", "duckdb.mjs")), 0o644); err != nil {
		t.Fatal(err)
	}
	return func(sql string) []map[string]any {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(node, script, "query", sql)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("DuckDB: %v\n%s\n%s", err, stderr.String(), sql)
		}
		var rows []map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
			t.Fatalf("DuckDB's rows: %v\n%s", err, stdout.String())
		}
		return rows
	}
}

// readmeQueries are the SQL blocks of the README's "Querying the
// snapshots": the seed's query over every day, then its newest-day form.
func readmeQueries(t *testing.T) []string {
	t.Helper()
	var queries []string
	for _, b := range sqlBlocks(markdownSection(t, filepath.Join(repoRoot, "README.md"), "Querying the snapshots")) {
		queries = append(queries, b.sql)
	}
	return queries
}

// The README's queries run in DuckDB on two published days: the seed's
// sums both, the newest-day form gives what the seed's query gives on
// the newest day's snapshot alone.
func TestReadmeQueries(t *testing.T) {
	query := duckDB(t)
	queries := readmeQueries(t)
	if len(queries) != 2 {
		t.Fatalf("%d SQL blocks in the README's \"Querying the snapshots\", want the seed's query and its newest-day form", len(queries))
	}
	out := t.TempDir()
	for i, date := range []string{"20261201", "20261202"} {
		var body bytes.Buffer
		gen := spoctest.GenOptions{Records: 800, Seed: 1}
		if i == 1 {
			gen.NextDay = spoctest.Changes{RemoveEvery: 10, StatusEvery: 7, AreaEvery: 5, Added: 50}
		}
		if _, err := spoctest.Generate(&body, gen); err != nil {
			t.Fatal(err)
		}
		up := spoctest.NewServer(spoctest.WithBody(body.Bytes()))
		code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out, "SPOC_DATE": date})
		up.Close()
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s", date, code, logs)
		}
	}
	local := localBucket(t, out)
	everyDay := query(local(queries[0]))
	newest := query(local(queries[1]))
	newestAlone := query(strings.ReplaceAll(local(queries[0]), "/*/*.parquet", "/20261202/*.parquet"))
	if len(newestAlone) == 0 {
		t.Fatal("no rows: the query found no active plots")
	}
	if !reflect.DeepEqual(newest, newestAlone) {
		t.Errorf("the newest-day form gives\n%v\nthe newest day alone\n%v", newest, newestAlone)
	}
	if reflect.DeepEqual(everyDay, newestAlone) {
		t.Error("the seed's query gives the newest day alone, not every day's sum: the test proves nothing")
	}
}

// docsBucket is the bucket of the documented queries' URLs.
const docsBucket = "gs://calee_data/"

// localBucket makes a documented query read the snapshots published in
// the folder out instead of the bucket; a query that reads no bucket
// fails the test.
func localBucket(t *testing.T, out string) func(string) string {
	t.Helper()
	return func(q string) string {
		t.Helper()
		if !strings.Contains(q, docsBucket) {
			t.Fatalf("the query reads no %s:\n%s", docsBucket, q)
		}
		return strings.ReplaceAll(q, docsBucket, filepath.ToSlash(out)+"/")
	}
}
