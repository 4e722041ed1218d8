// Package outside runs, in tests, readers of the job's files that are not
// this project's code: DuckDB, and the npm package geoparquet, a
// GeoParquet reader by the authors of the hyparquet Parquet reader. Both
// run under Node.js. Our own reader reading our own files back proves
// that the two agree, not that the files are what the formats say; these
// readers were written by others from the specifications, and DuckDB is
// what the docs tell users to query the files with.
//
// Each needs its npm packages installed outside the checkout, named by
// an environment variable that .ci/run sets; without them the test is
// skipped, saying how to install them.
package outside

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// DuckDBEnv names a node_modules folder with @duckdb/node-api, at the
// version bench/compare.sh pins (duckdb_version).
const DuckDBEnv = "DUCKDB_NODE_MODULES"

// DuckDB runs SQL in DuckDB (Node.js and @duckdb/node-api, through
// bench/duckdb.mjs) and returns the rows of its first query (a SET or
// CREATE before it runs first). The node_modules folder is DuckDBEnv's,
// which .ci/run installs and sets, or the one bench/compare.sh installs
// in bench/.work/duckdb; the test is skipped where neither is there.
func DuckDB(t testing.TB) func(sql string) []map[string]any {
	t.Helper()
	root := repoRoot(t)
	modules := os.Getenv(DuckDBEnv)
	if modules == "" {
		modules = filepath.Join(root, "bench", ".work", "duckdb", "node_modules")
	}
	if !installed(modules, "@duckdb/node-api") {
		t.Skip("DuckDB is not installed: set " + DuckDBEnv + " to a node_modules folder with @duckdb/node-api, or run bench/compare.sh, which installs it in bench/.work/duckdb")
	}
	script, err := os.ReadFile(filepath.Join(root, "bench", "duckdb.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	run := nodeScript(t, modules, "duckdb.mjs", script)
	return func(sql string) []map[string]any {
		t.Helper()
		out, err := run("query", sql)
		if err != nil {
			t.Fatalf("DuckDB: %v\n%s", err, sql)
		}
		var rows []map[string]any
		if err := json.Unmarshal(out, &rows); err != nil {
			t.Fatalf("DuckDB's rows: %v\n%s", err, out)
		}
		return rows
	}
}

// installed says whether node is on PATH and modules has the package.
func installed(modules, pkg string) bool {
	if _, err := exec.LookPath("node"); err != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(modules, pkg, "package.json"))
	return err == nil
}

// nodeScript writes script to a folder of its own, next to a link to
// modules (an ES module finds its imports in the node_modules folders
// above it, and NODE_PATH does not apply to them), and returns a function
// that runs it with Node.js and gives its standard output; its error
// carries the standard error.
func nodeScript(t testing.TB, modules, name string, script []byte) func(args ...string) ([]byte, error) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal(err)
	}
	if modules, err = filepath.Abs(modules); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, script, 0o644); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) ([]byte, error) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(node, append([]string{path}, args...)...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("node %s: %w\n%s", name, err, stderr.Bytes())
		}
		return stdout.Bytes(), nil
	}
}

// repoRoot is the folder of go.mod, found from the test's working
// directory (its package's folder): the source paths compiled into a
// -trimpath binary are not paths on this machine.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's working directory")
		}
		dir = parent
	}
}
