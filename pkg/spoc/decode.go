package spoc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/calee-data/mspo-spoc/internal/failure"
	"github.com/calee-data/mspo-spoc/internal/jsonscan"
)

// Defaults of the decoder's options.
//
// DefaultMaxBatchBytes bounds the text of a batch (the bytes of its
// string values), so that a batch of plots far larger than real ones
// does not hold 16,384 of them. A real plot has about 130 bytes of text,
// 2 MiB a batch of 16,384: plots of up to 256 bytes fill whole batches.
// A record's text is at most DefaultMaxRecordBytes (WithMaxRecordBytes),
// so no batch holds more than 4 MiB of it. Two batches are alive at
// once (one decoded, one encoded), each in buffers of less than twice
// its text, as they grow by powers of two: at most 16 MiB, beside one
// record staged and the buffers kept for reuse (1 KiB a row of
// DefaultBatchSize, 16 MiB).
//
// DefaultMaxRecords bounds what does grow with the body: the state kept
// per record (Stats' duplicate counts, and a caller's change digests,
// about 49 bytes a plot in all, and for a dataset with a point one byte
// of CoordinateDecimals), which tiny records would otherwise
// multiply past any memory target. It is over six times the real list's
// ~306,000 plots.
const (
	DefaultBatchSize      = 16384
	DefaultMaxBatchBytes  = 4 << 20
	DefaultMaxBodyBytes   = 2 << 30
	DefaultMaxStringBytes = 1 << 20
	DefaultMaxRecordBytes = 4 << 20
	DefaultMaxRecords     = 2_000_000
)

// idleBytesPerRow bounds the memory the decoder keeps for reuse, per row
// of a batch: one batch's buffers (a few hundred bytes a row in Arrow,
// rounded up to powers of two) fit, a second one's mostly do not.
const idleBytesPerRow = 1 << 10

var (
	// ErrBodyTooLarge means the body went past the decoder's size cap.
	ErrBodyTooLarge = jsonscan.ErrInputTooLarge
	// ErrValueTooLong means a key went past the value cap (a declared
	// value past it drops its record instead).
	ErrValueTooLong = jsonscan.ErrValueTooLong
	// ErrNoResults means the body is valid JSON but has no records array
	// where the dataset has it (data.results for SPOC).
	ErrNoResults error = &decodeError{"no records array in the body", failure.NoResults}
	// ErrTooManyRecords means the records array holds more elements than
	// the record cap (WithMaxRecords).
	ErrTooManyRecords error = &decodeError{"too many records", failure.TooLarge}
)

// decodeError is a sentinel error of the decoder that knows its failure
// kind (fetch.KindedError).
type decodeError struct{ msg, kind string }

func (e *decodeError) Error() string       { return e.msg }
func (e *decodeError) FailureKind() string { return e.kind }

// SyntaxError is malformed or truncated JSON.
type SyntaxError = jsonscan.SyntaxError

// DecoderOption configures a Decoder.
type DecoderOption func(*decoderConfig)

type decoderConfig struct {
	dataset        *Dataset
	batchSize      int
	maxBatchBytes  int
	maxBodyBytes   int64
	maxStringBytes int
	maxRecordBytes int64
	maxRecords     int64
	mem            memory.Allocator
}

// WithDataset sets the dataset the body is decoded as (default SPOC):
// where its records are and how each field converts.
func WithDataset(d *Dataset) DecoderOption {
	return func(c *decoderConfig) { c.dataset = d }
}

// WithBatchSize sets the number of rows per record batch (default
// DefaultBatchSize). Larger batches hold more memory at once; beyond a few
// thousand rows they hardly save time.
func WithBatchSize(n int) DecoderOption {
	return func(c *decoderConfig) { c.batchSize = n }
}

