package telemetry

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
)

func TestExporterDefaults(t *testing.T) {
	for _, tc := range []struct {
		value      string
		onCloudRun bool
		want       string
	}{
		{"", false, ExporterNone},
		{"", true, ExporterGCP},
		{"otlp", true, "otlp"},
		{"none", true, ExporterNone},
		{"console", false, "console"},
	} {
		if got := exporterName(tc.value, tc.onCloudRun); got != tc.want {
			t.Errorf("exporterName(%q, %v) = %q, want %q", tc.value, tc.onCloudRun, got, tc.want)
		}
	}
}

// TestSetupResource: off Cloud Run with no exporter asked for, metrics
// cost nothing (a no-op provider) and the resource names the service, a
// per-execution instance and what OTEL_RESOURCE_ATTRIBUTES adds.
func TestSetupResource(t *testing.T) {
	t.Setenv("CLOUD_RUN_JOB", "")
	t.Setenv("OTEL_METRICS_EXPORTER", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("CLOUD_RUN_EXECUTION", "mspo-spoc-x7k2p")
	t.Setenv("CLOUD_RUN_TASK_INDEX", "0")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
	p, err := Setup(context.Background(), Options{ServiceName: "mspo-spoc", ServiceNamespace: "mspo", ServiceVersion: "v1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	if _, ok := p.Meter.(noop.MeterProvider); !ok || p.MetricsExporter != ExporterNone || p.TracesExporter != ExporterNone {
		t.Errorf("meter %T, exporters %q/%q; want no-op and none", p.Meter, p.MetricsExporter, p.TracesExporter)
	}
	got := map[string]string{}
	for _, kv := range p.Resource.Attributes() {
		got[string(kv.Key)] = kv.Value.String()
	}
	for k, want := range map[string]string{
		"service.name":                "mspo-spoc",
		"service.namespace":           "mspo",
		"service.version":             "v1.2.3",
		"service.instance.id":         "mspo-spoc-x7k2p-0",
		"deployment.environment.name": "test",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	// Spans are recorded even without an exporter, for the logs' trace IDs.
	_, span := p.Tracer.Tracer("test").Start(context.Background(), "run")
	defer span.End()
	if !span.SpanContext().IsValid() {
		t.Error("no trace ID without a trace exporter")
	}
}

func TestSetupBadExporter(t *testing.T) {
	t.Setenv("OTEL_METRICS_EXPORTER", "carrier-pigeon")
	if _, err := Setup(context.Background(), Options{ServiceName: "mspo-spoc"}); err == nil {
		t.Error("Setup accepted an unknown metrics exporter")
	}
}

func TestInstanceIDIsUniqueOffCloudRun(t *testing.T) {
	getenv := func(string) string { return "" }
	if a, b := instanceID(getenv), instanceID(getenv); a == b || len(a) != 16 {
		t.Errorf("instance IDs %q and %q", a, b)
	}
}
