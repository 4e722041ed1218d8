package snapshot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// Errors of a result that must not be published.
var (
	ErrTooFewRecords  = errors.New("too few records")
	ErrTooManyDropped = errors.New("too many records dropped")
	// ErrRecordsFell is a publish guard: the body holds far fewer records
	// than the previous snapshot. Options.Force overrides it.
	ErrRecordsFell = errors.New("record count fell against the previous snapshot")
	// ErrUnchanged means the day's snapshot was already published from
	// the same body bytes (Options.SkipIfUnchanged): nothing was written.
	// It is not a failure.
	ErrUnchanged = errors.New("snapshot unchanged")
)

// checkStats applies the checks of the body alone: enough usable records,
// not too many without an id.
func checkStats(opts Options, stats spoc.Stats) error {
	if stats.RecordsWritten < opts.MinRecords {
		return fmt.Errorf("%w: the body holds %d usable records, the minimum is %d", ErrTooFewRecords, stats.RecordsWritten, opts.MinRecords)
	}
	if p := stats.DroppedPercent(); p > opts.MaxWithoutIDPercent {
		return fmt.Errorf("%w: %d of %d records (%.2f%%) have no usable id, the limit is %g%%", ErrTooManyDropped, stats.RecordsDropped, stats.RecordsRead, p, opts.MaxWithoutIDPercent)
	}
	return nil
}

// checkHistory applies the checks that compare this run with earlier ones:
// an unchanged rerun of the day, and the fall of the record count against
// the previous day. forced reports a fall that opts.Force let through.
func checkHistory(opts Options, records int64, sum string, sameDay, previous *Manifest) (forced bool, err error) {
	if opts.SkipIfUnchanged && sameDay != nil && sameDay.Source.SHA256 != "" && sameDay.Source.SHA256 == sum {
		return false, fmt.Errorf("%w: %s was published from the same body (SHA-256 %s)", ErrUnchanged, sameDay.Snapshot, sum)
	}
	if previous == nil || previous.Stats.RecordsWritten == 0 {
		return false, nil
	}
	before := previous.Stats.RecordsWritten
	fell := 100 * float64(before-records) / float64(before)
	switch {
	case fell <= opts.MaxFallPercent:
		return false, nil
	case opts.Force:
		return true, nil
	}
	return false, fmt.Errorf("%w: %d records, %d in %s (%.1f%% fewer, the limit is %g%%; Options.Force publishes anyway)",
		ErrRecordsFell, records, before, previous.Snapshot, fell, opts.MaxFallPercent)
}

// manifestPath matches "{prefix}/{YYYYMMDD}/{manifest}" and captures
// the date.
func manifestPath(prefix, manifest string) *regexp.Regexp {
	p := regexp.QuoteMeta(prefix)
	if prefix != "" {
		p += "/"
	}
	return regexp.MustCompile(`^` + p + `(\d{8})/` + regexp.QuoteMeta(manifest) + `$`)
}

// findPrevious returns the newest manifest of a day before day under
// prefix, or nil when there is none (the first run ever).
func findPrevious(ctx context.Context, store sink.Store, prefix, manifest string, day time.Time) (*Manifest, error) {
	list := prefix
	if list != "" {
		list += "/"
	}
	names, err := store.List(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("look for the previous snapshot: %w", err)
	}
	re, today := manifestPath(prefix, manifest), day.Format(DateLayout)
	newest := ""
	for _, name := range names {
		// Names are sorted, so the last match before today is the newest.
		if m := re.FindStringSubmatch(name); m != nil && m[1] < today {
			newest = name
		}
	}
	if newest == "" {
		return nil, nil
	}
	return ReadManifest(ctx, store, newest)
}
