// Package snapshot publishes one day's SPOC snapshot: it streams the body
// from the source through the decoder into a Parquet object, checks the
// result, commits it, and then writes the manifest that marks the snapshot
// complete.
//
// # Layout
//
// A snapshot lives in one folder per day below the store's prefix:
//
//	{prefix}/{YYYYMMDD}/spoc-list-public.parquet                   the snapshot
//	{prefix}/{YYYYMMDD}/spoc-list-public.json.gz                   the raw body
//	{prefix}/{YYYYMMDD}/spoc-list-public.digest                    per plot, a hash for the next day's changes
//	{prefix}/{YYYYMMDD}/spoc-list-public.manifest.json             written last
//	{prefix}/{YYYYMMDD}/changes/spoc-list-public.changes.parquet   changes since the previous snapshot
//	{prefix}/{YYYYMMDD}/rejected/spoc-list-public.json.gz          the body of a refused run
//
// The manifest is written last. Its presence means the objects beside it
// are complete, and it holds their sizes and CRC32Cs.
//
// One glob, one table: "{prefix}/*/*.parquet" matches the snapshots and
// nothing else, whatever the number of days, so that queries written
// against it keep working; "{prefix}/*/changes/*.parquet" matches the
// change tables. Partial objects are hidden (a dot and a ".tmp-" suffix)
// or, on GCS, not visible until committed.
//
// # Changes
//
// With Options.Outputs.Changes, a run compares its records with the
// previous snapshot using package changes, and writes the change table in
// the day's changes/ folder. The first run under a prefix writes an empty
// change table and says so in the manifest (changes.first_run).
//
// The previous snapshot, for the change table and the publish guards
// alike, is the newest earlier day that is whole. Before fetching, a run
// settles the publish journal it finds in an earlier day's lock, as a
// takeover of that lock would (a live holder is left alone and its day
// passed over; settling copies that day's objects back into place, with
// or without Options.Outputs.Changes), and passes over a day whose manifest does not read or,
// with Options.Outputs.Changes, whose Parquet object is missing or differs
// from its manifest in size or CRC32C (its footer, for a manifest without
// a CRC32C). Each day passed over is logged and listed, with why, in the
// manifest (Manifest.PassedOver); with none whole, the run is a first
// run.
//
// Each such run also writes the digest of its snapshot (DigestName: per
// plot, its id and a hash of its row, 16 bytes a plot), which the next
// run reads instead of the Parquet file to find what changed. The
// manifest records the digest's size and CRC32C. A digest that is
// missing, does not match them, or is not the digest of that day's
// snapshot and schema is not used: the run reads the previous Parquet
// file instead, logs why, and says so in the manifest
// (changes.baseline_from).
//
// # Failure
//
// The body streams straight into the object, so a failed attempt (a reset,
// a cut body, a 503) aborts its objects and a retry starts over; nothing of
// a failed attempt is ever published. If every attempt fails, or the
// result fails a check (too few records, too many dropped), nothing new is
// published and a previous snapshot of the same day is left as it was.
//
// # Publishing
//
// A run publishes the day's objects in steps, recorded in the day's lock
// as a journal, so that a rerun that fails at any step, or dies, leaves
// the day exactly as it was:
//
//  1. the attempt commits each object under a hidden name of its own
//     (".NAME.tmp-RUN"), which no glob matches;
//  2. the lock records the generation at each final name and at the
//     manifest;
//  3. each final object that exists is copied to a hidden backup
//     (".NAME.backup-RUN");
//  4. each staged object is copied to its final name under the
//     precondition that the name still holds the recorded generation;
//  5. the run confirms its lock and writes the manifest under the
//     precondition that it is still at its recorded generation: the
//     commit point;
//  6. the backups and staged objects are deleted, the journal cleared.
//
// What a reader sees: until step 4 the previous snapshot, whole. During
// step 4 and until the commit point, a reader of the objects by glob may
// see new objects beside the previous manifest; a reader that goes by the
// manifest and checks sizes or CRC32Cs sees that they differ. From the
// commit point on, the new snapshot, whole.
//
// A failure before the commit point restores the day: each final name
// that no longer holds its recorded generation gets its backup back, or
// is deleted if it held nothing, under a precondition on what it holds.
// A failure after it leaves only hidden objects, which the next run of
// the day removes. An unknown outcome of the manifest's write (no
// answer) is read back: a manifest at another generation was this run's.
// Every delete and overwrite names the generation it expects, so a run
// changes only what it wrote.
//
// # Lock
//
// A run holds the day's lock (LockName), a lease it renews while it runs,
// so that two runs of one day never mix their objects. A run that finds
// the lock held watches it: a holder that renews it makes the run fail
// with ErrBusy before fetching; a lock unchanged for a whole lease on the
// watcher's own clock is taken over, and one left by a run known to be
// gone (Options.Lock.Execution and Task, a dead process of this host
// and PID namespace) at once. The run that takes a lock over first
// settles the publish journal it holds (finishing a publish that reached
// its commit point, restoring the day otherwise), then removes what a
// killed run left in the day's folder. A run that loses its lock stops
// with ErrLockLost and touches nothing more: the journal stays in the
// lock for whoever takes it.
//
// # Telemetry
//
// Run reports to the OpenTelemetry providers in its Options: the Metric*
// instruments, whose snapshot figures are read from the manifest so that
// the two always agree, and a span per attempt with a span per phase. A
// Progress gives a live view for a progress bar.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/fetch"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// Object names inside a day's folder.
const (
	ParquetName  = "spoc-list-public.parquet"
	ManifestName = "spoc-list-public.manifest.json"
	ArchiveName  = "spoc-list-public.json.gz" // the raw body, gzip-compressed
	// DigestName is the digest of the snapshot for the next day's
	// change table (package changes); it ends in neither .parquet nor
	// .json.gz, so no glob over the tables or the archives matches it.
	DigestName = "spoc-list-public.digest"
	// ChangesName is in a folder of its own, out of the snapshots' glob.
	ChangesName = "changes/spoc-list-public.changes.parquet"
	RejectedDir = "rejected" // where a refused run's raw body goes
)

