package changes

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// The previous snapshot is read with arrow-go's column chunk readers, not
// as Arrow record batches: a value is hashed where the decoder leaves it
// (a string in the page or the dictionary), so reading a file allocates
// little beyond its pages. Read through pqarrow, every batch would copy
// each string into freshly grown builders, about 130 MB allocated per
// 131,072 rows, and on a small machine the time goes to zeroing and
// faulting in that memory (BenchmarkReadBaseline).

// snapshotFile is a previous snapshot's Parquet file opened for reading,
// with the leaf of each compared column (-1 for one the file lacks, read
// as all null).
type snapshotFile struct {
	pf     *file.Reader
	id     string // the key's column
	idLeaf int
	// int32Key says the key is an int32 (a reference list's), read
	// widened to int64.
	int32Key bool
	leaves   []int // by compared column, in the order of hasher.names
}

// openSnapshot opens f and checks that its columns have the types of
// the dataset's schema, h's.
func openSnapshot(f File, h hasher) (*snapshotFile, error) {
	// Hide f's Close, if it has one: the Parquet reader's Close would
	// close it, and Finish reads f again.
	pf, err := file.NewParquetReader(struct{ File }{f})
	if err != nil {
		return nil, err
	}
	s := &snapshotFile{pf: pf, id: h.id}
	if err := s.resolve(h); err != nil {
		pf.Close()
		return nil, err
	}
	return s, nil
}

func (s *snapshotFile) resolve(h hasher) error {
	md := s.pf.MetaData()
	// The Arrow schema as pqarrow reads the file (from the stored Arrow
	// schema if there is one) is what a reader of the snapshot sees.
	schema, err := pqarrow.FromParquet(md.Schema, nil, md.KeyValueMetadata())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSchema, err)
	}
	leaf := func(name string, want arrow.DataType) (int, error) {
		idx := schema.FieldIndices(name)
		if len(idx) == 0 {
			return -1, nil
		}
		if got := schema.Field(idx[0]).Type; !arrow.TypeEqual(got, want) {
			return -1, fmt.Errorf("%w: column %s is %s, want %s", ErrSchema, name, got, want)
		}
		return md.Schema.ColumnIndexByName(name), nil
	}
	s.int32Key = h.idType.ID() == arrow.INT32
	if s.idLeaf, err = leaf(s.id, h.idType); err != nil || s.idLeaf < 0 {
		return fmt.Errorf("%w: %s is missing, not %s, or has nulls", ErrSchema, s.id, h.idType)
	}
	s.leaves = make([]int, len(h.names))
	for k, name := range h.names {
		if s.leaves[k], err = leaf(name, h.types[k]); err != nil {
			return err
		}
	}
	return nil
}

func (s *snapshotFile) Close() error { return s.pf.Close() }

// leaf is the leaf of the compared column name, or -1 (for "" too: a
// role the dataset gives to no column).
func (s *snapshotFile) leaf(h hasher, name string) int {
	if k := slices.Index(h.names, name); k >= 0 {
		return s.leaves[k]
	}
	return -1
}

// rowGroup is one row group of a snapshotFile being read, with its ids.
type rowGroup struct {
	rg   *file.RowGroupReader
	ids  []int64
	bufs *readBuffers
}

// readBuffers are the value and level buffers of the column readers,
// reused from column to column.
type readBuffers struct {
	defs    []int16
	bytes   []parquet.ByteArray
	float64 []float64
	int32   []int32
	int64   []int64
	bool    []bool
}

const readBatch = 4096

// eachRowGroup calls fn with every row group of s in file order.
func (s *snapshotFile) eachRowGroup(ctx context.Context, fn func(g *rowGroup) error) error {
	bufs := &readBuffers{defs: make([]int16, readBatch)}
	var ids []int64
	for i := range s.pf.NumRowGroups() {
		if err := ctx.Err(); err != nil {
			return err
		}
		g := &rowGroup{rg: s.pf.RowGroup(i), bufs: bufs}
		n := int(g.rg.NumRows())
		if cap(ids) < n {
			ids = make([]int64, n)
		}
		g.ids = ids[:n]
		seen := 0
		err := g.keys(s.idLeaf, s.int32Key, func(row int, v int64) { g.ids[row] = v; seen++ })
		if err == nil && seen < n {
			err = fmt.Errorf("%w: %s has nulls", ErrSchema, s.id)
		}
		if err != nil {
			return fmt.Errorf("row group %d: %w", i, err)
		}
		if err := fn(g); err != nil {
			return fmt.Errorf("row group %d: %w", i, err)
		}
	}
	return nil
}

