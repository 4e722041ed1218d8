package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// schemaTable reads the README table that follows heading: each column
// named in backquotes in a row's first cell, with the row's type.
func schemaTable(t *testing.T, readme, heading string) map[string]string {
	t.Helper()
	i := strings.Index(readme, heading)
	if i < 0 {
		t.Fatalf("README has no %q", heading)
	}
	rest := readme[i:]
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

// readmeType is how the README writes an Arrow type.
func readmeType(dt arrow.DataType) string {
	if dt.ID() == arrow.STRING {
		return "string"
	}
	return dt.String()
}

// The README's schema tables are the datasets' schemas: every column, in
// no other, with its type.
func TestReadmeSchemaTables(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for heading, ds := range map[string]*spoc.Dataset{
		"## Tidy schema": spoc.SPOC,
		"### Organised smallholders (`SPOC_DATASET=osh`)": spoc.OSH,
	} {
		table := schemaTable(t, readme, heading)
		for _, f := range ds.Schema().Fields() {
			got, ok := table[f.Name]
			switch {
			case !ok:
				t.Errorf("%s: no row for %s", heading, f.Name)
			case got != readmeType(f.Type):
				t.Errorf("%s: %s is %q, the schema says %q", heading, f.Name, got, readmeType(f.Type))
			}
			delete(table, f.Name)
		}
		for name := range table {
			t.Errorf("%s: %s is not a column of the %s dataset", heading, name, ds.Name)
		}
	}
}
