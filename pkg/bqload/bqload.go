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
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/bigquery"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	bqapi "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"
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
	client *bigquery.Client
	// jobs is the REST API's job calls, on the same HTTP client: a job
	// is cancelled by its ID, without reading it first, which may fail
	// where the cancel would not.
	jobs           *bqapi.JobsService
	project        string
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
		// Not quoted: what does not parse may hold a secret.
		return "", false, errors.New("not a URL such as https://bigquery.googleapis.com")
	}
	// Messages show the endpoint without its user, query and fragment:
	// a token or a key may sit in any of them.
	shown := strconv.Quote((&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String())
	if u.Host == "" || u.Opaque != "" {
		return "", false, fmt.Errorf("%s is not a URL such as https://bigquery.googleapis.com", shown)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", false, fmt.Errorf("%s: the setting holds a user, a query or a fragment (not shown): give only a scheme, a host, a port and a path", shown)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return "", false, fmt.Errorf("%s: the port is not between 1 and 65535", shown)
		}
	}
	switch u.Scheme {
	case "https":
		credentials = true
	case "http":
		if !loopback(u.Hostname()) {
			return "", false, fmt.Errorf("%s: plain http is only for a test server on a loopback address (127.0.0.1, ::1, localhost): elsewhere the job's credentials would cross the network unencrypted; use https", shown)
		}
	default:
		return "", false, fmt.Errorf("%s: want https://", shown)
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
	clientOpts := []option.ClientOption{option.WithScopes(bigquery.Scope)}
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
	// The HTTP client is made here, and not by the library, to fence it:
	// it follows no redirect, which would carry the access token to
	// whatever host it names, in the clear if that is http; and it reads
	// no answer past maxAnswerBytes, since the library reads an error's
	// whole body into memory and into its message.
	hc, _, err := htransport.NewClient(ctx, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("BigQuery client: %w", err)
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc.Transport = cappedAnswers{hc.Transport}
	clientOpts = append(clientOpts, option.WithHTTPClient(hc))
	client, err := bigquery.NewClient(ctx, project, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("BigQuery client: %w", err)
	}
	api, err := bqapi.NewService(ctx, clientOpts...)
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
		jobs:           api.Jobs,
		project:        project,
		dataset:        dataset,
		timeout:        opts.Timeout,
		timeoutSetting: opts.TimeoutSetting,
		log:            log,
		meter:          mp.Meter("github.com/calee-data/mspo-spoc/pkg/bqload"),
	}, nil
}

// maxAnswerBytes bounds an answer of the BigQuery API: a job's resource,
// or an error, takes a few KiB.
const maxAnswerBytes = 1 << 20

// cappedAnswers is a transport whose answers end in an error past
// maxAnswerBytes.
type cappedAnswers struct{ next http.RoundTripper }

func (c cappedAnswers) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err == nil {
		resp.Body = &cappedBody{body: resp.Body, left: maxAnswerBytes}
	}
	return resp, err
}

// errAnswerTooLarge ends the reading of an answer past maxAnswerBytes.
var errAnswerTooLarge = fmt.Errorf("BigQuery's answer is larger than %d bytes", maxAnswerBytes)

type cappedBody struct {
	body io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errAnswerTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.body.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.body.Close() }

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
	return fmt.Sprintf("load %s into %s%s: %s", e.URI, e.Table, job, clip(e.Err.Error()))
}

// maxReasonBytes bounds the reason a LoadError gives: BigQuery's message
// is in it, of any length, and a log line (Cloud Logging keeps 256 KB
// an entry) must keep what follows it, the fix.
const maxReasonBytes = 1 << 10

// clip is s cut at maxReasonBytes, at the start of a rune, and marked.
func clip(s string) string {
	if len(s) <= maxReasonBytes {
		return s
	}
	n := maxReasonBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "… (cut)"
}

func (e *LoadError) Unwrap() []error { return []error{ErrLoad, e.Err} }