// hashColumn sets out[i] to the hash of row i's value of the compared
// column k, by the value rules of hasher (text, int64...) that
// hasher.column applies to an Arrow array.
func (g *rowGroup) hashColumn(h hasher, leaf int, out []uint64) error {
	return g.scanColumn(h, leaf, len(out), out, nil, nil)
}

// appendRows appends to b the value of each of rows (ascending) in the
// column of leaf, or a null where the row has none (every row, for a leaf
// < 0: a column the file lacks). It reads the column up to the last of
// rows.
func (g *rowGroup) appendRows(leaf int, rows []int, b array.Builder) error {
	n := 0
	if len(rows) > 0 {
		n = rows[len(rows)-1] + 1
	}
	return g.scanColumn(hasher{}, leaf, n, nil, rows, b)
}

// scanColumn reads the first n rows of the column of leaf (none for a
// leaf < 0, read as all null) once, for two uses: with out, it sets
// out[i] to the hash of row i's value, by the value rules of h that
// hasher.column applies to an Arrow array; with b, it appends to b the
// value of each of keep (ascending rows), or a null. A changed plot's
// columns are hashed and a removed plot's values kept in the same read.
func (g *rowGroup) scanColumn(h hasher, leaf, n int, out []uint64, keep []int, b array.Builder) error {
	for i := range out {
		out[i] = nullHash
	}
	p := 0
	// kept appends a null for each kept row before row, and reports
	// whether row is the next of keep.
	kept := func(row int) bool {
		if b == nil {
			return false
		}
		for p < len(keep) && keep[p] < row {
			b.AppendNull()
			p++
		}
		if p < len(keep) && keep[p] == row {
			p++
			return true
		}
		return false
	}
	err := g.scanTyped(h, leaf, n, out, kept, b)
	for ; b != nil && p < len(keep); p++ {
		b.AppendNull()
	}
	return err
}

// mismatch is a column whose physical type is not the one of the
// dataset's column it is read into.
func mismatch(cr file.ColumnChunkReader, b array.Builder) error {
	return fmt.Errorf("%w: column %s has physical type %s, read as %s", ErrSchema, cr.Descriptor().Name(), cr.Type(), b.Type())
}

func (g *rowGroup) scanTyped(h hasher, leaf, n int, out []uint64, kept func(row int) bool, b array.Builder) error {
	if leaf < 0 || n == 0 {
		return nil
	}
	cr, err := g.rg.Column(leaf)
	if err != nil {
		return err
	}
	defer closeReader(cr)
	maxDef := cr.Descriptor().MaxDefinitionLevel()
	bufs := g.bufs
	switch cr := cr.(type) {
	case *file.ByteArrayColumnChunkReader:
		sb, _ := b.(*array.StringBuilder)
		if b != nil && sb == nil {
			return mismatch(cr, b)
		}
		return visit(cr, maxDef, n, &bufs.bytes, bufs.defs, func(row int, v parquet.ByteArray) {
			if out != nil {
				out[row] = h.text(v)
			}
			if kept(row) {
				sb.BinaryBuilder.Append(v)
			}
		})
	case *file.Float64ColumnChunkReader:
		fb, _ := b.(*array.Float64Builder)
		if b != nil && fb == nil {
			return mismatch(cr, b)
		}
		return visit(cr, maxDef, n, &bufs.float64, bufs.defs, func(row int, v float64) {
			if out != nil {
				out[row] = h.float64(v)
			}
			if kept(row) {
				fb.Append(v)
			}
		})
	case *file.Int32ColumnChunkReader:
		ib, _ := b.(*array.Int32Builder)
		if b != nil && ib == nil {
			return mismatch(cr, b)
		}
		return visit(cr, maxDef, n, &bufs.int32, bufs.defs, func(row int, v int32) {
			if out != nil {
				out[row] = h.int32(v)
			}
			if kept(row) {
				ib.Append(v)
			}
		})
	case *file.Int64ColumnChunkReader:
		var appendInt64 func(int64)
		switch b := b.(type) {
		case *array.Int64Builder:
			appendInt64 = b.Append
		case *array.TimestampBuilder:
			appendInt64 = func(v int64) { b.Append(arrow.Timestamp(v)) }
		}
		if b != nil && appendInt64 == nil {
			return mismatch(cr, b)
		}
		return visit(cr, maxDef, n, &bufs.int64, bufs.defs, func(row int, v int64) {
			if out != nil {
				out[row] = h.int64(v)
			}
			if kept(row) {
				appendInt64(v)
			}
		})
	case *file.BooleanColumnChunkReader:
		bb, _ := b.(*array.BooleanBuilder)
		if b != nil && bb == nil {
			return mismatch(cr, b)
		}
		return visit(cr, maxDef, n, &bufs.bool, bufs.defs, func(row int, v bool) {
			if out != nil {
				out[row] = h.bool(v)
			}
			if kept(row) {
				bb.Append(v)
			}
		})
	}
	return fmt.Errorf("%w: column %s has physical type %s", ErrSchema, cr.Descriptor().Name(), cr.Type())
}

