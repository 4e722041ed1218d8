// Package snapshot publishes one day's SPOC snapshot: it streams the body
// from the source through the decoder into a Parquet object, checks the
// result, commits it, and then writes the manifest that marks the snapshot
// complete.
//
// # Layout
//
// A snapshot lives in one folder per day below the store's prefix:
//
//	{prefix}/{YYYYMMDD}/spoc-list-public.parquet
//	{prefix}/{YYYYMMDD}/spoc-list-public.manifest.json
//
// The manifest is written last. Its presence means the Parquet object
// beside it is complete, and it holds that object's size and CRC32C.
//
// # Failure
//
// The body streams straight into the object, so a failed attempt (a reset,
// a cut body, a 503) aborts its object and a retry starts over; nothing of
// a failed attempt is ever published. If every attempt fails, or the
// result fails a check (too few records, too many dropped), nothing new is
// published and a previous snapshot of the same day is left as it was. If
// the manifest cannot be written, the new Parquet object is deleted again.
package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strconv"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// Object names inside a day's folder.
const (
	ParquetName  = "spoc-list-public.parquet"
	ManifestName = "spoc-list-public.manifest.json"
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

	Version string       // job version, recorded in the manifest and the Parquet footer
	Logger  *slog.Logger // nil: no logs
}

// Manifest describes a published snapshot.
type Manifest struct {
	Snapshot   string      `json:"snapshot"` // YYYYMMDD
	Source     Source      `json:"source"`
	Parquet    ParquetInfo `json:"parquet"`
	Stats      spoc.Stats  `json:"stats"`
	Attempts   int         `json:"attempts"`
	StartedAt  time.Time   `json:"started_at"`
	FinishedAt time.Time   `json:"finished_at"`
	JobVersion string      `json:"job_version"`
}

// Source describes where the body came from.
type Source struct {
	URL          string `json:"url"`
	HTTPStatus   int    `json:"http_status,omitempty"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	WireBytes    int64  `json:"wire_bytes"` // received, before decompression
	BodyBytes    int64  `json:"body_bytes"` // JSON bytes decoded
}

// ParquetInfo describes the published Parquet object.
type ParquetInfo struct {
	sink.ObjectInfo
	Rows      int64 `json:"rows"`
	RowGroups int   `json:"row_groups"`
}

// Run publishes the snapshot of opts.Day and returns its manifest.
func Run(ctx context.Context, opts Options) (*Manifest, error) {
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
	err := opts.Backoff.Do(ctx, func(ctx context.Context, attempt int) error {
		m.Attempts = attempt
		return publishParquet(ctx, opts, parquetName, m)
	}, func(attempt int, err error, wait time.Duration) {
		log.Warn("attempt failed, retrying", "attempt", attempt, "error", err.Error(), "retry_in", wait.Round(time.Millisecond).String())
	})
	if err != nil {
		return nil, err
	}
	m.FinishedAt = time.Now().UTC()
	if err := writeManifest(ctx, opts.Store, path.Join(dir, ManifestName), m); err != nil {
		// Without its manifest the snapshot is incomplete: take the
		// Parquet object back, even if the run's context is done.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := opts.Store.Delete(cleanup, parquetName); derr != nil {
			log.Error("could not remove the Parquet object of an incomplete snapshot", "url", m.Parquet.URL, "error", derr.Error())
		}
		return nil, err
	}
	return m, nil
}

// publishParquet is one attempt: open the source, stream it into a new
// Parquet object, check the result and commit. Any failure aborts the
// object.
func publishParquet(ctx context.Context, opts Options, name string, m *Manifest) error {
	// The body has its own context, so that a failed write can stop a
	// decode that is waiting for the network.
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	body, err := opts.Client.Open(fetchCtx, opts.Source)
	if err != nil {
		return err
	}
	defer body.Close()
	obj, err := opts.Store.NewObject(ctx, name, sink.ParquetContentType)
	if err != nil {
		return err
	}
	defer obj.Abort()
	pw, err := sink.NewParquetWriter(obj, spoc.Schema, opts.Parquet...)
	if err != nil {
		return err
	}
	counted := &countingReader{r: body}
	dec := spoc.NewDecoder(counted, opts.Decoder...)
	defer dec.Release()
	batches := startReadAhead(dec)
	defer func() {
		stopFetch()
		batches.Close()
	}()
	for {
		rec, ok := batches.Next()
		if !ok {
			break
		}
		err := pw.Write(rec)
		rec.Release()
		if err != nil {
			return fmt.Errorf("write %s: %w", obj.URL(), err)
		}
	}
	batches.Close()
	if err := dec.Err(); err != nil {
		return fmt.Errorf("decode %s: %w", body.Source, err)
	}
	stats := dec.Stats()
	if stats.RecordsWritten < opts.MinRecords {
		return fmt.Errorf("%w: the body holds %d usable records, the minimum is %d", ErrTooFewRecords, stats.RecordsWritten, opts.MinRecords)
	}
	if p := stats.DroppedPercent(); p > opts.MaxDroppedPercent {
		return fmt.Errorf("%w: %d of %d records (%.2f%%) have no usable id, the limit is %g%%", ErrTooManyDropped, stats.RecordsDropped, stats.RecordsRead, p, opts.MaxDroppedPercent)
	}
	for _, kv := range [][2]string{
		{"spoc.source_url", body.Source},
		{"spoc.fetched_at", m.StartedAt.Format(time.RFC3339)},
		{"spoc.job_version", opts.Version},
		{"spoc.record_count", strconv.FormatInt(stats.RecordsWritten, 10)},
	} {
		if err := pw.SetMetadata(kv[0], kv[1]); err != nil {
			return fmt.Errorf("write %s: %w", obj.URL(), err)
		}
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("write %s: %w", obj.URL(), err)
	}
	info, err := obj.Commit()
	if err != nil {
		return err
	}
	m.Source = Source{
		URL:          body.Source,
		HTTPStatus:   body.StatusCode,
		ETag:         body.ETag,
		LastModified: body.LastModified,
		WireBytes:    body.WireBytes(),
		BodyBytes:    counted.n,
	}
	m.Parquet = ParquetInfo{ObjectInfo: info, Rows: pw.Rows(), RowGroups: pw.RowGroups()}
	m.Stats = stats
	return nil
}

func writeManifest(ctx context.Context, store sink.Store, name string, m *Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	obj, err := store.NewObject(ctx, name, "application/json")
	if err != nil {
		return err
	}
	defer obj.Abort()
	if _, err := obj.Write(append(data, '\n')); err != nil {
		return err
	}
	_, err = obj.Commit()
	return err
}

type countingReader struct {
	r interface{ Read([]byte) (int, error) }
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
