package geo

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// Points counts the plots at each point of a snapshot, as its batches go
// by, in about nine bytes a plot with a point: a hash of the point,
// kept in a slice that Finish sorts and indexes, where Plots finds a
// point's run of equal hashes. A map from points to counts would take
// four or five times that, and the points are many: every plot has its
// own but a few.
//
// The index is the first hash of each of len/8 to len/4 buckets of the
// hash's top bits (four bytes per four to eight plots): the hashes are
// uniform, so a bucket holds a few, in one or two cache lines, and a lookup
// costs two cache misses where a binary search over millions costs some
// twenty. A bucket is searched by halves too, for the one a point that
// many plots share fills.
//
// Two points are one when their longitudes and latitudes are equal as
// float64 (so "5.5" and "5.50" are, and -0 is 0). The hash is 64 bits,
// seeded at random per Points so that no body can be made to collide:
// two of 3 million distinct points share a hash with a probability of
// about 2.5 in 10 million, and two of 300,000 of about 2.5 in 1,000
// million; a collision would count two plots as sharing a point.
type Points struct {
	lon, lat string // the snapshot's columns
	seed     maphash.Seed
	hashes   []uint64
	sorted   bool
	// buckets[b] is the index of the first hash whose top bits are b or
	// more, for the b of the bucket bits; buckets[len-1] is len(hashes).
	buckets []uint32
	shift   uint // 64 less the bucket bits
}

// ErrNoPoint means a dataset has no point columns (spoc.Dataset.Point).
var ErrNoPoint = errors.New("geo: the dataset has no point")

// NewPoints counts the points of ds's snapshots.
func NewPoints(ds *spoc.Dataset) (*Points, error) {
	lon, lat, ok := ds.Point()
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoPoint, ds.Name)
	}
	return &Points{lon: ds.Columns[lon].Name, lat: ds.Columns[lat].Name, seed: maphash.MakeSeed()}, nil
}

// Add counts the points of rec, a batch of the snapshot (or of its
// point's columns at least).
func (p *Points) Add(rec arrow.RecordBatch) error {
	if p.sorted {
		return errors.New("geo: points added after Finish")
	}
	lons, lats, err := pointColumns(rec, p.lon, p.lat)
	if err != nil {
		return err
	}
	for i := range lons.Len() {
		if lon, lat, ok := pointAt(lons, lats, i); ok {
			p.hashes = append(p.hashes, p.hash(lon, lat))
		}
	}
	return nil
}

// Finish ends the count: Plots answers after it.
func (p *Points) Finish() {
	if p.sorted {
		return
	}
	slices.Sort(p.hashes)
	p.sorted = true
	n := uint(bits.Len(uint(len(p.hashes) / 8)))
	p.shift = 64 - n
	p.buckets = make([]uint32, 1<<n+1)
	i := 0
	for b := range p.buckets {
		for i < len(p.hashes) && p.bucket(p.hashes[i]) < uint64(b) {
			i++
		}
		p.buckets[b] = uint32(i)
	}
}

// bucket is the bucket of hash h: its top bits (none, bucket 0, for
// fewer than 16 hashes, as a shift by 64 gives 0).
func (p *Points) bucket(h uint64) uint64 { return h >> p.shift }

// Plots is the number of plots added at the point (lon, lat): 0 for a
// point no plot has. Call Finish first.
func (p *Points) Plots(lon, lat float64) int {
	h := p.hash(lon, lat)
	b := p.bucket(h)
	in := p.hashes[p.buckets[b]:p.buckets[b+1]]
	first, found := slices.BinarySearch(in, h)
	if !found {
		return 0
	}
	// The end of the run by binary search too: a run may be every plot
	// of the body, and each of its plots asks.
	rest := in[first:]
	return sort.Search(len(rest), func(i int) bool { return rest[i] > h })
}

// Len is the number of plots with a point added.
func (p *Points) Len() int { return len(p.hashes) }

func (p *Points) hash(lon, lat float64) uint64 {
	// Adding zero turns -0 into 0, so that the two hash alike, as they
	// compare.
	return maphash.Comparable(p.seed, [2]uint64{math.Float64bits(lon + 0), math.Float64bits(lat + 0)})
}

// pointColumns are rec's longitude and latitude columns.
func pointColumns(rec arrow.RecordBatch, lon, lat string) (lons, lats *array.Float64, err error) {
	col := func(name string) (*array.Float64, error) {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("geo: the batch has no column %s", name)
		}
		c, ok := rec.Column(idx[0]).(*array.Float64)
		if !ok {
			return nil, fmt.Errorf("geo: column %s is %s, not float64", name, rec.Column(idx[0]).DataType())
		}
		return c, nil
	}
	if lons, err = col(lon); err != nil {
		return nil, nil, err
	}
	lats, err = col(lat)
	return lons, lats, err
}

// pointAt is row i's point, if both its coordinates are valid: the
// decoder nulls any out of range, and a finite value is all a Parquet
// file read back could add to that.
func pointAt(lons, lats *array.Float64, i int) (lon, lat float64, ok bool) {
	if lons.IsNull(i) || lats.IsNull(i) {
		return 0, 0, false
	}
	// Adding zero turns -0 into 0: one point, written one way.
	lon, lat = lons.Value(i)+0, lats.Value(i)+0
	if !(lon >= -180 && lon <= 180 && lat >= -90 && lat <= 90) {
		return 0, 0, false
	}
	return lon, lat, true
}
