package sink_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "lat", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "state", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// batches returns rows 0..n-1 cut into batches of size rows.
func batches(t *testing.T, n, size int) []arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, testSchema)
	defer b.Release()
	var out []arrow.RecordBatch
	for i := range n {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		if i%7 == 0 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.Float64Builder).Append(1.5 + float64(i)/1e6)
		}
		b.Field(2).(*array.StringBuilder).Append([]string{"JOHOR", "PAHANG", "SABAH"}[i%3])
		if (i+1)%size == 0 || i == n-1 {
			out = append(out, b.NewRecordBatch())
		}
	}
	t.Cleanup(func() {
		for _, r := range out {
			r.Release()
		}
	})
	return out
}

// TestParquetWriterRowGroups checks that row groups are cut at the row
// group length whatever the size of the batches written, and before the
// batch that would take their text past the row group bytes, and that
// every row comes back in order.
func TestParquetWriterRowGroups(t *testing.T) {
	cases := []struct {
		rows, batch, rowGroup int
		groupBytes            int64 // of text: "JOHOR", "PAHANG", "SABAH", over and over
		wantGroups            []int64
	}{
		{rows: 12, batch: 3, rowGroup: 100, groupBytes: 40, wantGroups: []int64{6, 6}},
		{rows: 9, batch: 3, rowGroup: 100, groupBytes: 10, wantGroups: []int64{3, 3, 3}},
		{rows: 12, batch: 5, rowGroup: 4, groupBytes: 40, wantGroups: []int64{4, 1, 4, 3}},
		{rows: 12, batch: 3, rowGroup: 100, groupBytes: 48, wantGroups: []int64{9, 3}},
		{rows: 10, batch: 3, rowGroup: 100, wantGroups: []int64{10}},
		{rows: 10, batch: 3, rowGroup: 4, wantGroups: []int64{4, 4, 2}},
		{rows: 1000, batch: 64, rowGroup: 256, wantGroups: []int64{256, 256, 256, 232}},
		{rows: 1000, batch: 500, rowGroup: 128, wantGroups: []int64{128, 128, 128, 128, 128, 128, 128, 104}},
		{rows: 5, batch: 5, rowGroup: 5, wantGroups: []int64{5}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("rows=%d/batch=%d/group=%d/bytes=%d", c.rows, c.batch, c.rowGroup, c.groupBytes), func(t *testing.T) {
			var buf bytes.Buffer
			opts := []sink.ParquetOption{
				sink.WithMaxRowGroupLength(int64(c.rowGroup)),
				sink.WithDictionary("state"),
				sink.WithColumnZstdLevel(11, "lat"),
			}
			if c.groupBytes > 0 {
				opts = append(opts, sink.WithMaxRowGroupBytes(c.groupBytes))
			}
			pw, err := sink.NewParquetWriter(&buf, testSchema, opts...)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range batches(t, c.rows, c.batch) {
				if err := pw.Write(rec); err != nil {
					t.Fatal(err)
				}
			}
			if err := pw.Close(); err != nil {
				t.Fatal(err)
			}
			if got := pw.Rows(); got != int64(c.rows) {
				t.Errorf("Rows() = %d, want %d", got, c.rows)
			}
			if got := pw.RowGroups(); got != len(c.wantGroups) {
				t.Errorf("RowGroups() = %d, want %d", got, len(c.wantGroups))
			}

			pf := parquettest.Open(t, buf.Bytes())
			var groups []int64
			for i := range pf.NumRowGroups() {
				groups = append(groups, pf.RowGroup(i).NumRows())
			}
			if fmt.Sprint(groups) != fmt.Sprint(c.wantGroups) {
				t.Errorf("row groups of %v rows, want %v", groups, c.wantGroups)
			}
			tbl := parquettest.ReadTable(t, buf.Bytes())
			want := array.NewTableFromRecords(testSchema, batches(t, c.rows, c.rows))
			defer want.Release()
			for i := range testSchema.NumFields() {
				if !array.ChunkedEqual(tbl.Column(i).Data(), want.Column(i).Data()) {
					t.Errorf("column %s read back differs from the one written", testSchema.Field(i).Name)
				}
			}
		})
	}
}

// TestParquetWriterBadOptions checks that options naming columns outside
// the schema, or a row group length below one, fail at construction.
func TestParquetWriterBadOptions(t *testing.T) {
	cases := []struct {
		name string
		opt  sink.ParquetOption
		want string
	}{
		{"dictionary", sink.WithDictionary("state", "county"), `dictionary column "county"`},
		{"level", sink.WithColumnZstdLevel(9, "altitude"), `column "altitude"`},
		{"row group", sink.WithMaxRowGroupLength(0), "row group length 0"},
		{"row group bytes", sink.WithMaxRowGroupBytes(0), "row group bytes 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := sink.NewParquetWriter(&buf, testSchema, c.opt)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if buf.Len() != 0 {
				t.Errorf("%d bytes written before the error", buf.Len())
			}
		})
	}
}

// TestParquetWriterKeepsRealRowGroups checks that the byte limits of a
// batch and a row group leave the defaults' row counts alone for plots
// like the real ones: batches of 16,384 rows, row groups of 131,072.
func TestParquetWriterKeepsRealRowGroups(t *testing.T) {
	var body bytes.Buffer
	if _, err := spoctest.Generate(&body, spoctest.GenOptions{Records: 140_000, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	dec := spoc.NewDecoder(&body)
	defer dec.Release()
	var out bytes.Buffer
	pw, err := sink.NewParquetWriter(&out, spoc.Schema, sink.WithDictionary(spoc.DictionaryColumns()...))
	if err != nil {
		t.Fatal(err)
	}
	var batches []int64
	for dec.Next() {
		batches = append(batches, dec.RecordBatch().NumRows())
		if err := pw.Write(dec.RecordBatch()); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(dec.Err(), pw.Close()); err != nil {
		t.Fatal(err)
	}
	if want := "[16384 16384 16384 16384 16384 16384 16384 16384 8928]"; fmt.Sprint(batches) != want {
		t.Errorf("batches of %v rows, want %s", batches, want)
	}
	pf := parquettest.Open(t, out.Bytes())
	var groups []int64
	for i := range pf.NumRowGroups() {
		groups = append(groups, pf.RowGroup(i).NumRows())
	}
	if fmt.Sprint(groups) != "[131072 8928]" {
		t.Errorf("row groups of %v rows, want [131072 8928]", groups)
	}
}