// Names are the names of a dataset's objects in a day's folder: for
// spoc.SPOC, ParquetName, ManifestName, ArchiveName, ChangesName,
// DigestName and LockName.
type Names struct {
	Parquet, Manifest, Archive, Changes, Digest, Lock string
}

// NamesOf is the names of ds's objects, from its Object base name.
func NamesOf(ds *spoc.Dataset) Names {
	o := ds.Object
	return Names{
		Parquet:  o + ".parquet",
		Manifest: o + ".manifest.json",
		Archive:  o + ".json.gz",
		Changes:  "changes/" + o + ".changes.parquet",
		Digest:   o + ".digest",
		Lock:     "." + o + ".lock",
	}
}

// DateLayout is the layout of a day's folder name.
const DateLayout = "20060102"

// Dir is the folder of the snapshot of day below prefix.
func Dir(prefix string, day time.Time) string {
	return path.Join(prefix, day.Format(DateLayout))
}

// Options is what Run needs: each component's settings built once by
// the caller (the decoder's options, the Parquet layouts, the guards,
// the lock's timing, the retries). Run resolves the zero ones to their
// defaults once; no attempt translates them again.
type Options struct {
	// Dataset is the list published: its records' place in the body, its
	// schema and its object names. Nil means spoc.SPOC.
	Dataset *spoc.Dataset
	Source  string        // URL of the endpoint, or a saved body (see fetch.ParseSource)
	Client  *fetch.Client // fetches Source
	Store   sink.Store
	Prefix  string    // folder of all snapshots inside Store
	Day     time.Time // the snapshot's day; only its calendar date is used

	Retry fetch.Backoff // the attempts and the waits between them

	// Decoder is the decoder's batch size and limits (spoc.WithBatchSize,
	// spoc.WithMaxBodyBytes...); none means spoc's defaults. The decoder
	// reads the body as Dataset.
	Decoder []spoc.DecoderOption
	// Layouts are the Parquet options of the snapshot and of the change
	// table (NewLayouts); a nil one is NewLayouts' default for Dataset.
	Layouts Layouts
	// Guards are the checks a body must pass to be published.
	Guards Guards
	// Outputs are the objects written beside the snapshot.
	Outputs Outputs
	// Lock is the timing of the day's lock and who holds it.
	Lock  LockOptions
	clock clock // the lease's clock; nil: the real one

	Version   string // job version, recorded in the manifest and the Parquet footer
	Telemetry Telemetry
}

