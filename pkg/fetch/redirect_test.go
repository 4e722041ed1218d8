package fetch_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/fetch"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// redirector is a server that answers with hops redirects, one at a
// time, the last to final: over plain http, or over https with a
// certificate w's CA file trusts.
func redirector(t *testing.T, w *tlsWorld, hops int, final string) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscanf(r.URL.Query().Get("hop"), "%d", &n)
		if n+1 < hops {
			http.Redirect(rw, r, fmt.Sprintf("%s/list?hop=%d", srv.URL, n+1), http.StatusFound)
			return
		}
		http.Redirect(rw, r, final, http.StatusFound)
	}))
	if w == nil {
		srv.Start()
	} else {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{w.pki.WithChain(w.leaf(t, spoctest.LeafOptions{}))}}
		srv.StartTLS()
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestRedirects: a fetch follows at most five redirects and never from
// https to plain http, which would let anyone on the path supply the
// body; the Body names the URL it came from and the one asked for.
func TestRedirects(t *testing.T) {
	w := newTLSWorld(t)
	secure := spoctest.NewTLSServer(w.pki.WithChain(w.leaf(t, spoctest.LeafOptions{})), spoctest.WithRecords(3))
	defer secure.Close()
	plain := spoctest.NewServer(spoctest.WithRecords(3))
	defer plain.Close()
	client := newClient(t, fetch.ClientOptions{CAFile: w.caFile})

	for _, tc := range []struct {
		name    string
		from    string
		refused string // "": followed
	}{
		{name: "https to http is refused", from: "https-to-http", refused: "it leaves https"},
		{name: "five hops are followed", from: "five"},
		{name: "a sixth hop is refused", from: "six", refused: "more than 5 redirects"},
		{name: "http to http is followed", from: "http-to-http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var start string
			switch tc.from {
			case "https-to-http":
				start = redirector(t, w, 1, plain.URL+"/list?X-Goog-Signature=s3cr3t").URL
			case "five":
				start = redirector(t, w, 5, secure.URL+"/list").URL
			case "six":
				start = redirector(t, w, 6, secure.URL+"/list").URL
			case "http-to-http":
				start = redirector(t, nil, 1, plain.URL+"/list").URL
			}
			data, body, err := readAll(t, client, start+"/list?token=abc123")
			if tc.refused != "" {
				var re *fetch.RedirectError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("error %v, want a RedirectError saying %q", err, tc.refused)
				}
				if fetch.IsRetryable(err) || fetch.FailureKind(err) != fetch.FailureRedirect {
					t.Errorf("a refused redirect is %q, retryable %v; want %q, not retried", fetch.FailureKind(err), fetch.IsRetryable(err), fetch.FailureRedirect)
				}
				for _, secret := range []string{"s3cr3t", "abc123"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("the error repeats a secret: %v", err)
					}
				}
				return
			}
			if err != nil || len(data) == 0 {
				t.Fatalf("followed redirect: %v", err)
			}
			if !strings.HasSuffix(strings.SplitN(body.Source, "?", 2)[0], "/list") || body.Source == body.Requested ||
				!strings.HasPrefix(body.Requested, start) {
				t.Errorf("Source %q, Requested %q: want the body's URL and the one asked for", body.Source, body.Requested)
			}
			if strings.Contains(body.Requested, "abc123") || !strings.Contains(body.Requested, "token=REDACTED") {
				t.Errorf("Requested %q keeps the token", body.Requested)
			}
		})
	}
}

// TestRedirectSendsNoReferer: net/http would tell the host redirected to
// the URL redirected from, a signed URL's signature included, in a
// Referer header. No header carries it.
func TestRedirectSendsNoReferer(t *testing.T) {
	var got http.Header
	final := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"data":{"results":[]}}`)
	}))
	defer final.Close()
	hop := httptest.NewServer(http.RedirectHandler(final.URL+"/list", http.StatusFound))
	defer hop.Close()
	if _, _, err := readAll(t, newClient(t, fetch.ClientOptions{}), hop.URL+"/o?X-Goog-Signature=s1gn4ture&X-Goog-Date=1"); err != nil {
		t.Fatal(err)
	}
	if got == nil {
		t.Fatal("the redirect was not followed")
	}
	if r := got.Values("Referer"); len(r) > 0 {
		t.Errorf("Referer %q sent to the host redirected to", r)
	}
	for name, values := range got {
		if strings.Contains(strings.Join(values, " "), "s1gn4ture") {
			t.Errorf("header %s carries the signature: %q", name, values)
		}
	}
}
