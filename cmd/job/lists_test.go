package main

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// fakeAPI serves each dataset's generated body at the path of its
// default URL, as the API does, with the options given for it.
func fakeAPI(t *testing.T, lists map[*spoc.Dataset][]spoctest.Option) (*httptest.Server, map[*spoc.Dataset]*spoctest.Handler) {
	t.Helper()
	mux := http.NewServeMux()
	handlers := map[*spoc.Dataset]*spoctest.Handler{}
	for ds, opts := range lists {
		u, err := url.Parse(ds.URL)
		if err != nil {
			t.Fatal(err)
		}
		h := spoctest.NewHandler(append([]spoctest.Option{spoctest.WithDataset(ds), spoctest.WithRecords(500), spoctest.WithSeed(uint64(len(ds.Name)))}, opts...)...)
		mux.Handle("GET "+u.Path, h)
		handlers[ds] = h
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, handlers
}

// logLines are the job's JSON log lines.
func logLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for l := range strings.Lines(logs) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("a log line is not JSON: %q", l)
		}
		lines = append(lines, m)
	}
	return lines
}

// SPOC_DATASET=spoc,osh with SPOC_API_BASE publishes both lists from the
// API at that base, each under its own prefix as if it ran alone, and
// every log line about one list names it.
func TestSeveralListsPublishEach(t *testing.T) {
	api, handlers := fakeAPI(t, map[*spoc.Dataset][]spoctest.Option{spoc.SPOC: nil, spoc.OSH: nil})
	out := t.TempDir()
	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_DATASET": "spoc,osh", "SPOC_API_BASE": api.URL, "SPOC_OUTPUT": out})
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, logs)
	}
	for _, ds := range []*spoc.Dataset{spoc.SPOC, spoc.OSH} {
		dir := filepath.Join(out, ds.Prefix, today())
		n := snapshot.NamesOf(ds)
		if got, want := files(t, filepath.Join(out, ds.Prefix)), []string{today() + "/" + n.Changes, today() + "/" + n.Geo, today() + "/" + n.Versions, today() + "/" + n.Digest, today() + "/" + n.Archive, today() + "/" + n.Manifest, today() + "/" + n.Parquet}; !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", ds.Name, got, want)
		}
		m := readManifest(t, mustRead(t, filepath.Join(dir, n.Manifest)))
		planted := handlers[ds].Planted()
		if want := int64(planted.Records - planted.Dropped); m.Stats.RecordsWritten != want || !strings.HasPrefix(m.Source.URL, api.URL+"/api/") {
			t.Errorf("%s: %d records from %s, want %d from %s", ds.Name, m.Stats.RecordsWritten, m.Source.URL, want, api.URL)
		}
	}
	lines := logLines(t, logs)
	published := map[string]bool{}
	for _, l := range lines[:len(lines)-1] {
		if l["dataset"] == nil {
			t.Errorf("a line names no dataset: %v", l)
		}
		if l["message"] == "snapshot published" {
			published[l["dataset"].(string)] = true
		}
	}
	if !published["spoc"] || !published["osh"] {
		t.Errorf("published lines for %v, want spoc and osh", published)
	}
	last := lines[len(lines)-1]
	if last["message"] != "run finished" || last["published"] != "spoc,osh" || last["failed"] != "" || last["severity"] != "INFO" {
		t.Errorf("summary line %v", last)
	}
}