// WithMaxBatchBytes caps the text of one batch, the bytes of its string
// values (default DefaultMaxBatchBytes): a batch ends before the record
// that would take it past n, so that its memory follows the size of its
// records and not only their number. A record larger than n makes a
// batch of its own.
func WithMaxBatchBytes(n int) DecoderOption {
	return func(c *decoderConfig) { c.maxBatchBytes = n }
}

// WithMaxBodyBytes caps the number of bytes read from the body (default
// DefaultMaxBodyBytes); past it, decoding fails with ErrBodyTooLarge.
// It counts bytes after any decompression, so it also stops gzip bombs.
func WithMaxBodyBytes(n int64) DecoderOption {
	return func(c *decoderConfig) { c.maxBodyBytes = n }
}

// WithMaxStringBytes caps one string or number (default
// DefaultMaxStringBytes). A record with a longer value in a declared
// field is dropped and counted (DropTooLarge), as one past the record
// cap is, and the value is skipped without being held; a longer key
// fails decoding with ErrValueTooLong. Values of unknown fields are
// skipped without being held, whatever their length.
func WithMaxStringBytes(n int) DecoderOption {
	return func(c *decoderConfig) { c.maxStringBytes = n }
}

// WithMaxRecordBytes caps the bytes of one record of data.results as
// they stand in the body, and the text of its values once decoded
// (invalid UTF-8 grows threefold as U+FFFD; default
// DefaultMaxRecordBytes). A record past it is dropped and counted
// (DropTooLarge), not held: the rest of it is skipped. It is dropped
// rather than failing the run because the cap is about memory, far
// above any real plot's few hundred bytes, and one such record says
// nothing of the others; the drop counts go through the same guard as
// records without an id.
func WithMaxRecordBytes(n int64) DecoderOption {
	return func(c *decoderConfig) { c.maxRecordBytes = n }
}

// WithMaxRecords caps the number of elements of the records array
// (default DefaultMaxRecords), dropped ones included: decoding fails
// with ErrTooManyRecords as the element past the cap starts, before any
// of it is read. It fails rather than drops because the records past
// the cap cannot be told from the others, and a snapshot of some of
// them would be wrong; the cap is about memory, since the statistics
// keep a few bytes per record.
func WithMaxRecords(n int64) DecoderOption {
	return func(c *decoderConfig) { c.maxRecords = n }
}

// WithAllocator sets the Arrow allocator of the record batches.
func WithAllocator(mem memory.Allocator) DecoderOption {
	return func(c *decoderConfig) { c.mem = mem }
}

type docState uint8

const (
	stateStart   docState = iota // before data.results
	stateRecords                 // inside data.results, before an element
	stateDone
)

// Decoder reads an SPOC response body as a stream and emits its records as
// Arrow record batches of Schema, converting each field by the rules in the
// package documentation. It holds one batch and a fixed read buffer, never
// the whole body, so its memory does not grow with the number of records
// (the Stats key sets aside, which take a few bits per record).
//
// Decoder implements array.RecordReader. As with other record readers, the
// batch returned by RecordBatch is valid until the next call to Next;
// Retain it to keep it longer. The decoder builds later batches in the
// memory of released ones, so strings taken from a batch without copying
// (array.String.Value) are valid only while the batch is.
type Decoder struct {
	cfg      decoderConfig
	ds       *Dataset
	sc       *jsonscan.Scanner
	state    docState
	seenData bool
	alloc    *recycler
	bld      *array.RecordBuilder
	lastRows int   // rows of the previous batch, to size the next
	lastData []int // string bytes per column of the previous batch
	// batchBytes is the text of the batch being built; pending says the
	// staged row was read but left for the next batch, which it would
	// have taken past maxBatchBytes.
	batchBytes int
	pending    bool
	rec        arrow.RecordBatch
	err        error
	row        row
	stats      *collector
	refs       atomic.Int64
	// decimals is, for a dataset with a point, each written row's fewer
	// decimal places of its two coordinates (CoordinateDecimals).
	decimals []uint8
	// inRecords is where an element of the records array is, for errors.
	inRecords string
	// order is the lookup entry of each key of the previous record, by
	// position (noField before there is one): the upstream writes its
	// keys in one order, so the next key is almost always the one at its
	// position last time, and one comparison finds it without hashing.
	order [maxPredicted]*fieldEntry
}

