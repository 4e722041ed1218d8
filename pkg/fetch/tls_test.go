package fetch_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/fetch"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// tlsWorld is a generated CA hierarchy with a CA Issuers server on
// loopback that serves the intermediate, and a CA file trusting the root.
type tlsWorld struct {
	pki     *spoctest.PKI
	issuers *spoctest.IssuersServer
	caFile  string
}

func newTLSWorld(t *testing.T) *tlsWorld {
	t.Helper()
	pki, err := spoctest.NewPKI("")
	if err != nil {
		t.Fatal(err)
	}
	issuers := spoctest.NewIssuersServer(pki.Intermediate.Raw)
	t.Cleanup(issuers.Close)
	caFile := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(caFile, pki.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tlsWorld{pki: pki, issuers: issuers, caFile: caFile}
}

func (w *tlsWorld) leaf(t *testing.T, opts spoctest.LeafOptions) tls.Certificate {
	t.Helper()
	if opts.Hosts == nil {
		opts.Hosts = []string{"127.0.0.1"}
	}
	cert, err := w.pki.Leaf(opts)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestCertificateChecks covers what a TLS source can look like, and what
// each check says when it fails.
func TestCertificateChecks(t *testing.T) {
	w := newTLSWorld(t)
	aia := w.issuers.URL + "/intermediate.cer"
	selfSigned := w.leaf(t, spoctest.LeafOptions{SelfSigned: true})
	pin := func(c tls.Certificate) [32]byte {
		p, err := fetch.ParsePin(fetch.KeyPin(c.Leaf))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	otherPin, _ := fetch.ParsePin(fetch.KeyPin(w.pki.Intermediate))
	expired := w.leaf(t, spoctest.LeafOptions{Expired: true})
	otherHost := w.leaf(t, spoctest.LeafOptions{Hosts: []string{"other.example"}, SelfSigned: true})
	for _, tc := range []struct {
		name    string
		cert    tls.Certificate
		opts    fetch.ClientOptions
		check   string   // "" for success
		mention []string // in the error, or in the logs on success
	}{
		{
			name: "full chain",
			cert: w.pki.WithChain(w.leaf(t, spoctest.LeafOptions{})),
			opts: fetch.ClientOptions{CAFile: w.caFile},
		},
		{
			name:    "leaf only, intermediate fetched from its CA Issuers URL",
			cert:    w.leaf(t, spoctest.LeafOptions{IssuersURL: aia}),
			opts:    fetch.ClientOptions{CAFile: w.caFile},
			mention: []string{"fetched a missing intermediate", "spoctest Intermediate CA", aia},
		},
		{
			name:    "leaf only, CA Issuers URL unreachable",
			cert:    w.leaf(t, spoctest.LeafOptions{IssuersURL: "http://127.0.0.1:1/intermediate.cer"}),
			opts:    fetch.ClientOptions{CAFile: w.caFile},
			check:   fetch.CheckUnknownAuthority,
			mention: []string{"CA Issuers fetch", "127.0.0.1:1", "refused", `issuer "CN=spoctest Intermediate CA"`},
		},
		{
			name:    "leaf only, no CA Issuers URL",
			cert:    w.leaf(t, spoctest.LeafOptions{}),
			opts:    fetch.ClientOptions{CAFile: w.caFile},
			check:   fetch.CheckUnknownAuthority,
			mention: []string{"no CA Issuers URL"},
		},
		{
			name:    "intermediate fetched, root not trusted",
			cert:    w.leaf(t, spoctest.LeafOptions{IssuersURL: aia}),
			check:   fetch.CheckUnknownAuthority,
			mention: []string{`fetched "CN=spoctest Intermediate CA"`, "still no chain to a trusted root"},
		},
		{
			name:    "certificate for another host",
			cert:    w.pki.WithChain(w.leaf(t, spoctest.LeafOptions{Hosts: []string{"other.example"}})),
			opts:    fetch.ClientOptions{CAFile: w.caFile},
			check:   fetch.CheckHostname,
			mention: []string{"for other.example", "127.0.0.1"},
		},
		{
			name:    "expired leaf",
			cert:    w.pki.WithChain(w.leaf(t, spoctest.LeafOptions{Expired: true})),
			opts:    fetch.ClientOptions{CAFile: w.caFile},
			check:   fetch.CheckExpired,
			mention: []string{"expired"},
		},
		{
			name:    "self-signed",
			cert:    selfSigned,
			opts:    fetch.ClientOptions{CAFile: w.caFile},
			check:   fetch.CheckUnknownAuthority,
			mention: []string{"sha256/" + fetch.KeyPin(selfSigned.Leaf)},
		},
		{
			name: "self-signed with its key pinned",
			cert: selfSigned,
			opts: fetch.ClientOptions{PinnedKeys: [][32]byte{otherPin, pin(selfSigned)}},
		},
		{
			name: "expired with its key pinned",
			cert: expired,
			opts: fetch.ClientOptions{PinnedKeys: [][32]byte{pin(expired)}},
		},
		{
			name:    "a full chain, but the key is not the pinned one",
			cert:    w.pki.WithChain(w.leaf(t, spoctest.LeafOptions{})),
			opts:    fetch.ClientOptions{CAFile: w.caFile, PinnedKeys: [][32]byte{otherPin}},
			check:   fetch.CheckPin,
			mention: []string{"matches none of the pins"},
		},
		{
			name:    "pinned key, another host",
			cert:    otherHost,
			opts:    fetch.ClientOptions{PinnedKeys: [][32]byte{pin(otherHost)}},
			check:   fetch.CheckHostname,
			mention: []string{"for other.example"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := spoctest.NewTLSServer(tc.cert, spoctest.WithRecords(10))
			defer srv.Close()
			var logs bytes.Buffer
			tc.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			_, _, err := readAll(t, newClient(t, tc.opts), srv.URL)
			if tc.check == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				for _, m := range tc.mention {
					if !strings.Contains(logs.String(), m) {
						t.Errorf("logs do not mention %q:\n%s", m, logs.String())
					}
				}
				return
			}
			var ce *fetch.CertificateError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want a *fetch.CertificateError", err, err)
			}
			if ce.Check != tc.check {
				t.Errorf("check %q, want %q: %v", ce.Check, tc.check, err)
			}
			if f := fetch.Classify(err); f.Kind != fetch.FailureTLS || f.Retryable {
				t.Errorf("Classify = %+v, want tls and not retried", f)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") {
				t.Errorf("message is not one line: %q", msg)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error does not mention %q: %v", m, err)
				}
			}
			if srv.Requests() != 0 {
				t.Errorf("the server got %d requests through a refused handshake", srv.Requests())
			}
		})
	}
}

