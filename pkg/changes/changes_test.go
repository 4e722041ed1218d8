package changes_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// plot is a row of a snapshot with the columns the tests vary; the others
// are null. A zero area or an empty status or time is null.
type plot struct {
	id      int64
	name    string
	status  string
	area    float64
	updated string // RFC 3339
}

// batch builds a record batch with spoc.Schema.
func batch(t testing.TB, plots ...plot) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, spoc.Schema)
	defer b.Release()
	for _, p := range plots {
		for i, f := range spoc.Schema.Fields() {
			fb := b.Field(i)
			switch f.Name {
			case "entity_smallholder_id":
				fb.(*array.Int64Builder).Append(p.id)
			case "name":
				appendString(fb, p.name)
			case "cert_status":
				appendString(fb, p.status)
			case "certified_area":
				if p.area == 0 {
					fb.AppendNull()
				} else {
					fb.(*array.Float64Builder).Append(p.area)
				}
			case "updated_at":
				if p.updated == "" {
					fb.AppendNull()
				} else {
					ts, err := time.Parse(time.RFC3339, p.updated)
					if err != nil {
						t.Fatal(err)
					}
					fb.(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro()))
				}
			default:
				fb.AppendNull()
			}
		}
	}
	return b.NewRecordBatch()
}

func appendString(b array.Builder, s string) {
	if s == "" {
		b.AppendNull()
		return
	}
	b.(*array.StringBuilder).Append(s)
}

// parquetFile writes plots as a snapshot Parquet file, rowGroup rows to a
// row group.
func parquetFile(t testing.TB, rowGroup int64, plots ...plot) *bytes.Reader {
	t.Helper()
	var buf bytes.Buffer
	pw, err := sink.NewParquetWriter(&buf, spoc.Schema, sink.WithMaxRowGroupLength(rowGroup), sink.WithDictionary(spoc.DictionaryColumns()...))
	if err != nil {
		t.Fatal(err)
	}
	rec := batch(t, plots...)
	defer rec.Release()
	if err := pw.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(buf.Bytes())
}

// compare runs a whole comparison of current (fed in batches of
// batchSize) against previous.
func compare(t testing.TB, previous changes.File, batchSize int, current ...plot) (*changes.Result, error) {
	t.Helper()
	base, err := changes.ReadBaseline(context.Background(), spoc.SPOC, "20261125", previous)
	if err != nil {
		return nil, err
	}
	c := base.NewComparison()
	for chunk := range slices.Chunk(current, batchSize) {
		rec := batch(t, chunk...)
		err := c.Add(rec)
		rec.Release()
		if err != nil {
			return nil, err
		}
	}
	return c.Finish(context.Background())
}

// table is the change table as text, one line per row.
type table []string

func (tb *table) Write(rec arrow.RecordBatch) error {
	for i := range int(rec.NumRows()) {
		var cells []string
		for c, col := range rec.Columns() {
			cells = append(cells, rec.Schema().Field(c).Name+"="+parquettest.CellText(col, i))
		}
		*tb = append(*tb, strings.Join(cells, " "))
	}
	return nil
}

func rowsOf(t testing.TB, r *changes.Result, batchSize int) table {
	t.Helper()
	var tb table
	if err := r.WriteBatches(&tb, memory.DefaultAllocator, batchSize); err != nil {
		t.Fatal(err)
	}
	return tb
}

