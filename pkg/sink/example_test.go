package sink_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// Write a table as Parquet into an object, and publish it only once the
// file is complete.
func Example() {
	dir, _ := os.MkdirTemp("", "sink-example")
	defer os.RemoveAll(dir)
	store, _ := sink.NewLocal(dir) // or sink.Open(ctx, "gs://bucket")

	obj, err := store.NewObject(context.Background(), "20261126/example.parquet", sink.ParquetContentType)
	if err != nil {
		panic(err)
	}
	defer obj.Abort() // discards the object on any early return; nothing once committed

	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2, 3}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()

	pw, err := sink.NewParquetWriter(obj, schema)
	if err != nil {
		panic(err)
	}
	if err := pw.Write(rec); err != nil {
		panic(err)
	}
	if err := pw.Close(); err != nil { // the footer; obj is still unpublished
		panic(err)
	}
	info, err := obj.Commit()
	fmt.Println(err, pw.Rows(), info.Size == obj.Size(), filepath.Base(info.URL))
	// Output: <nil> 3 true example.parquet
}
