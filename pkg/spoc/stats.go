package spoc

import (
	"cmp"
	"container/heap"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/calee-data/mspo-spoc/internal/jsonscan"
)

// Stats is the data-quality report of one decoded body. It is gathered
// while decoding, so it costs no second pass, and it is the single source
// of the figures the manifest and the metrics report.
type Stats struct {
	RecordsRead    int64 `json:"records_read"`    // elements of data.results
	RecordsWritten int64 `json:"records_written"` // rows emitted in record batches
	RecordsDropped int64 `json:"records_dropped"` // elements without a usable entity_smallholder_id
	// DroppedByReason splits RecordsDropped: "missing_id", "null_id",
	// "invalid_id" (empty, not an integer, out of range) and "not_an_object".
	DroppedByReason map[string]int64 `json:"dropped_by_reason"`
	// Columns holds, for every column of Schema, the nulls written and the
	// values that were present but unusable (stored as null, counted by reason).
	Columns map[string]ColumnStats `json:"columns"`
	// DuplicateIDs counts written rows whose entity_smallholder_id was
	// already written earlier in the same body. The rows are kept.
	DuplicateIDs int64 `json:"duplicate_ids"`
	// MPOBWithSeveralPlots counts distinct mpob_no values that appear on
	// more than one written row.
	MPOBWithSeveralPlots int64 `json:"mpob_with_several_plots"`
	// RecordsByCertStatus counts written rows per cert_status value; a null
	// status is counted under "(null)". Past maxStatusValues distinct
	// values, further ones are counted under "(other)", so a broken
	// upstream cannot grow this map without bound.
	RecordsByCertStatus map[string]int64 `json:"records_by_cert_status"`
	DeletedRecords      int64            `json:"deleted_records"` // written rows with deleted = true
	// UndeclaredFields are the fields met in the records that the dataset
	// neither declares nor drops on purpose (Dataset.Dropped), most
	// frequent first: a new upstream field, or a renamed one. At most
	// maxUndeclaredFields names of at most maxFieldNameBytes are kept;
	// the rest are counted under "(other)", so a hostile body cannot grow
	// the manifest.
	UndeclaredFields []FieldSeen `json:"undeclared_fields,omitempty"`
	// MissingFields are the declared JSON fields that no row written had
	// (ColumnStats.Present 0), in the order of the columns; none when no
	// row was written, as there is then no row to hold them.
	MissingFields []string `json:"missing_fields,omitempty"`
}

// FieldSeen is an undeclared field: how many times it was met, and the
// JSON types of its values ("string", "number", "boolean", "null",
// "object", "array").
type FieldSeen struct {
	Name  string   `json:"name"`
	Count int64    `json:"count"`
	Types []string `json:"types"`
}

// ColumnStats is the null and invalid-value count of one column.
type ColumnStats struct {
	Nulls   int64            `json:"nulls"`
	Invalid map[string]int64 `json:"invalid,omitempty"` // by reason (Reason* constants)
	// Present counts the rows written whose record had the column's
	// field, null or not. A dropped record (no usable id, too large) is
	// in no row, so the fields it alone holds are not present.
	Present int64 `json:"present"`
	// NonNullShare is the share of written rows with a value, 0 to 1.
	NonNullShare float64 `json:"non_null_share"`
}

// NonNullShareOf is the share of rows with a value in a column of nulls
// nulls over written rows (0 when there are none): the same figure as
// ColumnStats.NonNullShare, computed from the counts so that a manifest
// that does not record that share still gives it.
func NonNullShareOf(nulls, written int64) float64 {
	if written <= 0 {
		return 0
	}
	return float64(written-nulls) / float64(written)
}

// InvalidValues is the total of invalid values over all columns.
func (s Stats) InvalidValues() int64 {
	var n int64
	for _, c := range s.Columns {
		for _, v := range c.Invalid {
			n += v
		}
	}
	return n
}

// DroppedPercent is the share of records read that were dropped, 0 to 100.
func (s Stats) DroppedPercent() float64 {
	if s.RecordsRead == 0 {
		return 0
	}
	return 100 * float64(s.RecordsDropped) / float64(s.RecordsRead)
}

// Reasons a record is dropped: the keys of Stats.DroppedByReason and the
// reason label of the dropped-records metric. They are not failure kinds
// (a dropped record does not fail the run), though DropTooLarge reads
// the same as a body past its limit.
const (
	DropMissingID   = "missing_id"
	DropNullID      = "null_id"
	DropInvalidID   = "invalid_id"
	DropNotAnObject = "not_an_object"
	DropTooLarge    = "too_large" // past the record byte cap (WithMaxRecordBytes), or a declared value past the value cap (WithMaxStringBytes)
)

