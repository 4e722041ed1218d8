// Command job is the mspo-spoc Cloud Run job: it fetches the MSPO list of
// certified independent smallholders (SPOC) and publishes one day's tidy
// zstd Parquet snapshot with its manifest, on local disk or in Cloud
// Storage. Run it with -help for every setting.
//
// SPOC_DATASET may name several lists (spoc,osh, or the group
// references): each is published as if it ran alone, one after the
// other, and one that fails does not stop the others.
//
// With SPOC_BIGQUERY_DATASET, each list's day, published or found
// unchanged, is then loaded into BigQuery (package bqload).
//
// Exit status: 0 the snapshot was published, or the day already holds
// the same body (SPOC_SKIP_IF_UNCHANGED), and loaded, every list's with
// several; 1 the run failed, another run holds the day's lock included
// (nothing was published), or the day's BigQuery load failed (the day
// stays published), for at least one list with several; 2 bad
// configuration (nothing was fetched). SIGINT and SIGTERM cancel the
// run, abort the open objects and exit with status 1.
// On every exit after the configuration is read, the metrics and spans
// still held are exported first, for at most SPOC_TELEMETRY_TIMEOUT.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	_ "time/tzdata" // SPOC_TIMEZONE must resolve in a distroless image without zoneinfo

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/sethvargo/go-envconfig"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/calee-data/mspo-spoc/pkg/bqload"
	"github.com/calee-data/mspo-spoc/pkg/fetch"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/telemetry"
)

// version and commit are set at build time, by the Dockerfile and .ci/run:
// -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitConfig = 2
)

// The Go runtime's soft memory limit, unless GOMEMLIMIT is set: a share
// of the memory the container really has (the cgroup limit, which Cloud
// Run sets from the job's memory), or fallbackMemoryLimit where there is
// none (a laptop, CI). The job's live heap is flat at about 70-80 MiB at
// the defaults, and the runtime's memory at its peak about 160 MiB, so
// 200 MiB does not bind on a real body (a limit close to the live heap
// makes the collector run back to back). Bodies of the largest records
// the caps allow hold up to about 110 MiB live, and without the limit
// the heap doubles that before a collection: 200 MiB of runtime memory
// plus the binary's pages keeps their peak RSS under the 256 MiB target.
const (
	memoryLimitShare    = 0.9
	fallbackMemoryLimit = 200 << 20
)

// memoryLimit returns the soft memory limit to set and where it comes
// from, or -1 when GOMEMLIMIT is set (the runtime read it already).
func memoryLimit(lookupEnv func(string) (string, bool), cgroupLimit func() (uint64, error)) (int64, string) {
	if v, ok := lookupEnv("GOMEMLIMIT"); ok && v != "" {
		return -1, "GOMEMLIMIT"
	}
	if limit, err := cgroupLimit(); err == nil && limit > 0 && limit < 1<<62 {
		return int64(float64(limit) * memoryLimitShare), "cgroup"
	}
	return fallbackMemoryLimit, "default"
}

func main() { os.Exit(runProcess()) }

// runProcess is the job as a process runs it, returning its exit status.
func runProcess() int {
	sink.RegisterZstdCodec()
	if limit, _ := memoryLimit(os.LookupEnv, memlimit.FromCgroup); limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, os.Args[1:], environ(os.Environ()), os.Stderr)
}