// day1 and day2 differ by planted changes: 3 added (101-103), 2 removed
// (4, 5), 4 status changes (three ACTIVE -> EXPIRED, one EXPIRED ->
// ACTIVE, one of them with a new updated_at), 1 changed area, 1 changed
// name, and 3 plots unchanged. Day 1 repeats id 2, day 2 repeats ids 1
// and 101: the first row of each stands.
var (
	day1 = []plot{
		{1, "ALI", "ACTIVE", 1.5, "2026-01-01T00:00:00Z"},
		{2, "BAKAR", "ACTIVE", 2.0, "2026-01-02T00:00:00Z"},
		{2, "BAKAR LAMA", "EXPIRED", 9.9, "2020-01-01T00:00:00Z"},
		{3, "CHONG", "ACTIVE", 3.0, "2026-01-03T00:00:00Z"},
		{4, "DEVI", "ACTIVE", 4.0, "2026-01-04T00:00:00Z"},
		{5, "EMBONG", "", 0, ""},
		{6, "FATIMAH", "EXPIRED", 6.0, "2026-01-06T00:00:00Z"},
		{7, "GOPAL", "ACTIVE", 7.0, "2026-01-07T00:00:00Z"},
		{8, "HASSAN", "ACTIVE", 8.0, "2026-01-08T00:00:00Z"},
		{9, "IBRAHIM", "ACTIVE", 9.0, "2026-01-09T00:00:00Z"},
		{10, "JAMAL", "ACTIVE", 10.0, "2026-01-10T00:00:00Z"},
	}
	day2 = []plot{
		{103, "ZAKI", "ACTIVE", 1.0, "2026-02-03T00:00:00Z"},
		{1, "ALI", "EXPIRED", 1.5, "2026-01-01T00:00:00Z"},
		{2, "BAKAR", "ACTIVE", 2.0, "2026-01-02T00:00:00Z"},
		{3, "CHONG", "EXPIRED", 3.0, "2026-02-01T00:00:00Z"},
		{6, "FATIMAH", "ACTIVE", 6.0, "2026-01-06T00:00:00Z"},
		{1, "ALI DUA", "ACTIVE", 1.0, "2026-03-01T00:00:00Z"},
		{7, "GOPAL", "EXPIRED", 7.0, "2026-01-07T00:00:00Z"},
		{8, "HASSAN", "ACTIVE", 8.25, "2026-01-08T00:00:00Z"},
		{9, "IBRAHIM BIN ABU", "ACTIVE", 9.0, "2026-01-09T00:00:00Z"},
		{10, "JAMAL", "ACTIVE", 10.0, "2026-01-10T00:00:00Z"},
		{101, "XAVIER", "", 0, ""},
		{102, "YUSOF", "ACTIVE", 2.5, "2026-02-02T00:00:00Z"},
		{101, "XAVIER DUA", "ACTIVE", 5.0, ""},
	}
)

func TestPlantedChanges(t *testing.T) {
	want := table{
		"entity_smallholder_id=1 change=changed changed_columns=[cert_status] cert_status_before=ACTIVE cert_status_after=EXPIRED certified_area_before=1.5 certified_area_after=1.5 updated_at_before=2026-01-01T00:00:00Z updated_at_after=2026-01-01T00:00:00Z",
		"entity_smallholder_id=3 change=changed changed_columns=[cert_status,updated_at] cert_status_before=ACTIVE cert_status_after=EXPIRED certified_area_before=3 certified_area_after=3 updated_at_before=2026-01-03T00:00:00Z updated_at_after=2026-02-01T00:00:00Z",
		"entity_smallholder_id=4 change=removed changed_columns=null cert_status_before=ACTIVE cert_status_after=null certified_area_before=4 certified_area_after=null updated_at_before=2026-01-04T00:00:00Z updated_at_after=null",
		"entity_smallholder_id=5 change=removed changed_columns=null cert_status_before=null cert_status_after=null certified_area_before=null certified_area_after=null updated_at_before=null updated_at_after=null",
		"entity_smallholder_id=6 change=changed changed_columns=[cert_status] cert_status_before=EXPIRED cert_status_after=ACTIVE certified_area_before=6 certified_area_after=6 updated_at_before=2026-01-06T00:00:00Z updated_at_after=2026-01-06T00:00:00Z",
		"entity_smallholder_id=7 change=changed changed_columns=[cert_status] cert_status_before=ACTIVE cert_status_after=EXPIRED certified_area_before=7 certified_area_after=7 updated_at_before=2026-01-07T00:00:00Z updated_at_after=2026-01-07T00:00:00Z",
		"entity_smallholder_id=8 change=changed changed_columns=[certified_area] cert_status_before=ACTIVE cert_status_after=ACTIVE certified_area_before=8 certified_area_after=8.25 updated_at_before=2026-01-08T00:00:00Z updated_at_after=2026-01-08T00:00:00Z",
		"entity_smallholder_id=9 change=changed changed_columns=[name] cert_status_before=ACTIVE cert_status_after=ACTIVE certified_area_before=9 certified_area_after=9 updated_at_before=2026-01-09T00:00:00Z updated_at_after=2026-01-09T00:00:00Z",
		"entity_smallholder_id=101 change=added changed_columns=null cert_status_before=null cert_status_after=null certified_area_before=null certified_area_after=null updated_at_before=null updated_at_after=null",
		"entity_smallholder_id=102 change=added changed_columns=null cert_status_before=null cert_status_after=ACTIVE certified_area_before=null certified_area_after=2.5 updated_at_before=null updated_at_after=2026-02-02T00:00:00Z",
		"entity_smallholder_id=103 change=added changed_columns=null cert_status_before=null cert_status_after=ACTIVE certified_area_before=null certified_area_after=1 updated_at_before=null updated_at_after=2026-02-03T00:00:00Z",
	}
	wantSummary := changes.Summary{
		Previous: "20261125",
		Added:    3, Removed: 2, Changed: 6, Unchanged: 2,
		Columns: map[string]int64{"cert_status": 4, "updated_at": 1, "certified_area": 1, "name": 1},
		StatusTransitions: []changes.Transition{
			{From: "ACTIVE", To: "EXPIRED", Count: 3},
			{From: "EXPIRED", To: "ACTIVE", Count: 1},
		},
		IgnoredDuplicates: changes.Duplicates{Previous: 1, Current: 2},
	}
	// The same two files, whatever the batches and row groups.
	for _, tc := range []struct{ rowGroup, batch, out int }{{1 << 20, 1 << 20, 0}, {3, 1, 2}, {4, 5, 1}} {
		t.Run(fmt.Sprintf("row groups of %d, batches of %d", tc.rowGroup, tc.batch), func(t *testing.T) {
			r, err := compare(t, &closableFile{Reader: parquetFile(t, int64(tc.rowGroup), day1...)}, tc.batch, day2...)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%+v", r.Summary); got != fmt.Sprintf("%+v", wantSummary) {
				t.Errorf("summary\n got %s\nwant %+v", got, wantSummary)
			}
			if r.Summary.Rows() != int64(r.Len()) {
				t.Errorf("Rows() = %d, Len() = %d", r.Summary.Rows(), r.Len())
			}
			got := rowsOf(t, r, tc.out)
			if !slices.Equal(got, want) {
				t.Errorf("change table\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
			}
		})
	}
}