// Guards are the checks a body must pass to be published. Their zero
// values are limits too (a MaxWithoutIDPercent of zero refuses any
// record without an id), so a caller sets each one it relies on.
type Guards struct {
	MinRecords int64 // fewer written records fail the run (ErrTooFewRecords)
	// MaxWithoutIDPercent fails a body in which a larger share of the
	// records has no usable id (ErrTooManyDropped).
	MaxWithoutIDPercent float64
	// MaxFallPercent refuses a body with that many percent fewer records
	// than the previous snapshot (ErrRecordsFell); Force publishes anyway.
	MaxFallPercent float64
	// CollapseWasPercent and CollapseBelowPercent refuse a body in which
	// a column that had a value in at least CollapseWasPercent of the
	// previous snapshot's rows has one in fewer than CollapseBelowPercent
	// (ErrColumnCollapsed, a *CollapsedError); Force publishes anyway. A
	// zero CollapseBelowPercent turns the guard off.
	CollapseWasPercent, CollapseBelowPercent float64
	// Force publishes a body that a publish guard (ErrRecordsFell,
	// ErrColumnCollapsed) refuses, and the manifest says "forced".
	Force bool
	// SkipIfUnchanged makes a rerun of a day whose manifest records the
	// same body SHA-256 publish nothing and return ErrUnchanged.
	SkipIfUnchanged bool
}

// Outputs are the objects a run writes beside the snapshot.
type Outputs struct {
	// Archive keeps the body as received (after transfer decoding),
	// gzip-compressed, as ArchiveName beside the snapshot, or under
	// RejectedDir when the run is refused.
	Archive bool
	// Changes compares the records with the previous snapshot and
	// writes the change table (ChangesName) in the day's folder, and the
	// snapshot's digest (DigestName) for the next day's comparison.
	// Without it, no data object of an earlier day is read to compare
	// with: a run looks at the earlier days' manifests (the publish
	// guards' counts) and locks only, and the previous snapshot is whole
	// when its manifest reads (Previous.Verified is VerifiedManifest).
	// Settling an earlier day's unfinished publish still restores that
	// day's objects, by copies (server-side on GCS, of the files locally).
	Changes bool
}

// LockOptions are the timing of the day's lock (LockName) and the
// execution that holds it.
type LockOptions struct {
	// Lease is how long the lock holds against other runs without being
	// renewed; the run renews it every third of that. Zero means
	// DefaultLockLease.
	Lease time.Duration
	// Wait is how long a run that finds the day's lock held watches it
	// before it gives up with ErrBusy: a lock renewed meanwhile gives up
	// at once, one unchanged for a whole Lease is taken over, so a Wait
	// shorter than the lease never takes over a crashed run's lock. Zero
	// means the lease and an eighth.
	Wait time.Duration
	// Execution identifies the execution this run is an attempt of, the
	// same for its retries (on Cloud Run, CLOUD_RUN_EXECUTION), and Task
	// the task of that execution (CLOUD_RUN_TASK_INDEX): a lock held
	// under the same Execution and Task was left by an earlier attempt
	// that is over, and is taken over at once. Empty outside such a
	// platform.
	Execution, Task string
}

// Telemetry is where a run reports.
type Telemetry struct {
	Logger *slog.Logger // nil: no logs
	// MeterProvider and TracerProvider receive the run's metrics (the
	// Metric* names) and its spans: one per attempt, with its phases as
	// children, under the span of ctx. Nil means none.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// Progress, if not nil, is kept up to date while the run goes on.
	Progress *Progress
}