// strings calls fn with every non-null value of a string column; v is
// valid only during the call.
func (g *rowGroup) strings(leaf int, fn func(row int, v []byte)) error {
	return readRows[*file.ByteArrayColumnChunkReader](g, leaf, len(g.ids), &g.bufs.bytes, func(row int, v parquet.ByteArray) { fn(row, v) })
}

func (g *rowGroup) float64s(leaf int, fn func(row int, v float64)) error {
	return readRows[*file.Float64ColumnChunkReader](g, leaf, len(g.ids), &g.bufs.float64, fn)
}

func (g *rowGroup) int64s(leaf int, fn func(row int, v int64)) error {
	return readRows[*file.Int64ColumnChunkReader](g, leaf, len(g.ids), &g.bufs.int64, fn)
}

// readRows calls fn with every non-null value of the first n rows of the
// column chunk of leaf, a column of type R.
func readRows[R interface {
	file.ColumnChunkReader
	pageReader[T]
}, T any](g *rowGroup, leaf, n int, buf *[]T, fn func(row int, v T)) error {
	return readTyped(g, leaf, func(cr R, maxDef int16) error {
		return visit[T](cr, maxDef, n, buf, g.bufs.defs, fn)
	})
}

// keys calls fn with every non-null value of the key's column, widened
// to int64 from an int32 one (a reference list's, spoc.KindKey32).
func (g *rowGroup) keys(leaf int, int32Key bool, fn func(row int, v int64)) error {
	if !int32Key {
		return g.int64s(leaf, fn)
	}
	return readRows[*file.Int32ColumnChunkReader](g, leaf, len(g.ids), &g.bufs.int32, func(row int, v int32) { fn(row, int64(v)) })
}

// readTyped opens the column chunk of leaf (nothing to read if leaf < 0)
// and hands it to read as a reader of type R.
func readTyped[R file.ColumnChunkReader](g *rowGroup, leaf int, read func(cr R, maxDef int16) error) error {
	if leaf < 0 {
		return nil
	}
	cr, err := g.rg.Column(leaf)
	if err != nil {
		return err
	}
	defer closeReader(cr)
	typed, ok := cr.(R)
	if !ok {
		return fmt.Errorf("%w: column %s has physical type %s", ErrSchema, cr.Descriptor().Name(), cr.Type())
	}
	return read(typed, cr.Descriptor().MaxDefinitionLevel())
}

func closeReader(cr file.ColumnChunkReader) {
	if c, ok := cr.(io.Closer); ok {
		c.Close()
	}
}

// pageReader is a typed column chunk reader of arrow-go.
type pageReader[T any] interface {
	ReadBatchInPage(batchSize int64, values []T, defLvls, repLvls []int16) (total int64, valuesRead int, err error)
}

// visit reads the rows values of a flat column chunk and calls fn with
// each non-null one and its row. It reads a page at a time, so that a
// string is still the decoder's slice of the page when fn sees it.
func visit[T any](cr pageReader[T], maxDef int16, rows int, buf *[]T, defs []int16, fn func(row int, v T)) error {
	if len(*buf) < len(defs) {
		*buf = make([]T, len(defs))
	}
	vals := *buf
	for row := 0; row < rows; {
		levels, n, err := cr.ReadBatchInPage(int64(min(len(defs), rows-row)), vals, defs, nil)
		if err != nil {
			return err
		}
		if levels == 0 {
			return fmt.Errorf("column chunk ends after %d of %d rows", row, rows)
		}
		if maxDef == 0 {
			for i := range n {
				fn(row+i, vals[i])
			}
		} else {
			v := 0
			for i := range int(levels) {
				if defs[i] == maxDef {
					fn(row+i, vals[v])
					v++
				}
			}
		}
		row += int(levels)
	}
	return nil
}