func TestNothingChanged(t *testing.T) {
	prev := parquetFile(t, 4, day1...)
	file := &swappableFile{prev}
	base, err := changes.ReadBaseline(context.Background(), spoc.SPOC, "20261125", file)
	if err != nil {
		t.Fatal(err)
	}
	if base.Len() != 10 {
		t.Errorf("baseline of %d ids, want 10", base.Len())
	}
	c := base.NewComparison()
	rec := batch(t, day1...)
	defer rec.Release()
	if err := c.Add(rec); err != nil {
		t.Fatal(err)
	}
	// Nothing changed or went: Finish has no reason to read the file.
	file.File = failingFile{}
	r, err := c.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := r.Summary
	if s.Added+s.Removed+s.Changed != 0 || s.Unchanged != 10 || s.IgnoredDuplicates.Current != 1 || r.Len() != 0 {
		t.Errorf("summary %+v, %d rows; want 10 unchanged and nothing else", s, r.Len())
	}
	got := rowsOf(t, r, 0)
	if len(got) != 0 {
		t.Errorf("change table has %d rows, want none", len(got))
	}
	// A fresh comparison from the same baseline starts over (a retry).
	again := base.NewComparison()
	file.File = prev
	r, err = again.Finish(context.Background())
	if err != nil || r.Summary.Removed != 10 {
		t.Errorf("an empty current snapshot: %v, %+v; want 10 removed", err, r.Summary)
	}
}

