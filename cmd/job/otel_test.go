package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// TestMain lets a test run this test binary as the job itself: with
// runAsJob set, the process is main, exactly as deployed, and exits.
func TestMain(m *testing.M) {
	sink.RegisterZstdCodec() // as main does, for the tests that call run
	if os.Getenv(runAsJob) == "1" {
		installTestResolver()
		code := runProcess()
		reportPeak()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

const runAsJob = "MSPO_SPOC_TEST_RUN_MAIN"

// receiver is a loopback OTLP/HTTP receiver that decodes the protobuf
// export requests it gets.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	metrics []*metricspb.ResourceMetrics
	spans   []*tracepb.ResourceSpans
	raw     [][]byte // every export request's body, as received
}

func startReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want a protobuf body", http.StatusBadRequest)
			return
		}
		var resp proto.Message
		r.mu.Lock()
		defer r.mu.Unlock()
		r.raw = append(r.raw, body)
		switch req.URL.Path {
		case "/v1/metrics":
			var export collectormetrics.ExportMetricsServiceRequest
			err = proto.Unmarshal(body, &export)
			r.metrics = append(r.metrics, export.ResourceMetrics...)
			resp = &collectormetrics.ExportMetricsServiceResponse{}
		case "/v1/traces":
			var export collectortrace.ExportTraceServiceRequest
			err = proto.Unmarshal(body, &export)
			r.spans = append(r.spans, export.ResourceSpans...)
			resp = &collectortrace.ExportTraceServiceResponse{}
		default:
			http.NotFound(w, req)
			return
		}
		if err != nil {
			t.Errorf("%s: %v", req.URL.Path, err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, _ := proto.Marshal(resp)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

// points flattens the received metrics to "name{k=v,...}" -> value (the
// count for a histogram), summed over exports, and the resource attributes.
func (r *receiver) points() (map[string]int64, map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := map[string]int64{}
	res := map[string]string{}
	for _, rm := range r.metrics {
		for _, a := range rm.GetResource().GetAttributes() {
			res[a.Key] = a.GetValue().GetStringValue()
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				add := func(attrs []*commonpb.KeyValue, v int64) { got[m.Name+"{"+kvText(attrs)+"}"] = v }
				switch d := m.Data.(type) {
				case *metricspb.Metric_Sum:
					for _, p := range d.Sum.DataPoints {
						add(p.Attributes, p.GetAsInt())
					}
				case *metricspb.Metric_Gauge:
					for _, p := range d.Gauge.DataPoints {
						add(p.Attributes, p.GetAsInt())
					}
				case *metricspb.Metric_Histogram:
					for _, p := range d.Histogram.DataPoints {
						add(p.Attributes, int64(p.Count))
					}
				}
			}
		}
	}
	return got, res
}

func (r *receiver) spanNames() map[string]*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := map[string]*tracepb.Span{}
	for _, rs := range r.spans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				names[s.Name] = s
			}
		}
	}
	return names
}

