package fetch

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Checks a certificate can fail, the Check of a CertificateError.
const (
	CheckUnknownAuthority = "unknown_authority" // no chain to a trusted root
	CheckExpired          = "expired"           // a certificate of the chain is expired or not yet valid
	CheckHostname         = "hostname"          // the certificate is for another host
	CheckPin              = "pin"               // pins are set and the leaf's key matches none
	CheckInvalid          = "invalid"           // any other reason x509 gives
)

// CertificateError is a server certificate that did not verify. It says
// which check failed and, for an unknown authority, whether the missing
// issuer was fetched from the certificate's CA Issuers URL and what that
// gave. Its message is one line.
type CertificateError struct {
	Host   string   // the host name checked
	Check  string   // one of the Check* constants
	Leaf   string   // the leaf certificate's subject
	Names  []string // the DNS names and IP addresses the leaf is for
	Issuer string   // the leaf certificate's issuer
	// Pin is the SHA-256 of the leaf's SubjectPublicKeyInfo, base64, the
	// format of ClientOptions.PinnedKeys.
	Pin string
	// IssuersTried says whether the CA Issuers fetch was tried; Issuers
	// says what it gave.
	IssuersTried bool
	Issuers      string
	Err          error // the x509 error
}

func (e *CertificateError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "TLS certificate of %s failed the %s check", e.Host, strings.ReplaceAll(e.Check, "_", " "))
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	names := e.Names
	more := ""
	if len(names) > 8 {
		names, more = names[:8], fmt.Sprintf(" and %d more", len(names)-8)
	}
	shown := make([]string, len(names))
	for i, n := range names {
		shown[i] = truncate(n, issuerMaxShown)
	}
	fmt.Fprintf(&b, " (subject %q, for %s%s, issuer %q, key pin sha256/%s)", truncate(e.Leaf, issuerMaxShown), orNone(strings.Join(shown, " ")), more, truncate(e.Issuer, issuerMaxShown), e.Pin)
	if e.IssuersTried {
		fmt.Fprintf(&b, "; CA Issuers fetch: %s", truncate(e.Issuers, issuerMaxNote))
	}
	return b.String()
}

func (e *CertificateError) Unwrap() error { return e.Err }

// ParsePin reads the SHA-256 digest of a SubjectPublicKeyInfo: base64 (as
// HPKP and curl's --pinnedpubkey write it, with or without a "sha256/" or
// "sha256//" prefix) or 64 hex digits.
func ParsePin(s string) ([sha256.Size]byte, error) {
	var pin [sha256.Size]byte
	v := strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(v, "sha256/"); ok {
		v = rest
		// curl writes "sha256//<base64>"; a base64 digest (44 characters)
		// may itself start with "/", so only a 45th character is the
		// separator's.
		if len(v) == base64.StdEncoding.EncodedLen(sha256.Size)+1 && v[0] == '/' {
			v = v[1:]
		}
	}
	var (
		b   []byte
		err error
	)
	if len(v) == 2*sha256.Size {
		b, err = hex.DecodeString(v)
	} else {
		b, err = base64.StdEncoding.DecodeString(v)
	}
	if err != nil || len(b) != sha256.Size {
		return pin, fmt.Errorf("%q is not a SHA-256 digest in base64 or hex", s)
	}
	copy(pin[:], b)
	return pin, nil
}

// KeyPin is the pin of a certificate's key: the base64 SHA-256 digest of
// its SubjectPublicKeyInfo.
func KeyPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Limits of the CA Issuers fetch. The URL comes from a certificate not
// yet trusted, so the fetch is kept small and short.
const (
	issuerFetchTimeout = 5 * time.Second
	issuerMaxBytes     = 64 << 10
	issuerMaxCerts     = 8
	issuerMaxHops      = 4
	issuerMaxRedirects = 3
	// Chromium fetches at most 5 URLs of a certificate; a handshake
	// fetches at most issuerMaxFetches in all, all hops together, within
	// the handshake's own deadline.
	issuerMaxURLsPerCert = 5
	issuerMaxFetches     = 8
	// issuerMaxNote bounds what the fetch adds to an error line, and
	// issuerMaxShown one URL or name in it: both come from a certificate
	// not yet trusted.
	issuerMaxNote  = 1024
	issuerMaxShown = 120
)