func TestPreviousSnapshotUnusable(t *testing.T) {
	// fileOf writes one row of fields as a Parquet file.
	fileOf := func(fill func(b *array.RecordBuilder), fields ...arrow.Field) *bytes.Reader {
		schema := arrow.NewSchema(fields, nil)
		var buf bytes.Buffer
		pw, err := sink.NewParquetWriter(&buf, schema)
		if err != nil {
			t.Fatal(err)
		}
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		fill(b)
		rec := b.NewRecordBatch()
		if err := pw.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		b.Release()
		if err := pw.Close(); err != nil {
			t.Fatal(err)
		}
		return bytes.NewReader(buf.Bytes())
	}
	id := arrow.Field{Name: "entity_smallholder_id", Type: arrow.PrimitiveTypes.Int64}
	nullableID := arrow.Field{Name: "entity_smallholder_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}
	area := arrow.Field{Name: "certified_area", Type: arrow.PrimitiveTypes.Float64, Nullable: true}
	areaAsText := arrow.Field{Name: "certified_area", Type: arrow.BinaryTypes.String, Nullable: true}
	wrongType := fileOf(func(b *array.RecordBuilder) {
		b.Field(0).(*array.Int64Builder).Append(1)
		b.Field(1).(*array.StringBuilder).Append("1.5")
	}, id, areaAsText)
	noID := fileOf(func(b *array.RecordBuilder) { b.Field(0).(*array.Float64Builder).Append(1.5) }, area)
	nullID := fileOf(func(b *array.RecordBuilder) {
		b.Field(0).(*array.Int64Builder).AppendNull()
		b.Field(1).(*array.Float64Builder).Append(1.5)
	}, nullableID, area)
	for _, tc := range []struct {
		name string
		file changes.File
		is   error
	}{
		{"a column of another type", wrongType, changes.ErrSchema},
		{"no id column", noID, changes.ErrSchema},
		{"a null id", nullID, changes.ErrSchema},
		{"not Parquet", bytes.NewReader([]byte("{\"data\": []}")), nil},
		{"unreadable", failingFile{}, errRead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := changes.ReadBaseline(context.Background(), spoc.SPOC, "20261125", tc.file)
			if err == nil || !strings.Contains(err.Error(), "20261125") || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("ReadBaseline: %v; want an error naming the snapshot, wrapping %v", err, tc.is)
			}
		})
	}
}

// A previous snapshot replaced between the two reads must not give a
// half-filled change table.
func TestPreviousSnapshotChangedBetweenReads(t *testing.T) {
	file := &swappableFile{parquetFile(t, 4, day1...)}
	base, err := changes.ReadBaseline(context.Background(), spoc.SPOC, "20261125", file)
	if err != nil {
		t.Fatal(err)
	}
	c := base.NewComparison()
	rec := batch(t, day2...)
	defer rec.Release()
	if err := c.Add(rec); err != nil {
		t.Fatal(err)
	}
	file.File = parquetFile(t, 4, day2...)
	_, err = c.Finish(context.Background())
	if err == nil || !strings.Contains(err.Error(), "again") {
		t.Errorf("Finish against another file: %v, want an error", err)
	}
}

