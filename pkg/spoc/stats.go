package spoc

import (
	"hash/maphash"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
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
}

// ColumnStats is the null and invalid-value count of one column.
type ColumnStats struct {
	Nulls   int64            `json:"nulls"`
	Invalid map[string]int64 `json:"invalid,omitempty"` // by reason (Reason* constants)
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

// Reasons a record is dropped.
const (
	DropMissingID   = "missing_id"
	DropNullID      = "null_id"
	DropInvalidID   = "invalid_id"
	DropNotAnObject = "not_an_object"
)

const (
	maxStatusValues = 64
	nullStatus      = "(null)"
	otherStatus     = "(other)"
)

// collector accumulates Stats with fixed-size arrays on the hot path and
// builds the map form only when asked.
type collector struct {
	read, written, deleted, duplicateIDs int64
	dropped                              map[string]int64
	nulls                                [numColumns]int64
	invalid                              [numColumns]map[string]int64
	byStatus                             map[string]int64
	ids                                  *roaring64.Bitmap
	mpob                                 mpobCounter
}

func newCollector() *collector {
	return &collector{
		dropped:  map[string]int64{},
		byStatus: map[string]int64{},
		ids:      roaring64.New(),
		mpob:     newMPOBCounter(),
	}
}

func (c *collector) countInvalid(col int, reason string) {
	if c.invalid[col] == nil {
		c.invalid[col] = map[string]int64{}
	}
	c.invalid[col][reason]++
}

func (c *collector) countStatus(status []byte, isNull bool) {
	if isNull {
		c.byStatus[nullStatus]++
		return
	}
	if _, ok := c.byStatus[string(status)]; ok {
		c.byStatus[string(status)]++
		return
	}
	if len(c.byStatus) >= maxStatusValues {
		c.byStatus[otherStatus]++
		return
	}
	c.byStatus[string(status)] = 1
}

// countID records a written id; ids are tracked in a compressed bitmap,
// which for the upstream's dense numeric ids costs a few bits per record.
func (c *collector) countID(id int64) {
	if !c.ids.CheckedAdd(uint64(id)) {
		c.duplicateIDs++
	}
}

func (c *collector) stats() Stats {
	s := Stats{
		RecordsRead:          c.read,
		RecordsWritten:       c.written,
		DroppedByReason:      make(map[string]int64, len(c.dropped)),
		Columns:              make(map[string]ColumnStats, numColumns),
		DuplicateIDs:         c.duplicateIDs,
		MPOBWithSeveralPlots: c.mpob.several,
		RecordsByCertStatus:  make(map[string]int64, len(c.byStatus)),
		DeletedRecords:       c.deleted,
	}
	for k, v := range c.dropped {
		s.DroppedByReason[k] = v
		s.RecordsDropped += v
	}
	for i := range numColumns {
		cs := ColumnStats{Nulls: c.nulls[i]}
		if len(c.invalid[i]) > 0 {
			cs.Invalid = make(map[string]int64, len(c.invalid[i]))
			for k, v := range c.invalid[i] {
				cs.Invalid[k] = v
			}
		}
		s.Columns[Schema.Field(i).Name] = cs
	}
	for k, v := range c.byStatus {
		s.RecordsByCertStatus[k] = v
	}
	return s
}

// mpobCounter counts MPOB numbers seen on more than one plot without
// keeping the numbers as strings. A number of up to 15 digits (the
// registry's are 12) is packed with its length into one uint64, so
// "012345678901" and "12345678901" stay distinct and the key set
// compresses well in a roaring bitmap. Anything else (letters, longer
// numbers) is keyed by a 64-bit hash in a separate space; a collision
// there is possible in theory but needs billions of distinct odd values.
type mpobCounter struct {
	once, twice *roaring64.Bitmap
	seed        maphash.Seed
	several     int64
}

func newMPOBCounter() mpobCounter {
	return mpobCounter{once: roaring64.New(), twice: roaring64.New(), seed: maphash.MakeSeed()}
}

func (m *mpobCounter) add(v []byte) {
	if len(v) == 0 {
		return
	}
	key := mpobKey(v, m.seed)
	if m.once.CheckedAdd(key) {
		return
	}
	if m.twice.CheckedAdd(key) {
		m.several++
	}
}

func mpobKey(v []byte, seed maphash.Seed) uint64 {
	if len(v) <= 15 {
		var n uint64
		numeric := true
		for _, c := range v {
			if !isDigit(c) {
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