// verifier checks server certificates: the usual chain and host name
// check against roots (nil: the system's), completed when the server
// sends no intermediates by fetching them as browsers do; or, with pins,
// the leaf's key and host name only.
type verifier struct {
	roots   *x509.CertPool
	pins    map[[sha256.Size]byte]bool
	log     *slog.Logger
	issuers *issuerFetcher
}

// verify checks the chain certs (leaf first, as the server sent it) for
// host. It is called during the handshake.
func (v *verifier) verify(ctx context.Context, host string, certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return &CertificateError{Host: host, Check: CheckInvalid, Err: errors.New("the server sent no certificate")}
	}
	leaf := certs[0]
	fail := func(check string, err error) *CertificateError {
		names := slices.Clone(leaf.DNSNames)
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		return &CertificateError{Host: host, Check: check, Leaf: leaf.Subject.String(), Names: names, Issuer: leaf.Issuer.String(), Pin: KeyPin(leaf), Err: err}
	}
	if len(v.pins) > 0 {
		// A pinned key stands in for the chain: neither the issuer nor
		// the validity period matter, the key and the host name do.
		if !v.pins[sha256.Sum256(leaf.RawSubjectPublicKeyInfo)] {
			return fail(CheckPin, errors.New("the key matches none of the pins"))
		}
		if err := leaf.VerifyHostname(host); err != nil {
			return fail(CheckHostname, err)
		}
		return nil
	}
	opts := x509.VerifyOptions{DNSName: host, Roots: v.roots, Intermediates: x509.NewCertPool()}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := leaf.Verify(opts)
	if err == nil {
		return nil
	}
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		return fail(checkOf(err), err)
	}
	// The usual cause: the server sends its leaf without the intermediate.
	fetched, note := v.issuers.complete(ctx, leaf, func(found []*x509.Certificate) bool {
		for _, c := range found {
			opts.Intermediates.AddCert(c)
		}
		_, err = leaf.Verify(opts)
		return err == nil
	})
	if err == nil {
		for _, f := range fetched {
			v.log.InfoContext(ctx, "TLS: fetched a missing intermediate certificate from the CA Issuers URL; put it in the CA file to skip the fetch",
				"host", host, "subject", f.cert.Subject.String(), "issuer", f.cert.Issuer.String(), "url", f.url,
				"sha256", fmt.Sprintf("%x", sha256.Sum256(f.cert.Raw)), "not_after", f.cert.NotAfter.UTC().Format(time.RFC3339))
		}
		return nil
	}
	e := fail(checkOf(err), err)
	e.IssuersTried, e.Issuers = true, note
	return e
}

// checkOf names the check an x509 error failed.
func checkOf(err error) string {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &hostname):
		return CheckHostname
	case errors.As(err, &unknown):
		return CheckUnknownAuthority
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return CheckExpired
	}
	return CheckInvalid
}

// fetchedIssuer is an intermediate certificate fetched from a URL.
type fetchedIssuer struct {
	cert *x509.Certificate
	url  string
}

// issuerFetcher fetches issuer certificates from CA Issuers URLs (RFC
// 5280, 4.2.2.1) over plain HTTP, and remembers what each URL gave for
// the life of the Client.
type issuerFetcher struct {
	client *http.Client
	mu     sync.Mutex
	cache  map[string]issuerResult
}

type issuerResult struct {
	certs []*x509.Certificate
	err   error
}

func newIssuerFetcher() *issuerFetcher {
	dialer := &net.Dialer{Timeout: issuerFetchTimeout, ControlContext: refuseInternalAddress}
	return &issuerFetcher{
		cache: map[string]issuerResult{},
		client: &http.Client{
			Timeout: issuerFetchTimeout,
			// No proxy (its URL may carry credentials), no cookies, no
			// keep-alive: a bare GET to the address the certificate names.
			Transport: &http.Transport{
				Proxy:             nil,
				DialContext:       dialer.DialContext,
				DisableKeepAlives: true,
			},
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				switch {
				case len(via) > issuerMaxRedirects:
					return errors.New("too many redirects")
				case req.URL.Scheme != "http" || req.URL.Host != via[0].URL.Host:
					return fmt.Errorf("redirect to %s refused: only the same host over http", req.URL.Redacted())
				}
				return nil
			},
		},
	}
}