func TestCurrentBatchWithoutIDs(t *testing.T) {
	base, err := changes.ReadBaseline(context.Background(), spoc.SPOC, "20261125", parquetFile(t, 4, day1...))
	if err != nil {
		t.Fatal(err)
	}
	schema := arrow.NewSchema([]arrow.Field{{Name: "name", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append("x")
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := base.NewComparison().Add(rec); !errors.Is(err, changes.ErrSchema) {
		t.Errorf("Add of a batch without ids: %v, want ErrSchema", err)
	}
}

// closableFile is a previous snapshot that, like an *os.File, cannot be
// read after Close: the two reads of it must not close it.
type closableFile struct {
	*bytes.Reader
	closed bool
}

func (f *closableFile) Close() error { f.closed = true; return nil }

func (f *closableFile) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, errors.New("file already closed")
	}
	return f.Reader.ReadAt(p, off)
}

// swappableFile reads from whichever File it holds now: a test swaps it
// between ReadBaseline and Finish, as a replaced or broken file would.
type swappableFile struct{ changes.File }

var errRead = errors.New("read refused")

type failingFile struct{}

func (failingFile) ReadAt([]byte, int64) (int, error) { return 0, errRead }
func (failingFile) Seek(int64, int) (int64, error)    { return 0, errRead }

var _ io.ReaderAt = failingFile{}

// TestGeneratedDay compares a generated day, with every column and the
// generator's nulls, invalid values and repeated ids, with its own
// snapshot file: the file is hashed from Parquet pages and the day from
// Arrow arrays, so any column hashed differently on the two paths shows
// up as changed.
func TestGeneratedDay(t *testing.T) {
	batches, file, err := generatedDay(5000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, rec := range batches {
			rec.Release()
		}
	})
	for _, nth := range []int{0, 7} {
		t.Run(fmt.Sprintf("certified_area changed on every %dth row", nth), func(t *testing.T) {
			day2 := batches
			if nth > 0 {
				day2 = changedAreas(t, batches, nth)
			}
			// The expected changes: the first row of each id decides.
			firsts, wantChanged := map[int64]bool{}, int64(0)
			row := 0
			for _, rec := range batches {
				ids := rec.Column(0).(*array.Int64)
				area := rec.Column(spoc.Schema.FieldIndices("certified_area")[0]).(*array.Float64)
				for i := range ids.Len() {
					if !firsts[ids.Value(i)] {
						firsts[ids.Value(i)] = true
						if nth > 0 && row%nth == 0 && (area.IsNull(i) || area.Value(i) != 99.75) {
							wantChanged++
						}
					}
					row++
				}
			}
			base, err := changes.ReadBaseline(context.Background(), spoc.SPOC, "20261125", bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			c := base.NewComparison()
			for _, rec := range day2 {
				if err := c.Add(rec); err != nil {
					t.Fatal(err)
				}
			}
			res, err := c.Finish(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			s := res.Summary
			wantColumns := map[string]int64{}
			if wantChanged > 0 {
				wantColumns["certified_area"] = wantChanged
			}
			if s.Added != 0 || s.Removed != 0 || s.Changed != wantChanged || s.Unchanged != int64(len(firsts))-wantChanged ||
				!maps.Equal(s.Columns, wantColumns) || len(s.StatusTransitions) != 0 {
				t.Errorf("summary %+v; want %d changed in certified_area only, of %d ids", s, wantChanged, len(firsts))
			}
			if s.IgnoredDuplicates.Previous != int64(row-len(firsts)) || s.IgnoredDuplicates.Current != s.IgnoredDuplicates.Previous {
				t.Errorf("ignored duplicates %+v, want %d in each", s.IgnoredDuplicates, row-len(firsts))
			}
		})
	}
}

// A value hashes alike in the day's Arrow batches and in the previous
// snapshot's Parquet pages, for every column type of every dataset: a
// day compared with itself has no change, whether its batches are whole
// or slices that start inside the arrays' buffers, and changing one
// column's value shows in that column only.
func TestBothReadersHashAlike(t *testing.T) {
	for _, ds := range []*spoc.Dataset{spoc.SPOC, spoc.OSH, spoc.GM} {
		batches, file, err := generatedDayOf(ds, spoctest.GenOptions{Records: 3000, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, rec := range batches {
				rec.Release()
			}
		})
		types := map[arrow.Type]bool{}
		for _, f := range ds.Schema().Fields() {
			types[f.Type.ID()] = true
		}
		if len(types) < 5 {
			t.Fatalf("%s: the generated day has only the types %v", ds.Name, types)
		}
		for _, sliced := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/sliced=%v", ds.Name, sliced), func(t *testing.T) {
				base, err := changes.ReadBaseline(context.Background(), ds, "20261125", bytes.NewReader(file))
				if err != nil {
					t.Fatal(err)
				}
				c := base.NewComparison()
				for _, rec := range batches {
					parts := []arrow.RecordBatch{rec}
					if sliced {
						n := rec.NumRows()
						parts = []arrow.RecordBatch{rec.NewSlice(0, n/3), rec.NewSlice(n/3, n/3+7), rec.NewSlice(n/3+7, n)}
					}
					for _, p := range parts {
						err := c.Add(p)
						if sliced {
							p.Release()
						}
						if err != nil {
							t.Fatal(err)
						}
					}
				}
				res, err := c.Finish(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if s := res.Summary; s.Added+s.Removed+s.Changed != 0 || s.Unchanged == 0 {
					t.Errorf("the day against itself: %+v; want every plot unchanged", s)
				}
			})
		}
	}
}

// A cert_status longer than a real one is one transition label, so a
// hostile body cannot put long strings into the metric's attributes.
func TestLongStatusesShareATransitionLabel(t *testing.T) {
	long := strings.Repeat("S", 5000)
	previous := []plot{{id: 1, status: "ACTIVE"}, {id: 2, status: "ACTIVE"}}
	r, err := compare(t, &closableFile{Reader: parquetFile(t, 1<<20, previous...)}, 1<<20,
		plot{id: 1, status: long + "1"}, plot{id: 2, status: long + "2"})
	if err != nil {
		t.Fatal(err)
	}
	want := []changes.Transition{{From: "ACTIVE", To: changes.LongStatus, Count: 2}}
	if !slices.Equal(r.Summary.StatusTransitions, want) {
		t.Errorf("transitions %+v, want %+v", r.Summary.StatusTransitions, want)
	}
}

