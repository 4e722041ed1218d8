package snapshot

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"

	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/transaction"
)

// A run compares itself with the newest earlier day that is whole: one
// whose manifest reads and describes the Parquet object beside it. A day
// that is not (its manifest is garbage or bigger than any this job
// writes, its Parquet file is missing or not the one the manifest
// describes, its publish is under way) is passed over, with a warning,
// for the day before it; the manifest lists the days passed over and why
// (Manifest.PassedOver). A day whose lock holds the journal of a publish
// that a dead or stalled run left is settled first, as a run of that day
// would settle it on taking its lock over.

// PassedOver is an earlier day a run did not compare with, and why.
type PassedOver struct {
	Snapshot string `json:"snapshot"` // YYYYMMDD
	Reason   string `json:"reason"`
}

// Values of Previous.Verified: how the run checked that the previous
// snapshot's Parquet object is the one its manifest describes.
const (
	// VerifiedCRC32C: its size and CRC32C are the manifest's.
	VerifiedCRC32C = "crc32c"
	// VerifiedFooter: its size is the manifest's and its footer reads
	// with the manifest's row count (a manifest without a CRC32C).
	VerifiedFooter = "parquet_footer"
	// VerifiedManifest: only the manifest was read, as a run without
	// Options.Outputs.Changes reads none of the previous snapshot's data
	// objects to compare with.
	VerifiedManifest = "manifest"
)

// previousDay is the snapshot a run compares with: its manifest and how
// its Parquet object was checked, and the later days passed over.
type previousDay struct {
	manifest   *Manifest
	verified   string
	passedOver []PassedOver
}

// dayObjects matches "{prefix}/{YYYYMMDD}/{name}" for the manifest and the
// lock, and captures the date and the name.
func dayObjects(prefix string, names Names) *regexp.Regexp {
	p := regexp.QuoteMeta(prefix)
	if prefix != "" {
		p += "/"
	}
	return regexp.MustCompile(`^` + p + `(\d{8})/(` + regexp.QuoteMeta(names.Manifest) + `|` + regexp.QuoteMeta(names.Lock) + `)$`)
}

// findPrevious finds the newest whole day before the run's day; none
// (nil manifest) makes this a first run. Only a store that cannot be read
// fails it: a day that is not whole is passed over.
func (r *run) findPrevious(ctx context.Context) (*previousDay, error) {
	opts := r.opts
	list := opts.Prefix
	if list != "" {
		list += "/"
	}
	names, err := opts.Store.List(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("look for the previous snapshot: %w", err)
	}
	type objects struct{ manifest, lock bool }
	days := map[string]*objects{}
	var later []string
	re, today := dayObjects(opts.Prefix, r.names), opts.Day.Format(DateLayout)
	for _, name := range names {
		m := re.FindStringSubmatch(name)
		if m != nil && m[1] > today && m[2] == r.names.Manifest {
			later = append(later, m[1])
		}
		if m == nil || m[1] >= today {
			continue
		}
		o := days[m[1]]
		if o == nil {
			o = &objects{}
			days[m[1]] = o
		}
		if m[2] == r.names.Manifest {
			o.manifest = true
		} else {
			o.lock = true
		}
	}
	if len(later) > 0 && opts.Outputs.Changes {
		// A backfill, or a rerun of an older day: the later days' change
		// tables and versions were written against the days before this
		// one, and the history no longer chains through it until they are
		// replayed (docs/history.md).
		slices.Sort(later)
		r.log.WarnContext(ctx, "later days are published under the prefix: their versions and change tables were written against the day before this one; replay each later day from its archive, in date order, to keep the history exact (docs/history.md)",
			"later_days", len(later), "first_later_day", later[0])
	}
	found := &previousDay{}
	for _, d := range slices.Backward(slices.Sorted(maps.Keys(days))) {
		o := days[d]
		why := ""
		if o.lock {
			// A journal left in its lock is settled first, as a run of
			// that day would settle it (transaction.Settle).
			if why, err = transaction.Settle(ctx, opts.Store, path.Join(opts.Prefix, d), r.names.Lock, lockOptions(opts)); err != nil {
				return nil, err
			}
		}
		var m *Manifest
		if why == "" && o.manifest {
			if m, why, err = r.wholeDay(ctx, d); err != nil {
				return nil, err
			}
		}
		switch {
		case why != "":
			r.log.WarnContext(ctx, "not comparing with an earlier day: it is not whole", "snapshot", d, "reason", why)
			found.passedOver = append(found.passedOver, PassedOver{Snapshot: d, Reason: why})
		case m != nil:
			found.manifest = m
			found.verified = VerifiedManifest
			if opts.Outputs.Changes {
				found.verified = verifiedBy(m)
			}
			return found, nil
		}
		// No manifest: a day never published, whose lock is now settled.
	}
	return found, nil
}

