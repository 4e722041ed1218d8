package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/sethvargo/go-envconfig"

	"github.com/calee-data/mspo-spoc/pkg/fetch"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/transaction"
)

// Config is every setting of the job. Each is an environment variable with
// a default; the help tag is what -help prints and the README repeats.
type Config struct {
	Dataset              string        `env:"SPOC_DATASET, default=spoc" help:"Which public MSPO lists to publish: spoc (certified independent smallholders), osh (organised smallholders), gm (group managers' smallholders), states or zones (reference lists), several separated by commas (spoc,osh), or the group references for every reference list. Each picks its defaults of SPOC_URL and SPOC_PREFIX, its schema and object names, and is published as if it ran alone: one that fails does not stop the others. The -dataset flag sets it too."`
	URL                  string        `env:"SPOC_URL, default=https://api.mspots.org.my/api/spoc/get-spoc-list-public" help:"Source of the list: the endpoint's URL, or a saved body (a raw archive) as a path, file:// or gs:// URL (.gz is decompressed). Only with one list."`
	APIBase              string        `env:"SPOC_API_BASE" help:"http(s)://host[:port] that replaces the scheme and host of every list's default URL, its path kept: a mirror, a proxy, a test server. Not with SPOC_URL."`
	Output               string        `env:"SPOC_OUTPUT, default=./data" help:"Where snapshots go: a local directory, or gs://bucket (optionally gs://bucket/path)."`
	Prefix               string        `env:"SPOC_PREFIX, default=raw/mspo/api/spoc/get-spoc-list-public" help:"Folder below the output that holds one YYYYMMDD folder per day. Only with one list: with several, each has its own."`
	Timezone             string        `env:"SPOC_TIMEZONE, default=Asia/Kuala_Lumpur" help:"Time zone that decides the date of a run's folder."`
	MinRecords           RecordFloors  `env:"SPOC_MIN_RECORDS, default=1" help:"A body with fewer usable records fails the run, nothing is published. One number is every list's floor; several lists can each have their own, as comma-separated NAME=N, and a bare N for the lists not named (states=13,zones=9 or 1,spoc=250000; a list not named gets 1 when no bare N is given). None may be above SPOC_MAX_RECORDS."`
	MaxDroppedPercent    float64       `env:"SPOC_MAX_DROPPED_PERCENT, default=1" help:"A larger share of records without a usable id fails the run, nothing is published."`
	MaxDropPercent       float64       `env:"SPOC_MAX_DROP_PERCENT, default=10" help:"Publish guard: a body with this many percent fewer records than the previous snapshot fails the run, nothing is published (its raw body goes under rejected/)."`
	CollapseWasPercent   float64       `env:"SPOC_COLLAPSE_WAS_PERCENT, default=90" help:"Publish guard, with SPOC_COLLAPSE_BELOW_PERCENT: a column that had a value in at least this percent of the previous snapshot's rows..."`
	CollapseBelowPercent float64       `env:"SPOC_COLLAPSE_BELOW_PERCENT, default=10" help:"...and has one in fewer than this percent of the body's fails the run, nothing is published (its raw body goes under rejected/): an upstream field renamed. On a first day, with nothing to compare with, a declared field that no record holds, or holds only invalid values, fails it instead (another list at the URL). The error names the column and the undeclared field that likely replaced it. 0 turns the guard off."`
	Force                bool          `env:"SPOC_FORCE, default=false" help:"Publish even when a publish guard refuses the body: the record count fell more than SPOC_MAX_DROP_PERCENT, or a column collapsed (SPOC_COLLAPSE_*). For one run; the manifest says \"forced\"."`
	ArchiveRaw           bool          `env:"SPOC_ARCHIVE_RAW, default=true" help:"Also keep the body as received, gzip-compressed, beside the snapshot (spoc-list-public.json.gz), for replays."`
	DetectChanges        bool          `env:"SPOC_DETECT_CHANGES, default=true" help:"Compare with the previous snapshot and write the plots added, removed and changed in the day's changes/ folder (changes/spoc-list-public.changes.parquet), the versions that begin the day, each plot's history (history/spoc-list-public.versions.parquet), and the snapshot's digest (spoc-list-public.digest), which the next day reads instead of this Parquet file. false compares with the previous day by its manifest only, for the publish guards: none of its data objects is read for that (settling an earlier day's unfinished publish still restores its objects, by copies)."`
	SkipIfUnchanged      bool          `env:"SPOC_SKIP_IF_UNCHANGED, default=true" help:"A rerun of a day whose snapshot came from the same body bytes (SHA-256) publishes nothing and exits 0."`
	LockWait             time.Duration `env:"SPOC_LOCK_WAIT, default=2m15s" help:"When another run holds the day's lock: how long to watch it before failing with 'another run is publishing this day'. A lock its holder renews fails the run at once; one left unchanged for its whole lease (2m) is taken over, so below 2m a crashed run's lock is never taken over."`
	Date                 string        `env:"SPOC_DATE" help:"Publish under this day (YYYYMMDD) instead of today in SPOC_TIMEZONE: for backfills and replays of a raw archive."`
	BatchSize            int           `env:"SPOC_BATCH_SIZE, default=16384" help:"Rows per Arrow record batch: two batches are in memory at once, about 5 MiB each at the default."`
	RowGroupRows         int           `env:"SPOC_ROW_GROUP_ROWS, default=131072" help:"Rows per Parquet row group: larger groups compress better and hold a few more MiB of compressed pages in memory."`
	ZstdLevel            int           `env:"SPOC_ZSTD_LEVEL, default=3" help:"zstd compression level of the Parquet columns (1-22)."`
	CoordinateZstdLevel  int           `env:"SPOC_ZSTD_LEVEL_COORDINATES, default=3" help:"zstd level of the two GPS columns (1-22). At 10 or more the file shrinks about 8% (to 0.95x DuckDB's), for about 70 MiB more peak RSS and 40% more CPU (measured at 306,000 records)."`
	MaxBodyBytes         ByteSize      `env:"SPOC_MAX_BODY_BYTES, default=2GiB" help:"Largest body accepted, after decompression (a number with optional KiB, MiB, GiB)."`
	MaxStringBytes       ByteSize      `env:"SPOC_MAX_STRING_BYTES, default=1MiB" help:"Longest string or number accepted in one field: a record with a longer value in a declared field is dropped and counted (too_large), as one over SPOC_MAX_RECORD_BYTES is, and the value is never held; a longer key fails the run. Values of undeclared fields are skipped whatever their length."`
	MaxRecordBytes       ByteSize      `env:"SPOC_MAX_RECORD_BYTES, default=4MiB" help:"Largest record, as it stands in the body and as its values' text once decoded: a larger one is dropped and counted (too_large), as records without an id are, so its memory is never held."`
	MaxRecords           int64         `env:"SPOC_MAX_RECORDS, default=2000000" help:"Most records (elements of the records array) accepted: a body with more fails the run (too_large), nothing is published (its raw body goes under rejected/). Each record keeps about 58 bytes of state; at the default a body at the cap stays within 256 MiB."`
	Attempts             int           `env:"SPOC_ATTEMPTS, default=4" help:"Fetch attempts in all; connection errors, 429, 5xx and cut bodies are retried."`
	RetryInitial         time.Duration `env:"SPOC_RETRY_INITIAL, default=2s" help:"Wait before the second attempt; it doubles each time, with jitter."`
	RetryMax             time.Duration `env:"SPOC_RETRY_MAX, default=1m" help:"Longest wait between attempts, unless the server's Retry-After asks for more."`
	ConnectTimeout       time.Duration `env:"SPOC_CONNECT_TIMEOUT, default=30s" help:"Limit for the TCP connection and TLS handshake."`
	FirstByteTimeout     time.Duration `env:"SPOC_FIRST_BYTE_TIMEOUT, default=5m" help:"Limit from sending the request to the response headers (the upstream builds the whole list first)."`
	StallTimeout         time.Duration `env:"SPOC_STALL_TIMEOUT, default=1m" help:"Longest wait for the next bytes of the body before the attempt fails."`
	Deadline             time.Duration `env:"SPOC_DEADLINE, default=45m" help:"Limit for the whole run, retries and every list included."`
	CAFile               string        `env:"SPOC_CA_FILE" help:"PEM file of extra CA certificates to trust for the source, beside the system's."`
	TLSPins              []string      `env:"SPOC_TLS_PIN_SHA256" help:"For a source whose certificate chain can never verify (self-signed, expired, a private CA): comma-separated SHA-256 digests of the accepted leaf keys (SubjectPublicKeyInfo, base64 as in sha256/..., or hex). Only those keys are accepted, the host name is still checked; logs a warning on every run. The way out instead of SPOC_INSECURE_SKIP_VERIFY."`
	InsecureSkipVerify   bool          `env:"SPOC_INSECURE_SKIP_VERIFY, default=false" help:"Turn off TLS certificate checks for the source. Logs a warning on every run; keep it off (see SPOC_CA_FILE and SPOC_TLS_PIN_SHA256)."`
	BigQueryDataset      string        `env:"SPOC_BIGQUERY_DATASET" help:"PROJECT.DATASET: after a run publishes a list's day, or finds it unchanged, load the day's objects (snapshot, change table, versions, geolocation layer) into the dataset's native tables (NAME_snapshots_native, NAME_changes_native, NAME_versions_native, NAME_geo_native for list NAME), each into the day's partition, which the load replaces. Needs a gs:// SPOC_OUTPUT and the tables deploy/ makes. A failed load fails the run (exit 1) and leaves the day published: the next run of the day loads it again. Empty: no loads."`
	BigQueryTimeout      time.Duration `env:"SPOC_BIGQUERY_TIMEOUT, default=10m" help:"Longest time for one list's loads, their retries and waits included; the jobs still running then are cancelled (within 5s more) and the run fails."`
	BigQueryEndpoint     string        `env:"SPOC_BIGQUERY_ENDPOINT" help:"BigQuery API endpoint instead of Google's: https://host[:port][/path] (a private endpoint; /bigquery/v2/ is added without a path), or plain http on a loopback address for a test server, which gets no credentials."`
	LogFormat            string        `env:"SPOC_LOG_FORMAT, default=auto" help:"Log format: json (Cloud Logging keys), text, or auto (text on a terminal, json otherwise)."`
	LogLevel             string        `env:"SPOC_LOG_LEVEL, default=info" help:"Least severe log level written: debug, info, warn or error."`
	ProgressInterval     time.Duration `env:"SPOC_PROGRESS_INTERVAL, default=10s" help:"Off a terminal, how often a progress line is logged (0: never). On a terminal a progress bar is drawn instead."`
	TelemetryTimeout     time.Duration `env:"SPOC_TELEMETRY_TIMEOUT, default=10s" help:"Longest wait, at exit, to export the last metrics and spans. Exporters are chosen by the OTEL_* variables."`

	// lists are the lists SPOC_DATASET selects, in its order, each with
	// its own settings (LoadConfig resolves them; not a setting).
	lists []list
}

