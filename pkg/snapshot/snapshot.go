// Package snapshot publishes one day's SPOC snapshot: it streams the body
// from the source through the decoder into a Parquet object, checks the
// result, commits it, and then writes the manifest that marks the snapshot
// complete.
//
// # Pipeline
//
// Run takes the day's lock (package transaction), finds the previous
// snapshot, and runs attempts until one succeeds; then it commits that
// attempt's transaction with the manifest. An attempt is a pipeline:
//
//	source   the body, hashed and, with Options.Outputs.Archive, archived as it is read
//	decoder  the records as Arrow batches (package spoc), read ahead
//	outputs  the batches written to the Parquet snapshot and, with
//	         Options.Outputs.Changes, compared with the previous snapshot,
//	         the rows that begin a version written to the versions
//	guards   the checks that refuse a body (checkStats, checkHistory, checkColumns)
//	outputs  the change table, the digest and the removed plots' versions,
//	         written once the guards pass
//	staging  each output's object committed under its hidden staged name
//
// Each output is one stage that ends as one object staged in the
// attempt's transaction. To add an output: give its object a name in
// Names; stage it with tx.Stage where the attempt sets up its outputs
// (attempt.publish), feed it the batches in attempt.writeBatches (or the
// body's bytes in attempt.tee) and finish writing it before tx.Prepare;
// then record what the transaction put at its name, from the map
// run.manifest is given, in the Manifest. The transaction publishes it
// with the others, or not at all.
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
//	{prefix}/{YYYYMMDD}/history/spoc-list-public.versions.parquet  the versions that begin the day
//	{prefix}/{YYYYMMDD}/rejected/spoc-list-public.json.gz          the body of a refused run
//
// The manifest is written last. Its presence means the objects beside it
// are complete, and it holds their sizes and CRC32Cs.
//
// One glob, one table: "{prefix}/*/*.parquet" matches the snapshots and
// nothing else, whatever the number of days, so that queries written
// against it keep working; "{prefix}/*/changes/*.parquet" matches the
// change tables, and "{prefix}/*/history/*.parquet" every version of
// every plot (package history). Partial objects are hidden (a dot and a ".tmp-" suffix)
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
// The day's objects are published together, or not at all, by package
// transaction: each is staged under a hidden name, and the manifest,
// written last, is the commit point. A rerun that fails at any step, or
// dies, leaves the day exactly as it was; the next run of the day
// settles what a dead run left. A reader that goes by the manifest sees
// the previous snapshot whole until the commit point and the new one
// whole from then on.
//
// A run holds the day's lock (LockName), a lease it renews while it runs,
// so that two runs of one day never mix their objects. A run that finds
// the lock held by a run that renews it fails with ErrBusy before
// fetching; one that loses its lock stops with ErrLockLost and touches
// nothing more. Package transaction says when a lock is taken over.
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
	"encoding/json"
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
	"github.com/calee-data/mspo-spoc/pkg/geo"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/transaction"
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
	// VersionsName is the versions that begin the day (package history),
	// in a folder of its own: {prefix}/*/history/*.parquet is the whole
	// history, and no snapshot or change-table glob matches it.
	VersionsName = "history/spoc-list-public.versions.parquet"
	// GeoName is the geolocation layer (package geo), in a folder of its
	// own: {prefix}/*/geo/*.parquet is every day's layer, and the
	// snapshots' glob {prefix}/*/*.parquet does not match it.
	GeoName     = "geo/spoc-list-public.geo.parquet"
	RejectedDir = "rejected" // where a refused run's raw body goes
	// LockName marks a day's folder as being published: it keeps two
	// runs of one day (a manual run during the scheduled one, two
	// backfills) from each publishing part of a snapshot, since GCS
	// preconditions guard each object, not the set of them. It is a
	// transaction lock, which also holds the journal of a publish under
	// way.
	LockName = ".spoc-list-public.lock"
)

// DefaultLockLease is how long a lock holds without renewal unless
// Options.Lock.Lease says otherwise.
const DefaultLockLease = transaction.DefaultLease

// Errors of the day's lock, package transaction's.
var (
	// ErrBusy means another run holds the day's lock: nothing was fetched
	// or published.
	ErrBusy = transaction.ErrBusy
	// ErrLockLost means the run could not renew its lock before the lease
	// ran out, or found it taken over: it stops and publishes nothing
	// more.
	ErrLockLost = transaction.ErrLockLost
)