// verifiedBy is how wholeDay checked the Parquet object of m.
func verifiedBy(m *Manifest) string {
	if m.Parquet.CRC32C == 0 {
		return VerifiedFooter
	}
	return VerifiedCRC32C
}

// wholeDay reads the manifest of the earlier day d and, with
// Options.Outputs.Changes, checks the Parquet object beside it: its size,
// and its CRC32C (free on GCS, read from the file locally) or, for a
// manifest that records none, its footer. why says what is wrong with
// the day; err is only a store that cannot be read.
func (r *run) wholeDay(ctx context.Context, d string) (_ *Manifest, why string, err error) {
	store, dir := r.opts.Store, path.Join(r.opts.Prefix, d)
	m, err := readManifestData(ctx, store, path.Join(dir, r.names.Manifest))
	switch {
	case errors.Is(err, errNotManifest):
		return nil, err.Error(), nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, "", nil // gone since the listing
	case err != nil:
		return nil, "", err
	case m.Snapshot != d:
		return nil, fmt.Sprintf("its manifest is of snapshot %q", m.Snapshot), nil
	case !r.opts.Outputs.Changes:
		return m, "", nil
	}
	name := path.Join(dir, r.names.Parquet)
	info, err := store.Stat(ctx, name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, "its Parquet file is missing", nil
	case err != nil:
		return nil, "", fmt.Errorf("check %s: %w", store.URL(name), err)
	case info.Size != m.Parquet.Size:
		return nil, fmt.Sprintf("its Parquet file holds %d bytes, its manifest says %d", info.Size, m.Parquet.Size), nil
	}
	if m.Parquet.CRC32C == 0 {
		return m, footerWhy(ctx, store, name, m.Parquet.Rows), nil
	}
	crc := info.CRC32C
	if crc == 0 { // the local store keeps none: read the file
		if crc, err = objectCRC32C(ctx, store, name); errors.Is(err, fs.ErrNotExist) {
			return nil, "its Parquet file is missing", nil
		} else if err != nil {
			return nil, "", fmt.Errorf("check %s: %w", store.URL(name), err)
		}
	}
	if crc != m.Parquet.CRC32C {
		return nil, fmt.Sprintf("its Parquet file's CRC32C is %08x, its manifest says %08x", crc, m.Parquet.CRC32C), nil
	}
	return m, "", nil
}

// footerWhy opens the Parquet object at name and says what is wrong if
// its footer does not read or counts other than rows rows.
func footerWhy(ctx context.Context, store sink.Store, name string, rows int64) string {
	f, err := store.NewReaderAt(ctx, name)
	if err != nil {
		return "its Parquet file cannot be read: " + err.Error()
	}
	defer f.Close()
	// Hide f's Close: f is closed here, once.
	pf, err := file.NewParquetReader(struct{ changes.File }{f})
	if err != nil {
		return "its Parquet file's footer does not read: " + err.Error()
	}
	defer pf.Close()
	if n := pf.NumRows(); n != rows {
		return fmt.Sprintf("its Parquet file holds %d rows, its manifest says %d", n, rows)
	}
	return ""
}

// objectCRC32C reads the object at name through and returns its CRC32C.
func objectCRC32C(ctx context.Context, store sink.Store, name string) (uint32, error) {
	rd, err := store.NewReader(ctx, name)
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	sum := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	if _, err := io.Copy(sum, rd); err != nil {
		return 0, err
	}
	return sum.Sum32(), nil
}