// list is one list of a run: the dataset, where its body comes from and
// the folder of its days. The rest of the settings are the run's.
type list struct {
	Dataset     *spoc.Dataset
	URL, Prefix string
	MinRecords  int64 // its floor, from SPOC_MIN_RECORDS
}

// ConfigError is a setting that is missing or wrong. The job exits with
// status 2 on it, before any network call.
type ConfigError struct {
	Var string // environment variable
	Err error
}

// Error is the variable and the reason. The job's own reasons quote
// values clipped (see quote); those of other packages, a source's
// parser's or os.Stat's, may quote one whole, so a reason longer than
// maxMessage loses its middle, keeping its start and the end that says
// what is wrong.
func (e *ConfigError) Error() string {
	msg := clip(e.Var) + ": " + e.Err.Error()
	if len(msg) <= maxMessage {
		return msg
	}
	tail := len(msg) - maxMessage/2
	for tail < len(msg) && !utf8.RuneStart(msg[tail]) {
		tail++
	}
	return clipAt(msg, maxMessage/2) + msg[tail:]
}
func (e *ConfigError) Unwrap() error { return e.Err }

// shownBytes is the most of a value that a message quotes: a value can
// be as long as the environment allows (a file's contents set in the
// wrong variable), and a message that quotes it whole, twice where it
// also quotes a part, buries its reason in a line of that length.
// maxMessage bounds a whole ConfigError's text.
const (
	shownBytes = 64
	maxMessage = 512
)

