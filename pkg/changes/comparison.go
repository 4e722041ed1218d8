package changes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// Comparison compares the current snapshot, fed to Add batch by batch,
// with a Baseline. It is not safe for concurrent use.
type Comparison struct {
	base       *Baseline
	flags      []uint8
	rows       []change  // added and changed, in the order seen
	added      firstRows // the added rows' ids, by their position in rows
	versions   []Version // of the last batch
	duplicates int64
	next       *Digester // of the current snapshot, with the Baseline's keys
	statuses   statusTable
	// columnHashes holds, for each changed row, the hash of each of its
	// current columns until Finish names the columns that differ.
	columnHashes hashBlocks
}

// hashBlocks keeps runs of hashes in blocks of a fixed size, allocated as
// they fill: unlike one growing slice, they are never copied to a larger
// one (which holds both at once), and unlike a slice a row they cost no
// header or allocation a row.
type hashBlocks [][]uint64

const hashBlockLen = 1 << 16

// add appends the i-th hash of each column as one run and returns where
// it starts.
func (b *hashBlocks) add(columns [][]uint64, i int) int32 {
	last := len(*b) - 1
	if last < 0 || len((*b)[last])+len(columns) > hashBlockLen {
		*b = append(*b, make([]uint64, 0, hashBlockLen))
		last++
	}
	block := &(*b)[last]
	start := int32(last*hashBlockLen + len(*block))
	for _, col := range columns {
		*block = append(*block, col[i])
	}
	return start
}

// at is the k-th hash of the run that starts at start.
func (b hashBlocks) at(start int32, k int) uint64 {
	return b[int(start)/hashBlockLen][int(start)%hashBlockLen+k]
}

// change is one row of the change table, and for a changed plot the hash
// of each of its current columns until Finish names the ones that differ.
type change struct {
	id            int64
	prev          int32  // index into the Baseline; -1 for an added plot
	mask          uint32 // bit k: compared column k changed
	columns       int32  // where a changed row's run of hashes starts in Comparison.columnHashes
	kind          kind
	before, after values
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
	area                           float64
	updated                        int64
	status                         uint32 // into the Comparison's statusTable
	hasStatus, hasArea, hasUpdated bool
}

// NewComparison starts the comparison of one attempt.
func (b *Baseline) NewComparison() *Comparison {
	// A day holds about as many plots as the day before: room for a few
	// more spares the regrowth of 16 bytes a row.
	n := len(b.entries) + len(b.entries)/32
	next := &Digester{h: b.h, rows: make([]entry, 0, n)}
	return &Comparison{base: b, flags: make([]uint8, len(b.entries)), next: next, statuses: newStatusTable(), added: firstRows{key: b.h.key}}
}

// Digester is the digest of the current snapshot, built by Add: the next
// day's Baseline, hashed with this one's keys.
func (c *Comparison) Digester() *Digester { return c.next }

// Add compares the rows of rec, a batch with spoc.Schema, with the
// Baseline.
func (c *Comparison) Add(rec arrow.RecordBatch) error {
	ids, err := idColumn(rec, c.base.h.id)
	if err != nil {
		return err
	}
	if err := c.next.add(rec, ids); err != nil {
		return err
	}
	hashes := &c.next.hashes
	get := newValueReader(rec, c.base.table)
	c.versions = c.versions[:0]
	idAt := func(pos int) int64 { return c.rows[pos].id }
	for i, id := range ids {
		j, found := c.base.find(id)
		switch {
		case !found:
			first, err := c.added.add(id, len(c.rows), idAt)
			if err != nil {
				return err
			}
			if !first {
				c.duplicates++
				continue
			}
			c.rows = append(c.rows, change{id: id, prev: -1, kind: added, after: get.at(i, &c.statuses)})
			c.versions = append(c.versions, Version{Row: i, Change: Added})
		case c.flags[j]&seen != 0:
			c.duplicates++
		default:
			c.flags[j] |= seen
			if c.base.entries[j].hash == hashes.row[i] {
				continue
			}
			start := c.columnHashes.add(hashes.columns, i)
			c.rows = append(c.rows, change{id: id, prev: int32(j), kind: changed, after: get.at(i, &c.statuses), columns: start})
			c.versions = append(c.versions, Version{Row: i, Change: Changed})
		}
	}
	return nil
}

// A Version is a row of a snapshot batch that begins a version of its
// plot: the first row of an id that the previous snapshot lacks (Added)
// or held with other values (Changed). The versions of a day are these
// rows and the last rows of the plots removed (Comparison.FinishVersions).
type Version struct {
	Row    int
	Change string
}

// Versions are the rows of the batch last given to Add that begin a
// version of their plot, in row order.
func (c *Comparison) Versions() []Version { return c.versions }

// Finish reads the previous snapshot's file (the Baseline's) again for
// the before-values of the plots that changed or were removed, and
// returns the result. Unless something changed or went, the file is not
// read.
func (c *Comparison) Finish(ctx context.Context) (*Result, error) {
	return c.FinishVersions(ctx, nil)
}

