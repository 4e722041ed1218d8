package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// TestCutSavedBodyIsNotRetried: a saved body cut short, gzip-compressed
// or plain JSON, fails the run at once (reason=bad_body): reading the
// file again would give the same bytes.
func TestCutSavedBodyIsNotRetried(t *testing.T) {
	var raw, zipped bytes.Buffer
	spoctest.Generate(&raw, spoctest.GenOptions{Records: 3000, Seed: 6})
	zw := gzip.NewWriter(&zipped)
	zw.Write(raw.Bytes())
	zw.Close()
	for _, tc := range []struct {
		name, file string
		body       []byte
	}{
		{"gzip", "spoc-list-public.json.gz", zipped.Bytes()[:zipped.Len()/2]},
		{"plain", "spoc-list-public.json", raw.Bytes()[:raw.Len()/2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(path, tc.body, 0o644); err != nil {
				t.Fatal(err)
			}
			checkCutSavedBody(t, path)
		})
	}
}

func checkCutSavedBody(t *testing.T, path string) {
	t.Helper()
	out := t.TempDir()
	code, logs := execJob(t, "SPOC_URL="+path, "SPOC_OUTPUT="+out, "SPOC_ATTEMPTS=4",
		"OTEL_METRICS_EXPORTER=none", "OTEL_TRACES_EXPORTER=none")
	if code != exitFailed || !strings.Contains(logs, `"reason":"bad_body"`) {
		t.Fatalf("exit %d, want %d with reason bad_body:\n%s", code, exitFailed, logs)
	}
	if strings.Contains(logs, "retrying") {
		t.Errorf("a cut saved body was retried:\n%s", logs)
	}
	for _, name := range files(t, out) {
		if !strings.Contains(name, "/rejected/") {
			t.Errorf("file left at a final name after a failed run: %s", name)
		}
	}
}