// environ is the process environment (os.Environ) by variable name.
func environ(vars []string) map[string]string {
	env := make(map[string]string, len(vars))
	for _, kv := range vars {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

// serviceName is the job's OpenTelemetry service.name: the Cloud Run job's
// name where there is one, "mspo-spoc" elsewhere (OTEL_SERVICE_NAME, read
// by the SDK, overrides both). The GCP exporter writes the metrics on the
// generic_task resource with service.name as its job label, so this is what
// tells two deployments in one project apart: deploy/monitoring.tf's
// staleness alert selects job="<the Cloud Run job's name>".
func serviceName(env envconfig.Lookuper) string {
	if job, ok := env.Lookup("CLOUD_RUN_JOB"); ok && job != "" {
		return job
	}
	return "mspo-spoc"
}

// flagValues are the job's command-line flags.
type flagValues struct {
	help, version       bool
	cpuProfile, dataset string
}

// jobFlags defines the job's flags, which write their errors to w. -help
// is a flag of its own rather than the flag package's ErrHelp, so that
// flags after it (-help -dataset osh) are still read.
func jobFlags(w io.Writer) (*flag.FlagSet, *flagValues) {
	var v flagValues
	flags := flag.NewFlagSet("job", flag.ContinueOnError)
	flags.SetOutput(w)
	flags.BoolVar(&v.help, "help", false, "print this help (with -dataset, that dataset's defaults) and exit")
	flags.BoolVar(&v.help, "h", false, "the same as -help")
	flags.BoolVar(&v.version, "version", false, "print the version and exit")
	flags.StringVar(&v.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this `file` (for go tool pprof)")
	flags.StringVar(&v.dataset, "dataset", "", "the `dataset` to publish, as SPOC_DATASET (which it overrides)")
	return flags, &v
}

// run is the whole job, with its inputs passed in so tests can drive it.
func run(ctx context.Context, args []string, env map[string]string, stderr io.Writer) int {
	flags, opts := jobFlags(stderr)
	flags.Usage = func() {
		if err := printUsage(stderr, flags, env["SPOC_DATASET"]); err != nil {
			fmt.Fprintf(stderr, "mspo-spoc: bad configuration: %v\n", err)
		}
	}
	if err := flags.Parse(args); err != nil {
		return exitConfig
	}
	if opts.help {
		if err := printUsage(stderr, flags, cmp.Or(opts.dataset, env["SPOC_DATASET"])); err != nil {
			fmt.Fprintf(stderr, "mspo-spoc: bad configuration: %v\n", err)
			return exitConfig
		}
		return exitOK
	}
	if opts.version {
		fmt.Fprintln(stderr, "mspo-spoc", version, commit)
		return exitOK
	}
	if opts.cpuProfile != "" {
		f, err := os.Create(opts.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "mspo-spoc: -cpuprofile: %v\n", err)
			return exitConfig
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	if opts.dataset != "" {
		env = maps.Clone(env)
		env["SPOC_DATASET"] = opts.dataset
	}
	cfg, err := LoadConfig(ctx, env)
	if err != nil {
		fmt.Fprintf(stderr, "mspo-spoc: bad configuration: %v\n", err)
		return exitConfig
	}
	// The OTEL_* variables are read from the process environment, by the
	// OpenTelemetry exporters themselves.
	providers, err := telemetry.Setup(ctx, telemetry.Options{
		ServiceName:      serviceName(envconfig.MapLookuper(env)),
		ServiceNamespace: "mspo",
		ServiceVersion:   version,
	})
	if err != nil {
		fmt.Fprintf(stderr, "mspo-spoc: bad configuration: %v\n", err)
		return exitConfig
	}
	log := newLogger(cfg, stderr, gcpProject(providers.Resource))
	for _, w := range providers.Warnings {
		log.Warn("telemetry set up with a warning", "error", w.Error())
	}
	var attempt cloudRunTask
	attempt.execution = env["CLOUD_RUN_EXECUTION"]
	attempt.index = env["CLOUD_RUN_TASK_INDEX"]
	code := execute(ctx, cfg, attempt, providers, log, stderr)
	// Export what is left on every exit path, SIGTERM included: the run's
	// context may be cancelled, the flush gets its own bounded one.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.TelemetryTimeout)
	defer cancel()
	if err := providers.Shutdown(flushCtx); err != nil {
		log.Warn("metrics or spans not exported", "error", err.Error())
	}
	return code
}

// gcsSource reads saved bodies (raw archives) from gs:// URLs with the
// default credentials, or from the emulator STORAGE_EMULATOR_HOST names.
// Every attempt of a run reads through the one client it makes first.
type gcsSource struct {
	mu     sync.Mutex
	stores map[string]*sink.GCS // by bucket
}

func (g *gcsSource) open(ctx context.Context, u string) (io.ReadCloser, int64, error) {
	bucket, name, err := sink.ParseGCSURL(u)
	if err != nil {
		return nil, 0, err
	}
	g.mu.Lock()
	store, ok := g.stores[bucket]
	if !ok {
		if store, err = sink.OpenGCS(ctx, bucket, ""); err == nil {
			g.stores[bucket] = store
		}
	}
	g.mu.Unlock()
	if err != nil {
		return nil, 0, err
	}
	r, err := store.NewReader(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	return r, r.Size(), nil
}

// cloudRunTask is the Cloud Run execution and task this process is an
// attempt of; empty elsewhere.
type cloudRunTask struct{ execution, index string }

// execute runs one configured job and returns the exit status: each list
// in turn (publishList), then, with several, a line that sums them up.
func execute(ctx context.Context, cfg *Config, attempt cloudRunTask, providers *telemetry.Providers, log *slog.Logger, stderr io.Writer) int {
	if cfg.InsecureSkipVerify {
		log.WarnContext(ctx, "TLS certificate verification of the source is OFF (SPOC_INSECURE_SKIP_VERIFY=true): the body could come from anyone on the path")
	}
	pins, _ := cfg.pinnedKeys() // validated
	if len(pins) > 0 {
		log.WarnContext(ctx, "TLS chain verification of the source is replaced by key pins (SPOC_TLS_PIN_SHA256): only the pinned keys are accepted, whatever their issuer or validity dates; remove the pins once the server's chain verifies", "pins", len(pins))
	}
	gcs := &gcsSource{stores: map[string]*sink.GCS{}}
	clients := make([]*fetch.Client, len(cfg.lists))
	for i, l := range cfg.lists {
		// A client per list: each sends its own dataset's query.
		client, err := fetch.NewClient(fetch.ClientOptions{
			Logger:             log.With("dataset", l.Dataset.Name),
			PinnedKeys:         pins,
			Openers:            map[string]fetch.Opener{"gs": gcs.open},
			Query:              l.Dataset.Query,
			UserAgent:          "mspo-spoc/" + version,
			ConnectTimeout:     cfg.ConnectTimeout,
			FirstByteTimeout:   cfg.FirstByteTimeout,
			StallTimeout:       cfg.StallTimeout,
			CAFile:             cfg.CAFile,
			InsecureSkipVerify: cfg.InsecureSkipVerify,
		})
		if err != nil {
			log.ErrorContext(ctx, "bad configuration", "error", (&ConfigError{Var: "SPOC_CA_FILE", Err: err}).Error())
			return exitConfig
		}
		clients[i] = client
	}

	ctx, cancel := context.WithTimeoutCause(ctx, cfg.Deadline, fmt.Errorf("run deadline of %s (SPOC_DEADLINE) passed", cfg.Deadline))
	defer cancel()
	store, err := sink.Open(ctx, cfg.Output)
	if err != nil {
		log.ErrorContext(ctx, "cannot open the output", "output", cfg.Output, "error", err.Error())
		return exitConfig
	}

	loader, err := newLoader(ctx, cfg, providers, log)
	if err != nil {
		// The settings were checked: what fails here is the client, its
		// credentials most likely.
		log.ErrorContext(ctx, "cannot open BigQuery", "dataset", cfg.BigQueryDataset, "error", err.Error(),
			"fix", "the job uses Application Default Credentials for BigQuery: gcloud auth application-default login on a laptop, the job's service account on Cloud Run; or unset SPOC_BIGQUERY_DATASET")
		return exitConfig
	}
	if loader != nil {
		defer loader.Close()
	}

	loc, _ := time.LoadLocation(cfg.Timezone) // validated
	start := time.Now()
	day := start.In(loc)
	if cfg.Date != "" {
		day, _ = time.ParseInLocation(snapshot.DateLayout, cfg.Date, loc) // validated
	}
	// One list after the other, never together: a list may take the
	// whole memory the job is sized for (a body at SPOC_MAX_RECORDS peaks
	// near 256 MiB, docs/architecture.md#memory), so the bound of a run
	// stays that of one list, whatever the number of lists.
	code := exitOK
	var published, unchanged, notLoaded, failed, notRun []string
	for i, l := range cfg.lists {
		if ctx.Err() != nil {
			// Cancelled or past SPOC_DEADLINE: the lists left would
			// fail at once.
			for _, l := range cfg.lists[i:] {
				notRun = append(notRun, l.Dataset.Name)
			}
			code = exitFailed
			break
		}
		switch publishList(ctx, cfg, l, clients[i], store, loader, day, attempt, providers, log.With("dataset", l.Dataset.Name), stderr) {
		case listPublished:
			published = append(published, l.Dataset.Name)
		case listUnchanged:
			unchanged = append(unchanged, l.Dataset.Name)
		case listNotLoaded:
			notLoaded = append(notLoaded, l.Dataset.Name)
			code = exitFailed
		default:
			failed = append(failed, l.Dataset.Name)
			code = exitFailed
		}
	}
	if len(cfg.lists) > 1 {
		level := slog.LevelInfo
		if code != exitOK {
			level = slog.LevelError
		}
		log.Log(ctx, level, "run finished",
			"published", strings.Join(published, ","),
			"unchanged", strings.Join(unchanged, ","),
			"not_loaded", strings.Join(notLoaded, ","),
			"failed", strings.Join(failed, ","),
			"not_run", strings.Join(notRun, ","),
			"duration", time.Since(start).Round(time.Millisecond).String())
	}
	return code
}

// listOutcome is how one list of a run ended.
type listOutcome int

const (
	listPublished listOutcome = iota
	listUnchanged
	// listNotLoaded: the day is published, or was, and its BigQuery
	// load failed.
	listNotLoaded
	listFailed
)

// publishList publishes one list as if it ran alone, under its own root
// span (named for the dataset: spoc.run): its own day's lock, manifest,
// guards, change table and metrics, all of snapshot.Run's, and on a
// failure it takes away the folders it created and publishes nothing.
//
// With a loader (SPOC_BIGQUERY_DATASET), a day published or found
// unchanged is then loaded into BigQuery; a load that fails fails the
// list, and leaves the day published.
func publishList(ctx context.Context, cfg *Config, l list, client *fetch.Client, store sink.Store, loader *bqload.Loader, day time.Time, attempt cloudRunTask, providers *telemetry.Providers, log *slog.Logger, stderr io.Writer) (outcome listOutcome) {
	ctx, span := providers.Tracer.Tracer("github.com/calee-data/mspo-spoc/cmd/job").Start(ctx, l.Dataset.Name+".run")
	defer func() {
		code := exitOK
		if outcome == listFailed || outcome == listNotLoaded {
			code = exitFailed
			span.SetStatus(codes.Error, fmt.Sprintf("exit status %d", code))
		}
		span.SetAttributes(attribute.Int("spoc.exit_code", code))
		span.End()
	}()
	start := time.Now()
	log.InfoContext(ctx, "run started", "source", fetch.RedactURL(l.URL), "output", store.URL(snapshot.Dir(l.Prefix, day)), "version", version, "commit", commit,
		"memory_limit_mib", debug.SetMemoryLimit(-1)>>20,
		"metrics_exporter", providers.MetricsExporter, "traces_exporter", providers.TracesExporter)
	// The first folder on the way to the day's that a local output does
	// not have yet, the output folder's own parents included: a run that
	// fails takes away what it created of it and left empty (the day's
	// lock makes the day's folder and every missing folder above it), so
	// that a first try without a network leaves no empty ./data, nor the
	// parents of a nested SPOC_OUTPUT.
	var created, dayDir string
	if !strings.HasPrefix(cfg.Output, "gs://") {
		root := strings.TrimPrefix(cfg.Output, "file://")
		dayDir = filepath.Join(root, filepath.FromSlash(snapshot.Dir(l.Prefix, day)))
		created = firstMissingDir(dayDir)
	}
	progress := &snapshot.Progress{}
	stopProgress := startProgress(ctx, progress.Snapshot, stderr, isTerminal(stderr), cfg.ProgressInterval, log)
	m, err := snapshot.Run(ctx, snapshot.Options{
		Dataset: l.Dataset,
		Source:  l.URL,
		Client:  client,
		Store:   store,
		Prefix:  l.Prefix,
		Day:     day,
		Retry:   cfg.retry(),
		Decoder: cfg.decoderOptions(),
		Layouts: cfg.layouts(l.Dataset),
		Guards:  cfg.guards(l),
		Outputs: snapshot.Outputs{Archive: cfg.ArchiveRaw, Changes: cfg.DetectChanges, Geo: true},
		Lock:    cfg.lock(attempt),
		Version: version,
		Telemetry: snapshot.Telemetry{
			Logger:         log,
			MeterProvider:  providers.Meter,
			TracerProvider: providers.Tracer,
			Progress:       progress,
		},
	})
	stopProgress()
	if errors.Is(err, snapshot.ErrUnchanged) {
		log.InfoContext(ctx, "snapshot unchanged, nothing published", "reason", err.Error(), "duration", time.Since(start).Round(time.Millisecond).String())
		if !loaded(ctx, loader, store, l, day, nil, start, log) {
			return listNotLoaded
		}
		return listUnchanged
	}
	if err != nil {
		if created != "" {
			removeCreatedDirs(dayDir, created)
		}
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
		elapsed := time.Since(start).Round(time.Millisecond)
		msg := settingNames.Replace(err.Error())
		if errors.Is(err, sink.ErrUnreachable) {
			// The store's own message gives the last call's retries; the
			// run kept trying for longer (the day's lock retries its writes
			// for a lease).
			msg = fmt.Sprintf("GCS could not be reached: no connection in %s of tries: %s", elapsed, msg)
		}
		if why := offline(err); why != "" {
			msg = why + ": " + msg
		}
		// One line per failure: errors.Join separates its errors by "\n".
		msg = strings.ReplaceAll(msg, "\n", "; ")
		attrs := []any{"error", msg, "reason", snapshot.Outcome(err), "duration", elapsed.String()}
		if fix := fixFor(err); fix != "" {
			attrs = append(attrs, "fix", fix)
		}
		log.ErrorContext(ctx, "run failed, nothing published", attrs...)
		return listFailed
	}
	log.InfoContext(ctx, "snapshot published",
		"records", m.Stats.RecordsWritten,
		"dropped", m.Stats.RecordsDropped,
		"invalid_values", m.Stats.InvalidValues(),
		"duplicate_ids", m.Stats.DuplicateIDs,
		"body_bytes", m.Source.BodyBytes,
		"wire_bytes", m.Source.WireBytes,
		"parquet_bytes", m.Parquet.Size,
		"attempts", m.Attempts,
		"duration", time.Since(start).Round(time.Millisecond).String(),
		"url", m.Parquet.URL,
		"previous", previousSummary(m.Previous),
		"forced", m.Forced,
	)
	if !loaded(ctx, loader, store, l, day, m, start, log) {
		return listNotLoaded
	}
	return listPublished
}

// loaded loads list l's day into BigQuery when there is a loader, and
// says whether the list is done: no loader, or every load succeeded.
func loaded(ctx context.Context, loader *bqload.Loader, store sink.Store, l list, day time.Time, m *snapshot.Manifest, start time.Time, log *slog.Logger) bool {
	if loader == nil {
		return true
	}
	err := loadDay(ctx, loader, store, l, day, m)
	if err == nil {
		return true
	}
	// One line per failure: errors.Join separates its errors by "\n".
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	log.ErrorContext(ctx, "run failed: the day is published, but its BigQuery load failed",
		"error", msg, "reason", reasonBigQuery, "fix", bigQueryFix(err),
		"duration", time.Since(start).Round(time.Millisecond).String())
	return false
}

// reasonBigQuery is the failure kind of a run whose day was published
// and not loaded.
const reasonBigQuery = "bigquery"

// settingNames rewrites the library options that the errors of packages
// snapshot and transaction name into the job's settings that set them:
// the job's user sets SPOC_FORCE, and has no Options.Guards.Force to set.
var settingNames = strings.NewReplacer(
	"Options.Guards.Force", "SPOC_FORCE=true",
	"Options.Wait", "SPOC_LOCK_WAIT",
)

// fixFor says which setting changes the outcome of a failed run, or ""
// when none does: the library packages say what happened, the job which
// of its settings answers it.
func fixFor(err error) string {
	var (
		collapsed *snapshot.CollapsedError
		noKey     *snapshot.NoKeyError
	)
	switch {
	case errors.As(err, &noKey):
		// Not the limits: the records are not the dataset's, or its key
		// is not where the declaration says.
		return "if the URL (SPOC_URL, SPOC_API_BASE) serves another list than the dataset's, point it at the dataset's list; if the upstream renamed the key field or changed its shape, fix the dataset's declaration and replay the kept body (README, Schema contract)"
	case errors.As(err, &collapsed) && collapsed.Previous == "":
		return "if the URL (SPOC_URL, SPOC_API_BASE) serves another list than the dataset's, point it at the dataset's list; if the upstream renamed the field or changed its shape, fix the dataset's declaration and replay the kept body (README, Schema contract); SPOC_FORCE=true publishes it as it is (for one run, though its snapshot becomes the next day's baseline); SPOC_COLLAPSE_BELOW_PERCENT=0 turns the guard off"
	case errors.Is(err, snapshot.ErrRecordsFell):
		return "if the fall is real, SPOC_FORCE=true publishes it (for one run); SPOC_MAX_DROP_PERCENT sets the limit"
	case errors.Is(err, snapshot.ErrColumnCollapsed):
		return "if the upstream renamed the field, declare the new name in the dataset and replay the kept body (README, Schema contract); SPOC_FORCE=true publishes it as it is (for one run); SPOC_COLLAPSE_WAS_PERCENT and SPOC_COLLAPSE_BELOW_PERCENT set the limits"
	case errors.Is(err, snapshot.ErrTooFewRecords):
		return "SPOC_MIN_RECORDS sets the minimum"
	case errors.Is(err, snapshot.ErrTooManyDropped):
		return "SPOC_MAX_DROPPED_PERCENT sets the limit"
	case errors.Is(err, spoc.ErrBodyTooLarge):
		return "SPOC_MAX_BODY_BYTES sets the limit"
	case errors.Is(err, spoc.ErrValueTooLong):
		return "SPOC_MAX_STRING_BYTES sets the limit"
	case errors.Is(err, spoc.ErrTooManyRecords):
		return "SPOC_MAX_RECORDS sets the limit"
	case errors.Is(err, sink.ErrUnreachable):
		return "check this machine's network and that it reaches storage.googleapis.com (where STORAGE_EMULATOR_HOST is set, that the emulator it names runs); SPOC_OUTPUT names the bucket"
	case offline(err) != "":
		return "check the network and the host in SPOC_URL; to try the job without a network, serve it a fake list with cmd/fakespoc (README, \"Try it offline\")"
	case errors.Is(err, snapshot.ErrBusy):
		return "rerun once the other run ends; a lock left unchanged for its whole lease (2m) is taken over, unless SPOC_LOCK_WAIT is shorter than that"
	}
	return tlsFix(err)
}

// firstMissingDir is the topmost missing folder of dir and its parents:
// the one just below the nearest that exists. It is "" when dir exists,
// or when a folder cannot be looked at (it may exist: nothing is taken
// away above it).
func firstMissingDir(dir string) string {
	missing := ""
	for dir = filepath.Clean(dir); ; {
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			return missing
		}
		missing = dir
		parent := filepath.Dir(dir)
		if parent == dir {
			return missing
		}
		dir = parent
	}
}

// removeCreatedDirs removes, where empty, the folders a run created: the
// day's folder dir and the folders below it, deepest first, then its
// parents up to top. A folder that holds a file stays, with its parents;
// so does an empty folder off that path, which another run (of another
// day) may have just made and not yet written into.
func removeCreatedDirs(dir, top string) {
	var dirs []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for _, d := range slices.Backward(dirs) {
		os.Remove(d) // fails, as it should, on a folder that is not empty
	}
	for d := filepath.Dir(dir); len(d) >= len(top) && d != filepath.Dir(d); d = filepath.Dir(d) {
		// A missing folder was never made (the run failed before): go on up.
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return
		}
	}
}

// offline says how the network failed the fetch, or "" when it did not:
// the source's host did not resolve (no network, often, or a wrong host),
// or there was no route to it. The store's failures are said elsewhere.
func offline(err error) string {
	if errors.Is(err, sink.ErrUnreachable) {
		return ""
	}
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return fmt.Sprintf("the source's host %s could not be resolved (no network, or a wrong host in SPOC_URL)", dns.Name)
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "no network route to the source"
	}
	return ""
}

// tlsFix says which setting fixes a certificate that did not verify, or ""
// for other errors.
func tlsFix(err error) string {
	var ce *fetch.CertificateError
	if !errors.As(err, &ce) {
		return ""
	}
	pin := "SPOC_TLS_PIN_SHA256=" + ce.Pin + " accepts this key for this host (check it out of band first)"
	switch ce.Check {
	case fetch.CheckUnknownAuthority:
		if strings.Contains(ce.Issuers, "fetched") {
			return "the chain's root is not trusted here: put the root CA certificate (PEM) in SPOC_CA_FILE; for a server that can never verify, " + pin
		}
		return "put the missing intermediate and root CA certificates (PEM) in SPOC_CA_FILE; for a server that can never verify, " + pin
	case fetch.CheckExpired:
		return "the server's certificate is expired or not yet valid (check the machine's clock); until the server is fixed, " + pin
	case fetch.CheckHostname:
		return "the certificate is not for this host: check the host in SPOC_URL; no setting turns the host name check off"
	case fetch.CheckPin:
		return "the server's key is not one of SPOC_TLS_PIN_SHA256: if the new key (sha256/" + ce.Pin + ") is genuine, pin it, or unset SPOC_TLS_PIN_SHA256 to verify the chain instead"
	}
	return "SPOC_CA_FILE adds trusted CA certificates; " + pin
}

// gcpProject is the Google Cloud project the job runs in, for the trace
// links of Cloud Logging: from the GCP resource detector, or
// GOOGLE_CLOUD_PROJECT; empty off Google Cloud.
func gcpProject(res *resource.Resource) string {
	if v, ok := res.Set().Value(semconv.CloudAccountIDKey); ok && v.AsString() != "" {
		return v.AsString()
	}
	return os.Getenv("GOOGLE_CLOUD_PROJECT")
}

// previousSummary is the previous snapshot for a log line.
func previousSummary(p *snapshot.Previous) string {
	if p == nil {
		return "none (first run)"
	}
	return fmt.Sprintf("%s, %d records", p.Snapshot, p.Records)
}
