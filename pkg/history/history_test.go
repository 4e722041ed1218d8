package history_test

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/history"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// recorder keeps the batches a Writer writes, as text.
type recorder struct {
	schema *arrow.Schema
	rows   []string
}

func (r *recorder) Write(rec arrow.RecordBatch) error {
	r.schema = rec.Schema()
	for i := range int(rec.NumRows()) {
		s := ""
		for _, c := range rec.Columns() {
			s += parquettest.CellText(c, i) + "|"
		}
		r.rows = append(r.rows, s)
	}
	return nil
}

// TestWriterLaysOutTheVersions writes the versions of a batch (some of its
// rows, out of order, with nulls of every column type) and a batch of
// removed plots, and checks each row: the dataset's columns as given,
// then the day and the kind of change.
func TestWriterLaysOutTheVersions(t *testing.T) {
	ds := spoc.States // a key of INT32 and a string
	b := array.NewRecordBuilder(memory.DefaultAllocator, ds.Schema())
	defer b.Release()
	ids, names := b.Field(0).(*array.Int32Builder), b.Field(1).(*array.StringBuilder)
	for i, name := range []string{"Johor", "", "Kedah", "Melaka"} {
		ids.Append(int32(i + 1))
		if name == "" {
			names.AppendNull()
		} else {
			names.Append(name)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()

	var got recorder
	// Just after midnight on the 6th in Kuala Lumpur is the 6th, though in
	// UTC it is still the 5th.
	day := time.Date(2026, 12, 6, 0, 30, 0, 0, time.FixedZone("MYT", 8*3600))
	w := history.NewWriter(&got, ds, day)
	if err := w.Write(rec, []changes.Version{{Row: 2, Change: changes.Changed}, {Row: 1, Change: changes.Added}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRemoved(rec.NewSlice(3, 4)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"3|Kedah|2026-12-06|changed|",
		"2|null|2026-12-06|added|",
		"4|Melaka|2026-12-06|removed|",
	}
	if len(got.rows) != len(want) {
		t.Fatalf("rows %q, want %q", got.rows, want)
	}
	for i := range want {
		if got.rows[i] != want[i] {
			t.Errorf("row %d is %q, want %q", i, got.rows[i], want[i])
		}
	}
	if !got.schema.Equal(history.Schema(ds)) {
		t.Errorf("schema %s, want %s", got.schema, history.Schema(ds))
	}
	if w.Rows() != 3 || w.Counts()[changes.Added] != 1 || w.Counts()[changes.Changed] != 1 || w.Counts()[changes.Removed] != 1 {
		t.Errorf("rows %d, counts %v", w.Rows(), w.Counts())
	}
}

// TestSchemaIsTheDatasetsAndTwoMore: every dataset's versions have its
// columns in order, then valid_from (DATE) and change (STRING).
func TestSchemaIsTheDatasetsAndTwoMore(t *testing.T) {
	for name, ds := range spoc.Datasets() {
		s := history.Schema(ds)
		n := ds.Schema().NumFields()
		if s.NumFields() != n+2 {
			t.Fatalf("%s: %d columns, want %d", name, s.NumFields(), n+2)
		}
		for i, f := range ds.Schema().Fields() {
			if !s.Field(i).Equal(f) {
				t.Errorf("%s: column %d is %s, want %s", name, i, s.Field(i), f)
			}
		}
		if f := s.Field(n); f.Name != history.ValidFrom || f.Type.ID() != arrow.DATE32 {
			t.Errorf("%s: %s", name, f)
		}
		if f := s.Field(n + 1); f.Name != history.Change || f.Type.ID() != arrow.STRING {
			t.Errorf("%s: %s", name, f)
		}
	}
}
