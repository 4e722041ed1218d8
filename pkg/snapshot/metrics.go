package snapshot

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/fetch"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// instrumentationName names the meter and the tracer of this package.
const instrumentationName = "github.com/calee-data/mspo-spoc/pkg/snapshot"

// Metric names of the SPOC dataset, as a data engineer would search for
// them in a backend. Another dataset's are the same with its name in
// place of "spoc" (MetricName).
const (
	MetricRecords       = "spoc.records"
	MetricInvalidValues = "spoc.invalid_values"
	MetricDuplicateIDs  = "spoc.duplicate_ids"
	MetricDownloadBytes = "spoc.download.bytes"
	MetricOutputBytes   = "spoc.output.bytes"
	MetricFetchAttempts = "spoc.fetch.attempts"
	MetricRunDuration   = "spoc.run.duration"
	MetricLastSuccess   = "spoc.last_success"
	// Changes since the previous snapshot (Options.Outputs.Changes).
	MetricChanges           = "spoc.changes"
	MetricStatusTransitions = "spoc.status_transitions"
	// The schema contract of the published body: the fields it has that
	// the dataset does not declare, by field; the declared fields it
	// lacks, by field; each column's share of rows with a value.
	MetricUndeclaredFields = "spoc.fields.undeclared"
	MetricMissingFields    = "spoc.fields.missing"
	MetricColumnFilled     = "spoc.column.non_null_ratio"
	// The geolocation layer's account of the last published snapshot's
	// plots (Options.Outputs.Geo), by check: the GeoInfo.Account fields
	// by their JSON names.
	MetricGeoPlots = "spoc.geo.plots"
)

// Phases of spoc.run.duration. Decode and write overlap: the decoder fills
// the next batch while the writer encodes the current one.
const (
	PhaseFetch   = "fetch"   // from the request to the response headers
	PhaseDecode  = "decode"  // time the decoder spent producing batches
	PhaseWrite   = "write"   // time spent encoding Parquet and writing the object
	PhasePublish = "publish" // committing the objects and writing the manifest
	PhaseChanges = "changes" // reading the previous snapshot, comparing and writing the change table
	PhaseGeo     = "geo"     // reading the staged snapshot back and writing the geolocation layer
	PhaseTotal   = "total"   // the whole run, retries and their waits included
)

// Outcomes of a run, and of an attempt besides the fetch.Failure* kinds.
const (
	OutcomeSuccess   = "success"
	OutcomeFailure   = "failure"
	OutcomeOK        = "ok"
	OutcomeRejected  = "rejected"  // too few records, too many dropped, fell or a column collapsed against the previous day
	OutcomeUnchanged = "unchanged" // a rerun from the same body: nothing published
)

// instruments are the run's metrics. Every figure they record is taken
// from the manifest or from the attempt's body, the same figures the
// manifest reports, so the two cannot drift apart.
type instruments struct {
	records       metric.Int64Counter
	invalidValues metric.Int64Counter
	duplicateIDs  metric.Int64Gauge
	downloadBytes metric.Int64Counter
	outputBytes   metric.Int64Counter
	fetchAttempts metric.Int64Counter
	runDuration   metric.Float64Histogram
	lastSuccess   metric.Int64Gauge
	changes       metric.Int64Counter
	transitions   metric.Int64Counter
	undeclared    metric.Int64Gauge
	missing       metric.Int64Gauge
	filled        metric.Float64Gauge
	geoPlots      metric.Int64Gauge
	tracer        trace.Tracer
}

// MetricName is the name of metric (one of the Metric* names) for ds:
// "spoc.records" becomes "osh.records" for spoc.OSH.
func MetricName(ds *spoc.Dataset, metric string) string {
	return ds.Name + strings.TrimPrefix(metric, "spoc")
}

