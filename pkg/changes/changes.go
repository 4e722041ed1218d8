// Package changes compares a day's SPOC snapshot with the previous one,
// plot by plot, keyed by entity_smallholder_id: which plots were added,
// which removed, which changed and in which columns, and how their
// cert_status moved.
//
// A Baseline is read from the previous snapshot's Parquet file before the
// day's body is fetched. The day's record batches are then fed to a
// Comparison as they are decoded, and Finish reads the previous file a
// second time for the before-values of the plots that changed or went.
//
// # Memory
//
// Neither snapshot is held in memory. The previous file is read row group
// by row group (one ranged read per column chunk on GCS) and the Baseline
// keeps 17 bytes per previous plot: its id, a 64-bit hash of the rest of
// its row, and a flag byte. A changed plot costs about 310 bytes (the hash
// of each of its columns, to name the ones that changed, and the values of
// the change table), an added or removed one about 120. On an ordinary
// day a few thousand plots change and the cost is a few megabytes at
// 306,000 plots; on a day when every plot changes it is about 95 MB.
//
// Hashes are seeded per Baseline, so both snapshots are hashed with the
// same function within one run and never compared across runs. Two
// different values of a column hash alike with a probability of 2^-64.
//
// # Duplicate ids
//
// The upstream should not repeat an id, but if it does, the snapshot keeps
// every row (and counts them as spoc.duplicate_ids). Here the first row of
// an id in file order stands for the id in either snapshot; later rows of
// the same id are ignored, and counted in Summary.IgnoredDuplicates. The
// result is the same for the same two files, whatever the order of the
// batches within them.
package changes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// Kinds of change, the values of the change column.
const (
	Added   = "added"
	Removed = "removed"
	Changed = "changed"
)

// Schema is the table of one day's changes, one row per plot that was
// added, removed or changed, ordered by entity_smallholder_id. The before
// columns are null for an added plot, the after columns for a removed one,
// and changed_columns is null unless the change is "changed".
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "entity_smallholder_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "change", Type: arrow.BinaryTypes.String},
	// "element", as Parquet names a list's values, so that the schema read
	// back from the file is this one.
	{Name: "changed_columns", Type: arrow.ListOfField(arrow.Field{Name: "element", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
	{Name: "cert_status_before", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "cert_status_after", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "certified_area_before", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "certified_area_after", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "updated_at_before", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "updated_at_after", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
}, nil)

// Summary counts the changes of one day. It goes into the manifest and the
// spoc.changes and spoc.status_transitions metrics.
type Summary struct {
	// Previous is the snapshot compared with (YYYYMMDD); empty when there
	// was none, and FirstRun is set: every count is then zero.
	Previous string `json:"previous,omitempty"`
	FirstRun bool   `json:"first_run,omitempty"`

	Added     int64 `json:"added"`
	Removed   int64 `json:"removed"`
	Changed   int64 `json:"changed"`
	Unchanged int64 `json:"unchanged"`
	// Columns counts the changed plots per column that changed.
	Columns map[string]int64 `json:"columns,omitempty"`
	// StatusTransitions counts the changed plots whose cert_status
	// differs, by before and after value ("(null)" for a null), ordered
	// by count, then by from and to.
	StatusTransitions []Transition `json:"status_transitions,omitempty"`
	// IgnoredDuplicates counts the rows that repeat an id already seen in
	// the same snapshot; they take no part in the comparison.
	IgnoredDuplicates Duplicates `json:"ignored_duplicates"`
}

// Transition is a count of plots whose cert_status went From -> To.
type Transition struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Count int64  `json:"count"`
}

// Duplicates counts ignored rows in each snapshot.
type Duplicates struct {
	Previous int64 `json:"previous"`
	Current  int64 `json:"current"`
}

// Rows is the number of rows of the change table.
func (s Summary) Rows() int64 { return s.Added + s.Removed + s.Changed }

// NullStatus stands for a null cert_status in StatusTransitions; OtherStatus
// for every value after the first maxTransitions pairs, which keeps the
// metric's attributes few whatever the upstream sends.
const (
	NullStatus     = "(null)"
	OtherStatus    = "(other)"
	maxTransitions = 64
)

// idColumnName is the key of the comparison.
const idColumnName = "entity_smallholder_id"

// ErrSchema means the previous snapshot's file cannot be compared: a
// column has another type than in spoc.Schema, or the id is missing.
var ErrSchema = errors.New("previous snapshot has an incompatible schema")

// File is the previous snapshot's Parquet file.
type File = parquet.ReaderAtSeeker

// Flags of a Baseline entry.
const (
	seen    uint8 = 1 << iota // a current row has this id
	visited                   // Finish has read the first row of this id
)

// Baseline is the digest of the previous snapshot: per id (ascending), a
// hash of the rest of the row. Make one per run with ReadBaseline, and a
// Comparison from it for each attempt.
type Baseline struct {
	snapshot   string
	h          hasher
	entries    []entry
	duplicates int64
}

type entry struct {
	id   int64
	hash uint64
}

func (b *Baseline) find(id int64) (int, bool) {
	return slices.BinarySearchFunc(b.entries, id, func(e entry, id int64) int { return cmp.Compare(e.id, id) })
}

// ReadBaseline reads the digest of snapshot (its date, YYYYMMDD) from its
// Parquet file f.
func ReadBaseline(ctx context.Context, snapshot string, f File) (*Baseline, error) {
	b := &Baseline{snapshot: snapshot, h: newHasher()}
	if err := b.read(ctx, f); err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", snapshot, err)
	}
	b.entries, b.duplicates = firstOfEachID(b.entries, func(e entry) int64 { return e.id })
	b.entries = slices.Clip(b.entries)
	return b, nil
}

