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
// With Options.DetectChanges, a run compares its records with the
// previous snapshot (the newest earlier day with a manifest) using package
// changes, and writes the change table in the day's changes/ folder. The first run
// under a prefix writes an empty change table and says so in the
// manifest (changes.first_run).
//
// # Failure
//
// The body streams straight into the object, so a failed attempt (a reset,
// a cut body, a 503) aborts its object and a retry starts over; nothing of
// a failed attempt is ever published. If every attempt fails, or the
// result fails a check (too few records, too many dropped), nothing new is
// published and a previous snapshot of the same day is left as it was. If
// the manifest cannot be written, the new Parquet object is deleted again.
//
// # Lock
//
// A run holds the day's lock (LockName), a lease it renews while it runs,
// so that two runs of one day never mix their objects; a second run fails
// with ErrBusy before fetching. A run killed outright leaves its lock: a
// rerun takes it over once the lease runs out, or at once when the holder
// is known to be gone (Options.Execution, a dead process of this host),
// and first removes what the killed run left in the day's folder. A run
// that loses its lock stops with ErrLockLost.
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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// Object names inside a day's folder.
const (
	ParquetName  = "spoc-list-public.parquet"
	ManifestName = "spoc-list-public.manifest.json"
	ArchiveName  = "spoc-list-public.json.gz" // the raw body, gzip-compressed
	// ChangesName is in a folder of its own, out of the snapshots' glob.
	ChangesName = "changes/spoc-list-public.changes.parquet"
	RejectedDir = "rejected" // where a refused run's raw body goes
)

// DateLayout is the layout of a day's folder name.
const DateLayout = "20060102"

// Dir is the folder of the snapshot of day below prefix.
func Dir(prefix string, day time.Time) string {
	return path.Join(prefix, day.Format(DateLayout))
}

// Errors of a result that must not be published.
var (
	ErrTooFewRecords  = errors.New("too few records")
	ErrTooManyDropped = errors.New("too many records dropped")
)

// Options is what Run needs.
type Options struct {
	Source string       // URL of the endpoint, or a saved body (path or file:// URL)
	Client *spoc.Client // fetches Source
	Store  sink.Store
	Prefix string    // folder of all snapshots inside Store
	Day    time.Time // the snapshot's day; only its calendar date is used

	Backoff spoc.Backoff
	Decoder []spoc.DecoderOption
	Parquet []sink.ParquetOption

	MinRecords        int64   // fewer written records fail the run
	MaxDroppedPercent float64 // a larger share of dropped records fails the run

	// MaxDropPercent refuses a body with that many percent fewer records
	// than the previous snapshot (ErrRecordsFell); Force publishes anyway.
	MaxDropPercent float64
	Force          bool
	// ArchiveRaw keeps the body as received (after transfer decoding),
	// gzip-compressed, as ArchiveName beside the snapshot, or under
	// RejectedDir when the run is refused.
	ArchiveRaw bool
	// DetectChanges compares the records with the previous snapshot and
	// writes the change table (ChangesName) beside the snapshot.
	DetectChanges bool
	// SkipIfUnchanged makes a rerun of a day whose manifest records the
	// same body SHA-256 publish nothing and return ErrUnchanged.
	SkipIfUnchanged bool
	// LockLease is how long the day's lock (LockName) holds against
	// other runs without being renewed; the run renews it every third of
	// that. Zero means DefaultLockLease.
	LockLease time.Duration
	// Execution identifies the execution this run is an attempt of, the
	// same for its retries (on Cloud Run, CLOUD_RUN_EXECUTION): a lock
	// held under the same Execution was left by an earlier attempt that
	// is over, and is taken over at once. Empty outside such a platform.
	Execution string

	Version string       // job version, recorded in the manifest and the Parquet footer
	Logger  *slog.Logger // nil: no logs

	// MeterProvider and TracerProvider receive the run's metrics (the
	// Metric* names) and its spans: one per attempt, with its phases as
	// children, under the span of ctx. Nil means none.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// Progress, if not nil, is kept up to date while the run goes on.
	Progress *Progress
}

