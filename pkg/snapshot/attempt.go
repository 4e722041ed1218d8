package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/fetch"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// attempt is one try at publishing the day: open the source, stream it
// through the decoder into the Parquet object (and the raw archive),
// check the result and commit. Any failure aborts its objects, so a
// retry starts from nothing. Its figures are its own; Run turns the last
// attempt's into metrics.
type attempt struct {
	*run
	fig *attemptFigures
}

// attemptFigures are the bytes received and the phase durations of one
// attempt. decode is written by the read-ahead goroutine.
type attemptFigures struct {
	wireBytes, bodyBytes  int64
	fetch, write, publish time.Duration
	changes               time.Duration // with the previous snapshot's digest, read once per run
	decode                atomic.Int64
}

// attemptResult is what a successful attempt published, from which Run
// builds the manifest.
type attemptResult struct {
	source  Source
	parquet ParquetInfo
	stats   spoc.Stats
	archive *sink.ObjectInfo
	changes *ChangesInfo
	forced  bool
	run     string         // the attempt's id, in its staged names
	staged  []stagedObject // committed under their staged names
}

// publish runs the attempt.
func (a *attempt) publish(ctx context.Context) (attemptResult, error) {
	opts := a.opts
	run := newRunID()
	stage := func(name string) string { return stagedName(path.Join(a.dir, name), run) }
	// The body has its own context, so that a failed write can stop a
	// decode that is waiting for the network.
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	var body *fetch.Body
	err := a.in.phase(fetchCtx, PhaseFetch, &a.fig.fetch, func(ctx context.Context) (err error) {
		body, err = opts.Client.Open(ctx, opts.Source)
		return err
	})
	if err != nil {
		return attemptResult{}, err
	}
	defer body.Close()
	opts.Telemetry.Progress.bodyOpened(body)
	defer func() { a.fig.wireBytes, a.fig.bodyBytes = body.WireBytes(), body.BodyBytes() }()

	// Every byte the decoder reads is also hashed and, with Outputs.Archive,
	// archived: one download, no second pass. A gzip body is archived as
	// received (its SHA-256 is still the decoded body's); any other is
	// compressed into the archive.
	digest := sha256.New()
	var archive *rawArchive
	tee := io.Writer(digest)
	switch {
	case opts.Outputs.Archive && body.Gzipped():
		if archive, err = newGzipArchive(ctx, opts.Store, stage(a.names.Archive)); err != nil {
			return attemptResult{}, err
		}
		defer archive.abort()
		body.TeeGzip(archive)
	case opts.Outputs.Archive:
		if archive, err = newRawArchive(ctx, opts.Store, stage(a.names.Archive)); err != nil {
			return attemptResult{}, err
		}
		defer archive.abort()
		tee = io.MultiWriter(digest, archive)
	}
	source := io.TeeReader(body, tee)

	obj, err := opts.Store.NewObject(ctx, stage(a.names.Parquet), sink.ParquetContentType)
	if err != nil {
		return attemptResult{}, err
	}
	defer obj.Abort()
	pw, err := sink.NewParquetWriter(obj, opts.Dataset.Schema(), opts.Layouts.Snapshot...)
	if err != nil {
		return attemptResult{}, err
	}
	// The comparison builds the day's digest; without a previous
	// snapshot a Digester alone does.
	var cmp *changes.Comparison
	var digester *changes.Digester
	var rows batchAdder
	switch {
	case a.h.baseline != nil:
		cmp = a.h.baseline.NewComparison()
		digester, rows = cmp.Digester(), cmp
	case opts.Outputs.Changes:
		if digester, err = changes.NewDigester(opts.Dataset); err != nil {
			return attemptResult{}, err
		}
		rows = digester
	}
	dec := spoc.NewDecoder(source, opts.Decoder...)
	defer dec.Release()
	_, decodeSpan := a.in.tracer.Start(ctx, PhaseDecode)
	batches := startReadAhead(dec, &a.fig.decode)
	_, writeSpan := a.in.tracer.Start(ctx, PhaseWrite)
	stats, err := a.writeBatches(pw, obj, batches, dec, rows, body)
	// A body refused for its content is read to its end for the
	// archive; any other failure stops the download.
	refusedContent := err != nil && contentFailure(err)
	if !refusedContent {
		stopFetch()
	}
	batches.Close()
	endSpan(writeSpan, err)
	endSpan(decodeSpan, dec.Err())
	refused := refusedContent || errors.Is(err, ErrTooFewRecords) || errors.Is(err, ErrTooManyDropped)
	if err != nil && !refused {
		return attemptResult{}, err
	}
	// The decoder stops at the end of the JSON value, or at the error in
	// a refused body: whatever follows (a final newline, the rest of the
	// body) still belongs to the body and its archive, up to the cap.
	maxBody := dec.MaxBodyBytes()
	_, derr := io.Copy(io.Discard, io.LimitReader(source, max(0, maxBody-body.BodyBytes())+1))
	switch {
	case derr != nil && err == nil:
		return attemptResult{}, fmt.Errorf("read %s: %w", body.Source, derr)
	case derr != nil:
		return attemptResult{}, fmt.Errorf("%w (and reading the rest of its raw body failed: %v)", err, derr)
	case refusedContent && body.BodyBytes() > maxBody:
		return attemptResult{}, fmt.Errorf("%w (its raw body is not kept: larger than %d bytes)", err, maxBody)
	}
	res := attemptResult{stats: stats, run: run}
	sum := hex.EncodeToString(digest.Sum(nil))
	if err == nil {
		res.forced, err = checkHistory(opts.Guards, stats.RecordsWritten, sum, a.h.sameDay, a.h.previous)
		refused = errors.Is(err, ErrRecordsFell)
	}
	if err == nil {
		var forced bool
		forced, err = checkColumns(opts.Guards, opts.Dataset, stats, a.h.previous)
		res.forced = res.forced || forced
		refused = errors.Is(err, ErrColumnCollapsed)
	}
	if refused && archive != nil {
		// Keep the refused body for inspection, never at the final names.
		rejected := path.Join(a.dir, RejectedDir, a.names.Archive)
		if info, aerr := archive.publish(ctx, rejected); aerr != nil {
			err = fmt.Errorf("%w (and keeping its raw body failed: %v)", err, aerr)
		} else {
			err = fmt.Errorf("%w; the raw body is kept at %s", err, info.URL)
		}
	}
	if err != nil {
		return attemptResult{}, err
	}
	var changeTable, digestObj *sink.Object
	if opts.Outputs.Changes {
		err := a.in.phase(ctx, PhaseChanges, &a.fig.changes, func(ctx context.Context) (err error) {
			if changeTable, res.changes, err = writeChanges(ctx, opts, cmp, stage(a.names.Changes)); err != nil {
				return err
			}
			res.changes.BaselineFrom = a.h.baselineFrom
			digestObj, err = writeDigest(ctx, opts, digester, stage(a.names.Digest))
			return err
		})
		if changeTable != nil {
			defer changeTable.Abort()
		}
		if err != nil {
			return attemptResult{}, err
		}
		defer digestObj.Abort()
	}
	err = a.in.phase(ctx, PhasePublish, &a.fig.publish, func(ctx context.Context) error {
		return a.stageAll(ctx, obj, []namedObject{{a.names.Changes, changeTable}, {a.names.Digest, digestObj}}, archive, &res)
	})
	if err != nil {
		return attemptResult{}, err
	}
	res.source = Source{
		SHA256:       sum,
		URL:          body.Source,
		RequestedURL: body.Requested,
		HTTPStatus:   body.StatusCode,
		ETag:         body.ETag,
		LastModified: body.LastModified,
		WireBytes:    body.WireBytes(),
		BodyBytes:    body.BodyBytes(),
	}
	res.parquet.Rows, res.parquet.RowGroups = pw.Rows(), pw.RowGroups()
	return res, nil
}

