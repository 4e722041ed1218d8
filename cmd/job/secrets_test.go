package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// TestSecretsInTheSourceURLAreNeverPublished runs the binary with a
// source URL that carries a password and signed-URL parameters, once
// publishing and once failing, with OTLP exporters on, and looks for the
// secrets in its logs, in every file under the output folder (Parquet
// footers and manifests included, archives decompressed) and in every
// metric and span it exported. They are nowhere; REDACTED stands in.
func TestSecretsInTheSourceURLAreNeverPublished(t *testing.T) {
	secrets := []string{"pa55w0rd", "sig5ecret", "tok5ecret"}
	for _, tc := range []struct {
		name     string
		upstream []spoctest.Option
		wantCode int
	}{
		{"published", []spoctest.Option{spoctest.WithRecords(200)}, exitOK},
		{"failed", []spoctest.Option{spoctest.FailFirst(10, http.StatusServiceUnavailable)}, exitFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := spoctest.NewServer(tc.upstream...)
			defer up.Close()
			recv := startReceiver(t)
			out := t.TempDir()
			source := strings.Replace(up.URL, "http://", "http://reader:pa55w0rd@", 1) +
				"/api/spoc/list?X-Goog-Signature=sig5ecret&Token=tok5ecret&state=all"
			code, stderr := execJob(t, "SPOC_URL="+source, "SPOC_OUTPUT="+out, "SPOC_ATTEMPTS=2",
				"OTEL_METRICS_EXPORTER=otlp", "OTEL_TRACES_EXPORTER=otlp",
				"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT="+recv.URL)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.wantCode, stderr)
			}
			places := map[string][]byte{"the logs": []byte(stderr)}
			for _, name := range files(t, out) {
				data, err := os.ReadFile(filepath.Join(out, name))
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasSuffix(name, ".gz") {
					if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
						data, _ = io.ReadAll(zr)
					}
				}
				places[name] = data
			}
			recv.mu.Lock()
			for _, body := range recv.raw {
				places["the telemetry exported"] = append(places["the telemetry exported"], body...)
			}
			recv.mu.Unlock()
			if len(places["the telemetry exported"]) == 0 {
				t.Fatal("nothing was exported: the check would prove nothing")
			}
			for where, data := range places {
				for _, secret := range secrets {
					if bytes.Contains(data, []byte(secret)) {
						t.Errorf("%s holds the secret %q", where, secret)
					}
				}
			}
			if !strings.Contains(stderr, "X-Goog-Signature=REDACTED") {
				t.Errorf("the logs do not name the source, redacted:\n%s", stderr)
			}
		})
	}
}