// Manifest describes a published snapshot.
type Manifest struct {
	Snapshot string      `json:"snapshot"` // YYYYMMDD
	Source   Source      `json:"source"`
	Parquet  ParquetInfo `json:"parquet"`
	Stats    spoc.Stats  `json:"stats"`
	// Archive is the raw body (ArchiveName), when Options.ArchiveRaw.
	Archive *sink.ObjectInfo `json:"archive,omitempty"`
	// Changes is the change table (ChangesName) and its summary, when
	// Options.DetectChanges.
	Changes *ChangesInfo `json:"changes,omitempty"`
	// Previous is the snapshot the publish guard compared with; nil on
	// the first run ever. Forced says the guard was overridden.
	Previous   *Previous `json:"previous,omitempty"`
	Forced     bool      `json:"forced,omitempty"`
	Attempts   int       `json:"attempts"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	JobVersion string    `json:"job_version"`
}

// Source describes where the body came from.
type Source struct {
	URL          string `json:"url"`
	HTTPStatus   int    `json:"http_status,omitempty"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	WireBytes    int64  `json:"wire_bytes"` // received, before decompression
	BodyBytes    int64  `json:"body_bytes"` // JSON bytes decoded
	SHA256       string `json:"sha256"`     // of the body bytes, after transfer decoding
}

// ParquetInfo describes the published Parquet object.
type ParquetInfo struct {
	sink.ObjectInfo
	Rows      int64 `json:"rows"`
	RowGroups int   `json:"row_groups"`
}

// ChangesInfo describes the published change table.
type ChangesInfo struct {
	sink.ObjectInfo
	Rows int64 `json:"rows"`
	changes.Summary
}

// Run publishes the snapshot of opts.Day and returns its manifest.
func Run(ctx context.Context, opts Options) (*Manifest, error) {
	in, err := newInstruments(opts.MeterProvider, opts.TracerProvider)
	if err != nil {
		return nil, fmt.Errorf("snapshot metrics: %w", err)
	}
	start := time.Now()
	t := &attemptFigures{}
	m, manifestBytes, err := run(ctx, opts, in, &t)
	outcome := OutcomeSuccess
	switch {
	case errors.Is(err, ErrUnchanged):
		outcome = OutcomeUnchanged
	case err != nil:
		outcome = OutcomeFailure
	}
	in.phases(ctx, outcome, t, time.Since(start), opts.DetectChanges)
	if err != nil {
		return nil, err
	}
	in.published(ctx, m, manifestBytes)
	return m, nil
}

