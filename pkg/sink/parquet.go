package sink

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ParquetContentType is the media type of Parquet objects.
const ParquetContentType = "application/vnd.apache.parquet"

// Defaults of the Parquet writer.
//
// DefaultMaxRowGroupBytes bounds the text of a row group (the bytes of
// its string and binary values), and maxRowGroupPageBytes its compressed
// pages, both held in memory until the group is cut: the pages, and per
// column the largest page, compressed and not, which pqarrow keeps for
// reuse until the group ends. Real plots have about 130 bytes of text
// (16.5 MiB a group of 131,072) and compress to about 3 MiB a group, so
// both leave the 131,072-row groups of real plots whole. For plots far
// larger, a group holds at most 8 MiB of pages plus one batch (4 MiB of
// text, spoc.DefaultMaxBatchBytes), in buffers that grow by powers of
// two (under 24 MiB), and its largest pages, at most its text (36 MiB)
// and its pages (12 MiB). Beside them pqarrow keeps the statistics of
// each string column, its least and greatest value per page and per
// group: up to four of the longest values a column.
const (
	DefaultZstdLevel        = 3
	DefaultMaxRowGroupLen   = 128 * 1024
	DefaultMaxRowGroupBytes = 32 << 20
)

// maxRowGroupPageBytes bounds the compressed pages of a row group: the
// group is cut once they reach it. Text that compresses little reaches
// it before DefaultMaxRowGroupBytes.
const maxRowGroupPageBytes = 8 << 20

// ParquetOption configures a ParquetWriter.
type ParquetOption func(*parquetConfig)

type parquetConfig struct {
	zstdLevel      int
	columnLevels   map[string]int
	maxRowGroupLen int64
	maxGroupBytes  int64
	dictionary     []string
	createdBy      string
}

// WithZstdLevel sets the zstd level of every column (default
// DefaultZstdLevel). Higher levels trade encoding CPU for size.
func WithZstdLevel(level int) ParquetOption {
	return func(c *parquetConfig) { c.zstdLevel = level }
}

// WithColumnZstdLevel sets the zstd level of the named columns, overriding
// WithZstdLevel for them. Columns of nearly random bytes (coordinates)
// shrink markedly only at high levels, which would cost too much CPU on
// every other column.
func WithColumnZstdLevel(level int, columns ...string) ParquetOption {
	return func(c *parquetConfig) {
		if c.columnLevels == nil {
			c.columnLevels = make(map[string]int)
		}
		for _, col := range columns {
			c.columnLevels[col] = level
		}
	}
}

// WithMaxRowGroupLength sets the rows of one row group (default
// DefaultMaxRowGroupLen). Row groups are independent of the size of the
// written batches: small batches keep the decoder's memory low, large row
// groups compress better and give readers fewer, larger chunks.
func WithMaxRowGroupLength(n int64) ParquetOption {
	return func(c *parquetConfig) { c.maxRowGroupLen = n }
}

// WithMaxRowGroupBytes caps the text of one row group, the bytes of its
// string and binary values (default DefaultMaxRowGroupBytes): a group
// is cut before the batch that would take it past n, so that the memory
// it holds follows the size of its rows and not only their number. A
// batch larger than n makes a group of its own.
func WithMaxRowGroupBytes(n int64) ParquetOption {
	return func(c *parquetConfig) { c.maxGroupBytes = n }
}

// WithDictionary turns on dictionary encoding for the named columns only.
// Dictionary encoding pays for columns with few distinct values (states,
// zones, statuses) and costs CPU and a dictionary page for nearly unique
// ones (ids, names, coordinates), so it is off for all others.
func WithDictionary(columns ...string) ParquetOption {
	return func(c *parquetConfig) { c.dictionary = columns }
}

// WithCreatedBy sets the writer name recorded in the file footer.
func WithCreatedBy(s string) ParquetOption {
	return func(c *parquetConfig) { c.createdBy = s }
}

// ParquetWriter encodes record batches of one schema as a zstd Parquet
// file with column statistics. Batches are appended to the current row
// group, which is cut at the row group length, before the batch that
// would take its text past the row group bytes, or once its compressed
// pages reach 8 MiB; until then its columns are held in memory as
// compressed pages, a few MiB at the defaults.
type ParquetWriter struct {
	fw        *pqarrow.FileWriter
	buf       *bufio.Writer
	rows      int64
	rowGroups int
	maxRows   int64
	maxBytes  int64
	// groupRows and groupBytes are the rows and text of the current row
	// group (the text of a batch split across groups counts whole in
	// the later one).
	groupRows, groupBytes int64
}

// writeBufferSize batches the Parquet writer's many small writes (page
// headers, levels, statistics) into few large ones: on local disk each
// write is a system call, and on GCS a copy into the upload buffer.
// The buffer also keeps w out of pqarrow's reach: pqarrow closes an
// io.Closer it writes to (even after an error), and closing an Object
// would publish it.
const writeBufferSize = 1 << 20

