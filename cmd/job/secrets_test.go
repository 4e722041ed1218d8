package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// TestSecretsInTheSourceURLAreNeverPublished runs the binary with a
// source URL that carries a password and credentials under the usual
// names (signed-URL parameters, API keys, tokens, passwords, client
// secrets), once publishing, once failing on the upstream's status and
// once on a refused connection, with OTLP exporters on, and looks for
// the secrets in its logs, in every file under the output folder
// (Parquet footers and manifests included, archives decompressed) and in
// every metric and span it exported. They are nowhere; REDACTED stands
// in.
func TestSecretsInTheSourceURLAreNeverPublished(t *testing.T) {
	query := map[string]string{
		"X-Goog-Signature": "sig5ecret",
		"Token":            "tok5ecret",
		"api-key":          "apik3y5ecret",
		"password":         "passw0rd5ecret",
		"client_secret":    "cl1ent5ecret",
		"access_token":     "acce55tok5ecret",
		"x-api-key":        "xap1k3y5ecret",
		"key":              "plaink3y5ecret",
	}
	secrets := []string{"pa55w0rd"}
	var params []string
	for name, secret := range query {
		secrets = append(secrets, secret)
		params = append(params, name+"="+secret)
	}
	sort.Strings(params)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String()
	closed.Close()
	for _, tc := range []struct {
		name     string
		upstream []spoctest.Option
		url      string // the upstream's when empty
		wantCode int
	}{
		{"published", []spoctest.Option{spoctest.WithRecords(200)}, "", exitOK},
		{"failed", []spoctest.Option{spoctest.FailFirst(10, http.StatusServiceUnavailable)}, "", exitFailed},
		{"connection refused", nil, refused, exitFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := tc.url
			if base == "" {
				up := spoctest.NewServer(tc.upstream...)
				defer up.Close()
				base = up.URL
			}
			recv := startReceiver(t)
			out := t.TempDir()
			source := strings.Replace(base, "http://", "http://reader:pa55w0rd@", 1) +
				"/api/spoc/list?" + strings.Join(params, "&") + "&state=all"
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

// TestRedirectedSource: a body reached through a redirect is published
// with the URL it came from in the manifest and the footer, and the URL
// asked for beside it; a redirect from https to plain http fails the run
// and publishes nothing.
func TestRedirectedSource(t *testing.T) {
	up := spoctest.NewServer(spoctest.WithRecords(50))
	defer up.Close()
	hop := httptest.NewServer(http.RedirectHandler(up.URL+"/api/spoc/list", http.StatusFound))
	defer hop.Close()
	out := t.TempDir()
	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": hop.URL + "/old?token=tok5ecret", "SPOC_OUTPUT": out,
		"OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none"})
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, logs)
	}
	dir := filepath.Join(out, testPrefix, today())
	m := readManifest(t, mustRead(t, filepath.Join(dir, "spoc-list-public.manifest.json")))
	_, kv := readParquet(t, mustRead(t, filepath.Join(dir, "spoc-list-public.parquet")))
	if !strings.HasPrefix(m.Source.URL, up.URL+"/api/spoc/list") || !strings.HasPrefix(kv["spoc.source_url"], up.URL+"/api/spoc/list") {
		t.Errorf("manifest source %q, footer %q: want the URL the body came from", m.Source.URL, kv["spoc.source_url"])
	}
	if !strings.HasPrefix(m.Source.RequestedURL, hop.URL+"/old?") || kv["spoc.requested_url"] != m.Source.RequestedURL || !strings.Contains(m.Source.RequestedURL, "token=REDACTED") {
		t.Errorf("manifest requested %q, footer %q: want the URL asked for, redacted", m.Source.RequestedURL, kv["spoc.requested_url"])
	}

	w := newTLSWorld(t)
	secure := httptest.NewUnstartedServer(http.RedirectHandler(up.URL+"/api/spoc/list", http.StatusFound))
	secure.TLS = &tls.Config{Certificates: []tls.Certificate{w.leaf}}
	secure.StartTLS()
	defer secure.Close()
	out = t.TempDir()
	code, logs = runJob(t, context.Background(), map[string]string{"SPOC_URL": secure.URL + "/list", "SPOC_OUTPUT": out, "SPOC_CA_FILE": w.caFile,
		"OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none"})
	if code != exitFailed || !strings.Contains(logs, "it leaves https") || !strings.Contains(logs, `"reason":"redirect"`) {
		t.Fatalf("https redirected to http: exit %d, want %d with the refusal logged:\n%s", code, exitFailed, logs)
	}
	if got := files(t, out); len(got) != 0 {
		t.Errorf("a refused redirect left %v", got)
	}
}

