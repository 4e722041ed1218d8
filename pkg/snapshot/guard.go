package snapshot

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// Errors of a result that must not be published.
var (
	ErrTooFewRecords  = errors.New("too few records")
	ErrTooManyDropped = errors.New("too many records dropped")
	// ErrRecordsFell is a publish guard: the body holds far fewer records
	// than the previous snapshot. Options.Guards.Force overrides it.
	ErrRecordsFell = errors.New("record count fell against the previous snapshot")
	// ErrColumnCollapsed is a publish guard: a column that was nearly
	// always filled in the previous snapshot is nearly always null in
	// this one, which is how a renamed upstream field shows. The error
	// is a *CollapsedError. Options.Guards.Force overrides it.
	ErrColumnCollapsed = errors.New("a column collapsed to nulls against the previous snapshot")
	// ErrUnchanged means the day's snapshot was already published from
	// the same body bytes (Options.Guards.SkipIfUnchanged): nothing was written.
	// It is not a failure.
	ErrUnchanged = errors.New("snapshot unchanged")
)

// checkStats applies the checks of the body alone: enough usable records,
// not too many without an id.
func checkStats(g Guards, stats spoc.Stats) error {
	if stats.RecordsWritten < g.MinRecords {
		return fmt.Errorf("%w: the body holds %d usable records, the minimum is %d", ErrTooFewRecords, stats.RecordsWritten, g.MinRecords)
	}
	if p := stats.DroppedPercent(); p > g.MaxWithoutIDPercent {
		return fmt.Errorf("%w: %d of %d records (%.2f%%) have no usable id, the limit is %g%%", ErrTooManyDropped, stats.RecordsDropped, stats.RecordsRead, p, g.MaxWithoutIDPercent)
	}
	return nil
}

// checkHistory applies the checks that compare this run with earlier ones:
// an unchanged rerun of the day, and the fall of the record count against
// the previous day. forced reports a fall that g.Force let through.
func checkHistory(g Guards, records int64, sum string, sameDay, previous *Manifest) (forced bool, err error) {
	if g.SkipIfUnchanged && sameDay != nil && sameDay.Source.SHA256 != "" && sameDay.Source.SHA256 == sum {
		return false, fmt.Errorf("%w: %s was published from the same body (SHA-256 %s)", ErrUnchanged, sameDay.Snapshot, sum)
	}
	if previous == nil || previous.Stats.RecordsWritten == 0 {
		return false, nil
	}
	before := previous.Stats.RecordsWritten
	fell := 100 * float64(before-records) / float64(before)
	switch {
	case fell <= g.MaxFallPercent:
		return false, nil
	case g.Force:
		return true, nil
	}
	return false, fmt.Errorf("%w: %d records, %d in %s (%.1f%% fewer, the limit is %g%%; Options.Guards.Force publishes anyway)",
		ErrRecordsFell, records, before, previous.Snapshot, fell, g.MaxFallPercent)
}

// CollapsedError names the columns that collapsed to nulls, with the
// undeclared field that most likely took each one's place.
type CollapsedError struct {
	Previous string // the snapshot compared with (YYYYMMDD)
	Columns  []CollapsedColumn
	// WasPercent and BelowPercent are the guard's thresholds.
	WasPercent, BelowPercent float64
}

// CollapsedColumn is one column that collapsed.
type CollapsedColumn struct {
	Column string // the tidy column
	Field  string // its JSON field
	// Was and Now are the column's shares of rows with a value, in
	// percent, in the previous snapshot and in this body.
	Was, Now float64
	// LikelyRename is the undeclared field met about as many times as the
	// column had values before (within a tenth), "" when none was; Count
	// is how many times it was met.
	LikelyRename string
	Count        int64
}

func (e *CollapsedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: ", ErrColumnCollapsed)
	for i, c := range e.Columns {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s (field %q) had a value in %.1f%% of the rows of %s and has in %.1f%% now", c.Column, c.Field, c.Was, e.Previous, c.Now)
		if c.LikelyRename != "" {
			fmt.Fprintf(&b, ", and the undeclared field %q appeared %d times: likely renamed %q -> %q", c.LikelyRename, c.Count, c.Field, c.LikelyRename)
		}
	}
	fmt.Fprintf(&b, " (the guard refuses a column that falls from at least %g%% to below %g%%; Options.Guards.Force publishes anyway)", e.WasPercent, e.BelowPercent)
	return b.String()
}

func (e *CollapsedError) Unwrap() error { return ErrColumnCollapsed }

// checkColumns refuses a body in which a column that had a value in at
// least g.CollapseWasPercent of the previous snapshot's rows has one in
// fewer than g.CollapseBelowPercent (0 turns the guard off; so does a
// first run, with nothing to compare). forced reports a collapse that
// g.Force let through. The columns are ds's.
func checkColumns(g Guards, ds *spoc.Dataset, stats spoc.Stats, previous *Manifest) (forced bool, err error) {
	if g.CollapseBelowPercent <= 0 || previous == nil || previous.Stats.RecordsWritten == 0 || stats.RecordsWritten == 0 {
		return false, nil
	}
	collapsed := &CollapsedError{Previous: previous.Snapshot, WasPercent: g.CollapseWasPercent, BelowPercent: g.CollapseBelowPercent}
	for _, col := range ds.Columns {
		before, ok := previous.Stats.Columns[col.Name]
		if !ok {
			continue
		}
		was := 100 * spoc.NonNullShareOf(before.Nulls, previous.Stats.RecordsWritten)
		now := 100 * spoc.NonNullShareOf(stats.Columns[col.Name].Nulls, stats.RecordsWritten)
		if was < g.CollapseWasPercent || now >= g.CollapseBelowPercent {
			continue
		}
		c := CollapsedColumn{Column: col.Name, Field: col.JSON, Was: was, Now: now}
		// The former number of values, scaled to today's body.
		former := float64(previous.Stats.RecordsWritten-before.Nulls) * float64(stats.RecordsRead) / float64(max(previous.Stats.RecordsRead, 1))
		best := math.Inf(1)
		for _, f := range stats.UndeclaredFields {
			if off := math.Abs(float64(f.Count)-former) / former; off <= 0.1 && off < best && f.Name != spoc.OtherField {
				best, c.LikelyRename, c.Count = off, f.Name, f.Count
			}
		}
		collapsed.Columns = append(collapsed.Columns, c)
	}
	switch {
	case len(collapsed.Columns) == 0:
		return false, nil
	case g.Force:
		return true, nil
	}
	return false, collapsed
}
