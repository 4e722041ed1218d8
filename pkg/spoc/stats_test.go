package spoc

import "testing"

func TestDuplicateCounter(t *testing.T) {
	for _, tc := range []struct {
		keys             []uint64
		repeats, several int64
	}{
		{nil, 0, 0},
		{[]uint64{7}, 0, 0},
		{[]uint64{3, 1, 2}, 0, 0},
		{[]uint64{2, 1, 2}, 1, 1},
		{[]uint64{3, 1, 3, 2, 3, 2}, 3, 2},
		{[]uint64{5, 5, 5, 5}, 3, 1},
		{manyKeys(3*duplicateChunk+5, 1000), 3*duplicateChunk + 5 - 1000, 1000},
	} {
		var d duplicateCounter
		for i, k := range tc.keys {
			d.add(k)
			if i == 1 {
				d.counts() // a look half-way must not change the result
			}
		}
		if r, s := d.counts(); r != tc.repeats || s != tc.several {
			t.Errorf("%v: repeats %d, several %d; want %d, %d", tc.keys, r, s, tc.repeats, tc.several)
		}
	}
}

// manyKeys is n keys over distinct values, each value at least twice,
// spread over several chunks.
func manyKeys(n, distinct int) []uint64 {
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = uint64(i%distinct) * 0x9E3779B97F4A7C15
	}
	return keys
}
