package snapshot

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
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
	// this one, which is how a renamed upstream field shows; or, with no
	// previous snapshot, a declared field is in no record written, which
	// is how another list's body at the URL shows, or is in them with no
	// usable value, only invalid ones, which is how a field sent in a new
	// shape shows. The error is a *CollapsedError. Options.Guards.Force
	// overrides it.
	ErrColumnCollapsed = errors.New("a column collapsed to nulls against the previous snapshot")
	// ErrUnchanged means the day's snapshot was already published from
	// the same body bytes (Options.Guards.SkipIfUnchanged): nothing was written.
	// It is not a failure.
	ErrUnchanged = errors.New("snapshot unchanged")
)

// checkStats applies the checks of the body alone: enough usable records,
// not too many without an id. A body of records none of which has a usable
// key is refused as a *NoKeyError, under the guard that refuses it.
func checkStats(g Guards, ds *spoc.Dataset, stats spoc.Stats) error {
	var guard error
	switch {
	case stats.RecordsWritten < g.MinRecords:
		guard = ErrTooFewRecords
	case stats.DroppedPercent() > g.MaxWithoutIDPercent:
		guard = ErrTooManyDropped
	default:
		return nil
	}
	if stats.RecordsWritten == 0 && stats.RecordsRead > 0 {
		return noKey(guard, ds, stats)
	}
	if guard == ErrTooFewRecords {
		return fmt.Errorf("%w: the body holds %d usable records, the minimum is %d", ErrTooFewRecords, stats.RecordsWritten, g.MinRecords)
	}
	return fmt.Errorf("%w: %d of %d records (%.2f%%) have no usable id, the limit is %g%%", ErrTooManyDropped, stats.RecordsDropped, stats.RecordsRead, stats.DroppedPercent(), g.MaxWithoutIDPercent)
}

// NoKeyError is a body of records none of which has a usable key, so
// none is written: most often none holds the key field at all, as when
// another list's body is served at the URL (the zones at the states') or
// the upstream renamed the key. Its limits are not what is wrong with it,
// so it says so instead of naming them. It unwraps to the guard that
// refused the body, ErrTooFewRecords or ErrTooManyDropped.
type NoKeyError struct {
	Guard   error  // ErrTooFewRecords or ErrTooManyDropped
	Field   string // the key's JSON field
	Records int64  // the records read
	// Dropped are the records dropped, by reason (spoc.Drop*): all of
	// them.
	Dropped map[string]int64
	// LikelyRename is the undeclared field met in about as many records
	// as lack the key field (within a tenth), "" when none was; Count is
	// how many times it was met.
	LikelyRename string
	Count        int64
}

func noKey(guard error, ds *spoc.Dataset, stats spoc.Stats) *NoKeyError {
	e := &NoKeyError{Guard: guard, Field: ds.Columns[0].JSON, Records: stats.RecordsRead, Dropped: stats.DroppedByReason}
	e.LikelyRename, e.Count = likelyRename(stats.UndeclaredFields, e.Field, float64(stats.DroppedByReason[spoc.DropMissingID]))
	return e
}

func (e *NoKeyError) Error() string {
	var b strings.Builder
	if e.Dropped[spoc.DropMissingID] == e.Records {
		fmt.Fprintf(&b, "%v: none of the %d records holds the key field %q", e.Guard, e.Records, e.Field)
	} else {
		fmt.Fprintf(&b, "%v: none of the %d records has a usable key (field %q): %s", e.Guard, e.Records, e.Field, byReason(e.Dropped))
	}
	if e.LikelyRename != "" {
		fmt.Fprintf(&b, ", and the undeclared field %q appeared %d times: likely renamed %q -> %q", e.LikelyRename, e.Count, e.Field, e.LikelyRename)
	}
	b.WriteString(" (another list's body at the URL, or a key field renamed or sent in a new shape)")
	return b.String()
}

func (e *NoKeyError) Unwrap() error { return e.Guard }

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
// undeclared field that most likely took each one's place. On a first
// day (Previous ""), with nothing to compare with, they are the declared
// columns whose field no record written from the body holds, or that
// hold no usable value and at least one invalid one.
type CollapsedError struct {
	Previous string // the snapshot compared with (YYYYMMDD); "" on a first day
	Records  int64  // the rows written from the body (records with a usable id)
	Columns  []CollapsedColumn
	// WasPercent and BelowPercent are the guard's thresholds.
	WasPercent, BelowPercent float64
}

