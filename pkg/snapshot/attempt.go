package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/fetch"
	"github.com/calee-data/mspo-spoc/pkg/geo"
	"github.com/calee-data/mspo-spoc/pkg/history"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/transaction"
)

// attempt is one try at publishing the day: a pipeline from the source
// to the day's transaction (see publish). Any failure aborts its
// transaction, so a retry starts from nothing. Its figures are its own;
// Run turns the last attempt's into metrics.
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
	geo                   time.Duration
	decode                atomic.Int64
}

// attemptResult is what a successful attempt staged, from which Run
// builds the manifest.
type attemptResult struct {
	source   Source
	parquet  ParquetInfo
	stats    spoc.Stats
	changes  *ChangesInfo
	versions *VersionsInfo
	geo      *GeoInfo
	forced   bool
	tx       *transaction.Tx // its objects, prepared: Run commits them with the manifest
}

// publish runs the attempt, one stage after the other:
//
//	source   the body, hashed (and archived) as the decoder reads it
//	decoder  its records as Arrow batches, read ahead on a goroutine
//	outputs  the batches written to the Parquet snapshot and compared
//	         with the previous snapshot; the body's bytes to the archive
//	guards   the checks that refuse a body (an archive is set aside)
//	outputs  written after the guards: the change table and the digest,
//	         and the geolocation layer from the snapshot read back
//	staging  each output's object committed under its staged name
//
// Every output writes one object staged in the attempt's transaction
// (tx.Stage); Run commits the transaction with the manifest.
func (a *attempt) publish(ctx context.Context) (_ attemptResult, err error) {
	tx := a.day.Begin()
	defer func() {
		if err != nil {
			tx.Abort()
		}
	}()
	// The body has its own context, so that a failed write can stop a
	// decode that is waiting for the network.
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	body, err := a.open(fetchCtx)
	if err != nil {
		return attemptResult{}, err
	}
	defer body.Close()
	defer func() { a.fig.wireBytes, a.fig.bodyBytes = body.WireBytes(), body.BodyBytes() }()

	snap, err := a.newSnapshot(ctx, tx)
	if err != nil {
		return attemptResult{}, err
	}
	src, err := a.tee(ctx, tx, body)
	if err != nil {
		return attemptResult{}, err
	}
	defer src.stop()
	cmp, err := a.newComparison(ctx, tx)
	if err != nil {
		return attemptResult{}, err
	}
	points, err := a.newPoints()
	if err != nil {
		return attemptResult{}, err
	}
	stats, refused, err := a.decode(ctx, src, snap, cmp, points, stopFetch)
	if err != nil && !refused {
		return attemptResult{}, err
	}
	res := attemptResult{stats: stats, tx: tx, source: src.describe()}
	if err == nil {
		res.forced, refused, err = a.guard(stats, res.source.SHA256)
	}
	if refused {
		err = a.setAside(ctx, tx, src.archive, err)
	}
	if err != nil {
		return attemptResult{}, err
	}
	if cmp != nil {
		if res.changes, res.versions, err = a.writeComparison(ctx, tx, cmp); err != nil {
			return attemptResult{}, err
		}
	}
	if points != nil {
		if res.geo, err = a.writeGeo(ctx, tx, points); err != nil {
			return attemptResult{}, err
		}
	}
	err = a.in.phase(ctx, PhasePublish, &a.fig.publish, func(ctx context.Context) error {
		if src.archive != nil {
			if err := src.archive.finish(); err != nil {
				return err
			}
		}
		return tx.Prepare(ctx)
	})
	if err != nil {
		return attemptResult{}, err
	}
	res.parquet.Rows, res.parquet.RowGroups = snap.pw.Rows(), snap.pw.RowGroups()
	return res, nil
}

// open opens the body (the fetch phase).
func (a *attempt) open(ctx context.Context) (*fetch.Body, error) {
	var body *fetch.Body
	err := a.in.phase(ctx, PhaseFetch, &a.fig.fetch, func(ctx context.Context) (err error) {
		body, err = a.opts.Client.Open(ctx, a.opts.Source)
		return err
	})
	if err != nil {
		return nil, err
	}
	a.opts.Telemetry.Progress.bodyOpened(body)
	return body, nil
}

// parquetOutput is the snapshot being written: its staged object and
// the Parquet writer on it.
type parquetOutput struct {
	obj *sink.Object
	pw  *sink.ParquetWriter
}

