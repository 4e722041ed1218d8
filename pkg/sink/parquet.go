package sink

import (
	"bufio"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ParquetContentType is the media type of Parquet objects.
const ParquetContentType = "application/vnd.apache.parquet"

// Defaults of the Parquet writer.
const (
	DefaultZstdLevel      = 3
	DefaultMaxRowGroupLen = 128 * 1024
)

// ParquetOption configures a ParquetWriter.
type ParquetOption func(*parquetConfig)

type parquetConfig struct {
	zstdLevel      int
	maxRowGroupLen int64
	dictionary     []string
	createdBy      string
}

// WithZstdLevel sets the zstd level of every column (default
// DefaultZstdLevel). Higher levels trade encoding CPU for size.
func WithZstdLevel(level int) ParquetOption {
	return func(c *parquetConfig) { c.zstdLevel = level }
}

// WithMaxRowGroupLength caps the rows of one row group (default
// DefaultMaxRowGroupLen). Each written batch starts a new row group, so
// batches of 64Ki rows give row groups of 64Ki rows.
func WithMaxRowGroupLength(n int64) ParquetOption {
	return func(c *parquetConfig) { c.maxRowGroupLen = n }
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
// file with column statistics, one row group per batch.
type ParquetWriter struct {
	fw   *pqarrow.FileWriter
	buf  *bufio.Writer
	rows int64
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
	cfg := parquetConfig{zstdLevel: DefaultZstdLevel, maxRowGroupLen: DefaultMaxRowGroupLen}
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
	for _, col := range cfg.dictionary {
		if schema.FieldIndices(col) == nil {
			return nil, fmt.Errorf("parquet: dictionary column %q is not in the schema", col)
		}
		props = append(props, parquet.WithDictionaryFor(col, true))
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
	return &ParquetWriter{fw: fw, buf: buf}, nil
}

// Write writes rec as one row group (more if it exceeds the row group cap).
func (p *ParquetWriter) Write(rec arrow.RecordBatch) error {
	if err := p.fw.Write(rec); err != nil {
		return fmt.Errorf("parquet: write row group: %w", err)
	}
	p.rows += rec.NumRows()
	return nil
}

// Rows is the number of rows written so far.
func (p *ParquetWriter) Rows() int64 { return p.rows }

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
	return nil
}