// run is Run without the run's metrics. It leaves the figures of the last
// attempt in *t.
func run(ctx context.Context, opts Options, in *instruments, t **attemptFigures) (_ *Manifest, _ int64, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manifest{
		Snapshot:   opts.Day.Format(DateLayout),
		StartedAt:  time.Now().UTC(),
		JobVersion: opts.Version,
	}
	dir := Dir(opts.Prefix, opts.Day)
	parquetName := path.Join(dir, ParquetName)
	ctx, release, err := lockDay(ctx, opts, dir, log)
	if err != nil {
		return nil, 0, err
	}
	defer release()
	defer func() {
		// A lost lock cancels the run: say so rather than "context canceled".
		if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrLockLost) && !errors.Is(err, ErrLockLost) {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
	}()
	h := history{}
	if h.previous, err = findPrevious(ctx, opts.Store, opts.Prefix, opts.Day); err != nil {
		return nil, 0, err
	}
	if h.previous != nil {
		m.Previous = &Previous{Snapshot: h.previous.Snapshot, Records: h.previous.Stats.RecordsWritten, SHA256: h.previous.Source.SHA256}
		log.InfoContext(ctx, "previous snapshot", "snapshot", h.previous.Snapshot, "records", h.previous.Stats.RecordsWritten)
	} else {
		log.InfoContext(ctx, "no previous snapshot under the prefix: the first run, no publish guard against an earlier day")
	}
	var baselineTime time.Duration
	if opts.DetectChanges && h.previous != nil {
		start := time.Now()
		bctx, span := in.tracer.Start(ctx, "baseline")
		var prev sink.ReaderAt
		h.baseline, prev, err = readBaseline(bctx, opts.Store, opts.Prefix, h.previous)
		endSpan(span, err)
		baselineTime = time.Since(start)
		if err != nil {
			return nil, 0, err
		}
		// The Baseline reads it again in Finish; it is closed here, at
		// the end of the run, after the last attempt.
		defer prev.Close()
		log.InfoContext(ctx, "read the previous snapshot's digest", "snapshot", h.previous.Snapshot, "ids", h.baseline.Len(), "seconds", baselineTime.Seconds())
	}
	if opts.SkipIfUnchanged {
		if h.sameDay, err = ReadManifest(ctx, opts.Store, path.Join(dir, ManifestName)); err != nil {
			return nil, 0, err
		}
	}
	parent := trace.SpanFromContext(ctx)
	err = opts.Backoff.Do(ctx, func(ctx context.Context, attempt int) error {
		m.Attempts = attempt
		*t = &attemptFigures{}
		opts.Progress.start(attempt)
		ctx, span := in.tracer.Start(ctx, "attempt", trace.WithAttributes(attribute.Int("spoc.attempt", attempt)))
		err := publishParquet(ctx, opts, in, *t, parquetName, m, h)
		outcome := attemptOutcome(err)
		in.attempt(ctx, outcome, (*t).wireBytes, (*t).bodyBytes)
		span.SetAttributes(attribute.String("spoc.outcome", outcome))
		endSpan(span, err)
		if err != nil {
			parent.AddEvent("attempt failed", trace.WithAttributes(
				attribute.Int("spoc.attempt", attempt),
				attribute.String("spoc.outcome", outcome),
				attribute.String("exception.message", err.Error())))
		}
		return err
	}, func(attempt int, err error, wait time.Duration) {
		log.WarnContext(ctx, "attempt failed, retrying", "attempt", attempt, "error", err.Error(), "retry_in", wait.Round(time.Millisecond).String())
	})
	(*t).changes += baselineTime
	if err != nil {
		return nil, 0, err
	}
	if c := m.Changes; c != nil {
		if c.FirstRun {
			log.InfoContext(ctx, "no previous snapshot: the change table is empty")
		} else {
			log.InfoContext(ctx, "changes since the previous snapshot", "previous", c.Previous,
				"added", c.Added, "removed", c.Removed, "changed", c.Changed, "unchanged", c.Unchanged)
		}
	}
	m.FinishedAt = time.Now().UTC()
	start := time.Now()
	mctx, span := in.tracer.Start(ctx, "manifest")
	manifestBytes, err := writeManifest(mctx, opts.Store, path.Join(dir, ManifestName), m)
	endSpan(span, err)
	(*t).publish += time.Since(start)
	if err != nil {
		// Without its manifest the snapshot is incomplete: take back what
		// this run committed (only that: with ArchiveRaw off, an earlier
		// run's archive stays), even if the run's context is done.
		names := []string{parquetName}
		if m.Changes != nil {
			names = append(names, path.Join(dir, ChangesName))
		}
		if m.Archive != nil {
			names = append(names, path.Join(dir, ArchiveName))
		}
		if derr := removeAll(ctx, opts.Store, names); derr != nil {
			log.ErrorContext(ctx, "could not remove an object of an incomplete snapshot", "error", derr.Error())
		}
		return nil, 0, err
	}
	return m, manifestBytes, nil
}

// history is what a run is checked against: the newest earlier snapshot
// and the manifest already published for the same day, if any; with
// Options.DetectChanges, the digest of the previous snapshot.
type history struct {
	previous, sameDay *Manifest
	baseline          *changes.Baseline
}