// newSnapshot stages the snapshot's Parquet object.
func (a *attempt) newSnapshot(ctx context.Context, tx *transaction.Tx) (parquetOutput, error) {
	opts := a.opts
	obj, err := tx.Stage(ctx, a.names.Parquet, sink.ParquetContentType)
	if err != nil {
		return parquetOutput{}, err
	}
	pw, err := sink.NewParquetWriter(obj, opts.Dataset.Schema(), opts.Layouts.Snapshot...)
	return parquetOutput{obj: obj, pw: pw}, err
}

// source is the body as the decoder reads it: every byte is also hashed
// and, with Outputs.Archive, archived: one download, no second pass.
type source struct {
	body    *fetch.Body
	r       io.Reader
	digest  hash.Hash
	archive *rawArchive // nil without Outputs.Archive
}

// tee sets up the outputs of the body's bytes. A gzip body is archived
// as received (its SHA-256 is still the decoded body's); any other is
// compressed into the archive.
func (a *attempt) tee(ctx context.Context, tx *transaction.Tx, body *fetch.Body) (*source, error) {
	src := &source{body: body, digest: sha256.New()}
	tee := io.Writer(src.digest)
	if a.opts.Outputs.Archive {
		obj, err := tx.Stage(ctx, a.names.Archive, "application/gzip")
		if err != nil {
			return nil, err
		}
		if body.Gzipped() {
			src.archive = newGzipArchive(obj)
			body.TeeGzip(src.archive)
		} else {
			if src.archive, err = newRawArchive(obj); err != nil {
				return nil, err
			}
			tee = io.MultiWriter(src.digest, src.archive)
		}
	}
	src.r = io.TeeReader(body, tee)
	return src, nil
}

// stop ends the archive's writer, if any.
func (s *source) stop() {
	if s.archive != nil {
		s.archive.stop()
	}
}

// describe is the manifest's account of the body read.
func (s *source) describe() Source {
	body := s.body
	return Source{
		SHA256:       hex.EncodeToString(s.digest.Sum(nil)),
		URL:          body.Source,
		RequestedURL: body.Requested,
		HTTPStatus:   body.StatusCode,
		ETag:         body.ETag,
		LastModified: body.LastModified,
		WireBytes:    body.WireBytes(),
		BodyBytes:    body.BodyBytes(),
	}
}

// comparison compares the day's batches with the previous snapshot as
// they are written, builds the day's digest, and writes the versions
// that begin the day: the outputs of Options.Outputs.Changes. The
// versions are staged as the batches come; the change table and the
// digest after the guards.
type comparison struct {
	cmp      *changes.Comparison // nil on a first run: a Digester alone
	digester *changes.Digester
	versions parquetOutput
	writer   *history.Writer
}

// newComparison is the comparison with the previous snapshot, with the
// versions object staged in tx; nil without Options.Outputs.Changes.
func (a *attempt) newComparison(ctx context.Context, tx *transaction.Tx) (*comparison, error) {
	var c comparison
	switch {
	case a.h.baseline != nil:
		c.cmp = a.h.baseline.NewComparison()
		c.digester = c.cmp.Digester()
	case a.opts.Outputs.Changes:
		d, err := changes.NewDigester(a.opts.Dataset)
		if err != nil {
			return nil, err
		}
		c.digester = d
	default:
		return nil, nil
	}
	obj, err := tx.Stage(ctx, a.names.Versions, sink.ParquetContentType)
	if err != nil {
		return nil, err
	}
	pw, err := sink.NewParquetWriter(obj, history.Schema(a.opts.Dataset), a.opts.Layouts.Versions...)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", obj.URL(), err)
	}
	c.versions = parquetOutput{obj: obj, pw: pw}
	c.writer = history.NewWriter(pw, a.opts.Dataset, a.opts.Day)
	return &c, nil
}

// Add takes one batch of the snapshot.
func (c *comparison) Add(rec arrow.RecordBatch) error {
	if c.cmp != nil {
		return c.cmp.Add(rec)
	}
	return c.digester.Add(rec)
}

// writeVersions writes the rows of rec, the batch last given to Add,
// that begin a version of their plot.
func (c *comparison) writeVersions(rec arrow.RecordBatch) error {
	versions := c.digester.Versions()
	if c.cmp != nil {
		versions = c.cmp.Versions()
	}
	if err := c.writer.Write(rec, versions); err != nil {
		return fmt.Errorf("write %s: %w", c.versions.obj.URL(), err)
	}
	return nil
}

