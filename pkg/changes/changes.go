// Package changes compares a day's snapshot of a dataset with the
// previous one, plot by plot, keyed by the dataset's key
// (entity_smallholder_id): which plots were added, which removed, which
// changed and in which columns, and how their status moved. The change
// table holds the before and after values of the columns to which the
// dataset gives the roles it reads (Schema), and names no column itself.
//
// A Baseline is the previous snapshot's digest: per id, a hash of the
// rest of its row. It is read before the day's body is fetched, from the
// digest object the previous run wrote beside its snapshot (ReadDigest)
// or, when there is none or it cannot be used, from the previous
// snapshot's Parquet file (ReadBaseline). The day's record batches are
// then fed to a Comparison as they are decoded, which builds the day's own
// digest on the way (Comparison.Digester), and Finish reads the previous
// Parquet file for the before-values of the plots that changed or went.
// So the previous file is read once a run, and not at all on a day when
// nothing changed or went.
//
// The same comparison names the versions that begin the day, for the
// versions table (package history): per batch, the rows of the plots
// added or changed (Comparison.Versions; Digester.Versions on a first
// day, when every plot is added), and at the end the rows of the plots
// removed, as the previous file held them (Comparison.FinishVersions),
// read with the before-values in batches of at most 16,384 rows.
//
// # Memory
//
// Neither snapshot is held in memory. The previous file is read row group
// by row group (one ranged read per column chunk on GCS) and the Baseline
// keeps 17 bytes per previous plot: its id, a 64-bit hash of the rest of
// its row, and a flag byte; the day's digest 16 bytes a plot, and 5 to 11
// more for the table that tells each id's first row from its repeats as
// the rows arrive (firstRows). A changed
// plot costs about 310 bytes (the hash of each of its columns, to name
// the ones that changed, and the values of the change table), an added
// or removed one about 120. On an ordinary day a few thousand plots
// change and the cost is a few megabytes at 306,000 plots; on a day when
// every plot changes it is about 95 MB. No text of a plot is kept but its
// status, at most spoc.MaxStatusBytes of it (a longer one is kept as
// LongStatus), so that a day of long values costs no more.
//
// The keys of the hash function are drawn at random when a Baseline is
// read from a Parquet file, and travel in the digest from day to day:
// both snapshots of a comparison are hashed with the same function, and
// the keys are written nowhere but in the digests. Two different values
// of a column hash alike with a probability of 2^-64.
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
	"errors"

	"github.com/apache/arrow-go/v18/parquet"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// Kinds of change, the values of the change column.
const (
	Added   = "added"
	Removed = "removed"
	Changed = "changed"
)

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
	// StatusTransitions counts the changed plots whose status (the
	// dataset's spoc.RoleStatus column: cert_status) differs, by before
	// and after value ("(null)" for a null), ordered by count, then by
	// from and to. A dataset without a status has none.
	StatusTransitions []Transition `json:"status_transitions,omitempty"`
	// IgnoredDuplicates counts the rows that repeat an id already seen in
	// the same snapshot; they take no part in the comparison.
	IgnoredDuplicates Duplicates `json:"ignored_duplicates"`
}

// Transition is a count of plots whose status went From -> To.
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

// NullStatus stands for a null status in StatusTransitions; OtherStatus
// for every value after the first maxTransitions pairs, and LongStatus for
// a value longer than spoc.MaxStatusBytes, there and in the change table,
// which keeps the metric's attributes few and short, and the comparison's
// memory bounded, whatever the upstream sends.
const (
	NullStatus     = "(null)"
	OtherStatus    = "(other)"
	LongStatus     = spoc.LongStatus
	maxTransitions = 64
)

// ErrSchema means the previous snapshot's file cannot be compared: a
// column has another type than in the dataset's schema, or the key is
// missing.
var ErrSchema = errors.New("previous snapshot has an incompatible schema")

// File is the previous snapshot's Parquet file.
type File = parquet.ReaderAtSeeker