// A cert_status longer than a real one stands in the change table as
// changes.LongStatus, before and after; the plot is still found changed
// when only its long status changed, and the table is otherwise whole.
func TestLongStatusesInTheChangeTable(t *testing.T) {
	long := func(n int) string { return fmt.Sprintf("%08d%s", n, strings.Repeat("S", 5000)) }
	previous := []plot{
		{1, "ALI", long(1), 1.5, "2026-01-01T00:00:00Z"},    // long -> short
		{2, "BAKAR", "ACTIVE", 2.0, ""},                     // short -> long
		{3, "CHONG", long(3), 3.0, ""},                      // long -> another long
		{4, "DEVI", long(4), 4.0, ""},                       // long, unchanged
		{5, "EMBONG", long(5), 5.0, "2026-01-05T00:00:00Z"}, // long, removed
		{6, "FATIMAH", "ACTIVE", 6.0, ""},                   // short, area changed
	}
	current := []plot{
		{1, "ALI", "ACTIVE", 1.5, "2026-01-01T00:00:00Z"},
		{2, "BAKAR", long(2), 2.0, ""},
		{3, "CHONG", long(30), 3.0, ""},
		{4, "DEVI", long(4), 4.0, ""},
		{6, "FATIMAH", "ACTIVE", 6.5, ""},
		{7, "GOPAL", long(7), 7.0, ""},                  // added, long
		{8, "HASSAN", strings.Repeat("S", 32), 8.0, ""}, // added, as long as a kept status may be
	}
	const label = changes.LongStatus
	want := table{
		"entity_smallholder_id=1 change=changed changed_columns=[cert_status] cert_status_before=" + label + " cert_status_after=ACTIVE certified_area_before=1.5 certified_area_after=1.5 updated_at_before=2026-01-01T00:00:00Z updated_at_after=2026-01-01T00:00:00Z",
		"entity_smallholder_id=2 change=changed changed_columns=[cert_status] cert_status_before=ACTIVE cert_status_after=" + label + " certified_area_before=2 certified_area_after=2 updated_at_before=null updated_at_after=null",
		"entity_smallholder_id=3 change=changed changed_columns=[cert_status] cert_status_before=" + label + " cert_status_after=" + label + " certified_area_before=3 certified_area_after=3 updated_at_before=null updated_at_after=null",
		"entity_smallholder_id=5 change=removed changed_columns=null cert_status_before=" + label + " cert_status_after=null certified_area_before=5 certified_area_after=null updated_at_before=2026-01-05T00:00:00Z updated_at_after=null",
		"entity_smallholder_id=6 change=changed changed_columns=[certified_area] cert_status_before=ACTIVE cert_status_after=ACTIVE certified_area_before=6 certified_area_after=6.5 updated_at_before=null updated_at_after=null",
		"entity_smallholder_id=7 change=added changed_columns=null cert_status_before=null cert_status_after=" + label + " certified_area_before=null certified_area_after=7 updated_at_before=null updated_at_after=null",
		"entity_smallholder_id=8 change=added changed_columns=null cert_status_before=null cert_status_after=" + strings.Repeat("S", 32) + " certified_area_before=null certified_area_after=8 updated_at_before=null updated_at_after=null",
	}
	r, err := compare(t, &closableFile{Reader: parquetFile(t, 2, previous...)}, 3, current...)
	if err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(t, r, 2); !slices.Equal(got, want) {
		// A long status shows as its first bytes.
		short := regexp.MustCompile(`S{33,}`)
		t.Errorf("change table\n got %s\nwant %s", short.ReplaceAllString(strings.Join(got, "\n     "), "SSS..."), strings.Join(want, "\n     "))
	}
	s := r.Summary
	if s.Added != 2 || s.Removed != 1 || s.Changed != 4 || s.Unchanged != 1 {
		t.Errorf("summary %+v; want 2 added, 1 removed, 4 changed, 1 unchanged", s)
	}
	wantTransitions := []changes.Transition{{From: label, To: "ACTIVE", Count: 1}, {From: "ACTIVE", To: label, Count: 1}}
	if !slices.Equal(s.StatusTransitions, wantTransitions) {
		t.Errorf("transitions %+v, want %+v", s.StatusTransitions, wantTransitions)
	}
}