func (b *Baseline) read(ctx context.Context, f File) error {
	s, err := openSnapshot(f, b.h)
	if err != nil {
		return err
	}
	defer s.Close()
	b.entries = make([]entry, 0, s.pf.NumRows())
	var row, col []uint64
	return s.eachRowGroup(ctx, func(g *rowGroup) error {
		row, col = resize(row, len(g.ids)), resize(col, len(g.ids))
		for i := range row {
			row[i] = b.h.key
		}
		for k, leaf := range s.leaves {
			if err := g.hashColumn(b.h, leaf, col); err != nil {
				return err
			}
			for i, v := range col {
				row[i] = fold(row[i], v, k)
			}
		}
		for i, id := range g.ids {
			b.entries = append(b.entries, entry{id, row[i]})
		}
		return nil
	})
}

func resize(s []uint64, n int) []uint64 {
	if cap(s) < n {
		return make([]uint64, n)
	}
	return s[:n]
}

// firstOfEachID sorts s by id, keeping only the first element of each id
// in the order of s, and counts the others.
func firstOfEachID[T any](s []T, id func(T) int64) (unique []T, dropped int64) {
	slices.SortStableFunc(s, func(x, y T) int { return cmp.Compare(id(x), id(y)) })
	unique = s[:0]
	for i, e := range s {
		if i > 0 && id(e) == id(s[i-1]) {
			dropped++
			continue
		}
		unique = append(unique, e)
	}
	return unique, dropped
}

// Len is the number of distinct ids of the previous snapshot.
func (b *Baseline) Len() int { return len(b.entries) }

// Comparison compares the current snapshot, fed to Add batch by batch,
// with a Baseline. It is not safe for concurrent use.
type Comparison struct {
	base       *Baseline
	flags      []uint8
	rows       []change // added and changed, in the order seen
	duplicates int64
	hashes     rowHashes
	statuses   map[string]string // interned cert_status values
}

// change is one row of the change table, and for a changed plot the hash
// of each of its current columns until Finish names the ones that differ.
type change struct {
	id            int64
	prev          int32 // index into the Baseline; -1 for an added plot
	kind          kind
	mask          uint32 // bit k: compared column k changed
	before, after values
	columns       []uint64
}

type kind uint8

const (
	added kind = iota
	removed
	changed
)

var kindNames = [...]string{added: Added, removed: Removed, changed: Changed}

// values are the columns of the change table that come from a snapshot.
type values struct {
	status                         string
	area                           float64
	updated                        int64
	hasStatus, hasArea, hasUpdated bool
}

// NewComparison starts the comparison of one attempt.
func (b *Baseline) NewComparison() *Comparison {
	return &Comparison{base: b, flags: make([]uint8, len(b.entries)), statuses: map[string]string{}}
}