// publishParquet is one attempt: open the source, stream it into a new
// Parquet object (and the raw archive), check the result and commit. Any
// failure aborts the objects. It fills t with the attempt's bytes and
// phase durations.
func publishParquet(ctx context.Context, opts Options, in *instruments, t *attemptFigures, name string, m *Manifest, h history) error {
	// The body has its own context, so that a failed write can stop a
	// decode that is waiting for the network.
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	start := time.Now()
	_, fetchSpan := in.tracer.Start(ctx, PhaseFetch)
	body, err := opts.Client.Open(fetchCtx, opts.Source)
	t.fetch = time.Since(start)
	endSpan(fetchSpan, err)
	if err != nil {
		return err
	}
	defer body.Close()
	if p := opts.Progress; p != nil {
		p.body.Store(body)
	}
	defer func() { t.wireBytes, t.bodyBytes = body.WireBytes(), body.BodyBytes() }()

	// Every byte the decoder reads is also hashed and, with ArchiveRaw,
	// compressed into the archive: one download, no second pass.
	digest := sha256.New()
	var archive *rawArchive
	tee := io.Writer(digest)
	if opts.ArchiveRaw {
		if archive, err = newRawArchive(ctx, opts.Store, path.Dir(name)); err != nil {
			return err
		}
		defer archive.abort()
		tee = io.MultiWriter(digest, archive)
	}
	source := io.TeeReader(body, tee)

	obj, err := opts.Store.NewObject(ctx, name, sink.ParquetContentType)
	if err != nil {
		return err
	}
	defer obj.Abort()
	pw, err := sink.NewParquetWriter(obj, spoc.Schema, opts.Parquet...)
	if err != nil {
		return err
	}
	var cmp *changes.Comparison
	if h.baseline != nil {
		cmp = h.baseline.NewComparison()
	}
	dec := spoc.NewDecoder(source, opts.Decoder...)
	defer dec.Release()
	_, decodeSpan := in.tracer.Start(ctx, PhaseDecode)
	batches := startReadAhead(dec, &t.decode)
	_, writeSpan := in.tracer.Start(ctx, PhaseWrite)
	stats, err := writeBatches(opts, pw, obj, batches, dec, cmp, body.Source, m, t)
	stopFetch()
	batches.Close()
	endSpan(writeSpan, err)
	endSpan(decodeSpan, dec.Err())
	refused := errors.Is(err, ErrTooFewRecords) || errors.Is(err, ErrTooManyDropped)
	if err != nil && !refused {
		return err
	}
	// The decoder stops at the end of the JSON value: whatever follows
	// (a final newline) still belongs to the body and its archive.
	if _, derr := io.Copy(io.Discard, source); derr != nil {
		return fmt.Errorf("read %s: %w", body.Source, derr)
	}
	sum := hex.EncodeToString(digest.Sum(nil))
	if err == nil {
		m.Forced, err = checkHistory(opts, stats.RecordsWritten, sum, h.sameDay, h.previous)
		refused = errors.Is(err, ErrRecordsFell)
	}
	if refused && archive != nil {
		// Keep the refused body for inspection, never at the final names.
		rejected := path.Join(path.Dir(name), RejectedDir, ArchiveName)
		if info, aerr := archive.publish(ctx, rejected); aerr != nil {
			err = fmt.Errorf("%w (and keeping its raw body failed: %v)", err, aerr)
		} else {
			err = fmt.Errorf("%w; the raw body is kept at %s", err, info.URL)
		}
	}
	if err != nil {
		return err
	}
	var changeTable *sink.Object
	if opts.DetectChanges {
		start := time.Now()
		cctx, span := in.tracer.Start(ctx, PhaseChanges)
		changeTable, m.Changes, err = writeChanges(cctx, opts, cmp, h, path.Join(path.Dir(name), ChangesName))
		endSpan(span, err)
		t.changes += time.Since(start)
		if err != nil {
			return err
		}
		defer changeTable.Abort()
	}

	start = time.Now()
	_, publishSpan := in.tracer.Start(ctx, PhasePublish)
	err = commitAll(ctx, opts.Store, path.Dir(name), obj, changeTable, archive, m)
	t.publish = time.Since(start)
	endSpan(publishSpan, err)
	if err != nil {
		return err
	}
	m.Source = Source{
		SHA256:       sum,
		URL:          body.Source,
		HTTPStatus:   body.StatusCode,
		ETag:         body.ETag,
		LastModified: body.LastModified,
		WireBytes:    body.WireBytes(),
		BodyBytes:    body.BodyBytes(),
	}
	m.Parquet.Rows, m.Parquet.RowGroups = pw.Rows(), pw.RowGroups()
	m.Stats = stats
	return nil
}