// complete follows the CA Issuers URLs from leaf upward, at most
// issuerMaxHops certificates, calling verified with the CA certificates
// fetched at each hop until it reports a verified chain. It returns the
// certificates fetched and, for a chain that stays unverified, one
// phrase on what the fetch gave.
func (f *issuerFetcher) complete(ctx context.Context, leaf *x509.Certificate, verified func([]*x509.Certificate) bool) ([]fetchedIssuer, string) {
	var (
		fetched []fetchedIssuer
		notes   []string
	)
	current := leaf
	fetches := 0
	for range issuerMaxHops {
		if len(current.IssuingCertificateURL) == 0 {
			if current == leaf {
				return nil, "not possible, the certificate has no CA Issuers URL"
			}
			notes = append(notes, fmt.Sprintf("%q has no CA Issuers URL", current.Subject.String()))
			break
		}
		var issuer *fetchedIssuer
		urls := current.IssuingCertificateURL
		if len(urls) > issuerMaxURLsPerCert {
			notes = append(notes, fmt.Sprintf("%d CA Issuers URLs, only the first %d tried", len(urls), issuerMaxURLsPerCert))
			urls = urls[:issuerMaxURLsPerCert]
		}
		for _, u := range urls {
			if fetches == issuerMaxFetches {
				notes = append(notes, fmt.Sprintf("stopped after %d fetches", issuerMaxFetches))
				break
			}
			fetches++
			certs, err := f.fetch(ctx, u)
			if err != nil {
				notes = append(notes, err.Error())
				continue
			}
			var cas []*x509.Certificate
			for _, c := range certs {
				if c.IsCA && c.BasicConstraintsValid {
					cas = append(cas, c)
				}
				if issuer == nil && current.CheckSignatureFrom(c) == nil {
					issuer = &fetchedIssuer{cert: c, url: redact(u)}
				}
			}
			if issuer == nil {
				notes = append(notes, fmt.Sprintf("%s holds no certificate that signed %q", redact(u), truncate(current.Subject.String(), issuerMaxShown)))
				continue
			}
			fetched = append(fetched, *issuer)
			notes = append(notes, fmt.Sprintf("fetched %q from %s", issuer.cert.Subject.String(), redact(u)))
			if verified(cas) {
				return fetched, ""
			}
			break
		}
		if issuer == nil {
			break
		}
		if isSelfSigned(issuer.cert) {
			notes = append(notes, fmt.Sprintf("%q is a root this machine does not trust", issuer.cert.Subject.String()))
			break
		}
		current = issuer.cert
	}
	if len(fetched) > 0 {
		notes = append(notes, "still no chain to a trusted root")
	}
	return fetched, strings.Join(notes, "; ")
}

// redact hides a URL's credentials and bounds its length: it comes from
// a certificate and goes into logs.
func redact(rawURL string) string {
	if _, err := url.Parse(rawURL); err != nil {
		return "(an unparsable URL)"
	}
	return truncate(RedactURL(rawURL), issuerMaxShown)
}

// truncate cuts s to at most n bytes (on a rune boundary), marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func isSelfSigned(c *x509.Certificate) bool {
	return c.CheckSignatureFrom(c) == nil
}

// fetch gets the certificates at a CA Issuers URL, once per Client.
func (f *issuerFetcher) fetch(ctx context.Context, rawURL string) ([]*x509.Certificate, error) {
	// What a URL gives depends on where it may connect.
	key := endpointClassOf(ctx).String() + " " + rawURL
	f.mu.Lock()
	r, ok := f.cache[key]
	f.mu.Unlock()
	if ok {
		return r.certs, r.err
	}
	certs, err := f.get(ctx, rawURL)
	if err != nil {
		err = fmt.Errorf("%s: %w", redact(rawURL), err)
	}
	f.mu.Lock()
	f.cache[key] = issuerResult{certs, err}
	f.mu.Unlock()
	return certs, err
}

