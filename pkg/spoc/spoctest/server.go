// Package spoctest provides a fake SPOC upstream for tests and offline
// runs: an HTTP server on loopback that streams a generated body with
// realistic records and quirks, and can misbehave on demand (fail the
// first requests, cut the body, serve an HTML page, compress, throttle).
//
// It follows net/http/httptest: NewServer starts a server, its URL is the
// endpoint, Close stops it.
package spoctest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// Option configures a Server.
type Option func(*config)

type config struct {
	gen           GenOptions
	body          []byte
	failFirst     int
	failStatus    int
	retryAfter    string
	cutFirst      int
	cutAfter      int64
	cutCleanly    bool
	html          bool
	gzip          bool
	contentLength bool
	bytesPerSec   int64
}

// WithRecords sets the number of generated records (default 1000).
func WithRecords(n int) Option { return func(c *config) { c.gen.Records = n } }

// WithSeed sets the generator's seed (default 1).
func WithSeed(seed uint64) Option { return func(c *config) { c.gen.Seed = seed } }

// WithDataset makes the generated body that of another list, such as
// spoc.OSH (see GenOptions.Dataset).
func WithDataset(ds *spoc.Dataset) Option { return func(c *config) { c.gen.Dataset = ds } }

// WithDropEvery makes every n-th generated record lack its id.
func WithDropEvery(n int) Option { return func(c *config) { c.gen.DropEvery = n } }

// WithGeo plants geolocation cases in every n-th record (GenOptions.Geo).
func WithGeo(n int) Option { return func(c *config) { c.gen.Geo = n } }

// WithBody serves body as it is instead of a generated one.
func WithBody(body []byte) Option { return func(c *config) { c.body = body } }

// FailFirst answers the first n requests with status and a small HTML
// page, as a struggling upstream or its proxy does.
func FailFirst(n, status int) Option {
	return func(c *config) { c.failFirst, c.failStatus = n, status }
}

// WithRetryAfter adds a Retry-After header (seconds or a date) to the
// failures of FailFirst.
func WithRetryAfter(v string) Option { return func(c *config) { c.retryAfter = v } }

// CutFirst cuts the body of the first n successful responses after
// afterBytes bytes by dropping the connection, as a reset mid-download does.
func CutFirst(n int, afterBytes int64) Option {
	return func(c *config) { c.cutFirst, c.cutAfter = n, afterBytes }
}

// EndFirst ends the body of the first n successful responses after
// afterBytes bytes cleanly: the chunked response is terminated as if it
// were complete, but the JSON is not, as a proxy or an upstream that
// closes early does. No Content-Length is announced, so only the JSON
// tells that the body is short.
func EndFirst(n int, afterBytes int64) Option {
	return func(c *config) { c.cutFirst, c.cutAfter, c.cutCleanly = n, afterBytes, true }
}

// ServeHTML answers every request with an HTML maintenance page and status 200.
func ServeHTML() Option { return func(c *config) { c.html = true } }

// WithGzip compresses the body when the request accepts gzip.
func WithGzip() Option { return func(c *config) { c.gzip = true } }

// WithContentLength announces the body's size. The body is generated once
// at start to measure it, which takes a moment for millions of records.
func WithContentLength() Option { return func(c *config) { c.contentLength = true } }

// WithThrottle limits the body to about bytesPerSec bytes per second.
func WithThrottle(bytesPerSec int64) Option { return func(c *config) { c.bytesPerSec = bytesPerSec } }

// Handler serves the fake endpoint; Server runs one on loopback.
type Handler struct {
	cfg      config
	planted  Planted
	size     int64
	requests atomic.Int64
	// gzipped is a fixed body compressed once, as a server that caches
	// its gzip answer sends it: the compression costs no request.
	gzipOnce sync.Once
	gzipped  []byte
}

// NewHandler returns the fake endpoint as an http.Handler, for a server
// of the caller's (cmd/fakespoc); tests use NewServer. It panics if the
// body is to be generated for a dataset Generate cannot imitate.
func NewHandler(opts ...Option) *Handler {
	h := &Handler{cfg: config{gen: GenOptions{Records: 1000, Seed: 1}}}
	for _, o := range opts {
		o(&h.cfg)
	}
	if h.cfg.body == nil {
		// A dry run tells what the body holds and its size; the body is
		// generated again, identically, for every request.
		var n countingWriter
		planted, err := Generate(&n, h.cfg.gen)
		if err != nil {
			panic(err) // a dataset the generator cannot imitate
		}
		h.planted, h.size = planted, int64(n)
	} else {
		h.size = int64(len(h.cfg.body))
	}
	return h
}

// Planted tells what the generated body holds.
func (h *Handler) Planted() Planted { return h.planted }