// commitAll commits the snapshot, then the change table and the archive
// (either may be nil), and records them in m. If one fails, those already
// committed are deleted again.
func commitAll(ctx context.Context, store sink.Store, dir string, snapshot, changeTable *sink.Object, archive *rawArchive, m *Manifest) error {
	var done []string
	undo := func(err error) error {
		if derr := removeAll(ctx, store, done); derr != nil {
			err = fmt.Errorf("%w (and %v)", err, derr)
		}
		return err
	}
	info, err := snapshot.Commit()
	if err != nil {
		return err
	}
	m.Parquet.ObjectInfo = info
	name := path.Join(dir, ParquetName)
	done = append(done, name)
	if changeTable != nil {
		info, err := changeTable.Commit()
		if err != nil {
			return undo(err)
		}
		m.Changes.ObjectInfo = info
		done = append(done, path.Join(dir, ChangesName))
	}
	if archive != nil {
		info, err := archive.publish(ctx, path.Join(dir, ArchiveName))
		if err != nil {
			return undo(err)
		}
		m.Archive = &info
	}
	return nil
}

// removeAll deletes the objects names, even when ctx is done.
func removeAll(ctx context.Context, store sink.Store, names []string) error {
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var errs []error
	for _, name := range names {
		if err := store.Delete(cleanup, name); err != nil {
			errs = append(errs, fmt.Errorf("removing %s failed: %w", store.URL(name), err))
		}
	}
	return errors.Join(errs...)
}

// readBaseline opens the previous snapshot's Parquet object, checks it is
// the one its manifest describes, and reads its digest.
func readBaseline(ctx context.Context, store sink.Store, prefix string, previous *Manifest) (*changes.Baseline, sink.ReaderAt, error) {
	name := path.Join(prefix, previous.Snapshot, ParquetName)
	f, err := store.NewReaderAt(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("compare with the previous snapshot: %w", err)
	}
	if f.Size() != previous.Parquet.Size {
		f.Close()
		return nil, nil, fmt.Errorf("compare with the previous snapshot: %s holds %d bytes, its manifest says %d", store.URL(name), f.Size(), previous.Parquet.Size)
	}
	base, err := changes.ReadBaseline(ctx, previous.Snapshot, f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("compare with the previous snapshot %s: %w", store.URL(name), err)
	}
	return base, f, nil
}