// Names are the names of a dataset's objects in a day's folder: for
// spoc.SPOC, ParquetName, ManifestName, ArchiveName, ChangesName,
// DigestName, VersionsName, GeoName and LockName.
type Names struct {
	Parquet, Manifest, Archive, Changes, Digest, Versions, Geo, Lock string
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
		Versions: "history/" + o + ".versions.parquet",
		Geo:      "geo/" + o + ".geo.parquet",
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
	// Lock is the timing of the day's lock (LockName) and who holds it;
	// its Logger is Telemetry's.
	Lock transaction.Options

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
	// (ErrColumnCollapsed, a *CollapsedError); Force publishes anyway.
	// With no previous snapshot to compare with, the guard refuses
	// instead a body in which no record written (a record with a usable
	// id) holds a declared field, null or not. A zero CollapseBelowPercent turns the guard off.
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
	// writes the change table (ChangesName) and the versions that begin
	// the day (VersionsName, package history) in the day's folder, and
	// the snapshot's digest (DigestName) for the next day's comparison.
	// Without it, no data object of an earlier day is read to compare
	// with: a run looks at the earlier days' manifests (the publish
	// guards' counts) and locks only, and the previous snapshot is whole
	// when its manifest reads (Previous.Verified is VerifiedManifest).
	// Settling an earlier day's unfinished publish still restores that
	// day's objects, by copies (server-side on GCS, of the files locally).
	Changes bool
	// Geo writes the geolocation layer (GeoName, package geo) of a
	// dataset with a point: the snapshot's points with their checks, read
	// back from the staged snapshot once it is whole, and their account
	// in the manifest. A dataset without a point has none.
	Geo bool
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
	in.phases(ctx, outcome, r.last, time.Since(r.startedAt), opts.Outputs.Changes, r.geoLayer())
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
	if opts.Layouts.Geo == nil {
		opts.Layouts.Geo = def.Geo
	}
	opts.Decoder = append([]spoc.DecoderOption{spoc.WithDataset(opts.Dataset)}, opts.Decoder...)
	return opts
}

// geoLayer says whether the run writes a geolocation layer.
func (r *run) geoLayer() bool { return r.opts.Outputs.Geo && geo.HasLayer(r.opts.Dataset) }

// run is one Run: what it checks the day against, and the figures of its
// last attempt for the metrics.
type run struct {
	opts      Options
	in        *instruments
	log       *slog.Logger
	dir       string
	names     Names
	startedAt time.Time

	day          *transaction.Day
	h            past
	baselineTime time.Duration
	last         *attemptFigures // of the last attempt, for the metrics
}

// past is what a run is checked against: the newest earlier whole
// snapshot and the manifest already published for the same day, if any;
// with Options.Outputs.Changes, the digest of the previous snapshot.
type past struct {
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
	ctx, r.day, err = transaction.Open(ctx, opts.Store, r.dir, r.names.Lock, lockOptions(opts))
	if err != nil {
		return nil, 0, err
	}
	defer r.day.Close(ctx)
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
	// The day's transaction commits the attempt's objects, then writes
	// the manifest built from what landed at their final names.
	var m *Manifest
	var manifestBytes int64
	err = r.in.phase(ctx, "manifest", &r.last.publish, func(ctx context.Context) error {
		return result.tx.Commit(ctx, r.names.Manifest, func(at map[string]sink.ObjectInfo) ([]byte, error) {
			m = r.manifest(result, attempts, at)
			data, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				return nil, fmt.Errorf("encode manifest: %w", err)
			}
			manifestBytes = int64(len(data) + 1)
			return append(data, '\n'), nil
		})
	})
	if err != nil {
		return nil, 0, err
	}
	return m, manifestBytes, nil
}

// lockOptions are the day lock's settings of opts.
func lockOptions(opts Options) transaction.Options {
	o := opts.Lock
	o.Logger = opts.Telemetry.Logger
	return o
}

// manifest is the manifest of a published day, built once, from the
// successful attempt's result and what its transaction put at the final
// names (by their names in the day's folder).
func (r *run) manifest(res attemptResult, attempts int, at map[string]sink.ObjectInfo) *Manifest {
	res.parquet.ObjectInfo = at[r.names.Parquet]
	if res.changes != nil {
		res.changes.ObjectInfo = at[r.names.Changes]
	}
	if res.versions != nil {
		res.versions.ObjectInfo = at[r.names.Versions]
	}
	if res.geo != nil {
		res.geo.ObjectInfo = at[r.names.Geo]
	}
	var archive, digest *sink.ObjectInfo
	if info, ok := at[r.names.Archive]; ok {
		archive = &info
	}
	if info, ok := at[r.names.Digest]; ok {
		digest = &info
	}
	m := &Manifest{
		Snapshot:   r.opts.Day.Format(DateLayout),
		Source:     res.source,
		Parquet:    res.parquet,
		Stats:      res.stats,
		Archive:    archive,
		Changes:    res.changes,
		Versions:   res.versions,
		Geo:        res.geo,
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
