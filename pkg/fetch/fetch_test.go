package fetch_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/fetch"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

func newClient(t *testing.T, opts fetch.ClientOptions) *fetch.Client {
	t.Helper()
	c, err := fetch.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// generated is a generated body of records, and its gzip.
func generated(t *testing.T, records int, seed uint64) (raw, zipped []byte) {
	t.Helper()
	var body, gz bytes.Buffer
	if _, err := spoctest.Generate(&body, spoctest.GenOptions{Records: records, Seed: seed}); err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(&gz)
	zw.Write(body.Bytes())
	zw.Close()
	return body.Bytes(), gz.Bytes()
}

func readAll(t *testing.T, c *fetch.Client, url string) ([]byte, *fetch.Body, error) {
	t.Helper()
	b, err := c.Open(context.Background(), url)
	if err != nil {
		return nil, nil, err
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	return data, b, err
}

func TestFetchRequest(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"abc"`)
		io.WriteString(w, `{"data":{"results":[]}}`)
	}))
	defer srv.Close()
	_, b, err := readAll(t, newClient(t, fetch.ClientOptions{UserAgent: "mspo-spoc/test", Query: spoc.SPOC.Query}), srv.URL+"/api/spoc/get-spoc-list-public")
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"Accept":          {got.Header.Get("Accept"), "application/json"},
		"Accept-Encoding": {got.Header.Get("Accept-Encoding"), "gzip"},
		"User-Agent":      {got.Header.Get("User-Agent"), "mspo-spoc/test"},
		"page":            {got.URL.Query().Get("page"), "1"},
		"pageSize":        {got.URL.Query().Get("pageSize"), "10"},
		"ETag":            {b.ETag, `"abc"`},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if b.StatusCode != 200 {
		t.Errorf("status %d", b.StatusCode)
	}
}

// TestFetchSendsTheURLAsGiven: a URL with a query is sent byte for byte
// (a signed URL's signature covers its query as written); the dataset's
// query goes only on a URL without one.
func TestFetchSendsTheURLAsGiven(t *testing.T) {
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.RequestURI
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	signed := "/b/o.json?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%40p.iam.gserviceaccount.com%2F20261206%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=20261206T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature=0a1b"
	for _, tc := range []struct {
		name, url, want string
		query           url.Values
	}{
		{"a query kept in its order and encoding", "/list?b=2&a=1&sig=x%2Fy%3D", "/list?b=2&a=1&sig=x%2Fy%3D", spoc.SPOC.Query},
		{"a signed URL", signed, signed, spoc.SPOC.Query},
		{"an escaped path", "/a%2Fb/list?q=%7e+x", "/a%2Fb/list?q=%7e+x", spoc.SPOC.Query},
		{"the URL's own paging, nothing added", "/list?pageSize=500000", "/list?pageSize=500000", spoc.SPOC.Query},
		{"an empty query is one", "/list?", "/list?", spoc.SPOC.Query},
		{"no query: the dataset's", "/list", "/list?page=1&pageSize=10", spoc.SPOC.Query},
		{"no query, a fragment", "/list#top", "/list?page=1&pageSize=10", spoc.OSH.Query},
		{"no query and none to add", "/list", "/list", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked = ""
			if _, _, err := readAll(t, newClient(t, fetch.ClientOptions{Query: tc.query}), srv.URL+tc.url); err != nil {
				t.Fatal(err)
			}
			if asked != tc.want {
				t.Errorf("sent %q, want %q", asked, tc.want)
			}
		})
	}
}

func TestFetchGzip(t *testing.T) {
	srv := spoctest.NewServer(spoctest.WithRecords(2000), spoctest.WithGzip())
	defer srv.Close()
	data, b, err := readAll(t, newClient(t, fetch.ClientOptions{}), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != srv.Size() {
		t.Fatalf("decompressed %d bytes, body is %d", len(data), srv.Size())
	}
	if b.WireBytes() <= 0 || b.WireBytes() >= int64(len(data))/2 {
		t.Errorf("wire bytes %d for a %d-byte body: compression not seen", b.WireBytes(), len(data))
	}
}

func TestFetchErrors(t *testing.T) {
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		check     func(error) bool
		retryable bool
		mention   string // the error must say what came back
	}{
		{
			name: "503 with an HTML page",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(503)
				io.WriteString(w, "<html>\n<body>Service   Unavailable</body></html>")
			},
			check: func(err error) bool {
				var se *fetch.StatusError
				return errors.As(err, &se) && se.StatusCode == 503 && se.RetryAfter == 7*time.Second
			},
			retryable: true,
			mention:   "503 Service Unavailable",
		},
		{
			name:      "429",
			handler:   func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(429) },
			check:     func(err error) bool { var se *fetch.StatusError; return errors.As(err, &se) },
			retryable: true,
			mention:   "429",
		},
		{
			name:      "404 is final",
			handler:   func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
			check:     func(err error) bool { var se *fetch.StatusError; return errors.As(err, &se) },
			retryable: false,
			mention:   "404 page not found",
		},
		{
			name: "HTML page with 200",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				io.WriteString(w, "<html><body>Under maintenance</body></html>")
			},
			check:     func(err error) bool { var ce *fetch.ContentTypeError; return errors.As(err, &ce) },
			retryable: false,
			mention:   "text/html",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			_, _, err := readAll(t, newClient(t, fetch.ClientOptions{}), srv.URL)
			if err == nil || !tt.check(err) {
				t.Fatalf("error %v (%T)", err, err)
			}
			if got := fetch.IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable = %v, want %v", got, tt.retryable)
			}
			if !strings.Contains(err.Error(), tt.mention) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line mentioning %q", err, tt.mention)
			}
		})
	}
}

func TestFetchCutBodyIsRetryable(t *testing.T) {
	srv := spoctest.NewServer(spoctest.WithRecords(5000), spoctest.CutFirst(1, 100_000))
	defer srv.Close()
	_, _, err := readAll(t, newClient(t, fetch.ClientOptions{}), srv.URL)
	var te *fetch.TransportError
	if !errors.As(err, &te) || !errors.Is(err, io.ErrUnexpectedEOF) || !fetch.IsRetryable(err) {
		t.Fatalf("error %v: want a retryable *TransportError wrapping io.ErrUnexpectedEOF", err)
	}
	if _, _, err := readAll(t, newClient(t, fetch.ClientOptions{}), srv.URL); err != nil {
		t.Fatalf("second request: %v", err)
	}
}

func TestFetchTimeouts(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-headers" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data":{"results":[`)
		w.(http.Flusher).Flush()
		select { // then nothing more
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	// Each case gets one short limit and one generous one, so a slow,
	// shared machine cannot trip the limit that is not under test.
	c := newClient(t, fetch.ClientOptions{FirstByteTimeout: 200 * time.Millisecond, StallTimeout: time.Minute})
	_, _, err := readAll(t, c, srv.URL+"/slow-headers")
	var te *fetch.TransportError
	if !errors.As(err, &te) || !fetch.IsRetryable(err) {
		t.Errorf("no headers: error %v, want a retryable *TransportError", err)
	}
	c = newClient(t, fetch.ClientOptions{FirstByteTimeout: time.Minute, StallTimeout: 200 * time.Millisecond})
	_, _, err = readAll(t, c, srv.URL+"/stalled-body")
	if !errors.Is(err, fetch.ErrStalled) || !fetch.IsRetryable(err) {
		t.Errorf("stalled body: error %v, want retryable ErrStalled", err)
	}
}

func TestFetchConnectionRefusedIsRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, _, err = readAll(t, newClient(t, fetch.ClientOptions{ConnectTimeout: time.Second}), "http://"+addr+"/")
	if !fetch.IsRetryable(err) {
		t.Fatalf("error %v: want retryable", err)
	}
}

func TestFetchTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data":{"results":[]}}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()

	_, _, err := readAll(t, newClient(t, fetch.ClientOptions{}), srv.URL)
	if err == nil || fetch.IsRetryable(err) {
		t.Fatalf("unknown CA: error %v, want a certificate error that is not retried", err)
	}

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readAll(t, newClient(t, fetch.ClientOptions{CAFile: caFile}), srv.URL); err != nil {
		t.Errorf("with SPOC_CA_FILE: %v", err)
	}
	if _, _, err := readAll(t, newClient(t, fetch.ClientOptions{InsecureSkipVerify: true}), srv.URL); err != nil {
		t.Errorf("with verification off: %v", err)
	}

	notPEM := filepath.Join(t.TempDir(), "junk.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	if _, err := fetch.NewClient(fetch.ClientOptions{CAFile: notPEM}); err == nil {
		t.Error("a CA file without certificates was accepted")
	}
}

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	var raw bytes.Buffer
	if _, err := spoctest.Generate(&raw, spoctest.GenOptions{Records: 100, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "body.json")
	os.WriteFile(plain, raw.Bytes(), 0o644)
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write(raw.Bytes())
	zw.Close()
	gz := filepath.Join(dir, "body.json.gz")
	os.WriteFile(gz, zipped.Bytes(), 0o644)

	c := newClient(t, fetch.ClientOptions{})
	for _, src := range []string{plain, "file://" + plain, gz, "file://" + gz} {
		data, b, err := readAll(t, c, src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if !bytes.Equal(data, raw.Bytes()) {
			t.Errorf("%s: read %d bytes, want the %d of the body", src, len(data), raw.Len())
		}
		if !strings.HasPrefix(b.Source, "file:///") {
			t.Errorf("%s: source recorded as %q", src, b.Source)
		}
	}
	if _, _, err := readAll(t, c, filepath.Join(dir, "missing.json")); err == nil || fetch.IsRetryable(err) {
		t.Errorf("missing file: %v, want a final error", err)
	}
}

// Saved bodies elsewhere (a gs:// archive) are read through the Opener of
// their scheme, and decompressed like files.
func TestOpeners(t *testing.T) {
	raw, zipped := generated(t, 50, 4)
	objects := map[string][]byte{"mem://b/plain.json": raw, "mem://b/body.json.gz": zipped, "mem://b/bad.json.gz": {0x1f, 0x8b, 0}}
	errMissing := errors.New("no such object")
	c := newClient(t, fetch.ClientOptions{Openers: map[string]fetch.Opener{
		"mem": func(_ context.Context, u string) (io.ReadCloser, int64, error) {
			data, ok := objects[u]
			if !ok {
				return nil, 0, errMissing
			}
			return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
		},
	}})
	for _, src := range []string{"mem://b/plain.json", "mem://b/body.json.gz"} {
		data, b, err := readAll(t, c, src)
		if err != nil || !bytes.Equal(data, raw) {
			t.Errorf("%s: %d bytes, %v; want the %d of the body", src, len(data), err, len(raw))
			continue
		}
		if b.Source != src || b.ContentLength != int64(len(objects[src])) || b.WireBytes() != int64(len(objects[src])) {
			t.Errorf("%s: source %q, length %d, wire bytes %d", src, b.Source, b.ContentLength, b.WireBytes())
		}
	}
	for src, want := range map[string]string{
		"mem://b/missing.json":  errMissing.Error(),
		"mem://b/bad.json.gz":   "mem://b/bad.json.gz",
		"s3://bucket/body.json": "no way to read s3:// URLs",
	} {
		if _, _, err := readAll(t, c, src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", src, err, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	transient := &fetch.StatusError{StatusCode: 503, Status: "503 Service Unavailable"}
	tests := []struct {
		name     string
		errs     []error // returned by successive attempts; nil ends
		attempts int
		wantN    int
		wantErr  bool
	}{
		{"success at once", []error{nil}, 4, 1, false},
		{"two transient failures then success", []error{transient, transient, nil}, 4, 3, false},
		{"transient failures use up the attempts", []error{transient, transient, transient, transient, nil}, 4, 4, true},
		{"a final error stops at once", []error{&fetch.ContentTypeError{ContentType: "text/html"}, nil}, 4, 1, true},
		{"a refused redirect stops at once", []error{&fetch.RedirectError{Reason: "file: is not http(s)"}, nil}, 4, 1, true},
		{"a cut saved body stops at once", []error{&fetch.BodyError{Source: "file:///b.json.gz", Err: io.ErrUnexpectedEOF}, nil}, 4, 1, true},
		{"one attempt only", []error{transient, nil}, 1, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := fetch.Backoff{Attempts: tt.attempts, Initial: time.Millisecond, Max: 4 * time.Millisecond}
			n := 0
			err := b.Do(context.Background(), func(context.Context, int) error {
				n++
				return tt.errs[n-1]
			}, nil)
			if n != tt.wantN || (err != nil) != tt.wantErr {
				t.Errorf("%d attempts, error %v; want %d attempts, error %v", n, err, tt.wantN, tt.wantErr)
			}
		})
	}
}

func TestBackoffWaits(t *testing.T) {
	b := fetch.Backoff{Attempts: 5, Initial: 8 * time.Millisecond, Max: 20 * time.Millisecond}
	var waits []time.Duration
	n := 0
	b.Do(context.Background(), func(context.Context, int) error {
		n++
		if n == 3 {
			return &fetch.StatusError{StatusCode: 429, RetryAfter: 30 * time.Millisecond}
		}
		return &fetch.StatusError{StatusCode: 503}
	}, func(_ int, _ error, wait time.Duration) { waits = append(waits, wait) })
	bounds := [][2]time.Duration{{4, 8}, {8, 16}, {30, 30}, {10, 20}}
	if len(waits) != len(bounds) {
		t.Fatalf("waits %v, want %d", waits, len(bounds))
	}
	for i, w := range waits {
		lo, hi := bounds[i][0]*time.Millisecond, bounds[i][1]*time.Millisecond
		if w < lo || w > hi {
			t.Errorf("wait %d = %s, want within [%s, %s]", i+1, w, lo, hi)
		}
	}
}

func TestBackoffDoesNotWaitPastTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := fetch.Backoff{Attempts: 4, Initial: time.Millisecond}
	n := 0
	err := b.Do(ctx, func(context.Context, int) error {
		n++
		return &fetch.StatusError{StatusCode: 503, Status: "503", RetryAfter: time.Hour}
	}, nil)
	if n != 1 || err == nil || !strings.Contains(err.Error(), "no time left") {
		t.Errorf("%d attempts, error %v: want one attempt and an error saying there is no time for the hour-long Retry-After", n, err)
	}
}

func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		source, kind, path string
		bad                bool
	}{
		{source: "https://api.mspots.org.my/api/spoc/get-spoc-list-public", kind: fetch.SourceHTTP},
		{source: "http://127.0.0.1:8080/x", kind: fetch.SourceHTTP},
		{source: "body.json", kind: fetch.SourceFile, path: "body.json"},
		{source: "data/raw/20261126/spoc-list-public.json.gz", kind: fetch.SourceFile, path: "data/raw/20261126/spoc-list-public.json.gz"},
		{source: "backup:2026.json", kind: fetch.SourceFile, path: "backup:2026.json"}, // a colon is not a scheme
		{source: "file:///tmp/body.json", kind: fetch.SourceFile, path: "/tmp/body.json"},
		{source: "gs://bucket/raw/x.json.gz", kind: fetch.SourceOther},
		{source: "", bad: true},
		{source: "https:///no-host", bad: true},
		{source: "file://", bad: true},
		{source: "://x", bad: true},
	} {
		src, err := fetch.ParseSource(tc.source)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseSource(%q) = %+v, want an error", tc.source, src)
			}
			continue
		}
		if err != nil || src.Kind != tc.kind || src.Path != tc.path {
			t.Errorf("ParseSource(%q) = %+v, %v; want kind %s, path %q", tc.source, src, err, tc.kind, tc.path)
		}
	}
}