// A list that answers 503 fails alone: the others are published, the
// job exits 1, and nothing is left of the failed list, no object, no
// lock, no hidden file, not even its folder, locally or in GCS.
func TestOneFailingListPublishesTheOthers(t *testing.T) {
	for _, output := range []string{"local", "gcs"} {
		t.Run(output, func(t *testing.T) {
			api, _ := fakeAPI(t, map[*spoc.Dataset][]spoctest.Option{spoc.SPOC: nil, spoc.OSH: {spoctest.FailFirst(1000, http.StatusServiceUnavailable)}})
			out := t.TempDir()
			// Every object of the output, below its root.
			objects := func() []string { return files(t, out) }
			if output == "gcs" {
				startFakeGCS(t, "calee-lists")
				out = "gs://calee-lists"
				client := gcsClient(t)
				objects = func() []string { return bucketObjects(t, client, "calee-lists") }
			}
			// The failing list first: the one after it still runs.
			code, logs := runJob(t, context.Background(), map[string]string{"SPOC_DATASET": "osh,spoc", "SPOC_API_BASE": api.URL, "SPOC_OUTPUT": out, "SPOC_ATTEMPTS": "2"})
			if code != exitFailed {
				t.Fatalf("exit %d, want %d\n%s", code, exitFailed, logs)
			}
			n := snapshot.NamesOf(spoc.SPOC)
			var spocs []string
			for _, o := range objects() {
				if strings.HasPrefix(o, spoc.OSH.Prefix+"/") || !strings.HasPrefix(o, spoc.SPOC.Prefix+"/"+today()+"/") {
					t.Errorf("%s left behind", o)
				}
				spocs = append(spocs, strings.TrimPrefix(o, spoc.SPOC.Prefix+"/"+today()+"/"))
			}
			if !slices.Contains(spocs, n.Manifest) || !slices.Contains(spocs, n.Parquet) {
				t.Errorf("spoc's day holds %v, want it published", spocs)
			}
			if output == "local" {
				if _, err := os.Stat(filepath.Join(out, spoc.OSH.Prefix)); !os.IsNotExist(err) {
					t.Errorf("the failed list left its folder (%v)", err)
				}
			}
			lines := logLines(t, logs)
			var failed bool
			for _, l := range lines {
				if l["message"] == "run failed, nothing published" {
					failed = l["dataset"] == "osh"
				}
			}
			if !failed {
				t.Errorf("no failure line names osh:\n%s", logs)
			}
			last := lines[len(lines)-1]
			if last["message"] != "run finished" || last["published"] != "spoc" || last["failed"] != "osh" || last["severity"] != "ERROR" {
				t.Errorf("summary line %v", last)
			}
		})
	}
}

