// Package telemetry sets up OpenTelemetry metrics and traces for a
// short-lived batch job, such as a Cloud Run job that runs for minutes and
// exits: exporters chosen by the standard OTEL_* environment variables, a
// resource that tells one execution from the next, and a Shutdown that
// flushes everything before the process ends. A job that exits before its
// periodic reader fires would otherwise export nothing at all.
//
// # Exporters
//
// OTEL_METRICS_EXPORTER and OTEL_TRACES_EXPORTER take "otlp" (with
// OTEL_EXPORTER_OTLP_PROTOCOL "http/protobuf", the default, or "grpc"),
// "console", "none", and "gcp" for Cloud Monitoring and Cloud Trace. Every
// value but "gcp" is handled by the contrib autoexport package, which also
// reads the OTEL_EXPORTER_OTLP_* endpoint, header and timeout variables.
// When a variable is unset the exporter is "gcp" on Cloud Run (CLOUD_RUN_JOB
// is set) and "none" elsewhere, so a laptop run sends nothing anywhere.
//
// Spans are always recorded, even with no trace exporter, so that every log
// line of a run can carry the run's trace ID.
package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	mexporter "github.com/GoogleCloudPlatform/opentelemetry-operations-go/exporter/metric"
	texporter "github.com/GoogleCloudPlatform/opentelemetry-operations-go/exporter/trace"
	"go.opentelemetry.io/contrib/detectors/gcp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Exporter names beside those of autoexport.
const (
	ExporterGCP  = "gcp"
	ExporterNone = "none"
)

// Options describes the service that reports.
type Options struct {
	ServiceName      string // service.name unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise
	ServiceNamespace string
	ServiceVersion   string
}

// Providers are the meter and tracer providers of one run. Shutdown must be
// called on every exit path.
type Providers struct {
	Meter    metric.MeterProvider
	Tracer   trace.TracerProvider
	Resource *resource.Resource
	// MetricsExporter and TracesExporter name the exporters in use.
	MetricsExporter, TracesExporter string
	// Warnings are setup problems that did not stop it, such as a resource
	// that could only partly be detected.
	Warnings []error

	meter  *sdkmetric.MeterProvider // nil when metrics are off
	tracer *sdktrace.TracerProvider
}

// Setup builds the providers. A failure to build an exporter the
// environment asks for is an error: a job told to report somewhere should
// not run silently.
func Setup(ctx context.Context, opts Options) (*Providers, error) {
	getenv := os.Getenv // autoexport reads the process environment too
	p := &Providers{}
	res, err := newResource(ctx, opts, getenv)
	if err != nil {
		// A partly detected resource is still worth reporting with.
		p.Warnings = append(p.Warnings, fmt.Errorf("telemetry resource: %w", err))
	}
	p.Resource = res
	onCloudRun := getenv("CLOUD_RUN_JOB") != ""

	p.MetricsExporter = exporterName(getenv("OTEL_METRICS_EXPORTER"), onCloudRun)
	reader, err := newMetricReader(ctx, p.MetricsExporter)
	if err != nil {
		return nil, fmt.Errorf("metrics exporter %q: %w", p.MetricsExporter, err)
	}
	if reader == nil {
		p.Meter = noop.NewMeterProvider()
	} else {
		p.meter = sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(reader))
		p.Meter = p.meter
	}

	p.TracesExporter = exporterName(getenv("OTEL_TRACES_EXPORTER"), onCloudRun)
	spans, err := newSpanExporter(ctx, p.TracesExporter)
	if err != nil {
		_ = p.Shutdown(ctx)
		return nil, fmt.Errorf("traces exporter %q: %w", p.TracesExporter, err)
	}
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if spans != nil {
		topts = append(topts, sdktrace.WithBatcher(spans))
	}
	p.tracer = sdktrace.NewTracerProvider(topts...)
	p.Tracer = p.tracer
	return p, nil
}

// exporterName is the exporter a variable asks for, or the default.
func exporterName(v string, onCloudRun bool) string {
	switch {
	case v != "":
		return v
	case onCloudRun:
		return ExporterGCP
	default:
		return ExporterNone
	}
}

func newMetricReader(ctx context.Context, name string) (sdkmetric.Reader, error) {
	switch name {
	case ExporterNone:
		return nil, nil
	case ExporterGCP:
		exp, err := mexporter.New(mexporter.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		return sdkmetric.NewPeriodicReader(exp), nil
	}
	// autoexport reads OTEL_METRICS_EXPORTER itself, which holds name.
	return autoexport.NewMetricReader(ctx)
}

func newSpanExporter(ctx context.Context, name string) (sdktrace.SpanExporter, error) {
	switch name {
	case ExporterNone:
		return nil, nil
	case ExporterGCP:
		return texporter.New(texporter.WithContext(ctx))
	}
	return autoexport.NewSpanExporter(ctx)
}

// newResource describes this process: the service, an instance ID unique
// to this execution and task (Cloud Monitoring rejects the points of a new
// execution as out of order if it reuses the previous one's series), the
// Cloud Run job from the GCP detector when running there, and whatever
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES add or override.
func newResource(ctx context.Context, opts Options, getenv func(string) string) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{
		semconv.ServiceName(opts.ServiceName),
		semconv.ServiceInstanceID(instanceID(getenv)),
	}
	if opts.ServiceNamespace != "" {
		attrs = append(attrs, semconv.ServiceNamespace(opts.ServiceNamespace))
	}
	if opts.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(opts.ServiceVersion))
	}
	ropts := []resource.Option{
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(attrs...),
		resource.WithTelemetrySDK(),
	}
	// The detector asks the metadata server, which exists only on Google
	// Cloud: off it, the probe would only cost time.
	if getenv("CLOUD_RUN_JOB") != "" {
		ropts = append(ropts, resource.WithDetectors(gcp.NewDetector()))
	}
	ropts = append(ropts, resource.WithFromEnv())
	res, err := resource.New(ctx, ropts...)
	if res == nil {
		res = resource.Default()
	}
	return res, err
}

// instanceID is the execution and task on Cloud Run, and a random ID
// elsewhere.
func instanceID(getenv func(string) string) string {
	if exec := getenv("CLOUD_RUN_EXECUTION"); exec != "" {
		task := getenv("CLOUD_RUN_TASK_INDEX")
		if task == "" {
			task = "0"
		}
		return exec + "-" + task
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Shutdown exports what is left and stops the providers, within ctx's
// deadline. Call it on every exit path, with a context that is not already
// cancelled (a SIGTERM cancels the run's).
func (p *Providers) Shutdown(ctx context.Context) error {
	var errs []error
	if p.tracer != nil {
		errs = append(errs, p.tracer.Shutdown(ctx)) // exports the spans still queued
	}
	if p.meter != nil {
		errs = append(errs, p.meter.Shutdown(ctx)) // collects and exports once more
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("telemetry shutdown: %w", err)
	}
	return nil
}
