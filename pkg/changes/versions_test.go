package changes_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// TestRemovedPlotsComeInBoundedBatches removes every plot of a previous
// snapshot whose row groups are larger than a batch of removed plots, and
// checks that FinishVersions hands each removed plot once, with its
// values (nulls included) as the previous snapshot held them, in batches
// no larger than the decoder's default.
func TestRemovedPlotsComeInBoundedBatches(t *testing.T) {
	const plots, rowGroup = 40_000, 36_000
	var previous []plot
	for i := range plots {
		p := plot{id: int64(1_000_000 + i), name: fmt.Sprint("plot ", i), status: "ACTIVE", area: float64(i%50) / 4, updated: "2026-11-20T08:00:00Z"}
		if i%3 == 0 {
			p.name, p.area = "", 0 // nulls
		}
		previous = append(previous, p)
	}
	base, err := changes.ReadBaseline(context.Background(), spoc.SPOC, "20261125", parquetFile(t, rowGroup, previous...))
	if err != nil {
		t.Fatal(err)
	}
	c := base.NewComparison()
	rec := batch(t, plot{id: 1, name: "a new plot"}) // every previous plot removed
	defer rec.Release()
	if err := c.Add(rec); err != nil {
		t.Fatal(err)
	}
	if v := c.Versions(); len(v) != 1 || v[0] != (changes.Version{Row: 0, Change: changes.Added}) {
		t.Errorf("versions of the batch %v, want row 0 added", v)
	}
	want := batch(t, previous...)
	defer want.Release()
	wantRows := map[int64]string{}
	for i := range int(want.NumRows()) {
		wantRows[want.Column(0).(interface{ Value(int) int64 }).Value(i)] = rowText(want, i)
	}
	got, batches := map[int64]string{}, 0
	res, err := c.FinishVersions(context.Background(), func(rec arrow.RecordBatch) error {
		batches++
		if n := rec.NumRows(); n > spoc.DefaultBatchSize {
			t.Errorf("a batch of %d removed plots, more than %d", n, spoc.DefaultBatchSize)
		}
		if !rec.Schema().Equal(spoc.Schema) {
			t.Errorf("removed plots in schema %s", rec.Schema())
		}
		for i := range int(rec.NumRows()) {
			id := rec.Column(0).(interface{ Value(int) int64 }).Value(i)
			if _, dup := got[id]; dup {
				t.Errorf("plot %d handed twice", id)
			}
			got[id] = rowText(rec, i)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Removed != plots || res.Summary.Added != 1 {
		t.Errorf("summary %+v", res.Summary)
	}
	if len(got) != plots || batches < plots/spoc.DefaultBatchSize {
		t.Errorf("%d removed plots in %d batches, want %d in at least %d", len(got), batches, plots, plots/spoc.DefaultBatchSize)
	}
	for id, row := range wantRows {
		if got[id] != row {
			t.Fatalf("plot %d removed as\n%s\nwas\n%s", id, got[id], row)
		}
	}
}

// rowText is row i of rec, every cell as text.
func rowText(rec arrow.RecordBatch, i int) string {
	s := ""
	for _, col := range rec.Columns() {
		s += parquettest.CellText(col, i) + "|"
	}
	return s
}