// clip is s up to shownBytes long, a longer one cut there (back to the
// start of a rune) and marked with "…".
func clip(s string) string { return clipAt(s, shownBytes) }

// clipAt is s cut after n bytes as clip cuts it.
func clipAt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// quote is s quoted as %q does, clipped: "its first 64 bytes"…, the mark
// outside the quotes, as no part of the value.
func quote(s string) string {
	c := clip(s)
	if c == s {
		return strconv.Quote(s)
	}
	return strconv.Quote(strings.TrimSuffix(c, "…")) + "…"
}

// LoadConfig reads the configuration from env (the process environment,
// as variable names and values) and validates it.
func LoadConfig(ctx context.Context, environ map[string]string) (*Config, error) {
	if err := unknownSetting(environ); err != nil {
		return nil, err
	}
	environ, err := checkValues(environ)
	if err != nil {
		return nil, err
	}
	env := envconfig.MapLookuper(environ)
	var c Config
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: env}); err != nil {
		// Its messages start with the Go field name ("BatchSize: ..."),
		// which the job's user has no use for.
		return nil, &ConfigError{Var: varInError(err), Err: cmp.Or(errors.Unwrap(err), err)}
	}
	if err := c.selectLists(env); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// The options of each component of the run, built once from the
// settings: snapshot.Run uses them as they are.

// retry is the attempts of the fetch and the waits between them.
func (c *Config) retry() fetch.Backoff {
	return fetch.Backoff{Attempts: c.Attempts, Initial: c.RetryInitial, Max: c.RetryMax}
}

// decoderOptions are the decoder's batch size and limits.
func (c *Config) decoderOptions() []spoc.DecoderOption {
	return []spoc.DecoderOption{
		spoc.WithBatchSize(c.BatchSize),
		spoc.WithMaxBodyBytes(int64(c.MaxBodyBytes)),
		spoc.WithMaxStringBytes(int(c.MaxStringBytes)),
		spoc.WithMaxRecordBytes(int64(c.MaxRecordBytes)),
		spoc.WithMaxRecords(c.MaxRecords),
	}
}

// layouts are the Parquet options of the snapshot (the dataset's
// dictionary columns, its GPS columns at their own zstd level) and of the
// change table (its defaults).
func (c *Config) layouts(ds *spoc.Dataset) snapshot.Layouts {
	return snapshot.NewLayouts(ds, version, snapshot.Layout{
		RowGroupRows:        int64(c.RowGroupRows),
		ZstdLevel:           c.ZstdLevel,
		CoordinateZstdLevel: c.CoordinateZstdLevel,
	}, snapshot.Layout{})
}

// guards are the checks list l's body must pass to be published: the
// run's, with l's own record floor.
func (c *Config) guards(l list) snapshot.Guards {
	return snapshot.Guards{
		MinRecords:           l.MinRecords,
		MaxWithoutIDPercent:  c.MaxDroppedPercent,
		MaxFallPercent:       c.MaxDropPercent,
		CollapseWasPercent:   c.CollapseWasPercent,
		CollapseBelowPercent: c.CollapseBelowPercent,
		Force:                c.Force,
		SkipIfUnchanged:      c.SkipIfUnchanged,
	}
}

// lock is the timing of the day's lock, held by task: Cloud Run starts a
// task's retry in the same execution only after the earlier attempt
// ended, so its lock is taken over at once.
func (c *Config) lock(task cloudRunTask) transaction.Options {
	return transaction.Options{Wait: c.LockWait, Execution: task.execution, Task: task.index}
}