// CollapsedColumn is one column that collapsed.
type CollapsedColumn struct {
	Column string // the tidy column
	Field  string // its JSON field
	// Was and Now are the column's shares of rows with a value, in
	// percent, in the previous snapshot and in this body (both 0 on a
	// first day).
	Was, Now float64
	// LikelyRename is the undeclared field met about as many times as the
	// column had values before (within a tenth), or on a first day about
	// as many times as the body has records; "" when none was. Count is
	// how many times it was met.
	LikelyRename string
	Count        int64
	// Invalid are, on a first day, the unusable values of a column that
	// has no usable one, by reason (spoc.Reason*); nil for a field in no
	// record written.
	Invalid map[string]int64
}

func (e *CollapsedError) Error() string {
	var b strings.Builder
	if e.Previous == "" {
		b.WriteString("a declared field is in no record written, or has no usable value in any, with no previous snapshot to compare with: ")
	} else {
		fmt.Fprintf(&b, "%v: ", ErrColumnCollapsed)
	}
	for i, c := range e.Columns {
		if i > 0 {
			b.WriteString("; ")
		}
		switch {
		case e.Previous == "" && c.Invalid != nil:
			fmt.Fprintf(&b, "%s (field %q) has no usable value in the %d records written: %s", c.Column, c.Field, e.Records, invalidValues(c.Invalid))
		case e.Previous == "":
			fmt.Fprintf(&b, "%s (field %q) is in none of the %d records written", c.Column, c.Field, e.Records)
		default:
			fmt.Fprintf(&b, "%s (field %q) had a value in %.1f%% of the rows of %s and has in %.1f%% now", c.Column, c.Field, c.Was, e.Previous, c.Now)
		}
		if c.LikelyRename != "" {
			fmt.Fprintf(&b, ", and the undeclared field %q appeared %d times: likely renamed %q -> %q", c.LikelyRename, c.Count, c.Field, c.LikelyRename)
		}
	}
	if e.Previous == "" {
		b.WriteString(" (on a first day the guard refuses a declared field that no record written holds, null or not, or whose values are all unusable: another list's body at the URL, a renamed field, or a field sent in a new shape; Options.Guards.Force publishes anyway)")
	} else {
		fmt.Fprintf(&b, " (the guard refuses a column that falls from at least %g%% to below %g%%; Options.Guards.Force publishes anyway)", e.WasPercent, e.BelowPercent)
	}
	return b.String()
}

func (e *CollapsedError) Unwrap() error { return ErrColumnCollapsed }

// checkColumns refuses a body in which a column that had a value in at
// least g.CollapseWasPercent of the previous snapshot's rows has one in
// fewer than g.CollapseBelowPercent (0 turns the guard off). With no
// previous snapshot to compare with, it refuses instead a declared column
// whose field no record written holds, or that holds only unusable
// values (firstDayColumns). forced reports a
// refusal that g.Force let through. The columns are ds's.
func checkColumns(g Guards, ds *spoc.Dataset, stats spoc.Stats, previous *Manifest) (forced bool, err error) {
	if g.CollapseBelowPercent <= 0 || stats.RecordsWritten == 0 {
		return false, nil
	}
	var collapsed *CollapsedError
	if previous == nil || previous.Stats.RecordsWritten == 0 {
		collapsed = firstDayColumns(ds, stats)
	} else {
		collapsed = collapsedColumns(g, ds, stats, previous)
	}
	collapsed.Records, collapsed.WasPercent, collapsed.BelowPercent = stats.RecordsWritten, g.CollapseWasPercent, g.CollapseBelowPercent
	switch {
	case len(collapsed.Columns) == 0:
		return false, nil
	case g.Force:
		return true, nil
	}
	return false, collapsed
}

// collapsedColumns are the columns that fell against previous.
func collapsedColumns(g Guards, ds *spoc.Dataset, stats spoc.Stats, previous *Manifest) *CollapsedError {
	collapsed := &CollapsedError{Previous: previous.Snapshot}
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
		c.LikelyRename, c.Count = likelyRename(stats.UndeclaredFields, col.JSON, former)
		collapsed.Columns = append(collapsed.Columns, c)
	}
	return collapsed
}