// writeComparison writes the change table and the digest to their
// staged objects, and the removed plots' versions before it closes the
// versions object (the changes phase).
func (a *attempt) writeComparison(ctx context.Context, tx *transaction.Tx, c *comparison) (info *ChangesInfo, versions *VersionsInfo, err error) {
	err = a.in.phase(ctx, PhaseChanges, &a.fig.changes, func(ctx context.Context) error {
		if info, err = writeChanges(ctx, tx, a.opts, c.cmp, a.names.Changes, c.writer.WriteRemoved); err != nil {
			return err
		}
		info.BaselineFrom = a.h.baselineFrom
		if err := c.versions.pw.Close(); err != nil {
			return fmt.Errorf("write %s: %w", c.versions.obj.URL(), err)
		}
		versions = &VersionsInfo{Rows: c.writer.Rows()}
		return writeDigest(ctx, tx, a.opts, c.digester, a.names.Digest)
	})
	return info, versions, err
}

// decode streams the body through the decoder into the outputs, and
// then reads what follows the JSON value. refused says err refuses the
// body on its content or its counts: the body was read to its end, for
// the archive to keep.
func (a *attempt) decode(ctx context.Context, src *source, snap parquetOutput, cmp *comparison, points *pointCount, stopFetch func()) (_ spoc.Stats, refused bool, err error) {
	opts, body := a.opts, src.body
	dec := spoc.NewDecoder(src.r, opts.Decoder...)
	defer dec.Release()
	_, decodeSpan := a.in.tracer.Start(ctx, PhaseDecode)
	batches := startReadAhead(dec, &a.fig.decode)
	_, writeSpan := a.in.tracer.Start(ctx, PhaseWrite)
	stats, err := a.writeBatches(snap, batches, dec, cmp, points, body)
	// A body refused for its content is read to its end for the
	// archive; any other failure stops the download.
	refusedContent := err != nil && contentFailure(err)
	if !refusedContent {
		stopFetch()
	}
	batches.Close()
	endSpan(writeSpan, err)
	endSpan(decodeSpan, dec.Err())
	refused = refusedContent || errors.Is(err, ErrTooFewRecords) || errors.Is(err, ErrTooManyDropped)
	if err != nil && !refused {
		return stats, false, err
	}
	// The decoder stops at the end of the JSON value, or at the error in
	// a refused body: whatever follows (a final newline, the rest of the
	// body) still belongs to the body and its archive, up to the cap.
	maxBody := dec.MaxBodyBytes()
	_, derr := io.Copy(io.Discard, io.LimitReader(src.r, max(0, maxBody-body.BodyBytes())+1))
	switch {
	case derr != nil && err == nil:
		return stats, false, fmt.Errorf("read %s: %w", body.Source, derr)
	case derr != nil:
		return stats, false, fmt.Errorf("%w (and reading the rest of its raw body failed: %v)", err, derr)
	case refusedContent && body.BodyBytes() > maxBody:
		return stats, false, fmt.Errorf("%w (its raw body is not kept: larger than %d bytes)", err, maxBody)
	}
	return stats, refused, err
}

// guard checks the snapshot against the history: the publish guards.
// refused says err refuses the body (ErrRecordsFell, ErrColumnCollapsed);
// forced that a guard was overridden.
func (a *attempt) guard(stats spoc.Stats, sum string) (forced, refused bool, err error) {
	forced, err = checkHistory(a.opts.Guards, stats.RecordsWritten, sum, a.h.sameDay, a.h.previous)
	if err != nil {
		return forced, errors.Is(err, ErrRecordsFell), err
	}
	collapsed, err := checkColumns(a.opts.Guards, a.opts.Dataset, stats, a.h.previous)
	return forced || collapsed, errors.Is(err, ErrColumnCollapsed), err
}

