package bqload_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/calee-data/mspo-spoc/internal/fakebigquery"
	"github.com/calee-data/mspo-spoc/pkg/bqload"
)

// parquetRows is a Parquet file of n rows of one column.
func parquetRows(t *testing.T, n int) []byte {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(schema, &buf, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// objects are gs:// objects the fake reads; a missing one is not found.
type objects map[string][]byte

func (o objects) read(_ context.Context, uri string) ([]byte, error) {
	b, ok := o[uri]
	if !ok {
		return nil, fmt.Errorf("no object %s", uri)
	}
	return b, nil
}

func newLoader(t *testing.T, srv *fakebigquery.Server, timeout time.Duration) *bqload.Loader {
	t.Helper()
	return newLoaderOf(t, srv, "my-project.mspo", timeout)
}

func newLoaderOf(t *testing.T, srv *fakebigquery.Server, dataset string, timeout time.Duration) *bqload.Loader {
	t.Helper()
	l, err := bqload.New(context.Background(), bqload.Options{
		Dataset:        dataset,
		Endpoint:       srv.URL,
		Timeout:        timeout,
		TimeoutSetting: "THE_TIMEOUT",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

var day = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

func TestLoadReplacesTheDaysPartition(t *testing.T) {
	store := objects{
		"gs://b/p/20261126/s.parquet":         parquetRows(t, 30),
		"gs://b/p/20261126/changes/s.parquet": parquetRows(t, 3),
		"gs://b/p/20261127/s.parquet":         parquetRows(t, 31),
	}
	srv := fakebigquery.New(store.read, "my-project.mspo.spoc_snapshots_native", "my-project.mspo.spoc_changes_native")
	defer srv.Close()
	l := newLoader(t, srv, time.Minute)

	day1 := []bqload.Object{
		{Table: "spoc_snapshots_native", URI: "gs://b/p/20261126/s.parquet", Rows: 30},
		{Table: "spoc_changes_native", URI: "gs://b/p/20261126/changes/s.parquet", Rows: 3},
	}
	if err := l.Load(context.Background(), "spoc", day, day1); err != nil {
		t.Fatal(err)
	}
	loads := srv.Loads()
	if len(loads) != 2 {
		t.Fatalf("%d load jobs, want 2: %+v", len(loads), loads)
	}
	for i, ld := range loads {
		want := "my-project.mspo." + day1[i].Table + "$20261126"
		if ld.Table != want || !slices.Equal(ld.SourceURIs, []string{day1[i].URI}) || ld.SourceFormat != "PARQUET" ||
			ld.WriteDisposition != "WRITE_TRUNCATE" || ld.CreateDisposition != "CREATE_NEVER" || !ld.ListInference ||
			!slices.Equal(ld.SchemaUpdateOptions, []string{"ALLOW_FIELD_ADDITION", "ALLOW_FIELD_RELAXATION"}) ||
			ld.Labels["list"] != "spoc" || ld.Labels["day"] != "20261126" ||
			!strings.HasPrefix(ld.JobID, "load_"+day1[i].Table+"_20261126_") {
			t.Errorf("load %d: %+v, want %s from %s, PARQUET, WRITE_TRUNCATE, CREATE_NEVER, list inference, field addition and relaxation", i, ld, want, day1[i].URI)
		}
	}

	// The next day lands in its own partition; loading the first day
	// again replaces that day only.
	next := []bqload.Object{{Table: "spoc_snapshots_native", URI: "gs://b/p/20261127/s.parquet", Rows: 31}}
	if err := l.Load(context.Background(), "spoc", day.AddDate(0, 0, 1), next); err != nil {
		t.Fatal(err)
	}
	store["gs://b/p/20261126/s.parquet"] = parquetRows(t, 29)
	day1[0].Rows = 29
	if err := l.Load(context.Background(), "spoc", day, day1[:1]); err != nil {
		t.Fatal(err)
	}
	got := srv.Partitions()
	for table, rows := range map[string]int64{
		"my-project.mspo.spoc_snapshots_native$20261126": 29,
		"my-project.mspo.spoc_snapshots_native$20261127": 31,
		"my-project.mspo.spoc_changes_native$20261126":   3,
	} {
		if got[table].Rows != rows {
			t.Errorf("%s holds %d rows, want %d", table, got[table].Rows, rows)
		}
	}
	if len(got) != 3 {
		t.Errorf("partitions %v, want 3", slices.Sorted(maps.Keys(got)))
	}
}

func TestLoadFailures(t *testing.T) {
	store := objects{"gs://b/p/20261126/s.parquet": parquetRows(t, 10)}
	one := []bqload.Object{{Table: "spoc_snapshots_native", URI: "gs://b/p/20261126/s.parquet", Rows: 10}}
	tests := []struct {
		name    string
		failure fakebigquery.Failure
		objects []bqload.Object
		timeout time.Duration
		want    string // in the error
		cancel  bool   // the job was asked to cancel
		noJob   bool   // it failed before a job was named
		dataset string // the loader's, when not my-project.mspo
		// loaded: BigQuery loaded the partition, and the error says
		// what it got wrong.
		loaded bool
	}{
		{name: "job error", failure: fakebigquery.JobError, objects: one, timeout: time.Minute, want: "Provided Schema does not match"},
		{name: "missing table", objects: []bqload.Object{{Table: "gm_snapshots_native", URI: one[0].URI, Rows: 10}}, timeout: time.Minute, want: "Not found: Table my-project.mspo.gm_snapshots_native"},
		{name: "missing object", objects: []bqload.Object{{Table: one[0].Table, URI: "gs://b/p/20261126/gone.parquet", Rows: 10}}, timeout: time.Minute, want: "Not found: URI gs://b/p/20261126/gone.parquet"},
		{name: "other row count", objects: []bqload.Object{{Table: one[0].Table, URI: one[0].URI, Rows: 11}}, timeout: time.Minute, want: "the job loaded 10 rows, the object holds 11", loaded: true},
		{name: "no row count", failure: fakebigquery.NoStatistics, objects: one, timeout: time.Minute, want: "the job ended without a row count", loaded: true},
		// The library panics on a job without its reference: the job
		// may exist, so it is cancelled by its ID.
		{name: "empty answer to the creation", failure: fakebigquery.EmptyAnswer, objects: one, timeout: time.Minute, want: "BigQuery's answer broke the client library", cancel: true, loaded: true},
		{name: "unavailable", failure: fakebigquery.Unavailable, objects: one, timeout: 1500 * time.Millisecond, want: "read the dataset mspo", noJob: true},
		// A 4 MiB error is read no further than 1 MiB, and none of it
		// reaches the error.
		{name: "huge error", failure: fakebigquery.HugeError, objects: one, timeout: 1500 * time.Millisecond, want: "the BigQuery load timeout of 1.5s (THE_TIMEOUT) passed"},
		{name: "dataset missing", objects: one, timeout: time.Minute, want: "read the dataset other: googleapi: Error 404: Not found: Dataset my-project:other", noJob: true, dataset: "my-project.other"},
		// Made, its answer lost, and unreadable: cancelled by its ID.
		{name: "lost creation, unreadable job", failure: fakebigquery.LostUnreadable, objects: one, timeout: 1500 * time.Millisecond, want: "start the job", cancel: true, loaded: true},
		// Another job holds the ID: it is neither waited for nor taken
		// for the load.
		{name: "another job of the ID", failure: fakebigquery.Collide, objects: one, timeout: time.Minute, want: "found by its ID after a 409, is not this load"},
		{name: "job never ends", failure: fakebigquery.Hang, objects: one, timeout: 1500 * time.Millisecond, want: "the BigQuery load timeout of 1.5s (THE_TIMEOUT) passed", cancel: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakebigquery.New(store.read, "my-project.mspo.spoc_snapshots_native")
			defer srv.Close()
			srv.Fail(tt.failure)
			l := newLoaderOf(t, srv, cmp.Or(tt.dataset, "my-project.mspo"), tt.timeout)
			err := l.Load(context.Background(), "spoc", day, tt.objects)
			var le *bqload.LoadError
			switch {
			case err == nil:
				t.Fatal("loaded")
			case !errors.Is(err, bqload.ErrLoad) || !errors.As(err, &le):
				t.Fatalf("%v: not an ErrLoad *LoadError", err)
			case !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q, want it to say %q", err, tt.want)
			case le.Table != tt.objects[0].Table+"$20261126" || le.URI != tt.objects[0].URI:
				t.Errorf("LoadError of %s from %s", le.Table, le.URI)
			case tt.noJob != (le.Job == "") || !tt.noJob && !strings.HasPrefix(le.Job, "load_"+tt.objects[0].Table+"_20261126_"):
				t.Errorf("LoadError job %q", le.Job)
			case len(err.Error()) > 2<<10:
				t.Errorf("error of %d bytes, want a reason clipped to 1 KiB", len(err.Error()))
			}
			if tt.timeout < time.Minute && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%v: not a deadline", err)
			}
			if cancelled := srv.Cancelled(); tt.cancel != (len(cancelled) == 1 && cancelled[0] == le.Job) {
				t.Errorf("cancelled jobs %v, job %q", cancelled, le.Job)
			}
			if got := slices.Sorted(maps.Keys(srv.Partitions())); tt.loaded != (len(got) == 1) {
				t.Errorf("partitions loaded: %v", got)
			}
		})
	}
}

// TestLoadFindsAJobWhoseCreationWasLost: BigQuery made the job, its answer
// was lost, and the client's retry of the same job was refused as a
// duplicate (409): the load waits for the job it made, and succeeds.
func TestLoadFindsAJobWhoseCreationWasLost(t *testing.T) {
	store := objects{"gs://b/p/20261126/s.parquet": parquetRows(t, 10)}
	srv := fakebigquery.New(store.read, "my-project.mspo.spoc_snapshots_native")
	defer srv.Close()
	srv.Fail(fakebigquery.LostInsert)
	l := newLoader(t, srv, time.Minute)
	if err := l.Load(context.Background(), "spoc", day, []bqload.Object{{Table: "spoc_snapshots_native", URI: "gs://b/p/20261126/s.parquet", Rows: 10}}); err != nil {
		t.Fatal(err)
	}
	if loads := srv.Loads(); len(loads) != 1 {
		t.Errorf("loads %+v, want the one job", loads)
	}
	if p := srv.Partitions()["my-project.mspo.spoc_snapshots_native$20261126"]; p.Rows != 10 {
		t.Errorf("partition of %d rows", p.Rows)
	}
}

// TestLoadFollowsNoRedirect: an answer that redirects elsewhere is an
// error, the other host is never asked (an https endpoint's redirect
// would carry the access token to it), and the job is cancelled.
func TestLoadFollowsNoRedirect(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	store := objects{"gs://b/p/20261126/s.parquet": parquetRows(t, 10)}
	srv := fakebigquery.New(store.read, "my-project.mspo.spoc_snapshots_native")
	defer srv.Close()
	srv.RedirectTo(other.URL)
	srv.Fail(fakebigquery.Redirect)
	l := newLoader(t, srv, time.Minute)
	err := l.Load(context.Background(), "spoc", day, []bqload.Object{{Table: "spoc_snapshots_native", URI: "gs://b/p/20261126/s.parquet", Rows: 10}})
	var le *bqload.LoadError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "302") {
		t.Errorf("error %v, want a LoadError of the 302", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}
	if cancelled := srv.Cancelled(); le == nil || len(cancelled) != 1 || cancelled[0] != le.Job {
		t.Errorf("cancelled %v, want the job", cancelled)
	}
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in, base    string
		credentials bool
		err         string
	}{
		{in: "https://bigquery.googleapis.com", base: "https://bigquery.googleapis.com/bigquery/v2/", credentials: true},
		{in: "https://bigquery-psc.p.googleapis.com/", base: "https://bigquery-psc.p.googleapis.com/bigquery/v2/", credentials: true},
		{in: "https://proxy.example:8443/bq/bigquery/v2", base: "https://proxy.example:8443/bq/bigquery/v2/", credentials: true},
		{in: "http://127.0.0.1:9050", base: "http://127.0.0.1:9050/bigquery/v2/"},
		{in: "http://[::1]:9050", base: "http://[::1]:9050/bigquery/v2/"},
		{in: "http://localhost:9050", base: "http://localhost:9050/bigquery/v2/"},
		{in: "http://bigquery.example:80", err: "plain http is only for a test server on a loopback address"},
		{in: "http://10.0.0.1", err: "plain http is only for a test server"},
		{in: "ftp://127.0.0.1", err: "want https://"},
		{in: "https://user:secret@bq.example", err: "holds a user"},
		{in: "https://secret@bq.example", err: "holds a user"},
		{in: "https://bq.example/?key=secret", err: "a query"},
		{in: "https://bq.example/#secret", err: "a fragment"},
		{in: "https://bq.example:99999", err: "port is not between 1 and 65535"},
		{in: "https://bq.example:0", err: "port is not between 1 and 65535"},
		{in: "bigquery.googleapis.com", err: "is not a URL"},
		{in: "https://", err: "is not a URL"},
		{in: "https://user:secret@bq.example:port", err: "not a URL"},
		{in: "ftp://user:secret@127.0.0.1", err: "holds a user"},
		{in: "http://secret@10.0.0.1", err: "holds a user"},
	}
	for _, tt := range tests {
		base, creds, err := bqload.ParseEndpoint(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseEndpoint(%q) error %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || base != tt.base || creds != tt.credentials):
			t.Errorf("ParseEndpoint(%q) = %q, %v, %v; want %q, %v", tt.in, base, creds, err, tt.base, tt.credentials)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseEndpoint(%q) error %q shows the password", tt.in, err)
		}
	}
}

func TestParseDataset(t *testing.T) {
	tests := []struct{ in, project, dataset, err string }{
		{in: "my-project.mspo", project: "my-project", dataset: "mspo"},
		{in: "example.com:my-project.mspo_2", project: "example.com:my-project", dataset: "mspo_2"},
		{in: "mspo", err: "is not PROJECT.DATASET"},
		{in: "My-Project.mspo", err: "is not a project ID"},
		{in: "p.mspo", err: "is not a project ID"},
		{in: "my-project.ms-po", err: "is not a dataset ID"},
		{in: "my-project.", err: "is not a dataset ID"},
		{in: "my-project.a.b", err: "is not a dataset ID"},
		{in: "my-project." + strings.Repeat("d", 1025), err: "is not a dataset ID"},
	}
	for _, tt := range tests {
		p, d, err := bqload.ParseDataset(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseDataset(%q) error %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || p != tt.project || d != tt.dataset):
			t.Errorf("ParseDataset(%q) = %q, %q, %v", tt.in, p, d, err)
		}
	}
}
