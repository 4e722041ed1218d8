package changes

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Result is the outcome of a Comparison.
type Result struct {
	Summary  Summary
	rows     []change // ascending by id
	names    []string // the compared columns, in the order of a mask's bits
	statuses []string // the rows' cert_status values, by index
}

// Len is the number of rows of the change table.
func (r *Result) Len() int { return len(r.rows) }

// RecordWriter takes the change table batch by batch; a
// sink.ParquetWriter is one.
type RecordWriter interface {
	Write(rec arrow.RecordBatch) error
}

// WriteBatches writes the change table to w in batches of at most batchSize
// rows (all of them in one if batchSize < 1). A row holds no long value
// (see Schema), so the rows bound a batch's bytes.
func (r *Result) WriteBatches(w RecordWriter, mem memory.Allocator, batchSize int) error {
	if batchSize < 1 {
		batchSize = max(len(r.rows), 1)
	}
	b := array.NewRecordBuilder(mem, Schema)
	defer b.Release()
	ids := b.Field(0).(*array.Int64Builder)
	kinds := b.Field(1).(*array.StringBuilder)
	cols := b.Field(2).(*array.ListBuilder)
	colNames := cols.ValueBuilder().(*array.StringBuilder)
	statusBefore, statusAfter := b.Field(3).(*array.StringBuilder), b.Field(4).(*array.StringBuilder)
	areaBefore, areaAfter := b.Field(5).(*array.Float64Builder), b.Field(6).(*array.Float64Builder)
	updBefore, updAfter := b.Field(7).(*array.TimestampBuilder), b.Field(8).(*array.TimestampBuilder)
	flush := func() error {
		rec := b.NewRecordBatch()
		defer rec.Release()
		return w.Write(rec)
	}
	for i, row := range r.rows {
		ids.Append(row.id)
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
		r.appendValues(row.before, statusBefore, areaBefore, updBefore)
		r.appendValues(row.after, statusAfter, areaAfter, updAfter)
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

func (r *Result) appendValues(v values, status *array.StringBuilder, area *array.Float64Builder, updated *array.TimestampBuilder) {
	if v.hasStatus {
		status.Append(r.statuses[v.status])
	} else {
		status.AppendNull()
	}
	if v.hasArea {
		area.Append(v.area)
	} else {
		area.AppendNull()
	}
	if v.hasUpdated {
		updated.Append(arrow.Timestamp(v.updated))
	} else {
		updated.AppendNull()
	}
}