// Add compares the rows of rec, a batch with spoc.Schema, with the
// Baseline.
func (c *Comparison) Add(rec arrow.RecordBatch) error {
	ids, err := idColumn(rec)
	if err != nil {
		return err
	}
	if err := c.hashes.compute(c.base.h, rec); err != nil {
		return err
	}
	get := newValueReader(rec)
	for i := range ids.Len() {
		id := ids.Value(i)
		j, found := c.base.find(id)
		switch {
		case !found:
			c.rows = append(c.rows, change{id: id, prev: -1, kind: added, after: get.at(i, c.statuses)})
		case c.flags[j]&seen != 0:
			c.duplicates++
		default:
			c.flags[j] |= seen
			if c.base.entries[j].hash == c.hashes.row[i] {
				continue
			}
			cols := make([]uint64, len(c.hashes.columns))
			for k, col := range c.hashes.columns {
				cols[k] = col[i]
			}
			c.rows = append(c.rows, change{id: id, prev: int32(j), kind: changed, after: get.at(i, c.statuses), columns: cols})
		}
	}
	return nil
}

// Result is the outcome of a Comparison.
type Result struct {
	Summary Summary
	rows    []change // ascending by id
	names   []string // the compared columns, in the order of a mask's bits
}

// Finish reads the previous snapshot's file f (the one the Baseline was
// read from) again for the before-values of the plots that changed or were
// removed, and returns the result. Unless something changed, f is not
// read.
func (c *Comparison) Finish(ctx context.Context, f File) (*Result, error) {
	// Added rows of an id seen twice: keep the first, as for the others.
	var dropped int64
	c.rows, dropped = firstOfEachID(c.rows, func(r change) int64 { return r.id })
	c.duplicates += dropped
	var matched int64
	for j, fl := range c.flags {
		if fl&seen == 0 {
			c.rows = append(c.rows, change{id: c.base.entries[j].id, prev: int32(j), kind: removed})
		} else {
			matched++
		}
	}
	if err := c.readBefore(ctx, f); err != nil {
		return nil, err
	}
	slices.SortFunc(c.rows, func(a, b change) int { return cmp.Compare(a.id, b.id) })

	s := Summary{Previous: c.base.snapshot, Columns: map[string]int64{}}
	s.IgnoredDuplicates = Duplicates{Previous: c.base.duplicates, Current: c.duplicates}
	transitions := map[[2]string]int64{}
	for i := range c.rows {
		r := &c.rows[i]
		r.columns = nil
		switch r.kind {
		case added:
			s.Added++
		case removed:
			s.Removed++
		case changed:
			s.Changed++
			for k, name := range c.base.h.names {
				if r.mask&(1<<k) != 0 {
					s.Columns[name]++
				}
			}
			from, to := statusName(r.before), statusName(r.after)
			if from != to {
				key := [2]string{from, to}
				if _, ok := transitions[key]; !ok && len(transitions) >= maxTransitions {
					key = [2]string{OtherStatus, OtherStatus}
				}
				transitions[key]++
			}
		}
	}
	s.Unchanged = matched - s.Changed
	for k, n := range transitions {
		s.StatusTransitions = append(s.StatusTransitions, Transition{From: k[0], To: k[1], Count: n})
	}
	slices.SortFunc(s.StatusTransitions, func(a, b Transition) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
	return &Result{Summary: s, rows: c.rows, names: c.base.h.names}, nil
}

// readBefore fills the before-values of the changed and removed rows from
// the first row of their id in f, and the mask of the columns that changed.
func (c *Comparison) readBefore(ctx context.Context, f File) error {
	// Changed and removed rows by their index into the Baseline.
	var wanted []int
	for i, r := range c.rows {
		if r.prev >= 0 {
			wanted = append(wanted, i)
		}
	}
	if len(wanted) == 0 {
		return nil
	}
	slices.SortFunc(wanted, func(a, b int) int { return cmp.Compare(c.rows[a].prev, c.rows[b].prev) })
	err := c.fillBefore(ctx, f, wanted)
	if err != nil {
		return fmt.Errorf("read snapshot %s again: %w", c.base.snapshot, err)
	}
	return nil
}

func (c *Comparison) fillBefore(ctx context.Context, f File, wanted []int) error {
	s, err := openSnapshot(f, c.base.h)
	if err != nil {
		return err
	}
	defer s.Close()
	h := c.base.h
	statusLeaf, areaLeaf, updatedLeaf := s.leaf(h, "cert_status"), s.leaf(h, "certified_area"), s.leaf(h, "updated_at")
	statuses, filled := map[string]string{}, 0
	var picks rowPicks
	var col []uint64
	err = s.eachRowGroup(ctx, func(g *rowGroup) error {
		picks.rows, picks.changes = picks.rows[:0], picks.changes[:0]
		anyChanged := false
		for i, id := range g.ids {
			j, found := c.base.find(id)
			if !found || c.flags[j]&visited != 0 {
				continue
			}
			c.flags[j] |= visited
			w, ok := slices.BinarySearchFunc(wanted, int32(j), func(w int, j int32) int { return cmp.Compare(c.rows[w].prev, j) })
			if !ok {
				continue
			}
			r := &c.rows[wanted[w]]
			picks.rows, picks.changes = append(picks.rows, i), append(picks.changes, r)
			anyChanged = anyChanged || r.kind == changed
		}
		if len(picks.rows) == 0 {
			return nil
		}
		filled += len(picks.rows)
		picks.reset()
		err := g.strings(statusLeaf, func(row int, v []byte) {
			if r := picks.at(row); r != nil {
				status, ok := statuses[string(v)]
				if !ok {
					status = string(v)
					statuses[status] = status
				}
				r.before.status, r.before.hasStatus = status, true
			}
		})
		if err == nil {
			picks.reset()
			err = g.float64s(areaLeaf, func(row int, v float64) {
				if r := picks.at(row); r != nil {
					r.before.area, r.before.hasArea = v, true
				}
			})
		}
		if err == nil {
			picks.reset()
			err = g.int64s(updatedLeaf, func(row int, v int64) {
				if r := picks.at(row); r != nil {
					r.before.updated, r.before.hasUpdated = v, true
				}
			})
		}
		if err != nil || !anyChanged {
			return err
		}
		col = resize(col, len(g.ids))
		for k, leaf := range s.leaves {
			if err := g.hashColumn(h, leaf, col); err != nil {
				return err
			}
			for p, row := range picks.rows {
				if r := picks.changes[p]; r.kind == changed && col[row] != r.columns[k] {
					r.mask |= 1 << k
				}
			}
		}
		return nil
	})
	if err == nil && filled < len(wanted) {
		err = errors.New("it no longer holds every id it held when first read")
	}
	return err
}

// rowPicks are the rows of a row group that fill changes, ascending, and
// a cursor for reading them off a column in row order.
type rowPicks struct {
	rows    []int
	changes []*change
	next    int
}

// at is the change that row fills, or nil. Between two resets, calls ask
// for ascending rows, as a column is read.
func (p *rowPicks) at(row int) *change {
	for p.next < len(p.rows) && p.rows[p.next] < row {
		p.next++
	}
	if p.next < len(p.rows) && p.rows[p.next] == row {
		return p.changes[p.next]
	}
	return nil
}

func (p *rowPicks) reset() { p.next = 0 }

func statusName(v values) string {
	if !v.hasStatus {
		return NullStatus
	}
	return v.status
}

// Len is the number of rows of the change table.
func (r *Result) Len() int { return len(r.rows) }

// RecordWriter takes the change table batch by batch; a
// sink.ParquetWriter is one.
type RecordWriter interface {
	Write(rec arrow.RecordBatch) error
}

// WriteTo writes the change table to w in batches of at most batchSize
// rows (all of them in one if batchSize < 1).
func (r *Result) WriteTo(w RecordWriter, mem memory.Allocator, batchSize int) error {
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
		appendValues(row.before, statusBefore, areaBefore, updBefore)
		appendValues(row.after, statusAfter, areaAfter, updAfter)
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

func appendValues(v values, status *array.StringBuilder, area *array.Float64Builder, updated *array.TimestampBuilder) {
	if v.hasStatus {
		status.Append(v.status)
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

// valueReader reads the values of the change table from a snapshot batch.
type valueReader struct {
	status  *array.String
	area    *array.Float64
	updated *array.Timestamp
}

func newValueReader(rec arrow.RecordBatch) valueReader {
	var v valueReader
	v.status, _ = column(rec, "cert_status").(*array.String)
	v.area, _ = column(rec, "certified_area").(*array.Float64)
	v.updated, _ = column(rec, "updated_at").(*array.Timestamp)
	return v
}

func (v valueReader) at(i int, intern map[string]string) values {
	var out values
	if v.status != nil && v.status.IsValid(i) {
		s := v.status.Value(i)
		if in, ok := intern[s]; ok {
			s = in
		} else {
			s = string([]byte(s)) // not the batch's memory, which is reused
			intern[s] = s
		}
		out.status, out.hasStatus = s, true
	}
	if v.area != nil && v.area.IsValid(i) {
		out.area, out.hasArea = v.area.Value(i), true
	}
	if v.updated != nil && v.updated.IsValid(i) {
		out.updated, out.hasUpdated = int64(v.updated.Value(i)), true
	}
	return out
}

// column is the column of rec named name, or nil.
func column(rec arrow.RecordBatch, name string) arrow.Array {
	if idx := rec.Schema().FieldIndices(name); len(idx) > 0 {
		return rec.Column(idx[0])
	}
	return nil
}

func idColumn(rec arrow.RecordBatch) (*array.Int64, error) {
	ids, ok := column(rec, idColumnName).(*array.Int64)
	if !ok || ids.NullN() > 0 {
		return nil, fmt.Errorf("%w: entity_smallholder_id is missing, not int64, or has nulls", ErrSchema)
	}
	return ids, nil
}

// hasher hashes the columns of spoc.Schema but the id.
type hasher struct {
	seed  maphash.Seed
	key   uint64
	names []string
	types []arrow.DataType
}

func newHasher() hasher {
	h := hasher{seed: maphash.MakeSeed(), key: rand.Uint64()}
	for _, f := range spoc.Schema.Fields()[1:] {
		h.names = append(h.names, f.Name)
		h.types = append(h.types, f.Type)
	}
	return h
}

// bytes hashes a string value, as maphash.String would.
func (h hasher) bytes(b []byte) uint64 { return maphash.Bytes(h.seed, b) }

// num hashes the bits of a number, time or boolean.
func (h hasher) num(bits uint64) uint64 { return mix(bits ^ h.key) }

func boolBits(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}

// fold adds the hash v of compared column k to a row's hash.
func fold(row, v uint64, k int) uint64 { return mix(row ^ v + uint64(k)) }

// nullHash stands for a null value in every column.
const nullHash = 0x9e3779b97f4a7c15

// mix is the finaliser of SplitMix64: every input bit affects every output
// bit.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// rowHashes holds, for one batch, the hash of every compared column of
// every row and the hash of each row; its slices are reused batch after
// batch.
type rowHashes struct {
	columns [][]uint64
	row     []uint64
}

func (r *rowHashes) compute(h hasher, rec arrow.RecordBatch) error {
	n := int(rec.NumRows())
	if len(r.columns) != len(h.names) {
		r.columns = make([][]uint64, len(h.names))
	}
	if cap(r.row) < n {
		r.row = make([]uint64, n)
	}
	r.row = r.row[:n]
	for i := range r.row {
		r.row[i] = h.key
	}
	for k, name := range h.names {
		if cap(r.columns[k]) < n {
			r.columns[k] = make([]uint64, n)
		}
		out := r.columns[k][:n]
		r.columns[k] = out
		if err := h.column(column(rec, name), h.types[k], name, out); err != nil {
			return err
		}
		for i, v := range out {
			r.row[i] = fold(r.row[i], v, k)
		}
	}
	return nil
}

// column hashes the values of arr, a column of type want (nil: a column
// the file does not have, all null), into out.
func (h hasher) column(arr arrow.Array, want arrow.DataType, name string, out []uint64) error {
	if arr == nil {
		for i := range out {
			out[i] = nullHash
		}
		return nil
	}
	if !arrow.TypeEqual(arr.DataType(), want) {
		return fmt.Errorf("%w: column %s is %s, want %s", ErrSchema, name, arr.DataType(), want)
	}
	num := func(i int, bits uint64) {
		if arr.IsNull(i) {
			out[i] = nullHash
		} else {
			out[i] = h.num(bits)
		}
	}
	switch a := arr.(type) {
	case *array.String:
		for i := range out {
			if a.IsNull(i) {
				out[i] = nullHash
			} else {
				out[i] = maphash.String(h.seed, a.Value(i))
			}
		}
	case *array.Float64:
		for i, v := range a.Float64Values() {
			num(i, math.Float64bits(v))
		}
	case *array.Int32:
		for i, v := range a.Int32Values() {
			num(i, uint64(v))
		}
	case *array.Int64:
		for i, v := range a.Int64Values() {
			num(i, uint64(v))
		}
	case *array.Timestamp:
		for i, v := range a.TimestampValues() {
			num(i, uint64(v))
		}
	case *array.Boolean:
		for i := range out {
			num(i, boolBits(a.Value(i)))
		}
	default:
		return fmt.Errorf("%w: column %s has type %s, which cannot be compared", ErrSchema, name, arr.DataType())
	}
	return nil
}