func (f *issuerFetcher) get(ctx context.Context, rawURL string) ([]*x509.Certificate, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.User != nil {
		return nil, errors.New("refused: only plain http:// URLs without credentials")
	}
	if c, ok := hostClass(u.Hostname()); ok && c == classMetadata {
		return nil, fmt.Errorf("refused: %w", hostError(u.Hostname(), c))
	}
	ctx, cancel := context.WithTimeout(ctx, issuerFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, withoutURL(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, issuerMaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > issuerMaxBytes {
		return nil, fmt.Errorf("more than %d bytes", issuerMaxBytes)
	}
	return ParseCertificates(data)
}

// ParseCertificates reads the certificates of a CA Issuers response:
// one DER certificate, PEM, or a PKCS#7 certs-only bundle (RFC 5280
// allows DER and "certs-only" CMS; servers also send PEM). It refuses more
// than a few certificates.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	switch {
	case strings.HasPrefix(strings.TrimSpace(string(data[:min(len(data), 64)])), "-----BEGIN"):
		for rest := data; ; {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type == "PKCS7" {
				return parsePKCS7(block.Bytes)
			}
			if block.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, err
			}
			certs = append(certs, c)
		}
	default:
		c, err := x509.ParseCertificate(data)
		if err != nil {
			p7, p7err := parsePKCS7(data)
			if p7err != nil {
				return nil, fmt.Errorf("neither a DER certificate (%v) nor PKCS#7 (%v)", err, p7err)
			}
			return p7, nil
		}
		certs = append(certs, c)
	}
	switch {
	case len(certs) == 0:
		return nil, errors.New("no certificate in the response")
	case len(certs) > issuerMaxCerts:
		return nil, fmt.Errorf("%d certificates, more than %d", len(certs), issuerMaxCerts)
	}
	return certs, nil
}

var oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}

// parsePKCS7 reads the certificates of a PKCS#7 SignedData (RFC 2315;
// "certs-only" has no signers), ignoring everything else in it.
func parsePKCS7(der []byte) ([]*x509.Certificate, error) {
	var ci struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if rest, err := asn1.Unmarshal(der, &ci); err != nil {
		return nil, fmt.Errorf("PKCS#7: %w", err)
	} else if len(rest) > 0 {
		return nil, errors.New("PKCS#7: trailing data")
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, fmt.Errorf("PKCS#7: content type %v is not signedData", ci.ContentType)
	}
	var sd struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		ContentInfo      asn1.RawValue
		Certificates     asn1.RawValue `asn1:"optional,tag:0"`
		Rest             asn1.RawValue `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, fmt.Errorf("PKCS#7 signedData: %w", err)
	}
	if len(sd.Certificates.Bytes) == 0 {
		return nil, errors.New("PKCS#7: no certificates")
	}
	certs, err := x509.ParseCertificates(sd.Certificates.Bytes)
	if err != nil {
		return nil, fmt.Errorf("PKCS#7 certificates: %w", err)
	}
	if len(certs) > issuerMaxCerts {
		return nil, fmt.Errorf("%d certificates, more than %d", len(certs), issuerMaxCerts)
	}
	return certs, nil
}

// dialTLS connects to addr and verifies the server's certificate with v
// for the host of addr, within timeout (0: none).
func (v *verifier) dialTLS(dial func(ctx context.Context, network, addr string) (net.Conn, error), base *tls.Config, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg := base.Clone()
		cfg.ServerName = host
		cfg.VerifyConnection = nil
		conn := tls.Client(raw, cfg)
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		// Verified once the handshake is complete: the server has proved
		// it holds the key of the certificate it sent before anything,
		// a CA Issuers fetch included, is done on the certificate's word.
		// Nothing is sent on the connection before this returns.
		vctx := withEndpointClass(ctx, classOfAddr(raw.RemoteAddr()))
		if err := v.verify(vctx, host, conn.ConnectionState().PeerCertificates); err != nil {
			conn.Close()
			return nil, &tls.CertificateVerificationError{UnverifiedCertificates: conn.ConnectionState().PeerCertificates, Err: err}
		}
		return conn, nil
	}
}
