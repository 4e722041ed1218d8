package main

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/internal/outside"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

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
	query := outside.DuckDB(t)
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
