package changes

import (
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// Result is the outcome of a Comparison.
type Result struct {
	Summary  Summary
	table    *table
	rows     []change // ascending by id
	names    []string // the compared columns, in the order of a mask's bits
	statuses []string // the rows' status values, by index
}

// FirstRun is the Result of a run of ds with no previous snapshot: no
// rows, and Summary.FirstRun.
func FirstRun(ds *spoc.Dataset) *Result {
	return &Result{Summary: Summary{FirstRun: true}, table: newTable(ds)}
}

// Len is the number of rows of the change table.
func (r *Result) Len() int { return len(r.rows) }

// RecordWriter takes the change table batch by batch; a
// sink.ParquetWriter is one.
type RecordWriter interface {
	Write(rec arrow.RecordBatch) error
}

// WriteBatches writes the change table (Schema of the dataset) to w in
// batches of at most batchSize rows (all of them in one if batchSize <
// 1). A row holds no long value (see Schema), so the rows bound a
// batch's bytes.
func (r *Result) WriteBatches(w RecordWriter, mem memory.Allocator, batchSize int) error {
	if r.table == nil {
		return errors.New("changes: a Result of no dataset (see FirstRun)")
	}
	if batchSize < 1 {
		batchSize = max(len(r.rows), 1)
	}
	b := array.NewRecordBuilder(mem, r.table.schema)
	defer b.Release()
	// The key keeps the dataset's type (int64, or int32 for a reference
	// list); the ids were widened to int64 only to be compared.
	var appendID func(int64)
	switch ids := b.Field(0).(type) {
	case *array.Int64Builder:
		appendID = ids.Append
	case *array.Int32Builder:
		appendID = func(id int64) { ids.Append(int32(id)) }
	default:
		return fmt.Errorf("%w: a key of type %s", ErrSchema, ids.Type())
	}
	kinds := b.Field(1).(*array.StringBuilder)
	cols := b.Field(2).(*array.ListBuilder)
	colNames := cols.ValueBuilder().(*array.StringBuilder)
	before, after := r.table.builders(b, "_before"), r.table.builders(b, "_after")
	flush := func() error {
		rec := b.NewRecordBatch()
		defer rec.Release()
		return w.Write(rec)
	}
	for i, row := range r.rows {
		appendID(row.id)
		kinds.Append(kindNames[row.kind])
		if row.kind == changed {
			cols.Append(true)
			for k, name := range r.names {
				if row.mask&(1<<k) != 0 {
					colNames.Append(name)
				}
			}
		} else {
			cols.AppendNull()
		}
		r.appendValues(row.before, before)
		r.appendValues(row.after, after)
		if (i+1)%batchSize == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(r.rows) == 0 || len(r.rows)%batchSize != 0 {
		return flush()
	}
	return nil
}

// valueBuilders build one side (before or after) of the change table's
// values; nil for a column the table has not.
type valueBuilders struct {
	status  *array.StringBuilder
	area    *array.Float64Builder
	updated *array.TimestampBuilder
}

// builders are the builders in b of the values' columns named with
// suffix.
func (t *table) builders(b *array.RecordBuilder, suffix string) valueBuilders {
	var v valueBuilders
	field := func(col string) array.Builder {
		if col == "" {
			return nil
		}
		return b.Field(t.schema.FieldIndices(col + suffix)[0])
	}
	v.status, _ = field(t.status).(*array.StringBuilder)
	v.area, _ = field(t.area).(*array.Float64Builder)
	v.updated, _ = field(t.updated).(*array.TimestampBuilder)
	return v
}

func (r *Result) appendValues(v values, to valueBuilders) {
	switch {
	case to.status == nil:
	case v.hasStatus:
		to.status.Append(r.statuses[v.status])
	default:
		to.status.AppendNull()
	}
	switch {
	case to.area == nil:
	case v.hasArea:
		to.area.Append(v.area)
	default:
		to.area.AppendNull()
	}
	switch {
	case to.updated == nil:
	case v.hasUpdated:
		to.updated.Append(arrow.Timestamp(v.updated))
	default:
		to.updated.AppendNull()
	}
}