// NewParquetWriter starts a Parquet file on w. It never closes w, even on
// error: w's owner decides what a finished file means (for an Object,
// Commit). The Arrow schema is stored in the file, so readers get back the
// exact types (such as timestamps in UTC).
func NewParquetWriter(w io.Writer, schema *arrow.Schema, opts ...ParquetOption) (*ParquetWriter, error) {
	cfg := parquetConfig{zstdLevel: DefaultZstdLevel, maxRowGroupLen: DefaultMaxRowGroupLen, maxGroupBytes: DefaultMaxRowGroupBytes}
	for _, o := range opts {
		o(&cfg)
	}
	props := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(cfg.zstdLevel),
		parquet.WithStats(true),
		parquet.WithMaxRowGroupLength(cfg.maxRowGroupLen),
		parquet.WithDictionaryDefault(false),
	}
	if cfg.maxRowGroupLen < 1 {
		return nil, fmt.Errorf("parquet: row group length %d is not positive", cfg.maxRowGroupLen)
	}
	if cfg.maxGroupBytes < 1 {
		return nil, fmt.Errorf("parquet: row group bytes %d is not positive", cfg.maxGroupBytes)
	}
	for _, col := range cfg.dictionary {
		if schema.FieldIndices(col) == nil {
			return nil, fmt.Errorf("parquet: dictionary column %q is not in the schema", col)
		}
		props = append(props, parquet.WithDictionaryFor(col, true))
	}
	for _, col := range slices.Sorted(maps.Keys(cfg.columnLevels)) {
		if schema.FieldIndices(col) == nil {
			return nil, fmt.Errorf("parquet: zstd level for column %q, which is not in the schema", col)
		}
		props = append(props, parquet.WithCompressionLevelFor(col, cfg.columnLevels[col]))
	}
	if cfg.createdBy != "" {
		props = append(props, parquet.WithCreatedBy(cfg.createdBy))
	}
	buf := bufio.NewWriterSize(w, writeBufferSize)
	fw, err := pqarrow.NewFileWriter(schema, buf, parquet.NewWriterProperties(props...),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	return &ParquetWriter{fw: fw, buf: buf, maxRows: cfg.maxRowGroupLen, maxBytes: cfg.maxGroupBytes}, nil
}

// Write appends the rows of rec to the file.
func (p *ParquetWriter) Write(rec arrow.RecordBatch) error {
	n, text := rec.NumRows(), textBytes(rec)
	if p.groupRows > 0 && p.groupBytes+text > p.maxBytes {
		if err := p.fw.NewBufferedRowGroupChecked(); err != nil {
			return fmt.Errorf("parquet: write rows: %w", err)
		}
		p.groupRows, p.groupBytes = 0, 0
	}
	if err := p.fw.WriteBuffered(rec); err != nil {
		return fmt.Errorf("parquet: write rows: %w", err)
	}
	p.rows += n
	// WriteBuffered fills the group to its length and puts the rest of
	// rec in new ones.
	if p.groupRows+n <= p.maxRows {
		p.groupRows, p.groupBytes = p.groupRows+n, p.groupBytes+text
	} else {
		p.groupRows, p.groupBytes = (p.groupRows+n-p.maxRows-1)%p.maxRows+1, text
	}
	// Text that compresses little fills the group's pages sooner.
	if p.fw.RowGroupTotalCompressedBytes() >= maxRowGroupPageBytes {
		if err := p.fw.NewBufferedRowGroupChecked(); err != nil {
			return fmt.Errorf("parquet: write rows: %w", err)
		}
		p.groupRows, p.groupBytes = 0, 0
	}
	return nil
}

// textBytes is the bytes of the string and binary values of rec.
func textBytes(rec arrow.RecordBatch) int64 {
	var n int64
	for _, col := range rec.Columns() {
		if b, ok := col.(interface{ ValueBytes() []byte }); ok {
			n += int64(len(b.ValueBytes()))
		}
	}
	return n
}

// Rows is the number of rows written so far.
func (p *ParquetWriter) Rows() int64 { return p.rows }

// RowGroups is the number of row groups in the file; final after Close.
func (p *ParquetWriter) RowGroups() int { return p.rowGroups }

// SetMetadata adds a key-value pair to the file footer. It must be called
// before Close; values known only at the end (a record count) fit here.
func (p *ParquetWriter) SetMetadata(key, value string) error {
	return p.fw.AppendKeyValueMetadata(key, value)
}

// Close writes the footer. The file is complete only if Close returns nil.
func (p *ParquetWriter) Close() error {
	if err := p.fw.Close(); err != nil {
		return fmt.Errorf("parquet: close: %w", err)
	}
	if err := p.buf.Flush(); err != nil {
		return fmt.Errorf("parquet: close: %w", err)
	}
	md, err := p.fw.FileMetadata()
	if err != nil {
		return fmt.Errorf("parquet: close: %w", err)
	}
	p.rowGroups = md.NumRowGroups()
	return nil
}