// contentFailure reports whether err is the decoder's refusal of the
// body's content, which every attempt would meet again: malformed JSON,
// no records array, a key past the value cap, more records than the
// record cap. A cut body, a failed read
// and a body past its size cap are not.
func contentFailure(err error) bool {
	if se := (*spoc.SyntaxError)(nil); errors.As(err, &se) {
		return !se.Truncated
	}
	return errors.Is(err, spoc.ErrNoResults) || errors.Is(err, spoc.ErrValueTooLong) || errors.Is(err, spoc.ErrTooManyRecords)
}

// stageAll commits the snapshot, then the others (the change table and
// the digest; nil ones are skipped) and the archive (nil: none), under
// their staged names, and records them in res. If one fails, those
// already staged are deleted again.
func (a *attempt) stageAll(ctx context.Context, snapshot *sink.Object, others []namedObject, archive *rawArchive, res *attemptResult) error {
	add := func(name string, info sink.ObjectInfo, err error) error {
		if err != nil {
			return errors.Join(err, dropStaged(ctx, a.opts.Store, res.staged))
		}
		res.staged = append(res.staged, stagedObject{name: path.Join(a.dir, name), staged: info, path: stagedName(path.Join(a.dir, name), res.run)})
		return nil
	}
	info, err := snapshot.Commit()
	if err := add(a.names.Parquet, info, err); err != nil {
		return err
	}
	for _, o := range others {
		if o.obj == nil {
			continue
		}
		info, err := o.obj.Commit()
		if err := add(o.name, info, err); err != nil {
			return err
		}
	}
	if archive != nil {
		info, err := archive.commit()
		if err := add(a.names.Archive, info, err); err != nil {
			return err
		}
	}
	return nil
}