// tlsWorld is a CA (its PEM in caFile) and a leaf for 127.0.0.1 with its
// chain.
type tlsWorld struct {
	caFile string
	leaf   tls.Certificate
}

func newTLSWorld(t *testing.T) tlsWorld {
	pki, err := spoctest.NewPKI("")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf(spoctest.LeafOptions{Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(caFile, pki.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return tlsWorld{caFile: caFile, leaf: pki.WithChain(leaf)}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestRedirectFence: a redirect from the endpoint to a cloud metadata
// server, a private address or out of http(s) fails the run at once
// (reason=redirect, no retry) and publishes nothing. The refusal comes
// before any connection: the job runs behind a proxy on loopback that
// would see any request to these hosts, and sees none.
func TestRedirectFence(t *testing.T) {
	var trapped atomic.Int32
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trapped.Add(1)
		t.Errorf("the proxy got %s %s", r.Method, r.RequestURI)
		http.Error(w, "no", http.StatusBadGateway)
	}))
	defer trap.Close()
	for _, to := range []string{
		"http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token",
		"http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token",
		"http://10.1.2.3/api/spoc/list",
		// 169.254.169.254 and 127.0.0.1 as a proxy's resolver reads them.
		"http://2852039166/latest/meta-data/",
		"http://0xa9fea9fe/latest/meta-data/",
		"http://0x7f.1/api/spoc/list",
		"http://LOCALHOST/api/spoc/list",
		"file:///etc/passwd",
		"gs://bucket/raw/spoc-list-public.json.gz",
	} {
		t.Run(to, func(t *testing.T) {
			var requests atomic.Int32
			hop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				http.Redirect(w, r, to, http.StatusFound)
			}))
			defer hop.Close()
			out := t.TempDir()
			code, logs := execJob(t, "SPOC_URL="+hop.URL+"/list", "SPOC_OUTPUT="+out, "SPOC_ATTEMPTS=3",
				"HTTP_PROXY="+trap.URL, "HTTPS_PROXY="+trap.URL, "NO_PROXY=", "no_proxy=",
				"OTEL_METRICS_EXPORTER=none", "OTEL_TRACES_EXPORTER=none")
			if code != exitFailed || !strings.Contains(logs, `"reason":"redirect"`) {
				t.Fatalf("exit %d, want %d with reason redirect:\n%s", code, exitFailed, logs)
			}
			if n := requests.Load(); n != 1 {
				t.Errorf("%d requests to the endpoint, want 1: a refused redirect is not retried", n)
			}
			if got := files(t, out); len(got) != 0 {
				t.Errorf("a refused redirect left %v", got)
			}
		})
	}
	if n := trapped.Load(); n != 0 {
		t.Errorf("%d requests reached the proxy", n)
	}
}

// TestSourceURLSentAsGiven: SPOC_URL is sent as it is written, a signed
// URL's query byte for byte, and a redirect does not pass it on in a
// Referer.
func TestSourceURLSentAsGiven(t *testing.T) {
	up := spoctest.NewHandler(spoctest.WithRecords(50))
	var (
		mu      sync.Mutex
		asked   string
		referer []string
	)
	final := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		referer = r.Header.Values("Referer")
		mu.Unlock()
		up.ServeHTTP(w, r)
	}))
	defer final.Close()
	hop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = r.RequestURI
		mu.Unlock()
		http.Redirect(w, r, final.URL+"/api/spoc/list", http.StatusFound)
	}))
	defer hop.Close()
	const signed = "/o/spoc.json?b=2&a=1&X-Goog-Signature=x%2Fy%3D"
	code, logs := execJob(t, "SPOC_URL="+hop.URL+signed, "SPOC_OUTPUT="+t.TempDir(),
		"OTEL_METRICS_EXPORTER=none", "OTEL_TRACES_EXPORTER=none")
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, logs)
	}
	mu.Lock()
	defer mu.Unlock()
	if asked != signed {
		t.Errorf("sent %q, want %q as given", asked, signed)
	}
	if len(referer) > 0 {
		t.Errorf("Referer %q sent to the host redirected to", referer)
	}
}