// writeChanges finishes the comparison cmp (nil on the first run: an empty
// change table) and writes the change table to a new object at name,
// which it returns uncommitted.
func writeChanges(ctx context.Context, opts Options, cmp *changes.Comparison, h history, name string) (*sink.Object, *ChangesInfo, error) {
	result := &changes.Result{Summary: changes.Summary{FirstRun: true}}
	if cmp != nil {
		var err error
		if result, err = cmp.Finish(ctx); err != nil {
			return nil, nil, fmt.Errorf("compare with the previous snapshot: %w", err)
		}
	}
	obj, err := opts.Store.NewObject(ctx, name, sink.ParquetContentType)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*sink.Object, *ChangesInfo, error) {
		obj.Abort()
		return nil, nil, fmt.Errorf("write %s: %w", obj.URL(), err)
	}
	// Not opts.Parquet: its options name the snapshot's columns.
	pw, err := sink.NewParquetWriter(obj, changes.Schema,
		sink.WithDictionary("change", "cert_status_before", "cert_status_after"), sink.WithCreatedBy("mspo-spoc "+opts.Version))
	if err != nil {
		return fail(err)
	}
	if err := result.WriteBatches(pw, memory.DefaultAllocator, 64<<10); err != nil {
		return fail(err)
	}
	if err := pw.SetMetadata("spoc.previous_snapshot", result.Summary.Previous); err != nil {
		return fail(err)
	}
	if err := pw.Close(); err != nil {
		return fail(err)
	}
	return obj, &ChangesInfo{Rows: pw.Rows(), Summary: result.Summary}, nil
}

// writeBatches encodes every batch of the decoder into pw, checks the
// decoder's statistics against the run's limits and closes pw.
func writeBatches(opts Options, pw *sink.ParquetWriter, obj *sink.Object, batches *readAhead, dec *spoc.Decoder, cmp *changes.Comparison, source string, m *Manifest, t *attemptFigures) (spoc.Stats, error) {
	var records *atomic.Int64
	if opts.Progress != nil {
		records = &opts.Progress.records
	}
	for {
		rec, ok := batches.Next()
		if !ok {
			break
		}
		start := time.Now()
		err := pw.Write(rec)
		t.write += time.Since(start)
		if records != nil {
			records.Add(rec.NumRows())
		}
		if err != nil {
			err = fmt.Errorf("write %s: %w", obj.URL(), err)
		} else if cmp != nil {
			start := time.Now()
			if err = cmp.Add(rec); err != nil {
				err = fmt.Errorf("compare with the previous snapshot: %w", err)
			}
			t.changes += time.Since(start)
		}
		rec.Release()
		if err != nil {
			return spoc.Stats{}, err
		}
	}
	batches.Close()
	if err := dec.Err(); err != nil {
		return spoc.Stats{}, fmt.Errorf("decode %s: %w", source, err)
	}
	stats := dec.Stats()
	if stats.RecordsWritten < opts.MinRecords {
		return stats, fmt.Errorf("%w: the body holds %d usable records, the minimum is %d", ErrTooFewRecords, stats.RecordsWritten, opts.MinRecords)
	}
	if p := stats.DroppedPercent(); p > opts.MaxDroppedPercent {
		return stats, fmt.Errorf("%w: %d of %d records (%.2f%%) have no usable id, the limit is %g%%", ErrTooManyDropped, stats.RecordsDropped, stats.RecordsRead, p, opts.MaxDroppedPercent)
	}
	for _, kv := range [][2]string{
		{"spoc.source_url", source},
		{"spoc.fetched_at", m.StartedAt.Format(time.RFC3339)},
		{"spoc.job_version", opts.Version},
		{"spoc.record_count", strconv.FormatInt(stats.RecordsWritten, 10)},
	} {
		if err := pw.SetMetadata(kv[0], kv[1]); err != nil {
			return stats, fmt.Errorf("write %s: %w", obj.URL(), err)
		}
	}
	start := time.Now()
	err := pw.Close()
	t.write += time.Since(start)
	if err != nil {
		return stats, fmt.Errorf("write %s: %w", obj.URL(), err)
	}
	return stats, nil
}

// writeManifest writes m as the object name and returns its size.
func writeManifest(ctx context.Context, store sink.Store, name string, m *Manifest) (int64, error) {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return 0, fmt.Errorf("encode manifest: %w", err)
	}
	obj, err := store.NewObject(ctx, name, "application/json")
	if err != nil {
		return 0, err
	}
	defer obj.Abort()
	if _, err := obj.Write(append(data, '\n')); err != nil {
		return 0, err
	}
	info, err := obj.Commit()
	return info.Size, err
}
