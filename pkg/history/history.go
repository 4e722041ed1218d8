// Package history writes a dataset's versions table: every version of
// every plot, kept on plain Parquet files, one a day.
//
// A day's file holds the versions that begin that day: the plots added
// or changed since the previous snapshot, with their new values, and the
// plots removed, with their last ones; each row is the dataset's tidy
// columns, then valid_from (the day) and change (added, changed or
// removed). The first snapshot under a prefix has every plot added. So
// every day's file read as one table is the whole history, and the list
// as of a day D is, per plot, the newest version with valid_from <= D,
// unless that version is a removal: exactly day D's snapshot (duplicate
// ids aside: the first row of an id stands for it, as in pkg/changes).
//
// Which rows begin a version is the comparison's (changes.Comparison's
// Versions and FinishVersions, changes.Digester's Versions on a first
// day): this package only lays them out.
package history

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// The columns a version has after the dataset's.
const (
	ValidFrom = "valid_from" // DATE: the snapshot's day
	Change    = "change"     // changes.Added, changes.Changed or changes.Removed
)

// Schema is the versions table of ds: its tidy columns, then ValidFrom
// and Change.
func Schema(ds *spoc.Dataset) *arrow.Schema {
	fields := append(ds.Schema().Fields(),
		arrow.Field{Name: ValidFrom, Type: arrow.FixedWidthTypes.Date32},
		arrow.Field{Name: Change, Type: arrow.BinaryTypes.String},
	)
	return arrow.NewSchema(fields, nil)
}

// DictionaryColumns are the columns of the versions table of ds whose
// values repeat: the snapshot's, and the two it adds.
func DictionaryColumns(ds *spoc.Dataset) []string {
	return append(ds.DictionaryColumns(), ValidFrom, Change)
}

// RecordWriter takes the versions table batch by batch; a
// sink.ParquetWriter is one.
type RecordWriter interface {
	Write(rec arrow.RecordBatch) error
}

// Writer writes one day's versions of a dataset to a RecordWriter. It is
// not safe for concurrent use.
type Writer struct {
	w      RecordWriter
	schema *arrow.Schema
	day    arrow.Date32
	mem    memory.Allocator
	rows   int64
	counts map[string]int64
}

// NewWriter starts the versions of ds that begin on day (its date, in
// any time zone).
func NewWriter(w RecordWriter, ds *spoc.Dataset, day time.Time) *Writer {
	date := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
	return &Writer{
		w: w, schema: Schema(ds), mem: memory.DefaultAllocator,
		day:    arrow.Date32FromTime(date),
		counts: map[string]int64{},
	}
}

// Write writes the rows of rec, a batch of the snapshot, that begin a
// version: those of versions, in their order.
func (w *Writer) Write(rec arrow.RecordBatch, versions []changes.Version) error {
	if len(versions) == 0 {
		return nil
	}
	cols := make([]arrow.Array, 0, w.schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	rows := make([]int, len(versions))
	for i, v := range versions {
		rows[i] = v.Row
	}
	for k := range rec.NumCols() {
		col, err := take(w.mem, rec.Column(int(k)), rows)
		if err != nil {
			return fmt.Errorf("versions: column %s: %w", rec.ColumnName(int(k)), err)
		}
		cols = append(cols, col)
	}
	kinds := array.NewStringBuilder(w.mem)
	defer kinds.Release()
	for _, v := range versions {
		kinds.Append(v.Change)
		w.counts[v.Change]++
	}
	return w.write(cols, kinds.NewArray())
}

// WriteRemoved writes every row of rec, the last version of plots
// removed (changes.RemovedRows), as a removal.
func (w *Writer) WriteRemoved(rec arrow.RecordBatch) error {
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	cols := make([]arrow.Array, 0, w.schema.NumFields())
	for _, c := range rec.Columns() {
		c.Retain()
		cols = append(cols, c)
	}
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	kinds := array.NewStringBuilder(w.mem)
	defer kinds.Release()
	for range n {
		kinds.Append(changes.Removed)
	}
	w.counts[changes.Removed] += int64(n)
	return w.write(cols, kinds.NewArray())
}

// write writes the dataset's columns cols with the day and the kinds of
// change, and releases kinds.
func (w *Writer) write(cols []arrow.Array, kinds arrow.Array) error {
	defer kinds.Release()
	n := kinds.Len()
	days := array.NewDate32Builder(w.mem)
	defer days.Release()
	for range n {
		days.Append(w.day)
	}
	valid := days.NewArray()
	defer valid.Release()
	all := append(cols[:len(cols):len(cols)], valid, kinds)
	if len(all) != w.schema.NumFields() {
		return fmt.Errorf("versions: a batch of %d columns, the dataset has %d", len(cols), w.schema.NumFields()-2)
	}
	rec := array.NewRecordBatch(w.schema, all, int64(n))
	defer rec.Release()
	if err := w.w.Write(rec); err != nil {
		return err
	}
	w.rows += int64(n)
	return nil
}

// Rows is the number of versions written.
func (w *Writer) Rows() int64 { return w.rows }

// Counts are the versions written by kind of change.
func (w *Writer) Counts() map[string]int64 { return w.counts }

// take is the values of rows (ascending or not) of arr, as a new array
// of its type.
func take(mem memory.Allocator, arr arrow.Array, rows []int) (arrow.Array, error) {
	if len(rows) == arr.Len() && isIdentity(rows) {
		arr.Retain()
		return arr, nil
	}
	b := array.NewBuilder(mem, arr.DataType())
	defer b.Release()
	b.Reserve(len(rows))
	switch a := arr.(type) {
	case *array.String:
		sb := b.(*array.StringBuilder)
		appendEach(rows, a, func(i int) { sb.Append(a.Value(i)) }, sb.AppendNull)
	case *array.Float64:
		fb := b.(*array.Float64Builder)
		appendEach(rows, a, func(i int) { fb.Append(a.Value(i)) }, fb.AppendNull)
	case *array.Int64:
		ib := b.(*array.Int64Builder)
		appendEach(rows, a, func(i int) { ib.Append(a.Value(i)) }, ib.AppendNull)
	case *array.Int32:
		ib := b.(*array.Int32Builder)
		appendEach(rows, a, func(i int) { ib.Append(a.Value(i)) }, ib.AppendNull)
	case *array.Timestamp:
		tb := b.(*array.TimestampBuilder)
		appendEach(rows, a, func(i int) { tb.Append(a.Value(i)) }, tb.AppendNull)
	case *array.Boolean:
		bb := b.(*array.BooleanBuilder)
		appendEach(rows, a, func(i int) { bb.Append(a.Value(i)) }, bb.AppendNull)
	default:
		return nil, fmt.Errorf("a column of type %s", arr.DataType())
	}
	return b.NewArray(), nil
}

func appendEach(rows []int, a arrow.Array, value func(i int), null func()) {
	for _, i := range rows {
		if a.IsNull(i) {
			null()
		} else {
			value(i)
		}
	}
}

func isIdentity(rows []int) bool {
	for i, r := range rows {
		if r != i {
			return false
		}
	}
	return true
}