const (
	maxStatusValues = 64
	nullStatus      = "(null)"
	otherStatus     = "(other)"

	// maxUndeclaredFields and maxFieldNameBytes bound the undeclared
	// fields reported: past them, a name is counted as OtherField, and a
	// longer name is cut.
	maxUndeclaredFields = 32
	maxFieldNameBytes   = 64
)

// MaxStatusBytes bounds a cert_status value kept by name: a longer one
// (no real status is) stands as LongStatus, in Stats.RecordsByCertStatus
// and in the change table, so that a hostile body cannot put long strings
// into the manifest and metric labels, nor make a reader of the values
// keep them.
const (
	MaxStatusBytes = 32
	LongStatus     = "(too long)"
)

// OtherField is the name the undeclared fields past the first 32 are
// counted under in Stats.UndeclaredFields.
const OtherField = "(other)"

// collector accumulates Stats with fixed-size arrays on the hot path and
// builds the map form only when asked.
type collector struct {
	read, written, deleted int64
	dropped                map[string]int64
	columns                []Column
	nulls                  []int64
	// absent counts the rows written without the column's field: counted
	// on the null path of a row only, where a row with every field costs
	// nothing, and a dropped record not at all.
	absent  []int64
	invalid []map[string]int64
	// undeclared counts the fields the dataset does not declare, by name.
	undeclared map[string]*fieldCount
	// byStatus points at the counts, so that counting a status seen
	// before is a lookup (which converts the bytes without allocating)
	// and no map assignment.
	byStatus map[string]*int64
	ids      duplicateCounter
	mpob     mpobCounter
}

func newCollector(ds *Dataset) *collector {
	return &collector{
		columns:    ds.Columns,
		nulls:      make([]int64, len(ds.Columns)),
		absent:     make([]int64, len(ds.Columns)),
		invalid:    make([]map[string]int64, len(ds.Columns)),
		dropped:    map[string]int64{},
		byStatus:   map[string]*int64{},
		undeclared: map[string]*fieldCount{},
		mpob:       mpobCounter{seed: maphash.MakeSeed()},
	}
}

func (c *collector) countInvalid(col int, reason string) {
	if c.invalid[col] == nil {
		c.invalid[col] = map[string]int64{}
	}
	c.invalid[col][reason]++
}

func (c *collector) countStatus(status []byte, isNull bool) {
	// A null or overlong status has its own label, whatever the count
	// of values.
	key, limit := nullStatus, math.MaxInt
	if !isNull && len(status) > MaxStatusBytes {
		key = LongStatus
	} else if !isNull {
		if n, ok := c.byStatus[string(status)]; ok {
			*n++
			return
		}
		key, limit = string(status), maxStatusValues
	}
	*counterFor(c.byStatus, key, limit, otherStatus)++
}

// counterFor returns the counter of name in m, creating it. A name new to
// a map that holds limit names already is counted under other instead,
// which keeps the map bounded whatever the body holds.
func counterFor[T any](m map[string]*T, name string, limit int, other string) *T {
	if _, ok := m[name]; !ok && len(m) >= limit {
		name = other
	}
	n, ok := m[name]
	if !ok {
		n = new(T)
		m[name] = n
	}
	return n
}

// fieldCount is an undeclared field's count and the JSON types seen (bit
// i: jsonTypes[i]).
type fieldCount struct {
	n     int64
	types uint8
}

// countUndeclared counts one occurrence of an undeclared field whose value
// is of JSON type jsonTypes[typ].
func (c *collector) countUndeclared(key []byte, typ int) {
	f, ok := c.undeclared[string(key)]
	if !ok {
		f = counterFor(c.undeclared, fieldName(key), maxUndeclaredFields, OtherField)
	}
	f.n++
	f.types |= 1 << typ
}

// fieldName is key as reported: valid UTF-8, cut at maxFieldNameBytes.
func fieldName(key []byte) string {
	name := strings.ToValidUTF8(string(key), "\uFFFD")
	if len(name) <= maxFieldNameBytes {
		return name
	}
	cut := maxFieldNameBytes
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut] + "…"
}

// countID records a written id.
func (c *collector) countID(id int64) { c.ids.add(uint64(id)) }