// firstDayColumns are, on a first day, the declared columns whose field
// no row written holds (spoc.ColumnStats.Present is zero; a field present
// with a null counts as held, one in a dropped record does not, as that
// record is in no row), and those with no usable value but at least one
// invalid one (unusableColumn). A real list sends each of its fields in
// every record, null when it has no value, so a field in none is another
// list's body at the URL, or an upstream rename that the collapse guard
// would have caught against a previous day. Either would publish a column
// of nulls, which the collapse guard, from the next day, never guards:
// it guards only a column that was filled. The key column is not among
// them: a body with rows has a usable key in each.
func firstDayColumns(ds *spoc.Dataset, stats spoc.Stats) *CollapsedError {
	absent := &CollapsedError{}
	for _, col := range ds.Columns {
		cs := stats.Columns[col.Name]
		invalid := unusableColumn(cs, stats.RecordsWritten)
		if col.JSON == "" || (cs.Present > 0 && invalid == nil) {
			continue
		}
		c := CollapsedColumn{Column: col.Name, Field: col.JSON, Invalid: invalid}
		// The field would have been in every record, as the undeclared
		// ones counted are, dropped or not.
		c.LikelyRename, c.Count = likelyRename(stats.UndeclaredFields, col.JSON, float64(stats.RecordsRead))
		absent.Columns = append(absent.Columns, c)
	}
	return absent
}

// unusableColumn is the invalid values of a column with no usable value
// among written rows, by reason, or nil when it has a value or none of
// its values is invalid: a column null in every record publishes, as a
// list may send a field it never fills. An empty string where a number,
// an id, a boolean or a date belongs (spoc.ReasonEmpty) stands for the
// null some upstreams send it as, and is not counted.
func unusableColumn(cs spoc.ColumnStats, written int64) map[string]int64 {
	if cs.Nulls < written {
		return nil
	}
	var unusable map[string]int64
	for reason, n := range cs.Invalid {
		if reason != spoc.ReasonEmpty && n > 0 {
			if unusable == nil {
				unusable = map[string]int64{}
			}
			unusable[reason] = n
		}
	}
	return unusable
}

// invalidValues says how many invalid values there are, and their
// reasons: "16 invalid (wrong_type 16)".
func invalidValues(invalid map[string]int64) string {
	var total int64
	for _, n := range invalid {
		total += n
	}
	return fmt.Sprintf("%d invalid (%s)", total, byReason(invalid))
}

// byReason lists counts by reason, the reasons sorted: "missing_id 2,
// null_id 3".
func byReason(counts map[string]int64) string {
	reasons := make([]string, 0, len(counts))
	for _, reason := range slices.Sorted(maps.Keys(counts)) {
		reasons = append(reasons, fmt.Sprintf("%s %d", reason, counts[reason]))
	}
	return strings.Join(reasons, ", ")
}

// likelyRename is the undeclared field met nearest to want times, within
// a tenth of it, and how many times; "" when none was. Of fields met as
// often, the one whose name shares more of its start or end with field's
// is taken: a whole body of another list holds several fields as often
// as it has records (SPOC's at GM's URL: spoc_code and geolocation, for
// gm_code).
func likelyRename(undeclared []spoc.FieldSeen, field string, want float64) (name string, count int64) {
	if want <= 0 {
		return "", 0
	}
	best, shared := math.Inf(1), -1
	for _, f := range undeclared {
		off := math.Abs(float64(f.Count)-want) / want
		if off > 0.1 || off > best || f.Name == spoc.OtherField {
			continue
		}
		if s := sharedEnds(f.Name, field); off < best || s > shared {
			best, shared, name, count = off, s, f.Name, f.Count
		}
	}
	return name, count
}

// sharedEnds is the length of the longer of a's and b's common prefix and
// common suffix.
func sharedEnds(a, b string) int {
	prefix, suffix := 0, 0
	for prefix < min(len(a), len(b)) && a[prefix] == b[prefix] {
		prefix++
	}
	for suffix < min(len(a), len(b)) && a[len(a)-1-suffix] == b[len(b)-1-suffix] {
		suffix++
	}
	return max(prefix, suffix)
}