// The CA Issuers URL comes from a certificate that is not trusted yet:
// the fetch must not reach metadata or link-local addresses, other
// schemes, or other hosts by redirect.
func TestIssuersFetchRefusesWhatItShould(t *testing.T) {
	w := newTLSWorld(t)
	redirect := spoctest.NewIssuersServer(nil)
	defer redirect.Close()
	redirect.Config.Handler = http.RedirectHandler("http://localhost:1/elsewhere.cer", http.StatusFound)
	for _, tc := range []struct{ url, mention string }{
		{"http://169.254.169.254/computeMetadata/v1/", "link-local"},
		{"http://[fe80::1]/x.cer", "link-local"},
		{"http://metadata.google.internal/x.cer", "metadata"},
		{"https://127.0.0.1:1/x.cer", "only plain http"},
		{"http://user:secret@127.0.0.1:1/x.cer", "without credentials"},
		{redirect.URL + "/x.cer", "redirect to http://localhost:1/elsewhere.cer refused"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			srv := spoctest.NewTLSServer(w.leaf(t, spoctest.LeafOptions{IssuersURL: tc.url}), spoctest.WithRecords(10))
			defer srv.Close()
			_, _, err := readAll(t, newClient(t, fetch.ClientOptions{CAFile: w.caFile}), srv.URL)
			var ce *fetch.CertificateError
			if !errors.As(err, &ce) || !ce.IssuersTried || !strings.Contains(ce.Issuers, tc.mention) {
				t.Fatalf("error %v: want a CertificateError whose CA Issuers fetch mentions %q", err, tc.mention)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error repeats the URL's password: %v", err)
			}
		})
	}
}

func TestIssuersFetchedOncePerClient(t *testing.T) {
	w := newTLSWorld(t)
	srv := spoctest.NewTLSServer(w.leaf(t, spoctest.LeafOptions{IssuersURL: w.issuers.URL + "/i.cer"}), spoctest.WithRecords(10))
	defer srv.Close()
	c := newClient(t, fetch.ClientOptions{CAFile: w.caFile})
	for range 3 {
		if _, _, err := readAll(t, c, srv.URL); err != nil {
			t.Fatal(err)
		}
		// A new connection each time, so that each handshake verifies.
		srv.CloseClientConnections()
	}
	if n := w.issuers.Requests(); n != 1 {
		t.Errorf("the CA Issuers URL was fetched %d times, want once", n)
	}
}