// maxPredicted is how many keys of a record the decoder predicts.
const maxPredicted = 64

// noField is the prediction of a position no record has reached yet: it
// matches no key.
var noField = fieldEntry{short: -1}

// NewDecoder returns a Decoder reading r. It does not close r.
func NewDecoder(r io.Reader, opts ...DecoderOption) *Decoder {
	cfg := decoderConfig{
		dataset:        SPOC,
		batchSize:      DefaultBatchSize,
		maxBatchBytes:  DefaultMaxBatchBytes,
		maxBodyBytes:   DefaultMaxBodyBytes,
		maxStringBytes: DefaultMaxStringBytes,
		maxRecordBytes: DefaultMaxRecordBytes,
		maxRecords:     DefaultMaxRecords,
		mem:            memory.DefaultAllocator,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.batchSize < 1 {
		cfg.batchSize = 1
	}
	alloc := newRecycler(cfg.mem, cfg.batchSize*idleBytesPerRow)
	ds := cfg.dataset
	d := &Decoder{
		cfg:       cfg,
		ds:        ds,
		sc:        jsonscan.New(r, cfg.maxBodyBytes, cfg.maxStringBytes),
		alloc:     alloc,
		bld:       array.NewRecordBuilder(alloc, ds.schema),
		lastData:  make([]int, len(ds.Columns)),
		row:       row{cells: make([]cell, len(ds.Columns))},
		inRecords: "in " + ds.RecordsPath(),
		stats:     newCollector(ds),
	}
	for i := range d.order {
		d.order[i] = &noField
	}
	d.refs.Store(1)
	return d
}

// Schema returns the schema of the emitted batches: the dataset's.
func (d *Decoder) Schema() *arrow.Schema { return d.ds.schema }

// MaxBodyBytes is the decoder's cap on the body (WithMaxBodyBytes), so
// that a caller that reads past the JSON value stops at the same cap.
func (d *Decoder) MaxBodyBytes() int64 { return d.cfg.maxBodyBytes }

// Next decodes the next batch of records. It returns false at the end of
// the body or on error; Err tells which.
func (d *Decoder) Next() bool {
	if d.rec != nil {
		d.rec.Release()
		d.rec = nil
	}
	if d.err != nil || (d.state == stateDone && !d.pending) {
		return false
	}
	if err := d.fillBatch(); err != nil {
		d.err = err
		// Drop the rows of the failed batch: nothing of a broken body is emitted.
		d.bld.NewRecordBatch().Release()
		return false
	}
	if d.bld.Field(keyColumn).Len() == 0 {
		return false
	}
	d.lastRows = d.bld.Field(keyColumn).Len()
	for col, f := range d.bld.Fields() {
		if sb, ok := f.(*array.StringBuilder); ok {
			d.lastData[col] = sb.DataLen()
		}
	}
	d.rec = d.bld.NewRecordBatch()
	return true
}

// reserve sizes the empty builders for a batch like the previous one, so
// that they are allocated once instead of growing by doubling and copying.
func (d *Decoder) reserve() {
	if d.lastRows == 0 {
		return
	}
	for col, f := range d.bld.Fields() {
		f.Reserve(d.lastRows)
		if sb, ok := f.(*array.StringBuilder); ok {
			sb.ReserveData(d.lastData[col])
		}
	}
}

func (d *Decoder) fillBatch() error {
	if d.state == stateStart {
		if err := d.seekResults(); err != nil {
			return err
		}
	}
	d.reserve()
	d.batchBytes = 0
	if d.pending {
		d.pending = false
		d.commitRow()
	}
	for d.state == stateRecords && d.bld.Field(keyColumn).Len() < d.cfg.batchSize && !d.pending {
		staged, err := d.readElement()
		if err != nil {
			return err
		}
		if staged {
			// Only a row to be written (one with an id) ends a batch.
			if d.batchBytes+d.row.bytes() > d.cfg.maxBatchBytes && d.bld.Field(keyColumn).Len() > 0 && d.row.cells[keyColumn].state == cellValue {
				d.pending = true
			} else {
				d.commitRow()
			}
		}
		more, err := d.sc.Next(']', d.inRecords)
		if err != nil {
			return err
		}
		if !more {
			if err := d.finishDocument(); err != nil {
				return err
			}
		}
	}
	return nil
}

// RecordBatch returns the batch decoded by the last call to Next.
func (d *Decoder) RecordBatch() arrow.RecordBatch { return d.rec }

// Record returns the batch decoded by the last call to Next.
//
// Deprecated: Use RecordBatch instead.
func (d *Decoder) Record() arrow.RecordBatch { return d.rec }

// Err returns the error that stopped decoding, or nil at a clean end.
func (d *Decoder) Err() error { return d.err }

// Stats returns the data-quality statistics of the records decoded so far;
// after Next has returned false with a nil Err, those of the whole body.
func (d *Decoder) Stats() Stats { return d.stats.stats() }

// CoordinateDecimals is, for a dataset with a point (Dataset.Point), one
// entry per row written so far, in the order of the batches: the fewer
// decimal places of the row's longitude and latitude as the body wrote
// them (a JSON number's text, or a string's; "3.10" has 2, "5e-7" 7;
// 255 stands for 255 or more). It is 0 for a row without both
// coordinates valid. The decoder counts them as it converts the values,
// one byte a row, so a caller needs no second look at the body; the
// slice is the caller's to keep once decoding has ended.
func (d *Decoder) CoordinateDecimals() []uint8 { return d.decimals }

// Retain increases the reference count of the decoder.
func (d *Decoder) Retain() { d.refs.Add(1) }

// Release decreases the reference count and frees the current batch and
// the builders when it reaches zero.
func (d *Decoder) Release() {
	if d.refs.Add(-1) == 0 {
		if d.rec != nil {
			d.rec.Release()
			d.rec = nil
		}
		d.bld.Release()
		d.alloc.close()
	}
}

var _ array.RecordReader = (*Decoder)(nil)

// seekResults walks from the start of the body to the first element of
// data.results, skipping every other key whatever its shape.
func (d *Decoder) seekResults() error {
	sc := d.sc
	more, err := sc.OpenObject("at the start of the body")
	if err != nil {
		return err
	}
	for more {
		key, err := sc.Key("in the top-level object")
		if err != nil {
			return err
		}
		if string(key) == d.ds.Records[0] {
			if d.seenData {
				return sc.Errorf("duplicate key %q", d.ds.Records[0])
			}
			d.seenData = true
			if len(d.ds.Records) == 1 {
				return d.openResults()
			}
			found, err := d.seekResultsInData()
			if err != nil || found {
				return err
			}
		} else if err := sc.SkipValue(1); err != nil {
			return err
		}
		if more, err = sc.Next('}', "in the top-level object"); err != nil {
			return err
		}
	}
	if err := d.expectEOF(); err != nil {
		return err
	}
	return fmt.Errorf("%w: no %s array, where the %s dataset has its records", ErrNoResults, d.ds.RecordsPath(), d.ds.Name)
}

// seekResultsInData walks the value of "data". It returns true positioned
// inside data.results, or false after the whole value when it has none.
func (d *Decoder) seekResultsInData() (bool, error) {
	sc := d.sc
	c, err := sc.Peek("after " + strconv.Quote(d.ds.Records[0]))
	if err != nil {
		return false, err
	}
	if c != '{' {
		return false, sc.SkipValue(1)
	}
	in := "in " + d.ds.Records[0]
	more, err := sc.OpenObject(in)
	if err != nil {
		return false, err
	}
	for more {
		key, err := sc.Key(in)
		if err != nil {
			return false, err
		}
		if string(key) == d.ds.Records[1] {
			return true, d.openResults()
		}
		if err := sc.SkipValue(2); err != nil {
			return false, err
		}
		if more, err = sc.Next('}', in); err != nil {
			return false, err
		}
	}
	return false, nil
}

func (d *Decoder) openResults() error {
	sc := d.sc
	c, err := sc.Peek("after " + strconv.Quote(d.ds.Records[len(d.ds.Records)-1]))
	if err != nil {
		return err
	}
	if c != '[' {
		return fmt.Errorf("%w: %s is not an array (found %s at byte %d)", ErrNoResults, d.ds.RecordsPath(), jsonscan.QuoteByte(c), sc.Offset())
	}
	sc.Advance()
	if c, err = sc.Peek("in " + d.ds.RecordsPath()); err != nil {
		return err
	}
	if c == ']' {
		sc.Advance()
		return d.finishDocument()
	}
	d.state = stateRecords
	return nil
}

// finishDocument reads what follows data.results: the rest of data, the
// rest of the top-level object and the end of input (for a records array
// directly under data, only the last two). Keys after the array are
// checked, so a second "results" or "data" is an error rather than
// silently ignored.
func (d *Decoder) finishDocument() error {
	sc := d.sc
	path := d.ds.Records
	closings := []string{path[0], "the top-level object"}[2-len(path):]
	for level, closing := range closings {
		for {
			more, err := sc.Next('}', "in "+closing)
			if err != nil {
				return err
			}
			if !more {
				break
			}
			key, err := sc.Key("in " + closing)
			if err != nil {
				return err
			}
			// The key that holds this level's part of the path.
			if string(key) == path[len(path)-1-level] {
				return sc.Errorf("duplicate key %q", key)
			}
			if err := sc.SkipValue(level + 1); err != nil {
				return err
			}
		}
	}
	d.state = stateDone
	return d.expectEOF()
}

func (d *Decoder) expectEOF() error {
	eof, err := d.sc.AtEOF()
	if err != nil {
		return err
	}
	if !eof {
		return d.sc.Errorf("unexpected data after the top-level object")
	}
	return nil
}

type cellState uint8

const (
	cellAbsent  cellState = iota // the field was not in the record
	cellNull                     // JSON null
	cellValue                    // a usable value
	cellInvalid                  // present but unusable: stored as null, counted
)

// cell holds one converted field of the record being decoded.
type cell struct {
	state      cellState
	num        int64   // ids, timestamps (µs), booleans (0/1)
	f          float64 // areas, coordinates
	decimals   uint8   // a coordinate's decimal places as the body wrote them
	start, end int     // string value: arena[start:end]
	reason     string  // why the value is invalid
}

// row stages one record: fields arrive in any order and the record may
// still be dropped at its end, so nothing reaches the builders before '}'.
type row struct {
	cells []cell
	arena []byte
	// dead is the bytes of arena that overwritten values (a repeated
	// key) no longer use; spare is the buffer a compaction copies the
	// live values into.
	dead  int
	spare []byte
}

// bytes is the text of the row: the bytes of its live string values.
func (r *row) bytes() int { return len(r.arena) - r.dead }

// reset empties the row, keeping its buffers.
func (r *row) reset() {
	clear(r.cells)
	r.arena, r.dead = r.arena[:0], 0
}

// release gives back the arena bytes of the value in cl, which is about
// to be overwritten.
func (r *row) release(cl *cell) {
	if cl.end <= cl.start {
		return
	}
	if cl.end == len(r.arena) {
		r.arena = r.arena[:cl.start]
		return
	}
	r.dead += cl.end - cl.start
}

// compact copies the live values into the spare buffer once most of the
// arena is dead, so that a record repeating a key holds its last value,
// not every one.
func (r *row) compact() {
	if r.dead < 64<<10 || 2*r.dead < len(r.arena) {
		return
	}
	live := r.spare[:0]
	for i := range r.cells {
		if cl := &r.cells[i]; cl.end > cl.start {
			start := len(live)
			live = append(live, r.arena[cl.start:cl.end]...)
			cl.start, cl.end = start, len(live)
		}
	}
	r.spare, r.arena, r.dead = r.arena[:0], live, 0
}

// recordEnd is the offset past which the record that starts at offset
// start is past the record cap as it stands in the body (maxInt64 where
// the cap reaches beyond any offset).
func (d *Decoder) recordEnd(start int64) int64 {
	if d.cfg.maxRecordBytes > math.MaxInt64-start {
		return math.MaxInt64
	}
	return start + d.cfg.maxRecordBytes
}

// pastTextCap says whether the staged row's text, decoded, is past the
// record cap.
func (d *Decoder) pastTextCap() bool { return int64(d.row.bytes()) > d.cfg.maxRecordBytes }

// readElement reads one element of data.results into the staged row,
// reporting whether it is one to commit, or counts it as dropped.
//
// A record goes past the record cap in the body (checked at each key)
// or in its text once decoded (which grows only as a value is read, so
// it is checked after each value): the rest of it is skipped, and it is
// dropped.
func (d *Decoder) readElement() (staged bool, err error) {
	sc := d.sc
	d.stats.read++
	if d.stats.read > d.cfg.maxRecords {
		return false, fmt.Errorf("%w: more than %d in %s (element at byte %d)", ErrTooManyRecords, d.cfg.maxRecords, d.ds.RecordsPath(), sc.Offset())
	}
	c, err := sc.Peek("in data.results")
	if err != nil {
		return false, err
	}
	if c != '{' {
		d.stats.dropped[DropNotAnObject]++
		return false, sc.SkipValue(3)
	}
	d.row.reset()
	end := d.recordEnd(sc.Offset())
	tooLarge := false
	more, err := sc.OpenObject("in a record")
	if err != nil {
		return false, err
	}
	for pos := uint(0); more; pos++ {
		key, err := sc.Key("in a record")
		if err != nil {
			return false, err
		}
		if sc.Offset() > end && !tooLarge {
			tooLarge = true
			d.row.reset()
		}
		// The key at this position in the previous record, first.
		e := d.order[pos%maxPredicted]
		if !e.matchesInBuffer(key) {
			if e = d.fieldByHash(key, pos); e == nil {
				if err = d.skipUndeclared(key); err != nil {
					return false, err
				}
				if more, err = sc.Next('}', "in a record"); err != nil {
					return false, err
				}
				continue
			}
		}
		switch col := e.col; {
		case col == dropped:
			err = sc.SkipValue(4)
		case tooLarge:
			err = sc.SkipValue(4)
		default:
			if err = d.readField(col, e.kind); err == nil {
				if d.row.dead != 0 {
					d.row.compact()
				}
				if d.pastTextCap() {
					tooLarge = true
					d.row.reset()
				}
			} else if errors.Is(err, ErrValueTooLong) {
				// The scanner skipped the rest of the value: the
				// record goes as one past the record cap does.
				tooLarge, err = true, nil
				d.row.reset()
			}
		}
		if err != nil {
			return false, err
		}
		if more, err = sc.Next('}', "in a record"); err != nil {
			return false, err
		}
	}
	if tooLarge || sc.Offset() > end {
		d.stats.dropped[DropTooLarge]++
		return false, nil
	}
	return true, nil
}

// fieldByHash is the lookup entry of a key that is not where it was in
// the previous record, remembering its slot for the next, or nil for a
// key the dataset does not know.
func (d *Decoder) fieldByHash(key []byte, pos uint) *fieldEntry {
	slot, ok := d.ds.slot(key)
	if !ok {
		return nil
	}
	e := &d.ds.lookup[slot]
	d.order[pos%maxPredicted] = e
	return e
}

// skipUndeclared skips the value of a field the dataset does not declare,
// counting the field and the JSON type of its value.
func (d *Decoder) skipUndeclared(key []byte) error {
	c, err := d.sc.Peek("before a value")
	if err != nil {
		return err
	}
	d.stats.countUndeclared(key, jsonType(c))
	return d.sc.SkipValue(4)
}

// The JSON types of a value, in the order Stats.UndeclaredFields lists
// their names (jsonTypes).
const (
	typeArray = iota
	typeBoolean
	typeInvalid // not a JSON value
	typeNull
	typeNumber
	typeObject
	typeString
)

var jsonTypes = [...]string{typeArray: "array", typeBoolean: "boolean", typeInvalid: "invalid", typeNull: "null",
	typeNumber: "number", typeObject: "object", typeString: "string"}

// jsonType is the type of a value, by its first byte.
func jsonType(c byte) int {
	switch {
	case c == '"':
		return typeString
	case c == '-' || jsonscan.IsDigit(c):
		return typeNumber
	case c == 't' || c == 'f':
		return typeBoolean
	case c == 'n':
		return typeNull
	case c == '{':
		return typeObject
	case c == '[':
		return typeArray
	}
	return typeInvalid
}

// readField converts the next JSON value into the row's cell for col, of
// kind kind. A repeated key overwrites the earlier value, as in
// encoding/json.
func (d *Decoder) readField(col int, kind Kind) error {
	cl := &d.row.cells[col]
	if cl.state != cellAbsent { // a repeated key
		d.row.release(cl)
		*cl = cell{}
	}
	sc := d.sc
	c, err := sc.Peek("before a value")
	if err != nil {
		return err
	}
	switch {
	case c == '"':
		s, err := sc.ReadString()
		if err != nil {
			return err
		}
		d.setText(cl, kind, s, true)
	case c == '-' || jsonscan.IsDigit(c):
		n, err := sc.ReadNumber()
		if err != nil {
			return err
		}
		d.setText(cl, kind, n, false)
	case c == 't' || c == 'f' || c == 'n':
		lit, err := sc.ReadLiteral()
		if err != nil {
			return err
		}
		d.setLiteral(cl, kind, lit)
	case c == '{' || c == '[':
		if err := sc.SkipValue(5); err != nil {
			return err
		}
		cl.invalid(ReasonWrongType)
	default:
		return sc.Errorf("invalid character %s looking for a value", jsonscan.QuoteByte(c))
	}
	return nil
}

func (cl *cell) invalid(reason string) {
	cl.state = cellInvalid
	cl.reason = reason
}

// setText converts a string's contents (quoted) or a number's text into
// cl, a cell of kind kind.
func (d *Decoder) setText(cl *cell, kind Kind, text []byte, quoted bool) {
	var reason string
	switch kind {
	case KindString:
		cl.start = len(d.row.arena)
		d.row.arena = append(d.row.arena, text...)
		cl.end = len(d.row.arena)
	case KindKey:
		cl.num, reason = parseInt(text, 64)
	case KindInt32, KindKey32:
		cl.num, reason = parseInt(text, 32)
	case KindFloat:
		cl.f, reason = parseFloat(text)
	case KindLatitude:
		cl.f, reason = parseFloat(text)
		if reason == "" && (cl.f < -90 || cl.f > 90) {
			reason = ReasonOutOfRange
		}
		cl.decimals = decimalPlaces(text)
	case KindLongitude:
		cl.f, reason = parseFloat(text)
		if reason == "" && (cl.f < -180 || cl.f > 180) {
			reason = ReasonOutOfRange
		}
		cl.decimals = decimalPlaces(text)
	case KindTimestamp:
		if !quoted {
			reason = ReasonWrongType
			break
		}
		cl.num, reason = parseTimestamp(text)
	case KindBool:
		switch t := trimSpace(text); {
		case !quoted:
			reason = ReasonBadBoolean
		case len(t) == 0:
			reason = ReasonEmpty
		case bytes.EqualFold(t, []byte("true")):
			cl.num = 1
		case bytes.EqualFold(t, []byte("false")):
			cl.num = 0
		default:
			reason = ReasonBadBoolean
		}
	}
	if reason != "" {
		cl.invalid(reason)
		return
	}
	cl.state = cellValue
}

// setLiteral converts true, false or null (given by its first byte) into
// cl, a cell of kind kind.
func (d *Decoder) setLiteral(cl *cell, kind Kind, lit byte) {
	if lit == 'n' {
		cl.state = cellNull
		return
	}
	switch kind {
	case KindBool:
		cl.state = cellValue
		if lit == 't' {
			cl.num = 1
		}
	case KindString: // keep what was sent, as text
		word := "false"
		if lit == 't' {
			word = "true"
		}
		cl.start = len(d.row.arena)
		d.row.arena = append(d.row.arena, word...)
		cl.end = len(d.row.arena)
		cl.state = cellValue
	default:
		cl.invalid(ReasonWrongType)
	}
}

// commitRow appends the staged record to the builders, or drops it when
// its id is unusable, and updates the statistics.
func (d *Decoder) commitRow() {
	st := d.stats
	cells := d.row.cells
	switch id := &cells[keyColumn]; id.state {
	case cellAbsent:
		st.dropped[DropMissingID]++
		return
	case cellNull:
		st.dropped[DropNullID]++
		return
	case cellInvalid:
		st.dropped[DropInvalidID]++
		return
	}
	st.written++
	d.batchBytes += d.row.bytes()
	// Locals of the loop's slices, of one length, so that it indexes
	// them without reloading or bounds checks.
	kinds, nulls, absent := d.ds.kinds[:len(cells)], st.nulls[:len(cells)], st.absent[:len(cells)]
	for col := range cells {
		cl := &cells[col]
		b := d.bld.Field(col)
		if cl.state != cellValue {
			switch cl.state {
			case cellInvalid:
				st.countInvalid(col, cl.reason)
			case cellAbsent:
				absent[col]++
			}
			nulls[col]++
			b.AppendNull()
			continue
		}
		switch kinds[col] {
		case KindString:
			b.(*array.StringBuilder).BinaryBuilder.Append(d.row.arena[cl.start:cl.end])
		case KindKey:
			b.(*array.Int64Builder).Append(cl.num)
		case KindInt32, KindKey32:
			b.(*array.Int32Builder).Append(int32(cl.num))
		case KindFloat, KindLatitude, KindLongitude:
			b.(*array.Float64Builder).Append(cl.f)
		case KindBool:
			b.(*array.BooleanBuilder).Append(cl.num == 1)
		case KindTimestamp:
			b.(*array.TimestampBuilder).Append(arrow.Timestamp(cl.num))
		}
	}
	st.countID(cells[keyColumn].num)
	if lon, lat, ok := d.ds.Point(); ok {
		var places uint8
		if lon, lat := &cells[lon], &cells[lat]; lon.state == cellValue && lat.state == cellValue {
			places = min(lon.decimals, lat.decimals)
		}
		d.decimals = append(d.decimals, places)
	}
	roles := &d.ds.roles
	if roles.licence >= 0 {
		if mp := &cells[roles.licence]; mp.state == cellValue {
			st.mpob.add(d.row.arena[mp.start:mp.end])
		}
	}
	if roles.status >= 0 {
		cs := &cells[roles.status]
		st.countStatus(d.row.arena[cs.start:cs.end], cs.state != cellValue)
	}
	if roles.deleted >= 0 {
		if del := &cells[roles.deleted]; del.state == cellValue && del.num == 1 {
			st.deleted++
		}
	}
}
