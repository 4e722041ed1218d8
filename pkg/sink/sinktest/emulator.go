package sinktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
)

// Emulator is fake-gcs-server, in process, behind a handler of ours on
// 127.0.0.1. The handler does two things the emulator alone does not:
//
//   - it enforces a copy's (rewrite's) ifGenerationMatch on the
//     destination, as GCS does (fake-gcs-server v1.56 ignores it), so
//     that a test of "copy only over the generation expected" can fail;
//   - it injects faults chosen by the test (Fail): a request refused
//     before it reaches the store, or one that takes effect and whose
//     reply is lost, as when a 503 comes back from a write GCS applied.
type Emulator struct {
	*httptest.Server
	fake   *fakestorage.Server
	mu     sync.Mutex // one write at a time, so a checked precondition holds until the write
	faults func(Request) Fault
	// uploads maps a resumable upload's id to its object, for the rules.
	uploads map[string]string
}

// Fault is what the emulator does to one request: nothing (the zero
// value), or answer Status, before the request reaches the store or,
// with Applied, after the store has carried it out.
type Fault struct {
	Status  int
	Applied bool
}

// Request describes a request for a fault rule: its method, the object
// it is about (the destination of a copy, the object of an upload; ""
// for a list), and whether it writes and whether it is a copy.
type Request struct {
	Method, Object string
	Write, Copy    bool
}

// NewEmulator starts an emulator with one bucket, stopped at the end of
// the test.
func NewEmulator(t testing.TB, bucket string) *Emulator {
	t.Helper()
	fake, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true, Writer: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	fake.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	e := &Emulator{fake: fake, uploads: map[string]string{}}
	e.Server = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(func() {
		e.Server.Close()
		fake.Stop()
	})
	return e
}

// Fail sets the rule that picks a fault for each request; nil clears it.
func (e *Emulator) Fail(rule func(Request) Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = rule
}

// Client is a storage client of the emulator, which serves downloads on
// the JSON API only.
func (e *Emulator) Client(t testing.TB) *storage.Client {
	t.Helper()
	target, _ := url.Parse(e.URL)
	hc := &http.Client{Transport: redirectTransport{target: target}}
	c, err := storage.NewClient(context.Background(), option.WithHTTPClient(hc), option.WithoutAuthentication(), storage.WithJSONReads())
	if err != nil {
		t.Fatal(err)
	}
	// The client retries transient failures as it does against GCS, with
	// waits of milliseconds instead of seconds and at most 3 tries, so
	// that a fault a test keeps up ends the operation quickly.
	c.SetRetry(storage.WithBackoff(gax.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}), storage.WithMaxAttempts(3))
	t.Cleanup(func() { c.Close() })
	return c
}

// Host is the emulator's address, for STORAGE_EMULATOR_HOST.
func (e *Emulator) Host() string { return strings.TrimPrefix(e.URL, "http://") }

// redirectTransport sends every request to the emulator, whatever host
// the client library addressed.
type redirectTransport struct{ target *url.URL }

func (t redirectTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = t.target.Scheme, t.target.Host
	return http.DefaultTransport.RoundTrip(r)
}

func (e *Emulator) serve(w http.ResponseWriter, r *http.Request) {
	// Every request in turn: a checked precondition then holds until
	// the write, and the rules see one request at a time.
	e.mu.Lock()
	defer e.mu.Unlock()
	req := e.describe(r)
	var fault Fault
	if e.faults != nil {
		fault = e.faults(req)
	}
	if fault.Status != 0 && !fault.Applied {
		gcsErrorReply(w, fault.Status, "injected fault")
		return
	}
	if status := e.copyPrecondition(r); status != 0 {
		gcsErrorReply(w, status, "Precondition Failed")
		return
	}
	if fault.Status != 0 {
		// Carry it out, then lose the reply.
		e.fake.HTTPHandler().ServeHTTP(httptest.NewRecorder(), r)
		gcsErrorReply(w, fault.Status, "injected fault after the write")
		return
	}
	if r.URL.Query().Get("uploadType") == "resumable" && r.Method == http.MethodPost {
		rec := httptest.NewRecorder()
		e.fake.HTTPHandler().ServeHTTP(rec, r)
		if loc, err := url.Parse(rec.Header().Get("Location")); err == nil {
			if id := loc.Query().Get("upload_id"); id != "" {
				e.uploads[id] = req.Object
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	e.fake.HTTPHandler().ServeHTTP(w, r)
}

// copyPrecondition checks a rewrite's or copy's ifGenerationMatch against
// the destination's live generation (0 when absent), as GCS does: 412 on
// a mismatch, 0 when it holds or there is none.
func (e *Emulator) copyPrecondition(r *http.Request) int {
	match := r.URL.Query().Get("ifGenerationMatch")
	bucket, object, ok := copyDestination(r.URL)
	if match == "" || !ok {
		return 0
	}
	want, err := strconv.ParseInt(match, 10, 64)
	if err != nil {
		return http.StatusBadRequest
	}
	var live int64
	if obj, err := e.fake.GetObject(bucket, object); err == nil {
		live = obj.Generation
	}
	if live != want {
		return http.StatusPreconditionFailed
	}
	return 0
}

// copyDestination is the bucket and object a rewrite or copy writes to.
func copyDestination(u *url.URL) (bucket, object string, ok bool) {
	p := u.EscapedPath()
	for _, op := range []string{"/rewriteTo/b/", "/copyTo/b/"} {
		if i := strings.Index(p, op); i >= 0 {
			b, o, found := strings.Cut(p[i+len(op):], "/o/")
			if !found {
				return "", "", false
			}
			bucket, _ = url.PathUnescape(b)
			object, _ = url.PathUnescape(o)
			return bucket, object, true
		}
	}
	return "", "", false
}

// describe is what a fault rule sees of a request. An upload names its
// object in the query, in its JSON metadata (the body's first part), or
// through the id its resumable session was given.
func (e *Emulator) describe(r *http.Request) Request {
	req := Request{Method: r.Method, Write: r.Method != http.MethodGet && r.Method != http.MethodHead}
	if _, o, ok := copyDestination(r.URL); ok {
		req.Object, req.Copy = o, true
		return req
	}
	q := r.URL.Query()
	switch {
	case q.Get("name") != "":
		req.Object = q.Get("name")
	case q.Get("upload_id") != "":
		req.Object = e.uploads[q.Get("upload_id")]
	case strings.HasPrefix(r.URL.Path, "/upload/") && r.Body != nil:
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		head := body[:min(len(body), 4096)]
		if m := metadataName.FindSubmatch(head); m != nil {
			var name string
			if json.Unmarshal(append(append([]byte{'"'}, m[1]...), '"'), &name) == nil {
				req.Object = name
			}
		}
	default:
		if i := strings.Index(r.URL.EscapedPath(), "/o/"); i >= 0 {
			req.Object, _ = url.PathUnescape(r.URL.EscapedPath()[i+len("/o/"):])
		}
	}
	return req
}

var metadataName = regexp.MustCompile(`"name"\s*:\s*"((?:[^"\\]|\\.)*)"`)

func gcsErrorReply(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":%q,"errors":[{"message":%q}]}}`, status, msg, msg)
}
