package changes

import (
	"math/rand/v2"
	"testing"
)

// TestFirstRowsTellsEachIDsFirstRow adds rows with repeated ids, past
// several growths of the table, and checks each answer against a map.
func TestFirstRowsTellsEachIDsFirstRow(t *testing.T) {
	for _, tt := range []struct {
		name   string
		rows   int
		ids    func(r *rand.Rand, i int) int64
		sizeOf int // the table's room at the start
	}{
		{"ascending, no repeats", 5000, func(_ *rand.Rand, i int) int64 { return int64(i) }, 0},
		{"few ids, many repeats", 5000, func(r *rand.Rand, _ int) int64 { return r.Int64N(300) }, 0},
		{"sparse ids, some repeats", 20000, func(r *rand.Rand, _ int) int64 { return r.Int64N(15000) << 40 }, 0},
		{"negative and extreme ids", 3000, func(r *rand.Rand, i int) int64 { return []int64{-1, 0, 1 << 62, -1 << 63}[i%4] + r.Int64N(500) }, 0},
		{"room for all at the start", 5000, func(r *rand.Rand, _ int) int64 { return r.Int64N(4000) }, 5000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			f := newFirstRows(r.Uint64(), tt.sizeOf)
			seen := map[int64]bool{}
			var rows []entry
			for i := range tt.rows {
				id := tt.ids(r, i)
				rows = append(rows, entry{id: id})
				first, err := f.add(id, len(rows)-1, func(p int) int64 { return rows[p].id })
				if err != nil {
					t.Fatal(err)
				}
				if first != !seen[id] {
					t.Fatalf("row %d, id %d: first %v, want %v", i, id, first, !seen[id])
				}
				seen[id] = true
			}
			if f.used != len(seen) {
				t.Errorf("%d slots used, %d distinct ids", f.used, len(seen))
			}
			if f.used*maxLoadDen > len(f.slots)*maxLoadNum {
				t.Errorf("%d of %d slots used, past the load limit", f.used, len(f.slots))
			}
		})
	}
}