func (c *collector) stats() Stats {
	duplicateIDs, _ := c.ids.counts()
	_, mpobSeveral := c.mpob.keys.counts()
	s := Stats{
		RecordsRead:          c.read,
		RecordsWritten:       c.written,
		DroppedByReason:      make(map[string]int64, len(c.dropped)),
		Columns:              make(map[string]ColumnStats, len(c.columns)),
		DuplicateIDs:         duplicateIDs,
		MPOBWithSeveralPlots: mpobSeveral,
		RecordsByCertStatus:  make(map[string]int64, len(c.byStatus)),
		DeletedRecords:       c.deleted,
	}
	for k, v := range c.dropped {
		s.DroppedByReason[k] = v
		s.RecordsDropped += v
	}
	for name, f := range c.undeclared {
		seen := FieldSeen{Name: name, Count: f.n}
		for i, t := range jsonTypes {
			if f.types&(1<<i) != 0 {
				seen.Types = append(seen.Types, t)
			}
		}
		s.UndeclaredFields = append(s.UndeclaredFields, seen)
	}
	slices.SortFunc(s.UndeclaredFields, func(a, b FieldSeen) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return strings.Compare(a.Name, b.Name)
	})
	for i, col := range c.columns {
		if col.JSON != "" && c.absent[i] == c.written && c.written > 0 {
			s.MissingFields = append(s.MissingFields, col.JSON)
		}
	}
	for i := range c.columns {
		cs := ColumnStats{Nulls: c.nulls[i], Present: c.written - c.absent[i], NonNullShare: NonNullShareOf(c.nulls[i], c.written)}
		if len(c.invalid[i]) > 0 {
			cs.Invalid = make(map[string]int64, len(c.invalid[i]))
			for k, v := range c.invalid[i] {
				cs.Invalid[k] = v
			}
		}
		s.Columns[c.columns[i].Name] = cs
	}
	for k, v := range c.byStatus {
		s.RecordsByCertStatus[k] = *v
	}
	return s
}

// duplicateCounter counts repeated 64-bit keys, exactly, in 8 bytes a
// key and time linear in the keys (times a log of the few chunks),
// whatever the keys look like: a compressed bitmap degrades to a sorted
// insert per key for sparse ones such as 12-digit MPOB numbers, and a
// hash set takes twice the memory. Keys go into fixed chunks, each
// sorted when full, so memory grows without the copies of a growing
// slice; counting merges the sorted chunks.
type duplicateCounter struct {
	full    [][]uint64 // sorted chunks of duplicateChunk keys
	current []uint64
}

const duplicateChunk = 1 << 16 // keys: 512 KiB a chunk

func (d *duplicateCounter) add(key uint64) {
	if d.current == nil {
		d.current = make([]uint64, 0, duplicateChunk)
	}
	d.current = append(d.current, key)
	if len(d.current) == duplicateChunk {
		slices.Sort(d.current)
		d.full = append(d.full, d.current)
		d.current = nil
	}
}

// counts returns the number of keys that repeat an earlier one, and the
// number of distinct keys added more than once.
func (d *duplicateCounter) counts() (repeats, several int64) {
	chunks := slices.Clone(d.full)
	if len(d.current) > 0 {
		last := slices.Clone(d.current)
		slices.Sort(last)
		chunks = append(chunks, last)
	}
	// Merge the sorted chunks through a heap of their heads.
	h := chunkHeap(slices.DeleteFunc(chunks, func(c []uint64) bool { return len(c) == 0 }))
	heap.Init(&h)
	var (
		prev uint64
		run  int
	)
	for len(h) > 0 {
		key := h[0][0]
		if h[0] = h[0][1:]; len(h[0]) == 0 {
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
		if run > 0 && key == prev {
			repeats++
			if run++; run == 2 {
				several++
			}
			continue
		}
		prev, run = key, 1
	}
	return repeats, several
}

// chunkHeap orders sorted, non-empty chunks by their first key.
type chunkHeap [][]uint64

func (h chunkHeap) Len() int           { return len(h) }
func (h chunkHeap) Less(i, j int) bool { return h[i][0] < h[j][0] }
func (h chunkHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *chunkHeap) Push(x any)        { *h = append(*h, x.([]uint64)) }
func (h *chunkHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// mpobCounter counts MPOB numbers seen on more than one plot without
// keeping the numbers as strings. A number of up to 15 digits (the
// registry's are 12) is packed with its length into one uint64, so
// "012345678901" and "12345678901" stay distinct. Anything else (letters,
// longer numbers) is keyed by a 64-bit hash in a separate space; a
// collision there is possible in theory but needs billions of distinct
// odd values.
type mpobCounter struct {
	keys duplicateCounter
	seed maphash.Seed
}

func (m *mpobCounter) add(v []byte) {
	if len(v) == 0 {
		return
	}
	m.keys.add(mpobKey(v, m.seed))
}

func mpobKey(v []byte, seed maphash.Seed) uint64 {
	if len(v) <= 15 {
		var n uint64
		numeric := true
		for _, c := range v {
			if !jsonscan.IsDigit(c) {
				numeric = false
				break
			}
			n = n*10 + uint64(c-'0')
		}
		if numeric { // 10^15 < 2^50: bits 56-59 hold the length, bit 63 is clear
			return uint64(len(v))<<56 | n
		}
	}
	return 1<<63 | maphash.Bytes(seed, v)>>1
}