// selectLists resolves SPOC_DATASET into the run's lists, each with its
// own URL and prefix: the dataset's defaults (SPOC_URL's and
// SPOC_PREFIX's declared defaults are the SPOC list's), its URL moved to
// SPOC_API_BASE when that is set, and SPOC_URL and SPOC_PREFIX as given
// for a single list. Several lists refuse both: one URL or one folder
// cannot be every list's.
func (c *Config) selectLists(env envconfig.Lookuper) error {
	datasets, err := parseLists(c.Dataset)
	if err != nil {
		return err
	}
	_, urlSet := env.Lookup("SPOC_URL")
	_, prefixSet := env.Lookup("SPOC_PREFIX")
	if len(datasets) > 1 {
		names := make([]string, len(datasets))
		for i, ds := range datasets {
			names[i] = ds.Name
		}
		if urlSet {
			return &ConfigError{Var: "SPOC_URL", Err: fmt.Errorf("set with several lists (%s), each of which has its own URL: unset it, or set SPOC_API_BASE to fetch them all from another host", strings.Join(names, ", "))}
		}
		if prefixSet {
			return &ConfigError{Var: "SPOC_PREFIX", Err: fmt.Errorf("set with several lists (%s), each of which has its own folder below SPOC_OUTPUT: unset it", strings.Join(names, ", "))}
		}
	}
	if c.APIBase != "" {
		if urlSet {
			return &ConfigError{Var: "SPOC_API_BASE", Err: errors.New("set together with SPOC_URL, which replaces the whole URL and would ignore it: choose one")}
		}
		if err := checkAPIBase(c.APIBase); err != nil {
			return &ConfigError{Var: "SPOC_API_BASE", Err: err}
		}
	}
	if err := c.MinRecords.check(datasets); err != nil {
		return &ConfigError{Var: "SPOC_MIN_RECORDS", Err: err}
	}
	c.lists = c.lists[:0]
	for _, ds := range datasets {
		l := list{Dataset: ds, URL: ds.URL, Prefix: ds.Prefix, MinRecords: c.MinRecords.of(ds.Name)}
		switch {
		case urlSet:
			l.URL = c.URL
		case c.APIBase != "":
			l.URL = onBase(c.APIBase, ds.URL)
		}
		if prefixSet {
			l.Prefix = c.Prefix
		}
		c.lists = append(c.lists, l)
	}
	if len(c.lists) == 1 {
		c.URL, c.Prefix = c.lists[0].URL, c.lists[0].Prefix
	}
	return nil
}

// parseLists reads SPOC_DATASET: dataset and group names separated by
// commas (spaces around them are ignored), each dataset once. A group
// with no dataset in it yet, an empty or unknown name, or a dataset
// named twice (by its name or through a group) is a *ConfigError; an
// unknown name is told the known one it likely meant, if one is close.
func parseLists(value string) ([]*spoc.Dataset, error) {
	bad := func(format string, args ...any) error {
		return &ConfigError{Var: "SPOC_DATASET", Err: fmt.Errorf(format, args...)}
	}
	known := spoc.Datasets()
	var out []*spoc.Dataset
	for name := range strings.SplitSeq(value, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, bad("%s holds an empty name: give dataset names separated by commas, as spoc,osh", quote(value))
		}
		selected := []*spoc.Dataset{known[name]}
		if selected[0] == nil {
			in, isGroup := spoc.InGroup(name)
			switch {
			case !isGroup:
				names := slices.Sorted(maps.Keys(known))
				return nil, bad("%s is not a dataset; the known ones are %s, and the groups %s%s",
					quote(name), strings.Join(names, ", "), strings.Join(spoc.Groups(), ", "), didYouMean(name, append(slices.Clone(names), spoc.Groups()...)))
			case len(in) == 0:
				return nil, bad("the group %s holds no dataset yet", name)
			}
			selected = in
		}
		for _, ds := range selected {
			if slices.Contains(out, ds) {
				how := ""
				if ds.Name != name {
					how = " (once through the group " + name + ")"
				}
				return nil, bad("%q is named twice%s", ds.Name, how)
			}
			out = append(out, ds)
		}
	}
	return out, nil
}

// checkAPIBase refuses a SPOC_API_BASE that is more or less than
// http(s)://host[:port]: the path, query and fragment are each list's
// own, and credentials are not to sit in a setting every log names. Its
// URLs are fenced as SPOC_URL's are (fetch.Client refuses a metadata
// server, and lets redirects lead only where the first address allows).
func checkAPIBase(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("%s is not a URL such as https://mirror.example.org:8443", quote(fetch.RedactURL(base)))
	}
	shown := quote(fetch.RedactURL(base))
	port := u.Port()
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%s: want http:// or https:// and a host, such as https://mirror.example.org:8443", shown)
	case u.User != nil:
		return fmt.Errorf("%s holds a user or password: a base is only a scheme, a host and a port", shown)
	case u.Host == "" || u.Hostname() == "" || u.Opaque != "":
		return fmt.Errorf("%s has no host", shown)
	case u.Path != "" && u.Path != "/":
		return fmt.Errorf("%s has a path: each list keeps its own, only the scheme, host and port are replaced", shown)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(base, "#"):
		return fmt.Errorf("%s has a query or a fragment: each list keeps its own", shown)
	case strings.HasSuffix(u.Host, ":") && port == "":
		return fmt.Errorf("%s has an empty port", shown)
	}
	if port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("%s: port %s is not between 1 and 65535", shown, clip(port))
		}
	}
	return nil
}

// onBase is the declared URL raw with its scheme and host replaced by
// base (checkAPIBase passed it), the rest kept byte for byte: a trailing
// "?" a list needs stays.
func onBase(base, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw // declared URLs parse (TestAPIBase)
	}
	return strings.TrimSuffix(base, "/") + strings.TrimPrefix(raw, u.Scheme+"://"+u.Host)
}

// plainInteger and plainDecimal are the only spellings of numbers the
// settings accept: strconv also takes hex, octal and binary prefixes,
// underscores and hex floats, and, with the base 0 envconfig gives it,
// reads 010 as 8.
var (
	plainInteger = regexp.MustCompile(`^[+-]?[0-9]+$`)
	plainDecimal = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
)

