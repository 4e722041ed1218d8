package changes

import (
	"errors"
	"math"
)

// firstRows tells, as rows arrive, the first row of each id from the
// rows that repeat it: the first stands for the id in a comparison and in
// the versions, and the repeats are ignored (see the package doc). It is
// an open-addressing table of the rows' positions in the caller's list of
// them, hashed with the hasher's random key so that no body can choose
// ids that collide: 4 bytes a slot and at least 4/3 slots a distinct id,
// about 5 to 11 bytes a row it holds. A first day's Digester holds every
// row in one; a Comparison only its added rows (the previous snapshot's
// ids are told apart by the Baseline's flags), so that an ordinary day
// costs nothing more per plot.
type firstRows struct {
	slots []uint32 // 1 + the position of an id's first row; 0 is empty
	used  int
	key   uint64
}

// maxLoad is the share of slots in use past which the table doubles.
const (
	maxLoadNum, maxLoadDen = 3, 4
	minSlots               = 1 << 10
)

// errTooManyRows is a snapshot with more rows than a position holds.
var errTooManyRows = errors.New("more than 4,294,967,294 rows in one snapshot")

// newFirstRows is a table with room for about n ids before it grows.
func newFirstRows(key uint64, n int) firstRows {
	size := minSlots
	for size*maxLoadNum/maxLoadDen < n {
		size *= 2
	}
	return firstRows{slots: make([]uint32, size), key: key}
}

// add records that the row at pos has id, and reports whether it is the
// first row of its id; idAt is the id of an earlier row, by position (it
// is never asked for pos).
func (f *firstRows) add(id int64, pos int, idAt func(pos int) int64) (bool, error) {
	if pos >= math.MaxUint32 {
		return false, errTooManyRows
	}
	if f.slots == nil {
		*f = newFirstRows(f.key, 0)
	}
	// Grow before placing the row, whose id idAt need not know yet.
	if (f.used+1)*maxLoadDen > len(f.slots)*maxLoadNum {
		f.grow(idAt)
	}
	mask := uint64(len(f.slots) - 1)
	for i := mix(uint64(id)^f.key) & mask; ; i = (i + 1) & mask {
		switch p := f.slots[i]; {
		case p == 0:
			f.slots[i] = uint32(pos) + 1
			f.used++
			return true, nil
		case idAt(int(p-1)) == id:
			return false, nil
		}
	}
}

// grow doubles the table, placing every position again.
func (f *firstRows) grow(idAt func(pos int) int64) {
	old := f.slots
	f.slots = make([]uint32, 2*len(old))
	mask := uint64(len(f.slots) - 1)
	for _, p := range old {
		if p == 0 {
			continue
		}
		i := mix(uint64(idAt(int(p-1)))^f.key) & mask
		for f.slots[i] != 0 {
			i = (i + 1) & mask
		}
		f.slots[i] = p
	}
}