// setAside keeps the refused body's archive (nil: none) for inspection,
// under RejectedDir, never at the final names, and returns the refusal
// err saying where it is.
func (a *attempt) setAside(ctx context.Context, tx *transaction.Tx, archive *rawArchive, err error) error {
	if archive == nil {
		return err
	}
	rejected := path.Join(RejectedDir, a.names.Archive)
	info, aerr := sink.ObjectInfo{}, archive.finish()
	if aerr == nil {
		info, aerr = tx.SetAside(ctx, a.names.Archive, rejected)
	}
	if aerr != nil {
		return fmt.Errorf("%w (and keeping its raw body failed: %v)", err, aerr)
	}
	return fmt.Errorf("%w; the raw body is kept at %s", err, info.URL)
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

// writeBatches encodes every batch of the decoder into the snapshot (and
// hands it to the comparison, if not nil), checks the decoder's
// statistics against the run's limits and closes the Parquet writer.
func (a *attempt) writeBatches(snap parquetOutput, batches *readAhead, dec *spoc.Decoder, rows *comparison, points *pointCount, body *fetch.Body) (spoc.Stats, error) {
	source, pw, obj := body.Source, snap.pw, snap.obj
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
			} else {
				err = rows.writeVersions(rec)
			}
			a.fig.changes += time.Since(start)
		}
		if err == nil && points != nil {
			start := time.Now()
			err = points.points.Add(rec)
			a.fig.geo += time.Since(start)
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
	if points != nil {
		points.decimals = dec.CoordinateDecimals()
	}
	if err := checkStats(opts.Guards, opts.Dataset, stats); err != nil {
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

// pointCount is what the geolocation layer needs of the decoded body:
// the plots at each point, counted as the batches go by, and each row's
// coordinate decimal places, which only the decoder saw.
type pointCount struct {
	points   *geo.Points
	decimals []uint8
}

// newPoints starts counting the points, or is nil without a layer.
func (a *attempt) newPoints() (*pointCount, error) {
	if !a.geoLayer() {
		return nil, nil
	}
	points, err := geo.NewPoints(a.opts.Dataset)
	if err != nil {
		return nil, err
	}
	return &pointCount{points: points}, nil
}

// writeGeo writes the geolocation layer (the geo phase): the staged
// snapshot, whole, is read back, its point's and carried columns only,
// and each row written with its checks, in the snapshot's order. Reading
// it back keeps the run's memory to the nine bytes a plot the point
// counts and the decimal places take, where keeping the rows for the
// layer would take some forty.
func (a *attempt) writeGeo(ctx context.Context, tx *transaction.Tx, pc *pointCount) (info *GeoInfo, err error) {
	ds := a.opts.Dataset
	err = a.in.phase(ctx, PhaseGeo, &a.fig.geo, func(ctx context.Context) error {
		snap, err := tx.Open(ctx, a.names.Parquet)
		if err != nil {
			return fmt.Errorf("read back %s: %w", a.names.Parquet, err)
		}
		defer snap.Close()
		obj, err := tx.Stage(ctx, a.names.Geo, sink.ParquetContentType)
		if err != nil {
			return err
		}
		pw, err := sink.NewParquetWriter(obj, geo.Schema(ds), a.opts.Layouts.Geo...)
		if err != nil {
			return fmt.Errorf("write %s: %w", obj.URL(), err)
		}
		w, err := geo.NewWriter(pw, ds, pc.points, pc.decimals)
		if err != nil {
			return err
		}
		if err := writeLayer(ctx, snap, geo.SnapshotColumns(ds), w, pw); err != nil {
			return fmt.Errorf("write %s from %s: %w", obj.URL(), a.names.Parquet, err)
		}
		if err := w.Check(); err != nil {
			return err
		}
		md, err := w.Metadata()
		if err == nil {
			err = pw.SetMetadata(geo.MetadataKey, md)
		}
		if err == nil {
			err = pw.Close()
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", obj.URL(), err)
		}
		info = &GeoInfo{Rows: w.Rows(), Account: w.Account()}
		return nil
	})
	return info, err
}

// writeLayer writes the layer of the snapshot snap to pw: the snapshot is
// read and each batch's layer rows made (w.Batch) on one goroutine, and
// encoded into pw on this one, so that the two overlap as the decoder
// and the snapshot's encoder do. Only this goroutine writes to the
// store.
func writeLayer(ctx context.Context, snap sink.ReaderAt, cols []string, w *geo.Writer, pw *sink.ParquetWriter) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	// Unbuffered: two batches at most are alive, the one being made and
	// the one being encoded.
	batches := make(chan arrow.RecordBatch)
	read := make(chan error, 1)
	go func() {
		defer close(batches)
		read <- readColumns(ctx, snap, cols, func(rec arrow.RecordBatch) error {
			out, err := w.Batch(rec)
			if err != nil {
				return err
			}
			select {
			case batches <- out:
				return nil
			case <-ctx.Done():
				out.Release()
				return ctx.Err()
			}
		})
	}()
	var werr error
	for out := range batches {
		if werr == nil {
			if werr = pw.Write(out); werr != nil {
				stop() // the reader stops at its next batch
			}
		}
		out.Release()
	}
	if rerr := <-read; werr == nil {
		return rerr
	}
	return werr
}