// The lists of SPOC_DATASET, and the settings that cannot go with
// several: each refusal exits 2 before any network call.
func TestSelectingLists(t *testing.T) {
	refs, _ := spoc.InGroup(spoc.References)
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // the lists, or the error's words
		err  bool
	}{
		{"one", map[string]string{"SPOC_DATASET": "osh"}, []string{"osh"}, false},
		{"two, in their order", map[string]string{"SPOC_DATASET": "osh,spoc"}, []string{"osh", "spoc"}, false},
		{"spaces around names", map[string]string{"SPOC_DATASET": " spoc , osh"}, []string{"spoc", "osh"}, false},
		{"a duplicate", map[string]string{"SPOC_DATASET": "spoc,osh,spoc"}, []string{"SPOC_DATASET", `"spoc" is named twice`}, true},
		{"a name in capitals", map[string]string{"SPOC_DATASET": "SPOC"}, []string{"SPOC_DATASET", `"SPOC" is not a dataset;`, "did you mean spoc?"}, true},
		{"an unknown name", map[string]string{"SPOC_DATASET": "spoc,oshh"}, []string{"SPOC_DATASET", `"oshh" is not a dataset;`, "did you mean osh?", "the known ones are " + strings.Join(slices.Sorted(maps.Keys(spoc.Datasets())), ", "), "references"}, true},
		{"an empty name", map[string]string{"SPOC_DATASET": "spoc,"}, []string{"SPOC_DATASET", "an empty name"}, true},
		{"SPOC_URL with two", map[string]string{"SPOC_DATASET": "spoc,osh", "SPOC_URL": "https://example.org/x"}, []string{"SPOC_URL", "several lists", "SPOC_API_BASE"}, true},
		{"SPOC_PREFIX with two", map[string]string{"SPOC_DATASET": "spoc,osh", "SPOC_PREFIX": "x"}, []string{"SPOC_PREFIX", "several lists"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadConfig(context.Background(), tc.env)
			if tc.err {
				for _, w := range tc.want {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("error %v, want it to say %s", err, w)
					}
				}
				env := map[string]string{"SPOC_OUTPUT": t.TempDir()}
				for k, v := range tc.env {
					env[k] = v
				}
				if code, logs := runJob(t, context.Background(), env); code != exitConfig {
					t.Errorf("exit %d, want %d\n%s", code, exitConfig, logs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := listNames(cfg); !slices.Equal(got, tc.want) {
				t.Errorf("lists %v, want %v", got, tc.want)
			}
		})
	}
	// The group selects every reference list, and is an error while it
	// holds none.
	cfg, err := LoadConfig(context.Background(), map[string]string{"SPOC_DATASET": spoc.References})
	if len(refs) == 0 {
		if err == nil || !strings.Contains(err.Error(), "the group references holds no dataset yet") {
			t.Errorf("an empty group: %v", err)
		}
	} else if err != nil || len(cfg.lists) != len(refs) {
		t.Errorf("the group references: %v, %v", cfg, err)
	}
}

func listNames(cfg *Config) []string {
	var names []string
	for _, l := range cfg.lists {
		names = append(names, l.Dataset.Name)
	}
	return names
}

// SPOC_API_BASE moves every list's default URL to another scheme and
// host, and is refused (exit 2) unless it is scheme://host[:port].
func TestAPIBase(t *testing.T) {
	for _, tc := range []struct {
		base string
		want string // spoc's URL, or "" for a refusal
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/api/spoc/get-spoc-list-public"},
		{"https://mirror.example.org/", "https://mirror.example.org/api/spoc/get-spoc-list-public"},
		{"https://[::1]:8443", "https://[::1]:8443/api/spoc/get-spoc-list-public"},
		{"ftp://mirror.example.org", ""},
		{"gs://bucket", ""},
		{"mirror.example.org", ""},
		{"mirror.example.org:8080", ""},
		{"https://", ""},
		{"https://mirror.example.org/api", ""},
		{"https://mirror.example.org?x=1", ""},
		{"https://mirror.example.org/?", ""},
		{"https://mirror.example.org#top", ""},
		{"https://user:secret@mirror.example.org", ""},
		{"https://mirror.example.org:99999", ""},
		{"https://mirror.example.org:0", ""},
		{" https://mirror.example.org", ""},
	} {
		t.Run(tc.base, func(t *testing.T) {
			env := map[string]string{"SPOC_API_BASE": tc.base}
			cfg, err := LoadConfig(context.Background(), env)
			if tc.want == "" {
				if err == nil || !strings.HasPrefix(err.Error(), "SPOC_API_BASE: ") {
					t.Fatalf("accepted, or not as SPOC_API_BASE: %v", err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("the error shows the password: %v", err)
				}
				env["SPOC_OUTPUT"] = t.TempDir()
				if code, logs := runJob(t, context.Background(), env); code != exitConfig {
					t.Errorf("exit %d, want %d\n%s", code, exitConfig, logs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.lists[0].URL; got != tc.want {
				t.Errorf("URL %s, want %s", got, tc.want)
			}
		})
	}
	// With SPOC_URL it would be ignored: one or the other.
	if _, err := LoadConfig(context.Background(), map[string]string{"SPOC_API_BASE": "https://mirror.example.org", "SPOC_URL": "https://example.org/x"}); err == nil || !strings.Contains(err.Error(), "SPOC_URL") {
		t.Errorf("SPOC_API_BASE with SPOC_URL: %v", err)
	}
	// Every declared URL is the API's scheme and host, then a path the
	// base keeps.
	for _, ds := range spoc.Datasets() {
		u, err := url.Parse(ds.URL)
		if err != nil || !strings.HasPrefix(ds.URL, u.Scheme+"://"+u.Host+"/") {
			t.Errorf("%s: %s is not scheme://host/path (%v)", ds.Name, ds.URL, err)
		}
	}
}

// -help with several lists shows the first one's defaults, the groups
// and SPOC_API_BASE; a selection it refuses exits 2.
func TestHelpWithSeveralLists(t *testing.T) {
	code, out := runJob(t, context.Background(), nil, "-help", "-dataset", "osh,spoc")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{"  SPOC_API_BASE  ", "Groups", "  " + spoc.References + ": ", "with the defaults of dataset osh", spoc.OSH.Prefix} {
		if !strings.Contains(out, want) {
			t.Errorf("-help does not show %q", want)
		}
	}
	if code, out := runJob(t, context.Background(), nil, "-help", "-dataset", "osh,osh"); code != exitConfig || !strings.Contains(out, "named twice") {
		t.Errorf("-help -dataset osh,osh: exit %d\n%s", code, out)
	}
}

// Past SPOC_DEADLINE, which bounds the whole run, the lists left are
// not started: the summary names them as not run, and the job exits 1.
func TestListsLeftPastTheDeadlineAreNotRun(t *testing.T) {
	api, handlers := fakeAPI(t, map[*spoc.Dataset][]spoctest.Option{spoc.SPOC: nil, spoc.OSH: {spoctest.WithThrottle(2048)}})
	out := t.TempDir()
	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_DATASET": "osh,spoc", "SPOC_API_BASE": api.URL, "SPOC_OUTPUT": out, "SPOC_DEADLINE": "300ms"})
	if code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s", code, exitFailed, logs)
	}
	if got := files(t, out); len(got) != 0 {
		t.Errorf("left %v", got)
	}
	if n := handlers[spoc.SPOC].Requests(); n != 0 {
		t.Errorf("spoc was fetched %d times after the deadline", n)
	}
	lines := logLines(t, logs)
	last := lines[len(lines)-1]
	if last["message"] != "run finished" || last["failed"] != "osh" || last["not_run"] != "spoc" || last["published"] != "" {
		t.Errorf("summary line %v", last)
	}
}