// checkValues refuses the values of set variables that envconfig would
// misread, before it reads them: an empty or blank value of a setting
// with a default (envconfig reads it as 0, false or "", not as the
// default: SPOC_COLLAPSE_BELOW_PERCENT= would turn the guard off), and
// a number, duration, size or boolean that does not parse, with a
// message that names no Go field. Settings without a default take empty
// as unset, but not blank. It returns environ with the integers in
// canonical decimal.
func checkValues(environ map[string]string) (map[string]string, error) {
	ds := spoc.SPOC
	if lists, err := parseLists(cmp.Or(environ["SPOC_DATASET"], ds.Name)); err == nil {
		ds = lists[0]
	}
	t := reflect.TypeFor[Config]()
	out := maps.Clone(environ)
	for _, s := range settings() {
		v, set := environ[s.Var]
		if !set {
			continue
		}
		bad := func(format string, args ...any) error {
			return &ConfigError{Var: s.Var, Err: fmt.Errorf(format, args...)}
		}
		if strings.TrimSpace(v) == "" {
			if s.Default == "" && v == "" {
				continue
			}
			if s.Default == "" {
				// Blank, not empty: a value (a secret, a path) that did
				// not come through must not pass for none.
				return nil, bad("blank: leave it empty or unset for none")
			}
			return nil, bad("empty: unset it for the default %s", s.defaultIn(ds))
		}
		switch f := t.Field(s.field).Type; {
		case f == reflect.TypeFor[time.Duration]():
			if _, err := time.ParseDuration(v); err != nil {
				return nil, bad("%s is not a duration such as 90s, 5m or 1h30m", quote(v))
			}
		case reflect.PointerTo(f).Implements(reflect.TypeFor[envconfig.Decoder]()):
			// ByteSize, RecordFloors: their own parsers' messages.
			if err := reflect.New(f).Interface().(envconfig.Decoder).EnvDecode(v); err != nil {
				return nil, &ConfigError{Var: s.Var, Err: err}
			}
		case f.Kind() == reflect.Bool:
			if _, err := strconv.ParseBool(v); err != nil {
				return nil, bad("%s is not true or false", quote(v))
			}
		case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
			n, err := strconv.ParseInt(v, 10, f.Bits())
			if !plainInteger.MatchString(v) || err != nil {
				return nil, bad("%s is not a whole number in decimal within %d bits", quote(v), f.Bits())
			}
			out[s.Var] = strconv.FormatInt(n, 10)
		case f.Kind() == reflect.Float64:
			// A NaN limit compares false with everything, so a guard
			// set to one would never refuse a body: the pattern has no
			// NaN or Inf, and a number past float64's range is refused.
			if _, err := strconv.ParseFloat(v, 64); !plainDecimal.MatchString(v) || err != nil {
				return nil, bad("%s is not a finite decimal number such as 10 or 2.5", quote(v))
			}
		}
	}
	return out, nil
}

// varInError finds which variable an envconfig error is about: its
// messages start with the Go field name ("BatchSize: strconv...").
func varInError(err error) string {
	field, _, _ := strings.Cut(err.Error(), ":")
	if f, ok := reflect.TypeFor[Config]().FieldByName(strings.TrimSpace(field)); ok {
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		return name
	}
	return "environment"
}

// unknownSetting refuses a SPOC_* variable that is no setting: a
// misspelt name would otherwise leave its setting at the default without
// a word.
func unknownSetting(environ map[string]string) error {
	known := settings()
	for _, name := range slices.Sorted(maps.Keys(environ)) {
		if !strings.HasPrefix(name, "SPOC_") || slices.ContainsFunc(known, func(s setting) bool { return s.Var == name }) {
			continue
		}
		return &ConfigError{Var: name, Err: fmt.Errorf("not a setting%s (-help lists them all)", didYouMean(name, settingVars()))}
	}
	return nil
}

// settingVars are the names of every setting, in Config's order.
func settingVars() []string {
	var names []string
	for _, s := range settings() {
		names = append(names, s.Var)
	}
	return names
}

// didYouMean is "; did you mean X?" for the one of names that name
// likely meant, or "" when none is close enough (see closest).
func didYouMean(name string, names []string) string {
	if c := closest(name, names); c != "" {
		return "; did you mean " + c + "?"
	}
	return ""
}