// Run publishes the snapshot of opts.Day and returns its manifest.
func Run(ctx context.Context, opts Options) (*Manifest, error) {
	opts = opts.withDefaults()
	in, err := newInstruments(opts.Telemetry.MeterProvider, opts.Telemetry.TracerProvider, opts.Dataset)
	if err != nil {
		return nil, fmt.Errorf("snapshot metrics: %w", err)
	}
	r := &run{opts: opts, in: in, log: opts.Telemetry.Logger, dir: Dir(opts.Prefix, opts.Day), names: NamesOf(opts.Dataset), startedAt: time.Now().UTC(), last: &attemptFigures{}}
	m, manifestBytes, err := r.publish(ctx)
	outcome := OutcomeSuccess
	switch {
	case errors.Is(err, ErrUnchanged):
		outcome = OutcomeUnchanged
	case err != nil:
		outcome = OutcomeFailure
	}
	r.last.changes += r.baselineTime
	in.phases(ctx, outcome, r.last, time.Since(r.startedAt), opts.Outputs.Changes)
	if err != nil {
		return nil, err
	}
	in.published(ctx, m, manifestBytes)
	return m, nil
}

// withDefaults is opts with its zero settings resolved, once a run: the
// dataset, the logger, the layouts, and the decoder's dataset.
func (opts Options) withDefaults() Options {
	if opts.Dataset == nil {
		opts.Dataset = spoc.SPOC
	}
	if opts.Telemetry.Logger == nil {
		opts.Telemetry.Logger = slog.New(slog.DiscardHandler)
	}
	def := NewLayouts(opts.Dataset, opts.Version, Layout{}, Layout{})
	if opts.Layouts.Snapshot == nil {
		opts.Layouts.Snapshot = def.Snapshot
	}
	if opts.Layouts.Changes == nil {
		opts.Layouts.Changes = def.Changes
	}
	opts.Decoder = append([]spoc.DecoderOption{spoc.WithDataset(opts.Dataset)}, opts.Decoder...)
	return opts
}

// run is one Run: what it checks the day against, and the figures of its
// last attempt for the metrics.
type run struct {
	opts      Options
	in        *instruments
	log       *slog.Logger
	dir       string
	names     Names
	startedAt time.Time

	lock         *lease
	h            history
	baselineTime time.Duration
	last         *attemptFigures // of the last attempt, for the metrics
}

// history is what a run is checked against: the newest earlier whole
// snapshot and the manifest already published for the same day, if any;
// with Options.Outputs.Changes, the digest of the previous snapshot.
type history struct {
	previousDay       *previousDay // previous is its manifest
	previous, sameDay *Manifest
	baseline          *changes.Baseline
	baselineFrom      string // BaselineFromDigest or BaselineFromParquet
}