// Size is the size of the uncompressed body in bytes.
func (h *Handler) Size() int64 { return h.size }

// Requests is the number of requests received so far.
func (h *Handler) Requests() int { return int(h.requests.Load()) }

// Server is a fake SPOC upstream listening on 127.0.0.1.
type Server struct {
	*httptest.Server
	*Handler
}

// NewServer starts a fake upstream on 127.0.0.1. Its URL serves the body
// on any path. Close it when done.
func NewServer(opts ...Option) *Server {
	h := NewHandler(opts...)
	return &Server{Server: httptest.NewServer(h), Handler: h}
}

const maintenancePage = "<!DOCTYPE html>\n<html><head><title>Maintenance</title></head>\n<body><h1>We'll be back soon</h1><p>The MSPO portal is under maintenance.</p></body></html>\n"

// ServeHTTP serves the body, or the failure configured for this request.
func (s *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(s.requests.Add(1))
	if n <= s.cfg.failFirst {
		if s.cfg.retryAfter != "" {
			w.Header().Set("Retry-After", s.cfg.retryAfter)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(s.cfg.failStatus)
		io.WriteString(w, maintenancePage)
		return
	}
	if s.cfg.html {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, maintenancePage)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("ETag", fmt.Sprintf(`"spoc-%d-%d"`, s.cfg.gen.Seed, s.cfg.gen.Records))
	w.Header().Set("Last-Modified", time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC).Format(http.TimeFormat))

	cut := n-s.cfg.failFirst <= s.cfg.cutFirst
	var out io.Writer = w
	if s.cfg.bytesPerSec > 0 {
		out = &throttledWriter{w: out, bytesPerSec: s.cfg.bytesPerSec, start: time.Now()}
	}
	if cut {
		out = &cuttingWriter{w: out, left: s.cfg.cutAfter}
	}
	var zw *gzip.Writer
	acceptsGzip := s.cfg.gzip && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip")
	if acceptsGzip && s.cfg.body != nil {
		s.gzipOnce.Do(func() {
			var b bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
			zw.Write(s.cfg.body)
			zw.Close()
			s.gzipped = b.Bytes()
		})
		w.Header().Set("Content-Encoding", "gzip")
		if !(cut && s.cfg.cutCleanly) {
			w.Header().Set("Content-Length", strconv.Itoa(len(s.gzipped)))
		}
		if _, err := out.Write(s.gzipped); err != nil && !(errors.Is(err, errCut) && s.cfg.cutCleanly) {
			panic(http.ErrAbortHandler)
		}
		return
	}
	if acceptsGzip {
		w.Header().Set("Content-Encoding", "gzip")
		zw, _ = gzip.NewWriterLevel(out, gzip.BestSpeed)
		out = zw
	} else if (s.cfg.contentLength || s.cfg.body != nil) && !(cut && s.cfg.cutCleanly) {
		w.Header().Set("Content-Length", strconv.FormatInt(s.size, 10))
	}

	var err error
	if s.cfg.body != nil {
		_, err = out.Write(s.cfg.body)
	} else {
		_, err = Generate(out, s.cfg.gen)
	}
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if errors.Is(err, errCut) && s.cfg.cutCleanly {
		return // the handler returns: net/http ends the chunked body properly
	}
	if err != nil {
		// Drop the connection without ending the body properly, so the
		// client sees a cut transfer, not a short but complete one.
		panic(http.ErrAbortHandler)
	}
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

var errCut = fmt.Errorf("spoctest: body cut on purpose")

type cuttingWriter struct {
	w    io.Writer
	left int64
}

func (c *cuttingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		n, _ := c.w.Write(p[:c.left])
		c.left = 0
		if f, ok := c.w.(http.Flusher); ok {
			f.Flush()
		}
		return n, errCut
	}
	c.left -= int64(len(p))
	return c.w.Write(p)
}

// throttledWriter paces writes to a byte rate, in slices of 1/50 s.
type throttledWriter struct {
	w           io.Writer
	bytesPerSec int64
	start       time.Time
	sent        int64
}

func (t *throttledWriter) Write(p []byte) (int, error) {
	written := 0
	slice := int(max(t.bytesPerSec/50, 1))
	for len(p) > 0 {
		chunk := p[:min(len(p), slice)]
		n, err := t.w.Write(chunk)
		written += n
		t.sent += int64(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
		due := t.start.Add(time.Duration(float64(t.sent) / float64(t.bytesPerSec) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
	}
	return written, nil
}

// Flush passes flushes through, so paced bytes leave at once.
func (t *throttledWriter) Flush() {
	if f, ok := t.w.(http.Flusher); ok {
		f.Flush()
	}
}
