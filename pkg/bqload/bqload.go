// Package bqload loads a published day into native BigQuery tables: one
// load job for each of the day's committed objects, from its gs:// URL
// into its table's partition of that day (table$YYYYMMDD), replacing the
// partition (WRITE_TRUNCATE). Loading a day again replaces exactly that
// day, so a failed load is repaired by loading the day once more, and
// nothing has to remember which days were loaded.
//
// The tables are made beforehand (deploy/bigquery.tf): ingestion-time
// partitioned by day, so that the objects, which hold no date column,
// land in the day named by the decorator. A load never creates a table.
package bqload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/api/option"
)

// ErrLoad is what every failed load wraps, whatever failed: the request,
// the job, its row count, or the time allowed.
var ErrLoad = errors.New("BigQuery load failed")

// Object is one committed object of a day and the table it is loaded
// into. Rows is the object's row count, from its manifest: a load job
// that reports another count fails.
type Object struct {
	Table string // table ID in the dataset, without a decorator
	URI   string // gs://bucket/name
	Rows  int64
}

// Options configure a Loader.
type Options struct {
	// Dataset is PROJECT.DATASET: the tables' dataset, and the project
	// the load jobs run in (and are billed to).
	Dataset string
	// Endpoint replaces the BigQuery API's base URL (ParseEndpoint);
	// empty is Google's.
	Endpoint string
	// Timeout bounds each Load, its requests and its jobs' waits: the
	// client library retries a 5xx answer for as long as its context
	// lasts.
	Timeout time.Duration
	// Timeout's setting, named in the error when it passes.
	TimeoutSetting string
	Logger         *slog.Logger
	// MeterProvider receives the loads' metrics (MetricLoads and
	// MetricLoadDuration, each prefixed with the list's name). Nil means
	// none.
	MeterProvider metric.MeterProvider
}

// Metric names, after the list's name: spoc.bigquery.loads.
const (
	MetricLoads        = "bigquery.loads"
	MetricLoadDuration = "bigquery.load.duration"
)

// Outcomes of a load in MetricLoads.
const (
	OutcomeLoaded = "loaded"
	OutcomeFailed = "failed"
)

// Loader runs the load jobs of days, with one client.
type Loader struct {
	client         *bigquery.Client
	dataset        string
	timeout        time.Duration
	timeoutSetting string
	log            *slog.Logger
	meter          metric.Meter
}

// ParseDataset splits PROJECT.DATASET. A project ID is 6 to 30 lower-case
// letters, digits and hyphens (a domain-scoped one has a "domain:"
// before it); a dataset ID letters, digits and underscores.
func ParseDataset(s string) (project, dataset string, err error) {
	project, dataset, ok := strings.Cut(s, ".")
	// A domain-scoped project ID (example.com:project) holds a dot.
	if i := strings.LastIndex(s, "."); ok && strings.Contains(s[:i], ":") {
		project, dataset = s[:i], s[i+1:]
	}
	switch {
	case !ok:
		return "", "", fmt.Errorf("%q is not PROJECT.DATASET", s)
	case !projectID.MatchString(project):
		return "", "", fmt.Errorf("%q is not a project ID (6 to 30 lower-case letters, digits and hyphens, starting with a letter)", project)
	case len(dataset) > 1024 || !datasetID.MatchString(dataset):
		return "", "", fmt.Errorf("%q is not a dataset ID (letters, digits and underscores, at most 1024)", dataset)
	}
	return project, dataset, nil
}