// namedObject is an object of the day and its name in the day's folder.
type namedObject struct {
	name string
	obj  *sink.Object
}

// batchAdder takes the snapshot's batches as they are written: a
// changes.Comparison, or a changes.Digester on a first run.
type batchAdder interface {
	Add(rec arrow.RecordBatch) error
}

// writeBatches encodes every batch of the decoder into pw (and hands it
// to rows, if not nil), checks the decoder's statistics against the
// run's limits and closes pw.
func (a *attempt) writeBatches(pw *sink.ParquetWriter, obj *sink.Object, batches *readAhead, dec *spoc.Decoder, rows batchAdder, body *fetch.Body) (spoc.Stats, error) {
	source := body.Source
	opts := a.opts
	for {
		rec, ok := batches.Next()
		if !ok {
			break
		}
		start := time.Now()
		err := pw.Write(rec)
		a.fig.write += time.Since(start)
		opts.Telemetry.Progress.wrote(rec.NumRows())
		if err != nil {
			err = fmt.Errorf("write %s: %w", obj.URL(), err)
		} else if rows != nil {
			start := time.Now()
			if err = rows.Add(rec); err != nil {
				err = fmt.Errorf("compare with the previous snapshot: %w", err)
			}
			a.fig.changes += time.Since(start)
		}
		rec.Release()
		if err != nil {
			return spoc.Stats{}, err
		}
	}
	batches.Close()
	if err := dec.Err(); err != nil {
		if body.Saved() && fetch.FailureKind(err) == fetch.FailureReset {
			// A saved body that ends before its JSON does stays cut:
			// another attempt would read the same bytes.
			return spoc.Stats{}, fmt.Errorf("decode: %w", &fetch.BodyError{Source: body.Source, Err: err})
		}
		return spoc.Stats{}, fmt.Errorf("decode %s: %w", source, err)
	}
	stats := dec.Stats()
	if err := checkStats(opts.Guards, stats); err != nil {
		return stats, err
	}
	footer := [][2]string{
		{"spoc.source_url", source},
		{"spoc.fetched_at", a.startedAt.Format(time.RFC3339)},
		{"spoc.job_version", opts.Version},
		{"spoc.record_count", strconv.FormatInt(stats.RecordsWritten, 10)},
	}
	if body.Requested != "" {
		footer = append(footer, [2]string{"spoc.requested_url", body.Requested})
	}
	for _, kv := range footer {
		if err := pw.SetMetadata(kv[0], kv[1]); err != nil {
			return stats, fmt.Errorf("write %s: %w", obj.URL(), err)
		}
	}
	start := time.Now()
	err := pw.Close()
	a.fig.write += time.Since(start)
	if err != nil {
		return stats, fmt.Errorf("write %s: %w", obj.URL(), err)
	}
	return stats, nil
}