func newInstruments(mp metric.MeterProvider, tp trace.TracerProvider, ds *spoc.Dataset) (*instruments, error) {
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	m := mp.Meter(instrumentationName)
	in := &instruments{tracer: tp.Tracer(instrumentationName)}
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var err error
	in.records, err = m.Int64Counter(MetricName(ds, MetricRecords), metric.WithUnit("{record}"),
		metric.WithDescription("Records of a published snapshot: written (by cert_status) and dropped (by reason)."))
	add(err)
	in.invalidValues, err = m.Int64Counter(MetricName(ds, MetricInvalidValues), metric.WithUnit("{value}"),
		metric.WithDescription("Values present in the source but unusable, stored as null, by column and reason."))
	add(err)
	in.duplicateIDs, err = m.Int64Gauge(MetricName(ds, MetricDuplicateIDs), metric.WithUnit("{record}"),
		metric.WithDescription("Written rows whose entity_smallholder_id repeats an earlier row's, in the last published snapshot."))
	add(err)
	in.downloadBytes, err = m.Int64Counter(MetricName(ds, MetricDownloadBytes), metric.WithUnit("By"),
		metric.WithDescription("Bytes of the source received: on the wire (stage=wire) and after decompression (stage=body), every attempt included."))
	add(err)
	in.outputBytes, err = m.Int64Counter(MetricName(ds, MetricOutputBytes), metric.WithUnit("By"),
		metric.WithDescription("Bytes of the objects published, by kind (parquet, manifest, archive, changes, versions, geo)."))
	add(err)
	in.fetchAttempts, err = m.Int64Counter(MetricName(ds, MetricFetchAttempts), metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts to fetch, decode and write the snapshot, by outcome."))
	add(err)
	in.runDuration, err = m.Float64Histogram(MetricName(ds, MetricRunDuration), metric.WithUnit("s"),
		metric.WithDescription("Duration of the run and of its phases (of the last attempt), by phase and outcome."),
		metric.WithExplicitBucketBoundaries(0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 2700))
	add(err)
	in.lastSuccess, err = m.Int64Gauge(MetricName(ds, MetricLastSuccess), metric.WithUnit("s"),
		metric.WithDescription("Unix time of the last published snapshot; alert when it is too old."))
	add(err)
	in.changes, err = m.Int64Counter(MetricName(ds, MetricChanges), metric.WithUnit("{record}"),
		metric.WithDescription("Plots added, removed or changed since the previous snapshot, by kind."))
	add(err)
	in.transitions, err = m.Int64Counter(MetricName(ds, MetricStatusTransitions), metric.WithUnit("{record}"),
		metric.WithDescription("Changed plots whose cert_status differs from the previous snapshot's, by from and to."))
	add(err)
	in.undeclared, err = m.Int64Gauge(MetricName(ds, MetricUndeclaredFields), metric.WithUnit("{occurrence}"),
		metric.WithDescription("Occurrences, in the last published body, of a field the dataset does not declare, by field (a new or renamed upstream field)."))
	add(err)
	in.missing, err = m.Int64Gauge(MetricName(ds, MetricMissingFields), metric.WithUnit("{field}"),
		metric.WithDescription("Declared fields that no record of the last published body had: 1 by field."))
	add(err)
	in.filled, err = m.Float64Gauge(MetricName(ds, MetricColumnFilled), metric.WithUnit("1"),
		metric.WithDescription("Share of the rows of the last published snapshot with a value, by column."))
	add(err)
	in.geoPlots, err = m.Int64Gauge(MetricName(ds, MetricGeoPlots), metric.WithUnit("{record}"),
		metric.WithDescription("Plots of the last published snapshot by geolocation check: plots, with_point, without_point, outside_malaysia, fewer_than_6_decimals, sharing_a_point, over_4_ha."))
	add(err)
	return in, errors.Join(errs...)
}

// attempt records one attempt's outcome and the bytes it received.
func (in *instruments) attempt(ctx context.Context, outcome string, wireBytes, bodyBytes int64) {
	in.fetchAttempts.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
	in.downloadBytes.Add(ctx, wireBytes, metric.WithAttributes(attribute.String("stage", "wire")))
	in.downloadBytes.Add(ctx, bodyBytes, metric.WithAttributes(attribute.String("stage", "body")))
}

// published records the figures of a published snapshot's manifest.
func (in *instruments) published(ctx context.Context, m *Manifest, manifestBytes int64) {
	s := m.Stats
	for _, status := range slices.Sorted(maps.Keys(s.RecordsByCertStatus)) {
		in.records.Add(ctx, s.RecordsByCertStatus[status], metric.WithAttributes(
			attribute.String("outcome", "written"), attribute.String("cert_status", status)))
	}
	for _, reason := range slices.Sorted(maps.Keys(s.DroppedByReason)) {
		in.records.Add(ctx, s.DroppedByReason[reason], metric.WithAttributes(
			attribute.String("outcome", "dropped"), attribute.String("reason", reason)))
	}
	for _, column := range slices.Sorted(maps.Keys(s.Columns)) {
		invalid := s.Columns[column].Invalid
		for _, reason := range slices.Sorted(maps.Keys(invalid)) {
			in.invalidValues.Add(ctx, invalid[reason], metric.WithAttributes(
				attribute.String("column", column), attribute.String("reason", reason)))
		}
	}
	in.duplicateIDs.Record(ctx, s.DuplicateIDs)
	for _, f := range s.UndeclaredFields {
		in.undeclared.Record(ctx, f.Count, metric.WithAttributes(attribute.String("field", f.Name)))
	}
	for _, f := range s.MissingFields {
		in.missing.Record(ctx, 1, metric.WithAttributes(attribute.String("field", f)))
	}
	for _, column := range slices.Sorted(maps.Keys(s.Columns)) {
		in.filled.Record(ctx, s.Columns[column].NonNullShare, metric.WithAttributes(attribute.String("column", column)))
	}
	in.outputBytes.Add(ctx, m.Parquet.Size, metric.WithAttributes(attribute.String("kind", "parquet")))
	in.outputBytes.Add(ctx, manifestBytes, metric.WithAttributes(attribute.String("kind", "manifest")))
	if m.Archive != nil {
		in.outputBytes.Add(ctx, m.Archive.Size, metric.WithAttributes(attribute.String("kind", "archive")))
	}
	if v := m.Versions; v != nil {
		in.outputBytes.Add(ctx, v.Size, metric.WithAttributes(attribute.String("kind", "versions")))
	}
	if g := m.Geo; g != nil {
		in.outputBytes.Add(ctx, g.Size, metric.WithAttributes(attribute.String("kind", "geo")))
		for _, c := range g.Account.Checks() {
			in.geoPlots.Record(ctx, c.Plots, metric.WithAttributes(attribute.String("check", c.Name)))
		}
	}
	if c := m.Changes; c != nil {
		in.outputBytes.Add(ctx, c.Size, metric.WithAttributes(attribute.String("kind", "changes")))
		for _, k := range []struct {
			kind string
			n    int64
		}{{changes.Added, c.Added}, {changes.Removed, c.Removed}, {changes.Changed, c.Changed}} {
			in.changes.Add(ctx, k.n, metric.WithAttributes(attribute.String("kind", k.kind)))
		}
		for _, tr := range c.StatusTransitions {
			in.transitions.Add(ctx, tr.Count, metric.WithAttributes(attribute.String("from", tr.From), attribute.String("to", tr.To)))
		}
	}
	in.lastSuccess.Record(ctx, m.FinishedAt.Unix())
}

// phases records the durations of a run that ended with outcome; the
// changes phase only if the run detected changes.
func (in *instruments) phases(ctx context.Context, outcome string, t *attemptFigures, total time.Duration, detectChanges, geoLayer bool) {
	type phase struct {
		phase string
		d     time.Duration
	}
	list := []phase{
		{PhaseFetch, t.fetch},
		{PhaseDecode, time.Duration(t.decode.Load())},
		{PhaseWrite, t.write},
		{PhasePublish, t.publish},
		{PhaseTotal, total},
	}
	if detectChanges {
		list = append(list, phase{PhaseChanges, t.changes})
	}
	if geoLayer {
		list = append(list, phase{PhaseGeo, t.geo})
	}
	for _, p := range list {
		in.runDuration.Record(ctx, p.d.Seconds(), metric.WithAttributes(
			attribute.String("phase", p.phase), attribute.String("outcome", outcome)))
	}
}

// Outcome is the outcome label the spoc.fetch.attempts metric gives an
// attempt that ended with err: OutcomeOK, OutcomeRejected,
// OutcomeUnchanged or a fetch.Failure* kind. A caller that logs why a
// run failed names it so, for the log and the metric to agree.
func Outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrTooFewRecords), errors.Is(err, ErrTooManyDropped), errors.Is(err, ErrRecordsFell), errors.Is(err, ErrColumnCollapsed):
		return OutcomeRejected
	case errors.Is(err, ErrUnchanged):
		return OutcomeUnchanged
	}
	return fetch.FailureKind(err)
}

// phase runs f as a phase named name: a span under ctx (f gets the
// span's context), its duration added to *d, its error the span's status.
func (in *instruments) phase(ctx context.Context, name string, d *time.Duration, f func(ctx context.Context) error) error {
	start := time.Now()
	ctx, span := in.tracer.Start(ctx, name)
	err := f(ctx)
	*d += time.Since(start)
	endSpan(span, err)
	return err
}

// endSpan ends span with err as its status.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
