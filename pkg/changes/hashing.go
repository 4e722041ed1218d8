package changes

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/zeebo/xxh3"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// hasher hashes the columns of a snapshot's schema but the id, its first.
//
// Its two keys are drawn at random when a Baseline is read from a
// snapshot's Parquet file, and kept in the digest (Digester) that the run
// writes, so that the next run, which reads that digest, hashes its day
// with the same function. They are written nowhere else.
type hasher struct {
	seed uint64 // of a text value's hash
	key  uint64 // mixed into a number's bits, and a row's first hash
	id   string // the key's column
	// idType is the key's type, int64 or int32 (spoc.KindKey32, a
	// reference list's id): either is widened to int64 to be compared.
	idType arrow.DataType
	names  []string
	types  []arrow.DataType
}

// newHasher is a hasher of ds's schema with fresh keys.
func newHasher(ds *spoc.Dataset) (hasher, error) {
	return hasherWithKeys(ds, rand.Uint64(), rand.Uint64())
}

func hasherWithKeys(ds *spoc.Dataset, seed, key uint64) (hasher, error) {
	// A dataset's first column is its key (spoc.NewDataset).
	fields := ds.Schema().Fields()
	h := hasher{seed: seed, key: key, id: fields[0].Name, idType: fields[0].Type}
	if len(fields)-1 > maxCompared {
		// A row's changed columns are a bit mask.
		return h, fmt.Errorf("%w: %d columns to compare, at most %d", ErrSchema, len(fields)-1, maxCompared)
	}
	for _, f := range fields[1:] {
		h.names = append(h.names, f.Name)
		h.types = append(h.types, f.Type)
	}
	return h, nil
}

// maxCompared is how many columns a comparison can track: the bits of a
// row's mask of changed columns.
const maxCompared = 32

// The hash of a value is declared once, here, by its physical type: the
// day's Arrow batches (rowHashes) and the previous snapshot's Parquet
// pages (rowGroup.hashColumn) both hash through these methods, so a value
// hashes alike whichever reader met it. A timestamp is its int64 of
// microseconds in both.

func (h hasher) text(b []byte) uint64     { return xxh3.HashSeed(b, h.seed) }
func (h hasher) int64(v int64) uint64     { return h.num(uint64(v)) }
func (h hasher) int32(v int32) uint64     { return h.num(uint64(v)) }
func (h hasher) float64(v float64) uint64 { return h.num(math.Float64bits(v)) }
func (h hasher) bool(v bool) uint64 {
	if v {
		return h.num(1)
	}
	return h.num(0)
}

// num hashes the bits of a number.
func (h hasher) num(bits uint64) uint64 { return mix(bits ^ h.key) }

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
	switch a := arr.(type) {
	case *array.String:
		// The value bytes as the array holds them, not a.Value's string:
		// the same []byte rule as the Parquet path.
		data, offsets := a.ValueBytes(), a.ValueOffsets()
		for i := range out {
			out[i] = h.text(data[offsets[i]-offsets[0] : offsets[i+1]-offsets[0]])
		}
	case *array.Float64:
		for i, v := range a.Float64Values() {
			out[i] = h.float64(v)
		}
	case *array.Int32:
		for i, v := range a.Int32Values() {
			out[i] = h.int32(v)
		}
	case *array.Int64:
		for i, v := range a.Int64Values() {
			out[i] = h.int64(v)
		}
	case *array.Timestamp:
		for i, v := range a.TimestampValues() {
			out[i] = h.int64(int64(v))
		}
	case *array.Boolean:
		for i := range out {
			out[i] = h.bool(a.Value(i))
		}
	default:
		return fmt.Errorf("%w: column %s has type %s, which cannot be compared", ErrSchema, name, arr.DataType())
	}
	if arr.NullN() > 0 {
		for i := range out {
			if arr.IsNull(i) {
				out[i] = nullHash
			}
		}
	}
	return nil
}