// closest is the one of names the fewest edits away from name, the
// first of those as close, or "" when even that one is more edits away
// than a third of its length (one at least): a name that far from every
// known one is no slip of the keys, and naming the least unlike would
// mislead (qqqqqqqq is not gm mistyped). Case counts for nothing: SPOC
// is spoc mistyped, and spoc_force SPOC_FORCE.
func closest(name string, names []string) string {
	best, bestDist := "", -1
	for _, n := range names {
		d := editDistance(strings.ToLower(name), strings.ToLower(n))
		if d <= max(1, len(n)/3) && (bestDist < 0 || d < bestDist) {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b: the
// fewest byte insertions, deletions, substitutions and swaps of two
// neighbours that turn one into the other. A swap counts as one edit, as
// the slip it is (spco for spoc), so that closest's bound does not lose
// it in a short name.
func editDistance(a, b string) int {
	// Three rows of the distances of a's prefixes to b's: the one two
	// back is for the swaps.
	back, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := range len(a) {
		cur[0] = i + 1
		for j := range len(b) {
			cost := 1
			if a[i] == b[j] {
				cost = 0
			}
			cur[j+1] = min(prev[j+1]+1, cur[j]+1, prev[j]+cost)
			if i > 0 && j > 0 && a[i] == b[j-1] && a[i-1] == b[j] {
				cur[j+1] = min(cur[j+1], back[j-1]+1)
			}
		}
		back, prev, cur = prev, cur, back
	}
	return prev[len(b)]
}

func (c *Config) validate() error {
	bad := func(name, format string, args ...any) error {
		return &ConfigError{Var: name, Err: fmt.Errorf(format, args...)}
	}
	for _, l := range c.lists {
		if err := validateSource(l.URL); err != nil {
			return &ConfigError{Var: "SPOC_URL", Err: err}
		}
		if strings.Contains(l.Prefix, "..") || strings.HasPrefix(l.Prefix, "/") {
			return bad("SPOC_PREFIX", "%s must be a relative path without ..", quote(l.Prefix))
		}
	}
	if strings.HasPrefix(c.Output, "gs://") {
		if _, _, err := sink.ParseGCSURL(c.Output); err != nil {
			return &ConfigError{Var: "SPOC_OUTPUT", Err: err}
		}
	} else if c.Output == "" {
		return bad("SPOC_OUTPUT", "empty")
	} else if strings.Contains(c.Output, "://") && !strings.HasPrefix(c.Output, "file://") {
		return bad("SPOC_OUTPUT", "%s: only gs:// URLs and local directories are supported", quote(c.Output))
	} else if fi, err := os.Stat(strings.TrimPrefix(c.Output, "file://")); err == nil && !fi.IsDir() {
		return bad("SPOC_OUTPUT", "%s exists and is not a directory", clip(c.Output))
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		return bad("SPOC_TIMEZONE", "%v", err)
	}
	switch {
	case c.MaxDroppedPercent < 0 || c.MaxDroppedPercent > 100:
		return bad("SPOC_MAX_DROPPED_PERCENT", "%g is not between 0 and 100", c.MaxDroppedPercent)
	case c.MaxDropPercent < 0 || c.MaxDropPercent > 100:
		return bad("SPOC_MAX_DROP_PERCENT", "%g is not between 0 and 100", c.MaxDropPercent)
	case c.CollapseWasPercent < 0 || c.CollapseWasPercent > 100:
		return bad("SPOC_COLLAPSE_WAS_PERCENT", "%g is not between 0 and 100", c.CollapseWasPercent)
	case c.CollapseBelowPercent < 0 || c.CollapseBelowPercent > c.CollapseWasPercent:
		return bad("SPOC_COLLAPSE_BELOW_PERCENT", "%g is not between 0 and SPOC_COLLAPSE_WAS_PERCENT (%g)", c.CollapseBelowPercent, c.CollapseWasPercent)
	case c.BatchSize < 1 || c.BatchSize > 1<<20:
		return bad("SPOC_BATCH_SIZE", "%d is not between 1 and %d", c.BatchSize, 1<<20)
	case c.RowGroupRows < 1 || c.RowGroupRows > 1<<24:
		return bad("SPOC_ROW_GROUP_ROWS", "%d is not between 1 and %d", c.RowGroupRows, 1<<24)
	case c.ZstdLevel < 1 || c.ZstdLevel > 22:
		return bad("SPOC_ZSTD_LEVEL", "%d is not between 1 and 22", c.ZstdLevel)
	case c.CoordinateZstdLevel < 1 || c.CoordinateZstdLevel > 22:
		return bad("SPOC_ZSTD_LEVEL_COORDINATES", "%d is not between 1 and 22", c.CoordinateZstdLevel)
	case c.MaxBodyBytes < 1:
		return bad("SPOC_MAX_BODY_BYTES", "must be positive")
	case c.MaxStringBytes < 1 || c.MaxStringBytes > 1<<30:
		return bad("SPOC_MAX_STRING_BYTES", "must be between 1 and 1GiB")
	case c.MaxRecordBytes < 1:
		return bad("SPOC_MAX_RECORD_BYTES", "must be positive")
	case c.MaxRecords < 1:
		return bad("SPOC_MAX_RECORDS", "%d: at least 1", c.MaxRecords)
	case c.Attempts < 1:
		return bad("SPOC_ATTEMPTS", "%d: at least one attempt is needed", c.Attempts)
	case c.RetryInitial < 0:
		return bad("SPOC_RETRY_INITIAL", "negative")
	case c.RetryMax < c.RetryInitial:
		return bad("SPOC_RETRY_MAX", "%s is less than SPOC_RETRY_INITIAL %s", c.RetryMax, c.RetryInitial)
	case c.ConnectTimeout < 0, c.FirstByteTimeout < 0, c.StallTimeout < 0:
		return bad("SPOC_CONNECT_TIMEOUT", "timeouts cannot be negative")
	case c.Deadline <= 0:
		return bad("SPOC_DEADLINE", "must be positive")
	case c.ProgressInterval < 0:
		return bad("SPOC_PROGRESS_INTERVAL", "negative")
	case c.LockWait < 0:
		return bad("SPOC_LOCK_WAIT", "negative")
	case c.TelemetryTimeout <= 0:
		return bad("SPOC_TELEMETRY_TIMEOUT", "must be positive")
	case c.BigQueryTimeout <= 0:
		return bad("SPOC_BIGQUERY_TIMEOUT", "must be positive")
	}
	if err := c.validateBigQuery(); err != nil {
		return err
	}
	for _, l := range c.lists {
		// A body with more records than SPOC_MAX_RECORDS fails too_large,
		// so such a floor would fail every run, the reason found only
		// after a whole fetch.
		if l.MinRecords > c.MaxRecords {
			return bad("SPOC_MIN_RECORDS", "the floor of %s, %d, is above SPOC_MAX_RECORDS, %d, the most records a body may hold: no body could meet it; lower the floor or raise SPOC_MAX_RECORDS", l.Dataset.Name, l.MinRecords, c.MaxRecords)
		}
	}
	if c.Date != "" {
		if _, err := time.Parse(snapshot.DateLayout, c.Date); err != nil {
			return bad("SPOC_DATE", "%s is not a date as YYYYMMDD", quote(c.Date))
		}
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			return &ConfigError{Var: "SPOC_CA_FILE", Err: err}
		}
	}
	if _, err := c.pinnedKeys(); err != nil {
		return &ConfigError{Var: "SPOC_TLS_PIN_SHA256", Err: err}
	}
	if len(c.TLSPins) > 0 && c.InsecureSkipVerify {
		return bad("SPOC_TLS_PIN_SHA256", "set together with SPOC_INSECURE_SKIP_VERIFY=true, which would ignore it: choose one")
	}
	switch c.LogFormat {
	case "auto", "json", "text":
	default:
		return bad("SPOC_LOG_FORMAT", "%s is not auto, json or text", quote(c.LogFormat))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return &ConfigError{Var: "SPOC_LOG_LEVEL", Err: err}
	}
	return nil
}

// pinnedKeys parses SPOC_TLS_PIN_SHA256.
func (c *Config) pinnedKeys() ([][32]byte, error) {
	var pins [][32]byte
	if len(c.TLSPins) == 1 && c.TLSPins[0] == "" {
		return nil, nil // set but empty, as the deployment sets it: no pins
	}
	for _, s := range c.TLSPins {
		if strings.TrimSpace(s) == "" {
			// A pin that came blank (a secret not filled in) must not
			// turn pinning off without a word.
			return nil, fmt.Errorf("%s holds a blank pin: give only pins, or leave it empty for none", quote(strings.Join(c.TLSPins, ",")))
		}
		p, err := fetch.ParsePin(s)
		if err != nil {
			return nil, err
		}
		pins = append(pins, p)
	}
	return pins, nil
}

func validateSource(source string) error {
	src, err := fetch.ParseSource(source)
	if err != nil {
		return err
	}
	switch {
	case src.Kind == fetch.SourceHTTP:
		return nil
	case src.Kind == fetch.SourceOther && src.URL.Scheme == "gs":
		_, name, err := sink.ParseGCSURL(source)
		if err == nil && name == "" {
			err = fmt.Errorf("%s names a bucket, not a saved body", quote(fetch.RedactURL(source)))
		}
		return err
	case src.Kind == fetch.SourceOther:
		return fmt.Errorf("%s: only http(s), gs:// and file:// URLs and paths are supported", quote(fetch.RedactURL(source)))
	}
	fi, err := os.Stat(src.Path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory, not a saved body", clip(src.Path))
	}
	return nil
}

// ByteSize is a size in bytes, written as a number with an optional unit
// (B, KiB, MiB, GiB, or KB, MB, GB in powers of 1000).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	scale  int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// EnvDecode implements envconfig.Decoder.
func (b *ByteSize) EnvDecode(val string) error {
	s := strings.TrimSpace(val)
	scale := int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, scale = strings.TrimSpace(rest), u.scale
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/scale {
		return fmt.Errorf("%s is not a size such as 1048576, 512MiB or 2GiB", quote(val))
	}
	*b = ByteSize(n * scale)
	return nil
}

// RecordFloors is SPOC_MIN_RECORDS: the fewest usable records each list
// of a run must hold to be published. One number is every list's floor,
// as it was before a run held several lists; otherwise comma-separated
// parts, each NAME=N (that list's floor) or a bare N (the floor of the
// lists not named, 1 without one), so that a run of several lists guards
// each at its own size: states=13,zones=9. Which names are lists of the
// run is for check, once the lists are known.
type RecordFloors struct {
	others int64        // the floor of the lists not named
	named  []namedFloor // in the order given
}

type namedFloor struct {
	list  string
	floor int64
}

// EnvDecode implements envconfig.Decoder.
func (f *RecordFloors) EnvDecode(val string) error {
	*f = RecordFloors{others: 1}
	if !strings.ContainsAny(val, ",=") {
		// One number, the spaces around it ignored as they are around
		// each part's: " 5" must not be refused where "states= 5" is
		// read.
		num := strings.TrimSpace(val)
		n, err := strconv.ParseInt(num, 10, 64)
		if !plainInteger.MatchString(num) || err != nil {
			return fmt.Errorf("%s is not a whole number in decimal within 64 bits", quote(val))
		}
		if n < 0 {
			return fmt.Errorf("%d is negative", n)
		}
		f.others = n
		return nil
	}
	bare := ""
	for part := range strings.SplitSeq(val, ",") {
		name, num, named := strings.Cut(part, "=")
		name, num = strings.TrimSpace(name), strings.TrimSpace(num)
		if !named {
			name, num = "", name
		}
		whose := "the lists not named"
		switch {
		case num == "" && name == "":
			return fmt.Errorf("%s holds an empty part: give NAME=N parts, and at most one bare N, separated by commas, as states=13,zones=9", quote(val))
		case named && name == "":
			return fmt.Errorf("%s gives the floor %s to no list name: write NAME=N, as states=13", quote(val), clip(num))
		case named:
			whose = clip(name)
		}
		n, err := strconv.ParseInt(num, 10, 64)
		switch {
		case !plainInteger.MatchString(num) || err != nil:
			return fmt.Errorf("%s: the floor of %s, %s, is not a whole number in decimal within 64 bits", quote(val), whose, quote(num))
		case n < 0:
			return fmt.Errorf("%s: the floor of %s, %d, is negative", quote(val), whose, n)
		case !named && bare != "":
			return fmt.Errorf("%s gives two floors to the lists not named, %s and %s: give one bare number at most", quote(val), clip(bare), clip(num))
		case !named:
			bare, f.others = num, n
		case slices.ContainsFunc(f.named, func(nf namedFloor) bool { return nf.list == name }):
			return fmt.Errorf("%s gives %s a floor twice", quote(val), clip(name))
		default:
			f.named = append(f.named, namedFloor{name, n})
		}
	}
	return nil
}

// check refuses a floor given to a name that is no list of the run: a
// misspelt name would otherwise leave its list at the others' floor
// without a word.
func (f RecordFloors) check(lists []*spoc.Dataset) error {
	names := make([]string, len(lists))
	for i, ds := range lists {
		names[i] = ds.Name
	}
	for _, nf := range f.named {
		if slices.Contains(names, nf.list) {
			continue
		}
		name, run := clip(nf.list), strings.Join(names, ", ")
		given := fmt.Sprintf("%s=%d", name, nf.floor)
		if _, isGroup := spoc.InGroup(nf.list); isGroup {
			return fmt.Errorf("%s names the group %s, not a list: give each of this run's lists (%s) its own floor, or one bare number to the lists not named", given, name, run)
		}
		if _, known := spoc.Datasets()[nf.list]; known {
			// The flag overrides SPOC_DATASET, which may not even be set.
			return fmt.Errorf("%s: %s is not one of this run's lists (%s): the lists SPOC_DATASET or -dataset selects do not include it", given, name, run)
		}
		return fmt.Errorf("%s: %s is not one of this run's lists (%s)%s", given, name, run, didYouMean(nf.list, names))
	}
	return nil
}

// of is the floor of the list named name.
func (f RecordFloors) of(name string) int64 {
	for _, nf := range f.named {
		if nf.list == name {
			return nf.floor
		}
	}
	return f.others
}

// setting is one configuration variable as -help and the docs show it.
type setting struct {
	Var, Default, Help string
	field              int // its index in Config
}

// settings lists every variable of Config, read from the struct tags, so
// the help text, the README and the deployment cannot drift from the code.
func settings() []setting {
	t := reflect.TypeFor[Config]()
	out := make([]setting, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue // resolved from the settings, not one
		}
		name, opts, _ := strings.Cut(f.Tag.Get("env"), ",")
		s := setting{Var: strings.TrimSpace(name), Help: f.Tag.Get("help"), field: i}
		for _, o := range strings.Split(opts, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(o), "default="); ok {
				s.Default = v
			}
		}
		out = append(out, s)
	}
	return out
}