// publish takes the day's lock, reads the history, runs the attempts and,
// on success, builds the manifest from the last attempt's result and
// writes it, the last object of the day.
func (r *run) publish(ctx context.Context) (_ *Manifest, _ int64, err error) {
	opts, log := r.opts, r.log
	ctx, r.lock, err = lockDay(ctx, opts, r.dir, r.names.Lock, log)
	if err != nil {
		return nil, 0, err
	}
	defer r.lock.release(ctx)
	defer func() {
		// A lost lock cancels the run: say so rather than "context canceled".
		if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrLockLost) && !errors.Is(err, ErrLockLost) {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
	}()
	if r.h.previousDay, err = r.findPrevious(ctx); err != nil {
		return nil, 0, err
	}
	r.h.previous = r.h.previousDay.manifest
	if p := r.h.previous; p != nil {
		log.InfoContext(ctx, "previous snapshot", "snapshot", p.Snapshot, "records", p.Stats.RecordsWritten, "verified", r.h.previousDay.verified)
	} else {
		log.InfoContext(ctx, "no previous snapshot under the prefix: the first run, no publish guard against an earlier day")
	}
	if opts.Outputs.Changes && r.h.previous != nil {
		var prev sink.ReaderAt
		err := r.in.phase(ctx, "baseline", &r.baselineTime, func(ctx context.Context) (err error) {
			r.h.baseline, prev, r.h.baselineFrom, err = readBaseline(ctx, opts, r.names, r.h.previous, log)
			return err
		})
		if err != nil {
			return nil, 0, err
		}
		// The Baseline reads it again in Finish; it is closed here, at
		// the end of the run, after the last attempt.
		defer prev.Close()
		log.InfoContext(ctx, "read the previous snapshot's digest", "snapshot", r.h.previous.Snapshot, "from", r.h.baselineFrom, "ids", r.h.baseline.Len(), "seconds", r.baselineTime.Seconds())
	}
	if opts.Guards.SkipIfUnchanged {
		name := path.Join(r.dir, r.names.Manifest)
		r.h.sameDay, err = ReadManifest(ctx, opts.Store, name)
		if errors.Is(err, errNotManifest) {
			// The rerun that replaces it must not be refused for it.
			log.WarnContext(ctx, "the day's manifest does not read: publishing over it", "url", opts.Store.URL(name), "error", err.Error())
			err = nil
		}
		if err != nil {
			return nil, 0, err
		}
	}

	var result attemptResult
	attempts := 0
	parent := trace.SpanFromContext(ctx)
	err = opts.Retry.Do(ctx, func(ctx context.Context, n int) error {
		attempts = n
		a := &attempt{run: r, fig: &attemptFigures{}}
		opts.Telemetry.Progress.attemptStarted(n)
		ctx, span := r.in.tracer.Start(ctx, "attempt", trace.WithAttributes(attribute.Int("spoc.attempt", n)))
		var err error
		result, err = a.publish(ctx)
		r.last = a.fig
		outcome := Outcome(err)
		r.in.attempt(ctx, outcome, a.fig.wireBytes, a.fig.bodyBytes)
		span.SetAttributes(attribute.String("spoc.outcome", outcome))
		endSpan(span, err)
		if err != nil {
			parent.AddEvent("attempt failed", trace.WithAttributes(
				attribute.Int("spoc.attempt", n),
				attribute.String("spoc.outcome", outcome),
				attribute.String("exception.message", err.Error())))
		}
		return err
	}, func(n int, err error, wait time.Duration) {
		log.WarnContext(ctx, "attempt failed, retrying", "attempt", n, "error", err.Error(), "retry_in", wait.Round(time.Millisecond).String())
	})
	if err != nil {
		return nil, 0, err
	}
	if c := result.changes; c != nil {
		if c.FirstRun {
			log.InfoContext(ctx, "no previous snapshot: the change table is empty")
		} else {
			log.InfoContext(ctx, "changes since the previous snapshot", "previous", c.Previous,
				"added", c.Added, "removed", c.Removed, "changed", c.Changed, "unchanged", c.Unchanged)
		}
	}
	var m *Manifest
	var manifestBytes int64
	err = r.in.phase(ctx, "manifest", &r.last.publish, func(ctx context.Context) (err error) {
		m, manifestBytes, err = r.commit(ctx, result, attempts)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return m, manifestBytes, nil
}

// manifest is the manifest of a published day, built once, from the
// successful attempt's result and what its swap put at the final names.
func (r *run) manifest(res attemptResult, attempts int, at map[string]sink.ObjectInfo) *Manifest {
	res.parquet.ObjectInfo = at[path.Join(r.dir, r.names.Parquet)]
	if res.changes != nil {
		res.changes.ObjectInfo = at[path.Join(r.dir, r.names.Changes)]
	}
	if info, ok := at[path.Join(r.dir, r.names.Archive)]; ok {
		res.archive = &info
	}
	var digest *sink.ObjectInfo
	if info, ok := at[path.Join(r.dir, r.names.Digest)]; ok {
		digest = &info
	}
	m := &Manifest{
		Snapshot:   r.opts.Day.Format(DateLayout),
		Source:     res.source,
		Parquet:    res.parquet,
		Stats:      res.stats,
		Archive:    res.archive,
		Changes:    res.changes,
		Digest:     digest,
		Forced:     res.forced,
		Attempts:   attempts,
		StartedAt:  r.startedAt,
		FinishedAt: time.Now().UTC(),
		JobVersion: r.opts.Version,
		PassedOver: r.h.previousDay.passedOver,
	}
	if p := r.h.previous; p != nil {
		m.Previous = &Previous{Snapshot: p.Snapshot, Records: p.Stats.RecordsWritten, SHA256: p.Source.SHA256, Verified: r.h.previousDay.verified}
	}
	return m
}