// The comparison keeps none of a long cert_status's bytes, before or
// after: what a Result holds does not grow with the length of the
// statuses of the plots that changed.
func TestComparisonKeepsNoLongStatus(t *testing.T) {
	const plots, length = 40, 1 << 20
	// The days are made and compared in a function of their own, so that
	// nothing of them is left but what the result keeps.
	r := func() *changes.Result {
		var previous, current []plot
		for i := range int64(plots) {
			// Half long before, half long after, every one distinct.
			before, after := fmt.Sprintf("%08d%s", i, strings.Repeat("S", length)), "ACTIVE"
			if i%2 == 1 {
				before, after = after, before
			}
			previous = append(previous, plot{id: i, status: before})
			current = append(current, plot{id: i, status: after})
		}
		r, err := compare(t, parquetFile(t, 4, previous...), 4, current...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// The statuses are 40 MiB, of which the result should keep nothing.
	if ms.HeapAlloc > 8<<20 {
		t.Errorf("%d MiB on the heap with the result of %d plots whose statuses are %d MiB in all; want under 8 MiB", ms.HeapAlloc>>20, r.Len(), plots*length>>20)
	}
	runtime.KeepAlive(r)
}

// TestChangeRowsAreCompact: the change table's rows, which a result holds
// until it is written, cost a few dozen bytes each, whether every plot
// was replaced (added and removed rows) or changed (with before and after
// values), so that a day that changes every plot stays within the job's
// memory target.
func TestChangeRowsAreCompact(t *testing.T) {
	const plots = 100_000
	const maxBytesPerRow = 96
	for _, tc := range []struct {
		name    string
		current func(i int64) plot
	}{
		{"every plot replaced", func(i int64) plot { return plot{id: plots + i, status: "ACTIVE", area: 2.5} }},
		{"every plot changed", func(i int64) plot { return plot{id: i, status: "EXPIRED", area: 3.5} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			before := ms.HeapAlloc
			r := func() *changes.Result {
				previous, current := make([]plot, plots), make([]plot, plots)
				for i := range int64(plots) {
					previous[i] = plot{id: i, status: "ACTIVE", area: 2.5}
					current[i] = tc.current(i)
				}
				r, err := compare(t, parquetFile(t, 8192, previous...), 8192, current...)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}()
			runtime.GC()
			runtime.ReadMemStats(&ms)
			perRow := (int64(ms.HeapAlloc) - int64(before)) / int64(r.Len())
			t.Logf("%d bytes on the heap a row", perRow)
			if perRow > maxBytesPerRow {
				t.Errorf("%d bytes on the heap a row of the change table (%d rows); want at most %d", perRow, r.Len(), maxBytesPerRow)
			}
			runtime.KeepAlive(r)
		})
	}
}

// The change table of SPOC, OSH and GM is the published one, column for
// column: the before and after columns come from the roles the datasets
// give cert_status, certified_area and updated_at.
func TestPublishedChangeTable(t *testing.T) {
	utc := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	want := arrow.NewSchema([]arrow.Field{
		{Name: "entity_smallholder_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "change", Type: arrow.BinaryTypes.String},
		{Name: "changed_columns", Type: arrow.ListOfField(arrow.Field{Name: "element", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
		{Name: "cert_status_before", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "cert_status_after", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "certified_area_before", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "certified_area_after", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "updated_at_before", Type: utc, Nullable: true},
		{Name: "updated_at_after", Type: utc, Nullable: true},
	}, nil)
	for _, ds := range []*spoc.Dataset{spoc.SPOC, spoc.OSH, spoc.GM} {
		if got := changes.Schema(ds); !got.Equal(want) {
			t.Errorf("%s: change table\n%s\nwant\n%s", ds.Name, got, want)
		}
		if got := changes.DictionaryColumns(ds); !slices.Equal(got, []string{"change", "cert_status_before", "cert_status_after"}) {
			t.Errorf("%s: dictionary columns %q", ds.Name, got)
		}
	}
}

// A dataset that gives a role to no column has no before and after
// columns for it, and one without a status has no transitions; the key
// is the dataset's, whatever its name and whether an int64 or an int32
// (a reference list's), which the change table keeps. A Baseline read
// from the day's digest compares as one read from its Parquet file.
func TestChangeTableOfOtherDatasets(t *testing.T) {
	key := spoc.Column{JSON: "id", Name: "plot_id", Kind: spoc.KindKey}
	key32 := spoc.Column{JSON: "id", Name: "plot_id", Kind: spoc.KindKey32}
	// The rows of a dataset without roles, whatever its key's type.
	noRoles := []string{
		"plot_id=1 change=changed changed_columns=[state]",
		"plot_id=2 change=removed changed_columns=null",
		"plot_id=3 change=added changed_columns=null",
	}
	status := spoc.Column{JSON: "s", Name: "state", Dictionary: true, Role: spoc.RoleStatus}
	size := spoc.Column{JSON: "z", Name: "size", Kind: spoc.KindFloat}
	for _, tc := range []struct {
		name         string
		columns      []spoc.Column
		fields, dict []string
		rows         []string
		transitions  []changes.Transition
	}{
		{
			name: "no roles", columns: []spoc.Column{key, {JSON: "s", Name: "state"}, size},
			fields: []string{"plot_id", "change", "changed_columns"},
			dict:   []string{"change"},
			rows:   noRoles,
		},
		{
			name: "a status only", columns: []spoc.Column{key, status, size},
			fields: []string{"plot_id", "change", "changed_columns", "state_before", "state_after"},
			dict:   []string{"change", "state_before", "state_after"},
			rows: []string{
				"plot_id=1 change=changed changed_columns=[state] state_before=A state_after=B",
				"plot_id=2 change=removed changed_columns=null state_before=A state_after=null",
				"plot_id=3 change=added changed_columns=null state_before=null state_after=A",
			},
			transitions: []changes.Transition{{From: "A", To: "B", Count: 1}},
		},
		{
			name: "an int32 key", columns: []spoc.Column{key32, {JSON: "s", Name: "state"}, size},
			fields: []string{"plot_id", "change", "changed_columns"},
			dict:   []string{"change"},
			rows:   noRoles,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := spoc.NewDataset(spoc.Dataset{Name: "x", Object: "x", Records: []string{"a", "b"}, Floor: 1, Columns: tc.columns})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range changes.Schema(ds).Fields() {
				names = append(names, f.Name)
			}
			if !slices.Equal(names, tc.fields) || !slices.Equal(changes.DictionaryColumns(ds), tc.dict) {
				t.Errorf("columns %q, dictionary %q; want %q, %q", names, changes.DictionaryColumns(ds), tc.fields, tc.dict)
			}
			if got, want := changes.Schema(ds).Field(0).Type, ds.Schema().Field(0).Type; !arrow.TypeEqual(got, want) {
				t.Errorf("the change table's key is %s, the dataset's %s", got, want)
			}
			type row struct {
				id    int64
				state string
				size  float64
			}
			day := func(rows ...row) arrow.RecordBatch {
				b := array.NewRecordBuilder(memory.DefaultAllocator, ds.Schema())
				defer b.Release()
				for _, r := range rows {
					if ids, ok := b.Field(0).(*array.Int32Builder); ok {
						ids.Append(int32(r.id))
					} else {
						b.Field(0).(*array.Int64Builder).Append(r.id)
					}
					b.Field(1).(*array.StringBuilder).Append(r.state)
					b.Field(2).(*array.Float64Builder).Append(r.size)
				}
				return b.NewRecordBatch()
			}
			before, after := day(row{1, "A", 2}, row{2, "A", 3}), day(row{1, "B", 2}, row{3, "A", 4})
			defer before.Release()
			defer after.Release()
			var file bytes.Buffer
			pw, err := sink.NewParquetWriter(&file, ds.Schema())
			if err != nil {
				t.Fatal(err)
			}
			if err := pw.Write(before); err != nil {
				t.Fatal(err)
			}
			if err := pw.Close(); err != nil {
				t.Fatal(err)
			}
			fromFile, err := changes.ReadBaseline(context.Background(), ds, "20261125", bytes.NewReader(file.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			dg, err := changes.NewDigester(ds)
			if err != nil {
				t.Fatal(err)
			}
			if err := dg.Add(before); err != nil {
				t.Fatal(err)
			}
			var digest bytes.Buffer
			if _, err := dg.WriteDigest(&digest, "20261125"); err != nil {
				t.Fatal(err)
			}
			fromDigest, err := changes.ReadDigest(context.Background(), ds, "20261125", &digest, int64(digest.Len()), bytes.NewReader(file.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			for from, base := range map[string]*changes.Baseline{"file": fromFile, "digest": fromDigest} {
				c := base.NewComparison()
				if err := c.Add(after); err != nil {
					t.Fatal(err)
				}
				res, err := c.Finish(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if got := rowsOf(t, res, 0); !slices.Equal(got, tc.rows) {
					t.Errorf("from the %s: change table\n%q\nwant\n%q", from, got, tc.rows)
				}
				if s := res.Summary; !slices.Equal(s.StatusTransitions, tc.transitions) || s.Added != 1 || s.Removed != 1 || s.Changed != 1 {
					t.Errorf("from the %s: summary %+v, want one of each change and transitions %v", from, s, tc.transitions)
				}
			}
			if got := rowsOf(t, changes.FirstRun(ds), 0); len(got) != 0 {
				t.Errorf("a first run's change table has rows %q", got)
			}
		})
	}
}