// RemovedRows takes, batch by batch, the rows of the plots removed since
// the previous snapshot, as that snapshot held them (the first row of
// each id), in the dataset's schema. A batch is valid during the call.
type RemovedRows func(rec arrow.RecordBatch) error

// FinishVersions is Finish that also hands onRemoved (if not nil) the last
// version of every plot removed: with the rows Versions named batch by
// batch, the versions that begin this day. The rows are read from the
// previous snapshot's file with the before-values, row group by row
// group: a batch holds the removed plots of one row group.
func (c *Comparison) FinishVersions(ctx context.Context, onRemoved RemovedRows) (*Result, error) {
	f := c.base.file
	var matched int64
	for _, fl := range c.flags {
		if fl&seen != 0 {
			matched++
		}
	}
	// One growth for the removed rows: each append past the capacity
	// holds the old rows and the larger copy at once.
	c.rows = slices.Grow(c.rows, len(c.flags)-int(matched))
	for j, fl := range c.flags {
		if fl&seen == 0 {
			c.rows = append(c.rows, change{id: c.base.entries[j].id, prev: int32(j), kind: removed})
		}
	}
	if err := c.readBefore(ctx, f, onRemoved); err != nil {
		return nil, err
	}
	c.columnHashes = nil
	slices.SortFunc(c.rows, func(a, b change) int { return cmp.Compare(a.id, b.id) })

	s := Summary{Previous: c.base.snapshot, Columns: map[string]int64{}}
	s.IgnoredDuplicates = Duplicates{Previous: c.base.duplicates, Current: c.duplicates}
	transitions := map[[2]string]int64{}
	for i := range c.rows {
		r := &c.rows[i]
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
			from, to := c.statuses.name(r.before), c.statuses.name(r.after)
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
	return &Result{Summary: s, table: c.base.table, rows: c.rows, names: c.base.h.names, statuses: c.statuses.names}, nil
}

// readBefore fills the before-values of the changed and removed rows from
// the first row of their id in f, and the mask of the columns that changed.
func (c *Comparison) readBefore(ctx context.Context, f File, onRemoved RemovedRows) error {
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
	err := c.fillBefore(ctx, f, wanted, onRemoved)
	if err != nil {
		return fmt.Errorf("read snapshot %s again: %w", c.base.snapshot, err)
	}
	return nil
}

func (c *Comparison) fillBefore(ctx context.Context, f File, wanted []int, onRemoved RemovedRows) error {
	s, err := openSnapshot(f, c.base.h)
	if err != nil {
		return err
	}
	defer s.Close()
	h, t := c.base.h, c.base.table
	statusLeaf, areaLeaf, updatedLeaf := s.leaf(h, t.status), s.leaf(h, t.area), s.leaf(h, t.updated)
	filled := 0
	var picks rowPicks
	var col []uint64
	var removedRows []int
	err = s.eachRowGroup(ctx, func(g *rowGroup) error {
		picks.rows, picks.changes = picks.rows[:0], picks.changes[:0]
		removedRows = removedRows[:0]
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
			if r.kind == removed {
				removedRows = append(removedRows, i)
			}
		}
		if len(picks.rows) == 0 {
			return nil
		}
		filled += len(picks.rows)
		picks.reset()
		err := g.strings(statusLeaf, func(row int, v []byte) {
			if r := picks.at(row); r != nil {
				r.before.status, r.before.hasStatus = keepStatus(&c.statuses, v), true
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
		// The removed plots' rows are read with the changed plots' column
		// hashes when both are in the group and the removed fit one batch
		// (an ordinary day): each column is then read once.
		removals := onRemoved != nil && len(removedRows) > 0
		together := removals && anyChanged && len(removedRows) <= removedBatch
		if err == nil && removals && !together {
			err = c.handRemoved(g, s, removedRows, onRemoved)
		}
		if err != nil || !anyChanged {
			return err
		}
		var rb *array.RecordBuilder
		if together {
			rb = array.NewRecordBuilder(memory.DefaultAllocator, c.base.schema)
			defer rb.Release()
			if err := appendIDs(rb.Field(0), g.ids, removedRows); err != nil {
				return err
			}
		}
		col = resize(col, len(g.ids))
		for k, leaf := range s.leaves {
			var err error
			if together {
				err = g.scanColumn(h, leaf, len(col), col, removedRows, rb.Field(k+1))
			} else {
				err = g.hashColumn(h, leaf, col)
			}
			if err != nil {
				return err
			}
			for p, row := range picks.rows {
				if r := picks.changes[p]; r.kind == changed && col[row] != c.columnHashes.at(r.columns, k) {
					r.mask |= 1 << k
				}
			}
		}
		if !together {
			return nil
		}
		rec := rb.NewRecordBatch()
		defer rec.Release()
		return onRemoved(rec)
	})
	if err == nil && filled < len(wanted) {
		err = errors.New("it no longer holds every id it held when first read")
	}
	return err
}

// appendIDs appends to b, the key's builder, the ids of rows, read
// already with the row group.
func appendIDs(b array.Builder, ids []int64, rows []int) error {
	switch b := b.(type) {
	case *array.Int64Builder:
		for _, r := range rows {
			b.Append(ids[r])
		}
	case *array.Int32Builder:
		for _, r := range rows {
			b.Append(int32(ids[r]))
		}
	default:
		return fmt.Errorf("%w: a key of type %s", ErrSchema, b.Type())
	}
	return nil
}

// removedBatch bounds the rows of a batch of removed plots, as the
// decoder's batch size bounds a day's: on a day that removes every plot,
// a row group's rows would otherwise be held at once.
const removedBatch = 16 << 10

// handRemoved hands fn the rows of g, ascending, as batches of the
// dataset's schema of at most removedBatch rows. Each batch reads the
// columns of the row group again, up to its last row: one read on an
// ordinary day, a few on a day that removes most plots.
func (c *Comparison) handRemoved(g *rowGroup, s *snapshotFile, rows []int, fn RemovedRows) error {
	b := array.NewRecordBuilder(memory.DefaultAllocator, c.base.schema)
	defer b.Release()
	leaves := append([]int{s.idLeaf}, s.leaves...)
	for chunk := range slices.Chunk(rows, removedBatch) {
		for k, leaf := range leaves {
			if err := g.appendRows(leaf, chunk, b.Field(k)); err != nil {
				return err
			}
		}
		rec := b.NewRecordBatch()
		err := fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
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

// statusTable holds the status values of the change table's rows,
// which refer to them by index: a real day has a handful, which then
// cost nothing per row.
type statusTable struct {
	names []string          // index 0 is LongStatus
	index map[string]uint32 // of the first maxInterned distinct values
}

// maxInterned bounds the distinct values a statusTable looks up: past
// them a value is kept again for each row that holds it (at most
// spoc.MaxStatusBytes), so that the map does not grow with a hostile
// day's distinct values.
const maxInterned = 1024

func newStatusTable() statusTable {
	return statusTable{names: []string{LongStatus}, index: map[string]uint32{}}
}

// keepStatus is the index in t of the status v as the change table
// keeps it: a copy, or LongStatus for a value longer than
// spoc.MaxStatusBytes, of which nothing is kept.
func keepStatus[T string | []byte](t *statusTable, v T) uint32 {
	if len(v) > spoc.MaxStatusBytes {
		return 0
	}
	if i, ok := t.index[string(v)]; ok {
		return i
	}
	// Not the memory of v, a batch's or a page's, which is reused.
	i := uint32(len(t.names))
	t.names = append(t.names, strings.Clone(string(v)))
	if len(t.index) < maxInterned {
		t.index[t.names[i]] = i
	}
	return i
}

// name is v's status as the summary's transitions name it.
func (t *statusTable) name(v values) string {
	if !v.hasStatus {
		return NullStatus
	}
	return t.names[v.status]
}

// valueReader reads the values of the change table from a snapshot
// batch; a column the table has not is nil, and read as null.
type valueReader struct {
	status  *array.String
	area    *array.Float64
	updated *array.Timestamp
}

func newValueReader(rec arrow.RecordBatch, t *table) valueReader {
	var v valueReader
	v.status, _ = column(rec, t.status).(*array.String)
	v.area, _ = column(rec, t.area).(*array.Float64)
	v.updated, _ = column(rec, t.updated).(*array.Timestamp)
	return v
}

func (v valueReader) at(i int, statuses *statusTable) values {
	var out values
	if v.status != nil && v.status.IsValid(i) {
		out.status, out.hasStatus = keepStatus(statuses, v.status.Value(i)), true
	}
	if v.area != nil && v.area.IsValid(i) {
		out.area, out.hasArea = v.area.Value(i), true
	}
	if v.updated != nil && v.updated.IsValid(i) {
		out.updated, out.hasUpdated = int64(v.updated.Value(i)), true
	}
	return out
}

// column is the column of rec named name, or nil (for "" too).
func column(rec arrow.RecordBatch, name string) arrow.Array {
	if idx := rec.Schema().FieldIndices(name); name != "" && len(idx) > 0 {
		return rec.Column(idx[0])
	}
	return nil
}

// idColumn is the key column of rec, widened to int64: a key is an
// int64 or, for a reference list, an int32 (spoc.KindKey32), and every
// id is compared, sorted and kept in a digest as an int64.
func idColumn(rec arrow.RecordBatch, id string) ([]int64, error) {
	switch ids := column(rec, id).(type) {
	case *array.Int64:
		if ids.NullN() == 0 {
			return ids.Int64Values(), nil
		}
	case *array.Int32:
		if ids.NullN() == 0 {
			wide := make([]int64, ids.Len())
			for i, v := range ids.Int32Values() {
				wide[i] = int64(v)
			}
			return wide, nil
		}
	}
	return nil, fmt.Errorf("%w: %s is missing, not an int64 or int32, or has nulls", ErrSchema, id)
}