// execJob runs this test binary as the job with env, and returns its exit
// status and stderr.
func execJob(t *testing.T, env ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), runAsJob+"=1", "SPOC_LOG_FORMAT=json", "SPOC_RETRY_INITIAL=5ms", "SPOC_RETRY_MAX=20ms")
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// TestJobExportsOTLP runs the real binary against the fake upstream with
// OTLP/HTTP exporters pointed at a loopback receiver, and checks that the
// metrics and spans arrive before the process exits, on success (with the
// manifest's figures) and on failure (with the failure outcome).
func TestJobExportsOTLP(t *testing.T) {
	for _, tc := range []struct {
		name     string
		upstream []spoctest.Option
		wantCode int
	}{
		{"success", []spoctest.Option{spoctest.WithRecords(800), spoctest.WithSeed(5)}, exitOK},
		{"upstream 503 until the attempts run out", []spoctest.Option{spoctest.FailFirst(10, http.StatusServiceUnavailable)}, exitFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := spoctest.NewServer(tc.upstream...)
			defer up.Close()
			recv := startReceiver(t)
			out := t.TempDir()
			code, stderr := execJob(t,
				"SPOC_URL="+up.URL, "SPOC_OUTPUT="+out, "SPOC_ATTEMPTS=2",
				"OTEL_METRICS_EXPORTER=otlp", "OTEL_TRACES_EXPORTER=otlp",
				"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT="+recv.URL,
				"OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=test")
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.wantCode, stderr)
			}
			got, res := recv.points()
			// With -v, what the run exported: the evidence a reader can compare
			// with the manifest by eye.
			for _, k := range slices.Sorted(maps.Keys(got)) {
				t.Logf("exported %s = %d", k, got[k])
			}
			if res["service.name"] != "mspo-spoc" || res["service.namespace"] != "mspo" || res["service.instance.id"] == "" || res["deployment.environment.name"] != "test" {
				t.Errorf("resource %v", res)
			}
			spans := recv.spanNames()
			root, attempt := spans["spoc.run"], spans["attempt"]
			if root == nil || attempt == nil || !bytes.Equal(attempt.TraceId, root.TraceId) {
				t.Fatalf("spans %v, want spoc.run and its attempts", spans)
			}
			// Every log line of the run carries the run's trace.
			traceID := hex.EncodeToString(root.TraceId)
			for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
				if !strings.Contains(line, `"logging.googleapis.com/trace":"`+traceID+`"`) {
					t.Errorf("log line without the run's trace %s: %s", traceID, line)
				}
			}

			if tc.wantCode != exitOK {
				if got["spoc.fetch.attempts{outcome=http_5xx}"] != 2 || got["spoc.run.duration{outcome=failure,phase=total}"] != 1 {
					t.Errorf("points %v", got)
				}
				if _, ok := got["spoc.last_success{}"]; ok {
					t.Error("spoc.last_success exported by a failed run")
				}
				if len(root.Events) != 2 || root.Events[0].Name != "attempt failed" {
					t.Errorf("root span events %v, want one per failed attempt", root.Events)
				}
				return
			}
			manifestData, err := os.ReadFile(filepath.Join(out, testPrefix, today(), snapshot.ManifestName))
			if err != nil {
				t.Fatal(err)
			}
			m := readManifest(t, manifestData)
			var written int64
			for k, v := range got {
				if strings.HasPrefix(k, "spoc.records{") && strings.Contains(k, "outcome=written") {
					written += v
				}
			}
			for name, want := range map[string]int64{
				"spoc.fetch.attempts{outcome=ok}":                1,
				"spoc.download.bytes{stage=body}":                m.Source.BodyBytes,
				"spoc.download.bytes{stage=wire}":                m.Source.WireBytes,
				"spoc.output.bytes{kind=parquet}":                m.Parquet.Size,
				"spoc.output.bytes{kind=manifest}":               int64(len(manifestData)),
				"spoc.duplicate_ids{}":                           m.Stats.DuplicateIDs,
				"spoc.last_success{}":                            m.FinishedAt.Unix(),
				"spoc.run.duration{outcome=success,phase=total}": 1,
			} {
				if got[name] != want {
					t.Errorf("%s = %d, want %d (the manifest's)", name, got[name], want)
				}
			}
			if written != m.Stats.RecordsWritten || written != 800-int64(up.Planted().Dropped) {
				t.Errorf("spoc.records written %d, manifest %d", written, m.Stats.RecordsWritten)
			}
			var invalid int64
			for k, v := range got {
				if strings.HasPrefix(k, "spoc.invalid_values{") {
					invalid += v
				}
			}
			if invalid != m.Stats.InvalidValues() || invalid == 0 {
				t.Errorf("spoc.invalid_values %d, manifest %d", invalid, m.Stats.InvalidValues())
			}
		})
	}
}

// TestJobConsoleAndNoneExporters: console prints the metrics on stdout;
// none (the default off Cloud Run) prints and sends nothing.
func TestJobConsoleAndNoneExporters(t *testing.T) {
	up := spoctest.NewServer(spoctest.WithRecords(50))
	defer up.Close()
	for _, tc := range []struct {
		exporter    string
		wantMetrics bool
	}{
		{"console", true},
		{"none", false},
		{"", false},
	} {
		t.Run("exporter="+tc.exporter, func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), runAsJob+"=1", "SPOC_URL="+up.URL, "SPOC_OUTPUT="+t.TempDir(),
				"OTEL_METRICS_EXPORTER="+tc.exporter, "OTEL_TRACES_EXPORTER=none", "CLOUD_RUN_JOB=")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v; stderr:\n%s", err, stderr.String())
			}
			printed := strings.Contains(stdout.String(), `"Name":"spoc.records"`)
			if printed != tc.wantMetrics || (!tc.wantMetrics && stdout.Len() != 0) {
				t.Errorf("stdout (%d bytes) with metrics %v, want %v:\n%.500s", stdout.Len(), printed, tc.wantMetrics, stdout.String())
			}
		})
	}
}

func kvText(attrs []*commonpb.KeyValue) string {
	var kv []string
	for _, a := range attrs {
		kv = append(kv, a.Key+"="+a.GetValue().GetStringValue())
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}
