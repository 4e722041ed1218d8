package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// TestJobDropsARecordWithALongValue runs the job on 1,000 plots and one
// whose lot_no is 2 MB, past SPOC_MAX_STRING_BYTES: the day is published
// without that plot, which is counted as too large, as a record past
// SPOC_MAX_RECORD_BYTES is.
func TestJobDropsARecordWithALongValue(t *testing.T) {
	var good bytes.Buffer
	if _, err := spoctest.Generate(&good, spoctest.GenOptions{Records: 1000, Seed: 8}); err != nil {
		t.Fatal(err)
	}
	end := bytes.LastIndex(good.Bytes(), []byte(`],"total"`))
	long := `,{"entity_smallholder_id":99000001,"name":"LONG","lot_no":"` + strings.Repeat("7", 2<<20) + `","cert_status":"ACTIVE"}`
	body := slices.Concat(good.Bytes()[:end], []byte(long), good.Bytes()[end:])
	path := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, logs := execJob(t, "SPOC_URL="+path, "SPOC_OUTPUT="+out, "SPOC_DATE=20261206", "OTEL_METRICS_EXPORTER=none", "OTEL_TRACES_EXPORTER=none")
	if code != exitOK {
		t.Fatalf("exit %d, want %d\n%s", code, exitOK, logs)
	}
	data, err := os.ReadFile(filepath.Join(out, testPrefix, "20261206", snapshot.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	m := readManifest(t, data)
	if m.Parquet.Rows != 1000 || m.Stats.RecordsRead != 1001 || m.Stats.DroppedByReason[spoc.DropTooLarge] != 1 {
		t.Errorf("published %d rows of %d read, dropped %v: want 1000 of 1001, one as %s", m.Parquet.Rows, m.Stats.RecordsRead, m.Stats.DroppedByReason, spoc.DropTooLarge)
	}
}

// TestJobKeepsTheBodyOfAContentFailure runs the job on bodies it cannot
// decode: each fails the run, publishes nothing and keeps the whole body
// under rejected/, as a refused body is, whether it came gzip-compressed
// or not. A body cut in transit is not kept: another run may get it whole.
func TestJobKeepsTheBodyOfAContentFailure(t *testing.T) {
	var full bytes.Buffer
	if _, err := spoctest.Generate(&full, spoctest.GenOptions{Records: 3000, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	// One bad literal a third of the way in: the rest must be kept too.
	at := bytes.Index(full.Bytes()[full.Len()/3:], []byte(`"deleted":false`)) + full.Len()/3
	malformed := slices.Concat(full.Bytes()[:at], []byte(`"deleted":fals`), full.Bytes()[at+len(`"deleted":false`):])
	longKey := []byte(`{"data":{"results":[{"` + strings.Repeat("k", 2<<20) + `":1}]}}`)
	for _, tc := range []struct {
		name   string
		body   []byte
		opts   []spoctest.Option
		env    []string
		reason string
		kept   bool
	}{
		{"malformed JSON", malformed, nil, nil, "invalid JSON", true},
		{"malformed JSON, gzip", malformed, []spoctest.Option{spoctest.WithGzip()}, nil, "invalid JSON", true},
		{"no records array", []byte(`{"data":{"message":"no list today"}}` + "\n"), nil, nil, "no data.results", true},
		{"a key past SPOC_MAX_STRING_BYTES", longKey, nil, nil, "too long", true},
		{"more records than SPOC_MAX_RECORDS", full.Bytes(), nil, []string{"SPOC_MAX_RECORDS=2999"}, `too many records: more than 2999 in data.results`, true},
		{"cut on every attempt", full.Bytes(), []spoctest.Option{spoctest.CutFirst(100, 100_000)}, nil, "unexpected EOF", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := spoctest.NewServer(append([]spoctest.Option{spoctest.WithBody(tc.body)}, tc.opts...)...)
			defer up.Close()
			out := t.TempDir()
			code, logs := execJob(t, append([]string{"SPOC_URL=" + up.URL, "SPOC_OUTPUT=" + out, "SPOC_DATE=20261206", "SPOC_ATTEMPTS=2",
				"OTEL_METRICS_EXPORTER=none", "OTEL_TRACES_EXPORTER=none"}, tc.env...)...)
			if code != exitFailed || !strings.Contains(logs, tc.reason) {
				t.Fatalf("exit %d, want %d with %q\n%s", code, exitFailed, tc.reason, logs)
			}
			rejected := filepath.Join(testPrefix, "20261206", snapshot.RejectedDir, snapshot.ArchiveName)
			var want []string
			if tc.kept {
				want = []string{filepath.ToSlash(rejected)}
			}
			if got := files(t, out); !slices.Equal(got, want) {
				t.Fatalf("the output holds %v, want %v\n%s", got, want, logs)
			}
			if !tc.kept {
				return
			}
			if !strings.Contains(logs, "the raw body is kept at") {
				t.Errorf("the error does not say where the body is kept:\n%s", logs)
			}
			kept, err := os.ReadFile(filepath.Join(out, rejected))
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(bytes.NewReader(kept))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, tc.body) {
				t.Errorf("kept %d bytes (%v), want the body's %d", len(got), err, len(tc.body))
			}
		})
	}
}

// TestJobRecordCap runs the job on a body of 3,000 records with
// SPOC_MAX_RECORDS at 2,999 and at 3,000: one past the cap fails the run
// as too_large, naming the setting, and publishes nothing; at the cap the
// day is published whole.
func TestJobRecordCap(t *testing.T) {
	var body bytes.Buffer
	if _, err := spoctest.Generate(&body, spoctest.GenOptions{Records: 3000, Seed: 10}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(path, body.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		max  string
		code int
		want []string
	}{
		{"2999", exitFailed, []string{`"reason":"too_large"`, "more than 2999 in data.results", `"fix":"SPOC_MAX_RECORDS sets the limit"`}},
		{"3000", exitOK, []string{`"records":3000`}},
	} {
		out := t.TempDir()
		code, logs := execJob(t, "SPOC_URL="+path, "SPOC_OUTPUT="+out, "SPOC_DATE=20261206", "SPOC_MAX_RECORDS="+tc.max,
			"OTEL_METRICS_EXPORTER=none", "OTEL_TRACES_EXPORTER=none")
		if code != tc.code {
			t.Fatalf("SPOC_MAX_RECORDS=%s: exit %d, want %d\n%s", tc.max, code, tc.code, logs)
		}
		for _, w := range tc.want {
			if !strings.Contains(logs, w) {
				t.Errorf("SPOC_MAX_RECORDS=%s: the log does not say %s\n%s", tc.max, w, logs)
			}
		}
		_, err := os.Stat(filepath.Join(out, testPrefix, "20261206", snapshot.ManifestName))
		if published := err == nil; published != (tc.code == exitOK) {
			t.Errorf("SPOC_MAX_RECORDS=%s: published %v", tc.max, published)
		}
	}
}
