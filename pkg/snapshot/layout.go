package snapshot

import (
	"maps"
	"slices"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/geo"
	"github.com/calee-data/mspo-spoc/pkg/history"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// Layout is how a table is laid out in Parquet: plain settings, which
// the snapshot and the change table each have, and which NewLayouts
// builds into sink options once. Each zero field takes the table's
// default (DefaultSnapshotLayout, DefaultChangesLayout), and sink's where
// that has none; so a caller sets only what it changes.
type Layout struct {
	RowGroupRows     int64          // rows per row group
	RowGroupBytes    int64          // text per row group (sink.WithMaxRowGroupBytes)
	ZstdLevel        int            // zstd level of every column
	ColumnZstdLevels map[string]int // zstd levels of some columns, by name
	// CoordinateZstdLevel is the zstd level of the dataset's coordinate
	// columns (spoc.Dataset.CoordinateColumns), whose nearly random bytes
	// shrink markedly only at high levels; ColumnZstdLevels overrides it.
	// Zero means ZstdLevel's.
	CoordinateZstdLevel int
	// Dictionary names the columns dictionary-encoded; none else is. Nil
	// means the default ones, an empty slice none.
	Dictionary []string
}

// versionsRowGroupBytes bounds the text of a row group of the versions.
// The versions are written beside the snapshot, by a second Parquet
// writer that holds its row group as the snapshot's does: on a first day,
// when every plot is a version, both would hold a group of up to
// sink.DefaultMaxRowGroupBytes of text at once. Groups of about one
// decoder batch (spoc.DefaultMaxBatchBytes) keep the second small; an
// ordinary day's versions are a few thousand rows, one group anyway.
const versionsRowGroupBytes = 4 << 20

// Layouts are the sink options of a day's two tables, built once
// (NewLayouts) and used by every attempt as they are.
type Layouts struct {
	// Versions are the versions table's (pkg/history): the snapshot's
	// layout, with the two columns it adds dictionary-encoded. Geo are
	// the geolocation layer's (pkg/geo), for a dataset with a point.
	Snapshot, Changes, Versions, Geo []sink.ParquetOption
}

// NewLayouts builds the Parquet options of ds's snapshot and of the
// change table, in files written by version: each table's layout, with
// its zero fields the default's (DefaultSnapshotLayout(ds),
// DefaultChangesLayout(ds)), the snapshot's coordinate columns at its
// CoordinateZstdLevel.
func NewLayouts(ds *spoc.Dataset, version string, snapshotLayout, changesLayout Layout) Layouts {
	s := snapshotLayout.orDefault(DefaultSnapshotLayout(ds))
	if s.CoordinateZstdLevel > 0 {
		levels := map[string]int{}
		for _, col := range ds.CoordinateColumns() {
			levels[col] = s.CoordinateZstdLevel
		}
		maps.Copy(levels, s.ColumnZstdLevels)
		s.ColumnZstdLevels = levels
	}
	v := s
	v.Dictionary = append(slices.Clone(s.Dictionary), history.ValidFrom, history.Change)
	if v.RowGroupBytes == 0 || v.RowGroupBytes > versionsRowGroupBytes {
		v.RowGroupBytes = versionsRowGroupBytes
	}
	l := Layouts{
		Snapshot: s.options(version),
		Changes:  changesLayout.orDefault(DefaultChangesLayout(ds)).options(version),
		Versions: v.options(version),
	}
	if geo.HasLayer(ds) {
		// The snapshot's zstd level; its coordinates are in the WKB.
		l.Geo = Layout{ZstdLevel: s.ZstdLevel, Dictionary: geo.DictionaryColumns(ds)}.options(version)
	}
	return l
}

// DefaultSnapshotLayout is the snapshot's layout of ds unless NewLayouts
// is given another: dictionary encoding for the columns whose values
// repeat.
func DefaultSnapshotLayout(ds *spoc.Dataset) Layout {
	return Layout{Dictionary: ds.DictionaryColumns()}
}

// DefaultChangesLayout is the change table's layout of ds unless
// NewLayouts is given another: dictionary encoding for the kind of change
// and the status before and after.
func DefaultChangesLayout(ds *spoc.Dataset) Layout {
	return Layout{Dictionary: changes.DictionaryColumns(ds)}
}

// orDefault is l with each zero field taken from def.
func (l Layout) orDefault(def Layout) Layout {
	if l.RowGroupRows == 0 {
		l.RowGroupRows = def.RowGroupRows
	}
	if l.RowGroupBytes == 0 {
		l.RowGroupBytes = def.RowGroupBytes
	}
	if l.ZstdLevel == 0 {
		l.ZstdLevel = def.ZstdLevel
	}
	if l.ColumnZstdLevels == nil {
		l.ColumnZstdLevels = def.ColumnZstdLevels
	}
	if l.CoordinateZstdLevel == 0 {
		l.CoordinateZstdLevel = def.CoordinateZstdLevel
	}
	if l.Dictionary == nil {
		l.Dictionary = def.Dictionary
	}
	return l
}

// options are the sink options of l, for a file written by version.
func (l Layout) options(version string) []sink.ParquetOption {
	opts := []sink.ParquetOption{sink.WithCreatedBy("mspo-spoc " + version)}
	if l.RowGroupRows > 0 {
		opts = append(opts, sink.WithMaxRowGroupLength(l.RowGroupRows))
	}
	if l.RowGroupBytes > 0 {
		opts = append(opts, sink.WithMaxRowGroupBytes(l.RowGroupBytes))
	}
	if l.ZstdLevel > 0 {
		opts = append(opts, sink.WithZstdLevel(l.ZstdLevel))
	}
	for _, col := range slices.Sorted(maps.Keys(l.ColumnZstdLevels)) {
		opts = append(opts, sink.WithColumnZstdLevel(l.ColumnZstdLevels[col], col))
	}
	if len(l.Dictionary) > 0 {
		opts = append(opts, sink.WithDictionary(l.Dictionary...))
	}
	return opts
}
