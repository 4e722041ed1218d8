package changes

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// Flags of a Baseline entry.
const (
	seen    uint8 = 1 << iota // a current row has this id
	visited                   // Finish has read the first row of this id
)

// Baseline is the digest of the previous snapshot: per id (ascending), a
// hash of the rest of the row. Make one per run with ReadBaseline, and a
// Comparison from it for each attempt.
//
// A Baseline keeps the file it was read from, for Comparison.Finish to
// read the before-values from it again. It never closes the file: the
// caller that opened it closes it, after the last Finish.
type Baseline struct {
	snapshot   string
	file       File
	schema     *arrow.Schema // the dataset's, of the rows of removed plots
	h          hasher
	table      *table
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
// Parquet file f, which the Baseline keeps (see Baseline). ds is the
// snapshot's dataset (spoc.SPOC, say): its first column is the id, and
// every other is compared.
func ReadBaseline(ctx context.Context, ds *spoc.Dataset, snapshot string, f File) (*Baseline, error) {
	h, err := newHasher(ds)
	if err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", snapshot, err)
	}
	b := &Baseline{snapshot: snapshot, file: f, schema: ds.Schema(), h: h, table: newTable(ds)}
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