// defaultIn is the setting's default for dataset ds: SPOC_URL and
// SPOC_PREFIX have the dataset's own.
func (s setting) defaultIn(ds *spoc.Dataset) string {
	switch s.Var {
	case "SPOC_URL":
		return ds.URL
	case "SPOC_PREFIX":
		return ds.Prefix
	}
	return s.Default
}

// printUsage writes -help: the flags, every dataset with its defaults and
// object names, the groups, and the settings with the defaults of
// dataset (the first one selected; the default's when it is empty). A
// selection parseLists refuses is its *ConfigError, and nothing is
// written.
func printUsage(w io.Writer, flags *flag.FlagSet, dataset string) error {
	known := spoc.Datasets()
	lists, err := parseLists(cmp.Or(dataset, spoc.SPOC.Name))
	if err != nil {
		return err
	}
	selected := lists[0]
	fmt.Fprintf(w, `mspo-spoc %s fetches a public MSPO list and publishes it as a tidy zstd
Parquet snapshot, locally or in GCS, with its raw body, its manifest and the
changes since the previous day, in one folder per day:

  {SPOC_OUTPUT}/{SPOC_PREFIX}/{YYYYMMDD}/{objects}

Usage: job [flags]

Flags:
`, version)
	flags.SetOutput(w)
	flags.PrintDefaults()
	fmt.Fprintf(w, "\nDatasets (SPOC_DATASET or -dataset), each with its defaults of SPOC_URL\nand SPOC_PREFIX and the objects of its days:\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, name := range slices.Sorted(maps.Keys(known)) {
		ds, n := known[name], snapshot.NamesOf(known[name])
		fmt.Fprintf(tw, "  %s\tSPOC_URL\t%s\n", ds.Name, ds.URL)
		fmt.Fprintf(tw, "  \tSPOC_PREFIX\t%s\n", ds.Prefix)
		fmt.Fprintf(tw, "  \tobjects\t%s\n", strings.Join([]string{n.Parquet, n.Manifest, n.Archive, n.Changes, n.Digest}, ", "))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nGroups, each selecting its datasets (SPOC_DATASET=spoc,osh selects several by name):\n\n")
	for _, g := range spoc.Groups() {
		in, _ := spoc.InGroup(g)
		names := make([]string, len(in))
		for i, ds := range in {
			names[i] = ds.Name
		}
		fmt.Fprintf(w, "  %s: %s\n", g, cmp.Or(strings.Join(names, ", "), "(none declared yet)"))
	}
	fmt.Fprintf(w, "\nSettings (environment variables), with the defaults of dataset %s:\n\n", selected.Name)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range settings() {
		def := s.defaultIn(selected)
		if def == "" {
			def = "(none)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Var, def, s.Help)
	}
	tw.Flush()
	fmt.Fprint(w, `
Exit status: 0 the snapshot was published (or already was, from the same
body), every list's with several; 1 the run failed or was refused and
nothing was published (a refused body is kept under rejected/), for at
least one list with several, the others published; 2 bad configuration
(nothing was fetched).
`)
	return nil
}