// Load loads each object into its table's partition of day, replacing
// the partition, and waits for every job. The jobs run side by side; a
// failed one does not stop the others, and the error joins every
// failure (each a *LoadError). The jobs of failed loads that may still
// run (the time allowed passed, a wait or a creation failed) are asked
// to cancel at the end, so that none lands after a later load of the
// same day. list names the metrics (spoc.bigquery.loads).
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
		// The jobs of failed loads that may still run: cancelled at the
		// end, together, within cancelTimeout.
		cancels []pendingLoad
	)
	fail := func(s pendingLoad, err error) {
		errs = append(errs, &LoadError{Table: s.table, URI: s.obj.URI, Job: s.id, Err: err})
		loads.Add(ctx, 1, metric.WithAttributes(attribute.String("table", s.obj.Table), attribute.String("outcome", OutcomeFailed)))
	}
	if err := l.findLocation(ctx); err != nil {
		for _, obj := range objects {
			fail(pendingLoad{obj: obj, table: obj.Table + "$" + partition}, err)
		}
		objects = nil
	}
	for _, obj := range objects {
		s := pendingLoad{obj: obj, table: obj.Table + "$" + partition, id: jobID(obj.Table, partition)}
		if err := ctx.Err(); err != nil {
			s.id = ""
			fail(s, fmt.Errorf("not started: %w", err))
			continue
		}
		job, err := l.start(ctx, s, list, partition)
		if err != nil {
			// The job may exist (an answer lost after BigQuery made it):
			// it must not load after this run has failed.
			cancels = append(cancels, s)
			fail(s, fmt.Errorf("start the job: %w", err))
			continue
		}
		s.job = job
		jobs = append(jobs, s)
	}
	for i, s := range jobs {
		var status *bigquery.JobStatus
		err := safely(func() (err error) {
			status, err = s.job.Wait(ctx)
			return err
		})
		if err != nil {
			// Not the job's own failure: it may still run.
			if ctx.Err() != nil {
				cancels = append(cancels, jobs[i:]...)
				for _, s := range jobs[i:] {
					fail(s, err)
				}
				break
			}
			cancels = append(cancels, s)
			fail(s, err)
			continue
		}
		if err := status.Err(); err != nil {
			fail(s, err)
			continue
		}
		st, ok := (*bigquery.LoadStatistics)(nil), false
		if status.Statistics != nil {
			st, ok = status.Statistics.Details.(*bigquery.LoadStatistics)
		}
		switch {
		case !ok || st == nil:
			fail(s, errors.New("the job ended without a row count"))
			continue
		case st.OutputRows != s.obj.Rows:
			fail(s, fmt.Errorf("the job loaded %d rows, the object holds %d", st.OutputRows, s.obj.Rows))
			continue
		}
		loads.Add(ctx, 1, metric.WithAttributes(attribute.String("table", s.obj.Table), attribute.String("outcome", OutcomeLoaded)))
		l.log.InfoContext(ctx, "loaded into BigQuery", "table", s.table, "rows", st.OutputRows, "job", s.id, "source", s.obj.URI)
	}
	l.cancelJobs(context.WithoutCancel(ctx), cancels)
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

// findLocation reads, once, where the dataset is: every job of a
// location other than US or EU must be named with it to be read again,
// and a load's job is read again by its ID when the answer to its
// creation was lost.
func (l *Loader) findLocation(ctx context.Context) error {
	if l.client.Location != "" {
		return nil
	}
	var md *bigquery.DatasetMetadata
	err := safely(func() (err error) {
		md, err = l.client.Dataset(l.dataset).Metadata(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("read the dataset %s: %w", l.dataset, err)
	}
	l.client.Location = md.Location
	return nil
}

// start creates the load job of s. A creation retried after its answer
// was lost finds the job made already (409): it is the same job, by its
// ID, and is read back.
func (l *Loader) start(ctx context.Context, s pendingLoad, list, partition string) (job *bigquery.Job, err error) {
	ref := bigquery.NewGCSReference(s.obj.URI)
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
	loader.JobIDConfig = bigquery.JobIDConfig{JobID: s.id}
	err = safely(func() (err error) {
		job, err = loader.Run(ctx)
		return err
	})
	var apiErr *googleapi.Error
	if errors.As(err, &apiErr) && apiErr.Code == http.StatusConflict {
		err = safely(func() (err error) {
			if job, err = l.client.JobFromIDLocation(ctx, s.id, l.client.Location); err != nil {
				return err
			}
			// The ID is this load's: the job must be its load.
			config, err := job.Config()
			if load, ok := config.(*bigquery.LoadConfig); err != nil || !ok || load.Dst == nil ||
				load.Dst.ProjectID != l.project || load.Dst.DatasetID != l.dataset || load.Dst.TableID != s.table {
				return fmt.Errorf("the job %s, found by its ID after a 409, is not this load", s.id)
			}
			return nil
		})
	}
	return job, err
}

// jobID names a load's job for what it loads, in BigQuery's job history,
// with a random suffix: a rerun's jobs are new ones, and the ID is known
// before the job is created, so that a job whose creation was answered
// with an error can still be found and cancelled.
func jobID(table, partition string) string {
	return "load_" + table + "_" + partition + "_" + rand.Text()
}

// safely runs f, a call into the BigQuery client library, and returns
// the panic of an answer it does not expect (a job without its
// reference, for one) as an error.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("BigQuery's answer broke the client library: %v", r)
		}
	}()
	return f()
}

// pendingLoad is a load of one object, its job's ID and, once started,
// its job.
type pendingLoad struct {
	obj   Object
	table string // with the day's decorator
	id    string
	job   *bigquery.Job
}

// cancelTimeout bounds the cancel requests of a Load's failed loads,
// after its timeout: the run is ending already.
const cancelTimeout = 5 * time.Second

// cancelJobs asks BigQuery to cancel the jobs of loads by their IDs, and
// does not wait for them to end. A job that ended already ignores it,
// and one that was never made is not found.
func (l *Loader) cancelJobs(ctx context.Context, loads []pendingLoad) {
	if len(loads) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, cancelTimeout)
	defer cancel()
	for _, s := range loads {
		// Best effort: the run fails either way.
		l.jobs.Cancel(l.project, s.id).Location(l.client.Location).Context(ctx).Do()
	}
}