var (
	projectID = regexp.MustCompile(`^([a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	datasetID = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

// ParseEndpoint checks a BigQuery API endpoint and returns it as the
// client's base URL, with the API's path (/bigquery/v2/) added when it
// has none. An https endpoint gets the default credentials. Plain http
// is taken only on a loopback address (a test server), and gets none: a
// token sent in the clear could be read by anyone on the path.
func ParseEndpoint(endpoint string) (base string, credentials bool, err error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		// Not quoted: what does not parse may hold a password.
		return "", false, errors.New("not a URL such as https://bigquery.googleapis.com")
	}
	if u.Host == "" || u.Opaque != "" {
		return "", false, fmt.Errorf("%q is not a URL such as https://bigquery.googleapis.com", u.Redacted())
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", false, fmt.Errorf("%q holds a user, a query or a fragment: give only a scheme, a host, a port and a path", u.Redacted())
	}
	switch u.Scheme {
	case "https":
		credentials = true
	case "http":
		if !loopback(u.Hostname()) {
			return "", false, fmt.Errorf("%q: plain http is only for a test server on a loopback address (127.0.0.1, ::1, localhost): elsewhere the job's credentials would cross the network unencrypted; use https", u.Redacted())
		}
	default:
		return "", false, fmt.Errorf("%q: want https://", u.Redacted())
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/bigquery/v2/"
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u.String(), credentials, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// New makes a Loader for opts.Dataset. It makes no request.
func New(ctx context.Context, opts Options) (*Loader, error) {
	project, dataset, err := ParseDataset(opts.Dataset)
	if err != nil {
		return nil, err
	}
	var clientOpts []option.ClientOption
	if opts.Endpoint != "" {
		base, credentials, err := ParseEndpoint(opts.Endpoint)
		if err != nil {
			return nil, err
		}
		clientOpts = append(clientOpts, option.WithEndpoint(base))
		if !credentials {
			clientOpts = append(clientOpts, option.WithoutAuthentication())
		}
	}
	client, err := bigquery.NewClient(ctx, project, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("BigQuery client: %w", err)
	}
	mp := opts.MeterProvider
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Loader{
		client:         client,
		dataset:        dataset,
		timeout:        opts.Timeout,
		timeoutSetting: opts.TimeoutSetting,
		log:            log,
		meter:          mp.Meter("github.com/calee-data/mspo-spoc/pkg/bqload"),
	}, nil
}

// Close releases the client.
func (l *Loader) Close() error { return l.client.Close() }

// LoadError is a load of one object that failed.
type LoadError struct {
	Table string // with its day's decorator
	URI   string
	Job   string // the job's ID, empty when it was not created
	Err   error
}

func (e *LoadError) Error() string {
	job := ""
	if e.Job != "" {
		job = " (job " + e.Job + ")"
	}
	return fmt.Sprintf("load %s into %s%s: %v", e.URI, e.Table, job, e.Err)
}

func (e *LoadError) Unwrap() []error { return []error{ErrLoad, e.Err} }

// Load loads each object into its table's partition of day, replacing
// the partition, and waits for every job. The jobs run side by side; a
// failed one does not stop the others, and the error joins every
// failure (each a *LoadError). When the time allowed passes, the jobs
// still running are asked to cancel, so that none lands after a later
// load of the same day. list names the metrics (spoc.bigquery.loads).
func (l *Loader) Load(ctx context.Context, list string, day time.Time, objects []Object) error {
	loads, err := l.meter.Int64Counter(list+"."+MetricLoads, metric.WithUnit("{load}"),
		metric.WithDescription("Load jobs of a published day into BigQuery, by table and outcome."))
	if err != nil {
		return fmt.Errorf("BigQuery metrics: %w", err)
	}
	duration, err := l.meter.Float64Histogram(list+"."+MetricLoadDuration, metric.WithUnit("s"),
		metric.WithDescription("Time from starting a day's load jobs until the last ended, by outcome."),
		metric.WithExplicitBucketBoundaries(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200))
	if err != nil {
		return fmt.Errorf("BigQuery metrics: %w", err)
	}
	start := time.Now()
	if l.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, l.timeout, fmt.Errorf("the BigQuery load timeout of %s (%s) passed: %w", l.timeout, l.timeoutSetting, context.DeadlineExceeded))
		defer cancel()
	}
	partition := day.Format("20060102")
	var (
		jobs []pendingLoad
		errs []error
	)
	fail := func(s pendingLoad, err error) {
		e := &LoadError{Table: s.table, URI: s.obj.URI, Err: err}
		if s.job != nil {
			e.Job = s.job.ID()
		}
		errs = append(errs, e)
		loads.Add(ctx, 1, metric.WithAttributes(attribute.String("table", s.obj.Table), attribute.String("outcome", OutcomeFailed)))
	}
	for _, obj := range objects {
		s := pendingLoad{obj: obj, table: obj.Table + "$" + partition}
		if err := ctx.Err(); err != nil {
			fail(s, fmt.Errorf("not started: %w", err))
			continue
		}
		ref := bigquery.NewGCSReference(obj.URI)
		ref.SourceFormat = bigquery.Parquet
		// A Parquet LIST (the change table's changed_columns) becomes a
		// REPEATED column, not a record of list.element.
		ref.ParquetOptions = &bigquery.ParquetOptions{EnableListInference: true}
		loader := l.client.Dataset(l.dataset).Table(s.table).LoaderFrom(ref)
		loader.WriteDisposition = bigquery.WriteTruncate
		loader.CreateDisposition = bigquery.CreateNever
		// A job version that adds a column, or makes one optional, still
		// loads: a partition's load may widen its table's schema.
		loader.SchemaUpdateOptions = []string{"ALLOW_FIELD_ADDITION", "ALLOW_FIELD_RELAXATION"}
		loader.Labels = map[string]string{"list": list, "day": partition}
		// Named for what it loads, in BigQuery's job history; the random
		// suffix keeps a rerun's ID new, and a retried insert's the same.
		loader.JobIDConfig = bigquery.JobIDConfig{JobID: "load_" + obj.Table + "_" + partition, AddJobIDSuffix: true}
		job, err := loader.Run(ctx)
		if err != nil {
			fail(s, fmt.Errorf("start the job: %w", err))
			continue
		}
		s.job = job
		jobs = append(jobs, s)
	}
	for i, s := range jobs {
		status, err := s.job.Wait(ctx)
		if err == nil {
			err = status.Err()
		}
		if err != nil {
			if ctx.Err() != nil {
				cancelJobs(context.WithoutCancel(ctx), jobs[i:])
				for _, s := range jobs[i:] {
					fail(s, err)
				}
				break
			}
			fail(s, err)
			continue
		}
		var rows int64 = -1
		if st, ok := status.Statistics.Details.(*bigquery.LoadStatistics); ok {
			rows = st.OutputRows
		}
		if rows != s.obj.Rows {
			fail(s, fmt.Errorf("the job loaded %d rows, the object holds %d", rows, s.obj.Rows))
			continue
		}
		loads.Add(ctx, 1, metric.WithAttributes(attribute.String("table", s.obj.Table), attribute.String("outcome", OutcomeLoaded)))
		l.log.InfoContext(ctx, "loaded into BigQuery", "table", s.table, "rows", rows, "job", s.job.ID(), "source", s.obj.URI)
	}
	outcome := OutcomeLoaded
	if len(errs) > 0 {
		outcome = OutcomeFailed
	}
	duration.Record(context.WithoutCancel(ctx), time.Since(start).Seconds(), metric.WithAttributes(attribute.String("outcome", outcome)))
	err = errors.Join(errs...)
	// Said once, not in each load's error.
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(err, cause) {
		err = fmt.Errorf("%w (%w)", err, cause)
	}
	return err
}

// pendingLoad is a load of one object, its job once started.
type pendingLoad struct {
	obj   Object
	table string // with the day's decorator
	job   *bigquery.Job
}

// cancelTimeout bounds the cancel requests after a load timed out: the
// run is ending already.
const cancelTimeout = 5 * time.Second

// cancelJobs asks BigQuery to cancel the jobs of loads, and does not wait
// for them to end. A job that ended already ignores it.
func cancelJobs(ctx context.Context, loads []pendingLoad) {
	ctx, cancel := context.WithTimeout(ctx, cancelTimeout)
	defer cancel()
	for _, s := range loads {
		s.job.Cancel(ctx) // best effort: the run fails either way
	}
}
