// Package parquettest reads Parquet files back in tests: the file with its
// metadata, its Arrow table, and one text form of a value, so that tests
// and golden files across the packages compare the same rendering.
package parquettest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Open opens data as a Parquet file, for its metadata.
func Open(t testing.TB, data []byte) *file.Reader {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return pf
}

func arrowReader(t testing.TB, data []byte) *pqarrow.FileReader {
	t.Helper()
	fr, err := pqarrow.NewFileReader(Open(t, data), pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	return fr
}

// ReadTable reads data back as an Arrow table, released when the test
// ends.
func ReadTable(t testing.TB, data []byte) arrow.Table {
	t.Helper()
	tbl, err := arrowReader(t, data).ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tbl.Release)
	return tbl
}

// Schema is the Arrow schema data holds.
func Schema(t testing.TB, data []byte) *arrow.Schema {
	t.Helper()
	s, err := arrowReader(t, data).Schema()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Columns reads a Parquet file whole: each column's values by name, in
// row order, as CellValue gives them.
func Columns(t testing.TB, data []byte) map[string][]any {
	t.Helper()
	tbl := ReadTable(t, data)
	defer tbl.Release()
	cols := map[string][]any{}
	for k, f := range tbl.Schema().Fields() {
		for _, chunk := range tbl.Column(k).Data().Chunks() {
			for i := range chunk.Len() {
				cols[f.Name] = append(cols[f.Name], CellValue(chunk, i))
			}
		}
	}
	return cols
}

// CellText is value i of col as text: "null" for a null, a timestamp in
// RFC 3339 (with its fraction, if any), a list of strings as [a,b], and
// any other value as Arrow's ValueStr gives it (strings unquoted, floats
// in their shortest form).
func CellText(col arrow.Array, i int) string {
	if col.IsNull(i) {
		return "null"
	}
	switch a := col.(type) {
	case *array.Timestamp:
		return a.Value(i).ToTime(arrow.Microsecond).Format(time.RFC3339Nano)
	case *array.List:
		start, end := a.ValueOffsets(i)
		var s []string
		for j := start; j < end; j++ {
			s = append(s, CellText(a.ListValues(), int(j)))
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	return col.ValueStr(i)
}

// CellValue is value i of col as a Go value, for comparing with one
// built by hand: nil for a null, int64, int32, float64, string (a copy:
// the array's memory may be reused once it is released), bool, or a
// time.Time for a timestamp, []byte (a copy) for binary, or a map of
// the field names to their values for a struct. It panics on another type of array.
func CellValue(col arrow.Array, i int) any {
	if col.IsNull(i) {
		return nil
	}
	switch a := col.(type) {
	case *array.Int64:
		return a.Value(i)
	case *array.Int32:
		return a.Value(i)
	case *array.Float64:
		return a.Value(i)
	case *array.String:
		return strings.Clone(a.Value(i))
	case *array.Boolean:
		return a.Value(i)
	case *array.Timestamp:
		return a.Value(i).ToTime(arrow.Microsecond)
	case *array.Binary:
		return bytes.Clone(a.Value(i))
	case *array.Struct:
		fields := make(map[string]any, a.NumField())
		for k := range a.NumField() {
			fields[a.DataType().(*arrow.StructType).Field(k).Name] = CellValue(a.Field(k), i)
		}
		return fields
	}
	panic(fmt.Sprintf("parquettest: unexpected array type %T", col))
}