func TestParseCertificates(t *testing.T) {
	w := newTLSWorld(t)
	p7c, err := os.ReadFile("testdata/issuers.p7c") // openssl crl2pkcs7 -nocrl -outform DER
	if err != nil {
		t.Fatal(err)
	}
	p7b, err := os.ReadFile("testdata/issuers.p7b") // the same, PEM
	if err != nil {
		t.Fatal(err)
	}
	twoPEM := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.pki.Intermediate.Raw}), w.pki.RootPEM()...)
	for _, tc := range []struct {
		name     string
		data     []byte
		subjects string // "" for an error
	}{
		{"DER", w.pki.Intermediate.Raw, "CN=spoctest Intermediate CA"},
		{"PEM", twoPEM, "CN=spoctest Intermediate CA,CN=spoctest Root CA"},
		{"PKCS#7 certs-only, DER", p7c, "CN=p7 test A,CN=p7 test B"},
		{"PKCS#7 certs-only, PEM", p7b, "CN=p7 test A,CN=p7 test B"},
		{"HTML", []byte("<html>not found</html>"), ""},
		{"empty", nil, ""},
		{"truncated DER", w.pki.Intermediate.Raw[:100], ""},
		{"too many", bytes.Repeat(twoPEM, 5), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certs, err := fetch.ParseCertificates(tc.data)
			if tc.subjects == "" {
				if err == nil {
					t.Fatalf("accepted: %d certificates", len(certs))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range certs {
				got = append(got, c.Subject.String())
			}
			if strings.Join(got, ",") != tc.subjects {
				t.Errorf("subjects %v, want %s", got, tc.subjects)
			}
		})
	}
}

func TestParsePin(t *testing.T) {
	w := newTLSWorld(t)
	pin := fetch.KeyPin(w.pki.Root)
	want, err := fetch.ParsePin(pin)
	if err != nil {
		t.Fatal(err)
	}
	hexPin := ""
	for _, b := range want {
		hexPin += string("0123456789abcdef"[b>>4]) + string("0123456789abcdef"[b&15])
	}
	for _, s := range []string{pin, "sha256/" + pin, "sha256//" + pin, " " + pin + " ", hexPin} {
		if got, err := fetch.ParsePin(s); err != nil || got != want {
			t.Errorf("ParsePin(%q) = %x, %v; want %x", s, got, err, want)
		}
	}
	// A digest whose base64 starts with "/" keeps it, in every form.
	slash := "/" + pin[1:]
	slashWant, _ := base64.StdEncoding.DecodeString(slash)
	for _, s := range []string{slash, "sha256/" + slash, "sha256//" + slash} {
		if got, err := fetch.ParsePin(s); err != nil || !bytes.Equal(got[:], slashWant) {
			t.Errorf("ParsePin(%q) = %x, %v; want %x", s, got, err, slashWant)
		}
	}
	for _, s := range []string{"", "abc", pin[:20], "md5/" + pin, hexPin[:62] + "zz"} {
		if _, err := fetch.ParsePin(s); err == nil {
			t.Errorf("ParsePin(%q) accepted", s)
		}
	}
}

// A certificate may carry thousands of CA Issuers URLs: the fetch tries
// at most 5 of them, and the error stays one bounded line.
func TestIssuersFetchIsBounded(t *testing.T) {
	w := newTLSWorld(t)
	empty := spoctest.NewIssuersServer([]byte("not a certificate"))
	defer empty.Close()
	var urls []string
	for i := range 300 {
		urls = append(urls, fmt.Sprintf("%s/%04d/%s.cer", empty.URL, i, strings.Repeat("x", 200)))
	}
	names := make([]string, 500)
	for i := range names {
		names[i] = fmt.Sprintf("host-%03d.%s.example", i, strings.Repeat("y", 40))
	}
	srv := spoctest.NewTLSServer(w.leaf(t, spoctest.LeafOptions{Hosts: append([]string{"127.0.0.1"}, names...), IssuersURL: urls[0], MoreIssuersURLs: urls[1:]}), spoctest.WithRecords(10))
	defer srv.Close()
	_, _, err := readAll(t, newClient(t, fetch.ClientOptions{CAFile: w.caFile}), srv.URL)
	var ce *fetch.CertificateError
	if !errors.As(err, &ce) || !ce.IssuersTried {
		t.Fatalf("error %v, want a CertificateError after the CA Issuers fetch", err)
	}
	if n := empty.Requests(); n != 5 {
		t.Errorf("%d CA Issuers URLs fetched, want 5", n)
	}
	if n := len(err.Error()); n >= 2048 {
		t.Errorf("the error is %d bytes, want under 2 KB: %s", n, err)
	}
	if !strings.Contains(err.Error(), "300 CA Issuers URLs, only the first 5 tried") {
		t.Errorf("the error does not say the URLs were cut: %v", err)
	}
}
