package snapshot_test

import (
	"context"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/calee-data/mspo-spoc/pkg/fetch"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// points flattens collected metrics to "name{k=v,...}" -> value, so a test
// can compare them with a map. Histograms give their count, float gauges
// (ratios) their value in thousandths.
func points(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	key := func(name string, set attribute.Set) string {
		var kv []string
		for _, a := range set.ToSlice() {
			kv = append(kv, string(a.Key)+"="+a.Value.String())
		}
		return name + "{" + strings.Join(kv, ",") + "}"
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range data.DataPoints {
					got[key(m.Name, p.Attributes)] = p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range data.DataPoints {
					got[key(m.Name, p.Attributes)] = p.Value
				}
			case metricdata.Gauge[float64]:
				for _, p := range data.DataPoints {
					got[key(m.Name, p.Attributes)] = int64(math.Round(1000 * p.Value))
				}
			case metricdata.Histogram[float64]:
				for _, p := range data.DataPoints {
					got[key(m.Name, p.Attributes)] = int64(p.Count)
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return got
}

func newTelemetry() (*sdkmetric.ManualReader, *sdkmetric.MeterProvider, *tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	reader := sdkmetric.NewManualReader()
	spans := tracetest.NewSpanRecorder()
	return reader, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		spans, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
}

// TestRunMetrics runs a snapshot against the fake upstream, whose first
// answer is a 503, and checks every metric against what the generator
// planted in the body and what the manifest says.
func TestRunMetrics(t *testing.T) {
	srv := spoctest.NewServer(spoctest.WithRecords(3000), spoctest.WithSeed(11), spoctest.WithDropEvery(500),
		spoctest.FailFirst(1, http.StatusServiceUnavailable))
	defer srv.Close()
	reader, mp, spans, tp := newTelemetry()
	out := t.TempDir()
	store, _ := sink.NewLocal(out)
	opts := options(t, srv.URL, store)
	opts.Retry = fetch.Backoff{Attempts: 2}
	opts.Outputs.Geo = true
	opts.Telemetry.MeterProvider, opts.Telemetry.TracerProvider = mp, tp
	progress := &snapshot.Progress{}
	opts.Telemetry.Progress = progress

	m, err := snapshot.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.Stat(filepath.Join(out, "raw/spoc/20261126", snapshot.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	planted := srv.Planted()

	want := map[string]int64{
		"spoc.fetch.attempts{outcome=http_5xx}": 1,
		"spoc.fetch.attempts{outcome=ok}":       1,
		// The 503 sends no body to decode.
		"spoc.download.bytes{stage=body}":                 srv.Size(),
		"spoc.download.bytes{stage=wire}":                 srv.Size(),
		"spoc.output.bytes{kind=parquet}":                 m.Parquet.Size,
		"spoc.output.bytes{kind=manifest}":                manifest.Size(),
		"spoc.duplicate_ids{}":                            int64(planted.DuplicateIDs),
		"spoc.last_success{}":                             m.FinishedAt.Unix(),
		"spoc.records{outcome=dropped,reason=missing_id}": int64(planted.Dropped),
	}
	for status, n := range planted.ByCertStatus {
		want["spoc.records{cert_status="+status+",outcome=written}"] = int64(n)
	}
	for column, reasons := range planted.Invalid {
		for reason, n := range reasons {
			want["spoc.invalid_values{column="+column+",reason="+reason+"}"] = int64(n)
		}
	}
	for _, phase := range []string{"fetch", "decode", "write", "publish", "geo", "total"} {
		want["spoc.run.duration{outcome=success,phase="+phase+"}"] = 1
	}
	// The geolocation account, as the manifest has it: every written
	// plot, with a point or without.
	if m.Geo == nil {
		t.Fatal("no geolocation layer in the manifest")
	}
	want["spoc.output.bytes{kind=geo}"] = m.Geo.Size
	for _, c := range m.Geo.Account.Checks() {
		want["spoc.geo.plots{check="+c.Name+"}"] = c.Plots
	}
	if a := m.Geo.Account; a.Plots != m.Stats.RecordsWritten || a.WithPoint+a.WithoutPoint != a.Plots || a.WithPoint == 0 || a.WithoutPoint == 0 || m.Geo.Rows != a.Plots {
		t.Errorf("geolocation account %+v of %d rows, for %d records written", a, m.Geo.Rows, m.Stats.RecordsWritten)
	}
	// Each column's share of values, from the planted nulls and invalid
	// values (in thousandths); the generator sends no undeclared field.
	written := int64(planted.Records - planted.Dropped)
	for _, f := range spoc.Schema.Fields() {
		nulls := int64(planted.Nulls[f.Name])
		for _, n := range planted.Invalid[f.Name] {
			nulls += int64(n)
		}
		want["spoc.column.non_null_ratio{column="+f.Name+"}"] = int64(math.Round(1000 * float64(written-nulls) / float64(written)))
	}
	got := points(t, reader)
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			t.Errorf("%s = %d, want %d", k, got[k], want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected point %s = %d", k, got[k])
		}
	}
	// The metrics and the manifest report the same figures.
	if m.Stats.RecordsWritten != int64(planted.Records-planted.Dropped) || m.Source.BodyBytes != srv.Size() {
		t.Errorf("manifest: %d records, %d body bytes; planted %d, served %d", m.Stats.RecordsWritten, m.Source.BodyBytes, planted.Records-planted.Dropped, srv.Size())
	}

	// One span per attempt, the failed one with its error; the phases of
	// the good one below it.
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	attempts := byName["attempt"]
	if len(attempts) != 2 || attempts[0].Status().Code != codes.Error || attempts[1].Status().Code == codes.Error {
		t.Fatalf("attempt spans %v", attempts)
	}
	for _, phase := range []string{"decode", "write", "geo", "publish"} {
		if s := byName[phase]; len(s) != 1 || s[0].Parent().SpanID() != attempts[1].SpanContext().SpanID() {
			t.Errorf("%s spans %v, want one below the second attempt", phase, s)
		}
	}
	if len(byName["fetch"]) != 2 || len(byName["manifest"]) != 1 {
		t.Errorf("fetch spans %d, manifest spans %d", len(byName["fetch"]), len(byName["manifest"]))
	}

	// The progress ends on the published attempt's figures.
	p := progress.Snapshot()
	if p.Attempt != 2 || p.Records != m.Stats.RecordsWritten || p.BodyBytes != srv.Size() || p.WireBytes != srv.Size() {
		t.Errorf("progress %+v, want attempt 2, %d records, %d bytes", p, m.Stats.RecordsWritten, srv.Size())
	}
}

// TestRunMetricsOnFailure: a run whose attempts all fail records its
// attempts and durations with the failure outcome, and no snapshot
// figures: no records, no output, no last success.
func TestRunMetricsOnFailure(t *testing.T) {
	srv := spoctest.NewServer(spoctest.WithRecords(10), spoctest.FailFirst(5, http.StatusBadGateway))
	defer srv.Close()
	reader, mp, _, tp := newTelemetry()
	store, _ := sink.NewLocal(t.TempDir())
	opts := options(t, srv.URL, store)
	opts.Retry = fetch.Backoff{Attempts: 3}
	opts.Telemetry.MeterProvider, opts.Telemetry.TracerProvider = mp, tp
	if _, err := snapshot.Run(context.Background(), opts); err == nil {
		t.Fatal("run succeeded against a failing upstream")
	}
	got := points(t, reader)
	want := map[string]int64{
		"spoc.fetch.attempts{outcome=http_5xx}": 3,
		"spoc.download.bytes{stage=body}":       0,
		"spoc.download.bytes{stage=wire}":       0,
	}
	for _, phase := range []string{"fetch", "decode", "write", "publish", "total"} {
		want["spoc.run.duration{outcome=failure,phase="+phase+"}"] = 1
	}
	if !maps.Equal(got, want) {
		t.Errorf("points:\n got %v\nwant %v", got, want)
	}
}

// TestRunMetricsRejected: a body with too few records is an attempt
// "rejected", not retried, and publishes nothing.
func TestRunMetricsRejected(t *testing.T) {
	srv := spoctest.NewServer(spoctest.WithRecords(5))
	defer srv.Close()
	reader, mp, _, tp := newTelemetry()
	store, _ := sink.NewLocal(t.TempDir())
	opts := options(t, srv.URL, store)
	opts.Retry = fetch.Backoff{Attempts: 3}
	opts.Guards.MinRecords = 100
	opts.Telemetry.MeterProvider, opts.Telemetry.TracerProvider = mp, tp
	if _, err := snapshot.Run(context.Background(), opts); err == nil {
		t.Fatal("published 5 records with a minimum of 100")
	}
	got := points(t, reader)
	if got["spoc.fetch.attempts{outcome=rejected}"] != 1 || got["spoc.download.bytes{stage=body}"] != srv.Size() {
		t.Errorf("points %v", got)
	}
	if _, ok := got["spoc.last_success{}"]; ok {
		t.Error("last_success set by a rejected run")
	}
}
