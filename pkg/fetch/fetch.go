package fetch

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/klauspost/compress/gzip"
)

// ErrStalled means the body stopped arriving for longer than the stall timeout.
var ErrStalled = errors.New("download stalled")

// StatusError is a response with a status other than 2xx.
type StatusError struct {
	URL         string
	StatusCode  int
	Status      string // "503 Service Unavailable"
	ContentType string
	Snippet     string        // the start of the body, cleaned for a log line
	RetryAfter  time.Duration // from the Retry-After header; 0 if absent
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: status %s (%s: %q)", e.URL, e.Status, orNone(e.ContentType), e.Snippet)
}

// ContentTypeError is a successful response that is not JSON, such as an
// HTML maintenance page served with 200.
type ContentTypeError struct {
	URL         string
	Status      string
	ContentType string
	Snippet     string
}

func (e *ContentTypeError) Error() string {
	return fmt.Sprintf("GET %s: status %s but content type %s, not JSON (%q)", e.URL, e.Status, orNone(e.ContentType), e.Snippet)
}

// TransportError is a failure to connect or to receive the whole body: a
// refused or reset connection, a timeout, a body cut off mid-stream.
// Another attempt may well succeed.
type TransportError struct {
	Op  string // "GET url" or "read body of url"
	Err error
}

// Error names the URL of Op as given (redacted) and any URL that the
// error below prints, as net/http's do, redacted.
func (e *TransportError) Error() string { return e.Op + ": " + redactText(e.Err.Error()) }
func (e *TransportError) Unwrap() error { return e.Err }

// BodyError is a saved body that cannot be read whole: a gzip stream cut
// short or failing its checksum, a file that fails to read. Reading it
// again gives the same bytes: it is not retried.
type BodyError struct {
	Source string // the body's URL, redacted
	Err    error
}

func (e *BodyError) Error() string { return "saved body " + e.Source + ": " + e.Err.Error() }
func (e *BodyError) Unwrap() error { return e.Err }

// withoutURL is err without the *url.Error around it, which prints the
// URL it was given, credentials and all.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func orNone(s string) string {
	if s == "" {
		return "no content type"
	}
	return s
}

// retryAfter returns the server's requested wait carried by err, or 0.
func retryAfter(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// ClientOptions configures a Client. Zero durations mean no limit.
type ClientOptions struct {
	UserAgent        string        // sent as User-Agent
	ConnectTimeout   time.Duration // TCP connect and TLS handshake
	FirstByteTimeout time.Duration // from request sent to response headers
	StallTimeout     time.Duration // longest wait for the next body bytes
	// CAFile names a PEM file of extra CA certificates, trusted beside
	// the system's.
	CAFile string
	// PinnedKeys, when not empty, replace the chain check: the server's
	// leaf certificate is accepted if the SHA-256 of its
	// SubjectPublicKeyInfo is one of them (see ParsePin) and it names
	// the host, whatever its issuer and validity dates. Any other key is
	// refused. For a server whose chain can never verify (self-signed,
	// expired, a private CA).
	PinnedKeys [][32]byte
	// InsecureSkipVerify turns off TLS certificate verification. It exists
	// for an upstream with a broken chain and should stay off; PinnedKeys
	// is the narrower way out.
	InsecureSkipVerify bool
	// Openers read saved bodies from other places than the local disk,
	// by URL scheme (e.g. "gs"); see Opener.
	Openers map[string]Opener
	// Logger receives the intermediates fetched from CA Issuers URLs;
	// nil: no logs.
	Logger *slog.Logger
	// Query is the query an http(s) URL without one is sent with (a
	// dataset's Query, such as page=1&pageSize=10). A URL with a query
	// is sent as it is written.
	Query url.Values
}

// Opener opens a saved body at a URL of its scheme. It returns the bytes
// as stored (gzip or not) and their size, or -1 when unknown.
type Opener func(ctx context.Context, url string) (r io.ReadCloser, size int64, err error)

// Client fetches a list's body over HTTP.
//
// # Certificates
//
// The server's certificate is verified as usual (system roots plus
// ClientOptions.CAFile, the host name checked), with one addition that
// browsers make and Go, curl and Python do not: when the chain does not
// reach a trusted root because the server sent its leaf without the
// intermediate, the Client fetches the issuer from the certificate's
// Authority Information Access "CA Issuers" URL (then from that
// certificate's, at most 4 hops) and verifies again, using what it
// fetched only as intermediates. The fetch is plain HTTP with no
// credentials, no proxy and no redirect to another host, at most 64 KiB
// and 5 seconds a URL, and refuses link-local and metadata server
// addresses; each URL is fetched once per Client. Each intermediate used
// is logged, so that it can be added to the CA file. A certificate that
// still does not verify is a *CertificateError saying which check
// failed and what the fetch gave.
//
// # Redirects
//
// A fetch follows at most MaxRedirects redirects, only to http(s) URLs
// and never from https to plain http. No connection of the Client
// reaches a cloud metadata server (169.254.169.254, fd00:ec2::254,
// fd20:ce::254, metadata.google.internal...), not even as the URL asked
// for. A redirect may lead to global addresses, and to loopback or
// private ones only when the URL asked for is on an address of the same
// class; never to link-local or other non-global ones. A host that says
// its class itself (an IP address, a metadata server's name, localhost)
// is refused before any lookup; any other name at the dialer, on the
// address it resolves to, before a packet is sent, except behind a
// proxy, which resolves it; a redirect through the proxy leads to
// loopback or private hosts only if the URL asked for went through it
// too, as the proxy reaches its own network. An IPv4 address is read in
// every form inet_aton reads (2852039166, 0x7f.1...), as a proxy's
// resolver reads it; a redirect to one in another form than netip's, or
// to a host ending in a number that is no address, is refused: Go's
// resolver and a proxy's read them apart. A refused redirect is a
// *RedirectError. No Referer is sent: the URL redirected from may be a
// signed one.
type Client struct {
	http *http.Client
	// dialer makes every connection of the fetch, direct or to a proxy.
	dialer       *net.Dialer
	userAgent    string
	query        url.Values
	stallTimeout time.Duration
	openers      map[string]Opener
}

// NewClient returns a Client. It fails only if the CA file cannot be used.
func NewClient(opts ClientOptions) (*Client, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &verifier{log: log, issuers: newIssuerFetcher()}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", opts.CAFile)
		}
		v.roots = pool
	}
	if len(opts.PinnedKeys) > 0 {
		v.pins = map[[32]byte]bool{}
		for _, p := range opts.PinnedKeys {
			v.pins[p] = true
		}
	}
	// The verifier does the checks (InsecureSkipVerify only turns off
	// Go's own, which cannot fetch missing intermediates), unless they
	// are meant to be off.
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}}
	if !opts.InsecureSkipVerify {
		// Through a proxy, net/http makes the handshake itself with this
		// config and the host as its ServerName.
		tlsConfig.VerifyConnection = func(cs tls.ConnectionState) error {
			if cs.ServerName == "" {
				return &CertificateError{Host: "(an IP address through a proxy)", Check: CheckHostname, Err: errors.New("no host name to check")}
			}
			// net/http gives this hook no context: the handshake's own
			// limit bounds the CA Issuers fetch here too.
			ctx, cancel := context.WithTimeout(context.Background(), handshakeLimit(opts.ConnectTimeout))
			defer cancel()
			return v.verify(ctx, cs.ServerName, cs.PeerCertificates)
		}
	}
	dialer := &net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second, ControlContext: fenceControl}
	transport := &http.Transport{
		Proxy:                 fencedProxy(http.ProxyFromEnvironment),
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   opts.ConnectTimeout,
		ResponseHeaderTimeout: opts.FirstByteTimeout,
		ForceAttemptHTTP2:     true,
		// Compression is negotiated and undone by Fetch itself, so that
		// the bytes on the wire can be counted apart from the JSON.
		DisableCompression: true,
	}
	if !opts.InsecureSkipVerify {
		// Direct connections: the host is known here, for IP addresses too.
		transport.DialTLSContext = v.dialTLS(dialer.DialContext, tlsConfig, opts.ConnectTimeout)
	}
	return &Client{
		http:         &http.Client{Transport: transport, CheckRedirect: checkRedirect},
		dialer:       dialer,
		userAgent:    opts.UserAgent,
		query:        opts.Query,
		stallTimeout: opts.StallTimeout,
		openers:      opts.Openers,
	}, nil
}

// fencedProxy is proxy, telling the fence of each request whether it
// goes through a proxy, and refusing the redirects the fence refuses
// there, before anything is sent to the proxy.
func fencedProxy(proxy func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	return func(req *http.Request) (*url.URL, error) {
		u, err := proxy(req)
		if f := fenceOf(req.Context()); f != nil && err == nil {
			if err := f.through(req.URL.Hostname(), u != nil); err != nil {
				return nil, err
			}
		}
		return u, err
	}
}

// handshakeLimit is the time a TLS handshake may take: the connect
// timeout, or without one the CA Issuers fetch's own.
func handshakeLimit(connect time.Duration) time.Duration {
	if connect > 0 {
		return connect
	}
	return issuerFetchTimeout
}

// MaxRedirects is how many redirects a fetch follows.
const MaxRedirects = 5

// RedirectError is a redirect the Client refused to follow: out of
// http(s), from https to plain http (the body could then come from
// anyone on the path), to an address the first URL's does not allow (a
// metadata server, a link-local address, loopback or private ones from
// elsewhere; see Client), or past MaxRedirects. It is not retried.
type RedirectError struct {
	URL    string // the URL requested, redacted
	To     string // where the refused redirect led, redacted
	Reason string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("GET %s: redirect to %s refused: %s", e.URL, e.To, e.Reason)
}

// checkRedirect follows at most MaxRedirects redirects, only to http(s),
// never from https to another scheme, and to no host whose name or
// address alone says it is out of the fetch's fence; the dialer checks
// the others on the address they resolve to. It sends no Referer: the
// URL redirected from may be a signed one.
func checkRedirect(req *http.Request, via []*http.Request) error {
	// net/http has just set it to the previous URL, query and all.
	req.Header.Del("Referer")
	to := RedactURL(req.URL.String())
	switch {
	case len(via) > MaxRedirects:
		return &RedirectError{To: to, Reason: fmt.Sprintf("more than %d redirects", MaxRedirects)}
	case req.URL.Scheme != "http" && req.URL.Scheme != "https":
		return &RedirectError{To: to, Reason: fmt.Sprintf("%s: is not http(s)", req.URL.Scheme)}
	case via[0].URL.Scheme == "https" && req.URL.Scheme != "https":
		return &RedirectError{To: to, Reason: "it leaves https"}
	}
	endpoint := classGlobal
	if f := fenceOf(req.Context()); f != nil {
		endpoint = f.redirect(to)
	}
	host := req.URL.Hostname()
	if c, ok := hostClass(host); ok && !allowedFrom(c, endpoint) {
		return &RedirectError{To: to, Reason: hostError(host, c).Error()}
	}
	if why := ambiguousHost(host); why != "" {
		return &RedirectError{To: to, Reason: why}
	}
	return nil
}

// Body is an open SPOC body: the JSON, decompressed, and what is known of
// where it came from. The caller must Close it.
type Body struct {
	// Source is the URL the body came from (after redirects) or the file
	// read, and Requested the URL asked for when a redirect led
	// elsewhere. Both have their credentials redacted (RedactURL).
	Source, Requested string
	// StatusCode, ETag and LastModified are the response's; zero for a file.
	StatusCode   int
	ETag         string
	LastModified string
	// ContentLength is the size on the wire announced by the server, or
	// -1 when unknown.
	ContentLength int64

	r      io.Reader
	wire   *countingReader
	gzip   *gzipTap     // the gzip stream under the decompressor; nil if none
	read   atomic.Int64 // decompressed bytes read
	saved  bool
	closer func() error
}

// Saved reports whether the body is a saved one (a file or an object
// read by an Opener) rather than a response: its bytes are what they
// will be on any later reading, so a body that ends before its JSON does
// is cut for good, not cut in transit.
func (b *Body) Saved() bool { return b.saved }

// Gzipped reports whether the body arrives gzip-compressed (the server's
// Content-Encoding, or a saved .gz body), so that TeeGzip can keep the
// compressed bytes as they came.
func (b *Body) Gzipped() bool { return b.gzip != nil }

// TeeGzip writes to w every byte of the gzip stream the body is
// decompressed from, as it is read: a gzip file of the body, the same
// one the server sent or the file held, with no compression of its own.
// Call it before the first Read; it does nothing for a body that is not
// Gzipped. Write errors are w's to keep (the stream goes on).
func (b *Body) TeeGzip(w io.Writer) {
	if b.gzip != nil {
		b.gzip.tee(w)
	}
}

// gzipTap passes the gzip stream to the decompressor, copying it to a
// writer once there is one. What is read while holding (a saved body's
// gzip header, read at Open: one buffer of the decompressor) is kept
// until then; nothing else is kept, so a body read without TeeGzip holds
// no copy of its stream.
type gzipTap struct {
	r       io.Reader
	w       io.Writer
	holding bool
	pending []byte
}

func (t *gzipTap) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	switch {
	case t.w != nil:
		t.w.Write(p[:n])
	case t.holding:
		t.pending = append(t.pending, p[:n]...)
	}
	return n, err
}

func (t *gzipTap) tee(w io.Writer) {
	t.w = w
	w.Write(t.pending)
	t.pending = nil
}

// Read reads the decompressed JSON.
func (b *Body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

// WireBytes is the number of bytes received so far, before decompression.
func (b *Body) WireBytes() int64 { return b.wire.n.Load() }

// BodyBytes is the number of bytes of JSON read so far, after
// decompression. Like WireBytes, it may be read from any goroutine.
func (b *Body) BodyBytes() int64 { return b.read.Load() }

// Close releases the connection or file.
func (b *Body) Close() error { return b.closer() }

// Source kinds, the Kind of a Source.
const (
	SourceHTTP  = "http"  // an http or https URL: fetched
	SourceFile  = "file"  // a saved body on disk: a path or a file:// URL
	SourceOther = "other" // a URL of another scheme: read by an Opener
)

// Source is a body's address as ParseSource reads it.
type Source struct {
	Kind string
	URL  *url.URL // the URL, for SourceHTTP and SourceOther
	Path string   // the path on disk, for SourceFile
}

// ParseSource tells what kind of source s is: an http(s) URL (which must
// name a host), a saved body on disk (a path, or a file: URL), or another
// scheme's URL such as gs://bucket/object. It is the one place sources
// are told apart: Open goes by it, and a caller can check a source with
// it before a run. Only a string with "://" or a "file:" prefix is read
// as a URL, so a path with a colon stays a path.
func ParseSource(s string) (Source, error) {
	if s == "" {
		return Source{}, errors.New("empty source")
	}
	if !strings.Contains(s, "://") && !strings.HasPrefix(s, "file:") {
		return Source{Kind: SourceFile, Path: s}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return Source{}, fmt.Errorf("source %q: %w", RedactURL(s), withoutURL(err))
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return Source{}, fmt.Errorf("source %q has no host", RedactURL(s))
		}
		return Source{Kind: SourceHTTP, URL: u}, nil
	case "file":
		if u.Path == "" {
			return Source{}, fmt.Errorf("source %q has no path", RedactURL(s))
		}
		return Source{Kind: SourceFile, URL: u, Path: u.Path}, nil
	case "":
		return Source{}, fmt.Errorf("source %q has no scheme", RedactURL(s))
	}
	return Source{Kind: SourceOther, URL: u}, nil
}

// Open opens source (see ParseSource): an http(s) URL is fetched with
// Fetch; a URL whose scheme has an Opener in the ClientOptions is read
// with it; a saved body on disk is read with OpenFile. Saved bodies may
// be gzip-compressed.
func (c *Client) Open(ctx context.Context, source string) (*Body, error) {
	src, err := ParseSource(source)
	if err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	switch src.Kind {
	case SourceHTTP:
		return c.Fetch(ctx, source)
	case SourceFile:
		return openPath(src.Path)
	}
	open, ok := c.openers[src.URL.Scheme]
	if !ok {
		return nil, fmt.Errorf("open source %s: no way to read %s:// URLs", RedactURL(source), src.URL.Scheme)
	}
	r, size, err := open(ctx, source)
	if err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	return savedBody(RedactURL(source), r, size, false)
}

// Fetch sends the GET request and returns the body once the response
// headers show a 2xx JSON response. A URL with a query (even an empty
// one: a "?") is sent as it is written, byte for byte, as a signed URL
// must be; one without gets the parameters of ClientOptions.Query. The
// body's read errors are *TransportError, and a body that sends nothing
// for the stall timeout fails with ErrStalled.
func (c *Client) Fetch(ctx context.Context, rawURL string) (*Body, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse URL %s: %w", RedactURL(rawURL), withoutURL(err))
	}
	target := rawURL
	if u.RawQuery == "" && !u.ForceQuery && len(c.query) > 0 {
		// Only the query is added: the rest stays as written.
		before, fragment, hasFragment := strings.Cut(rawURL, "#")
		target = before + "?" + c.query.Encode()
		if hasFragment {
			target += "#" + fragment
		}
	}
	// What errors, logs, the manifest and the footer name: the URL with
	// its credentials hidden.
	shown := RedactURL(target)

	f := &fence{endpoint: classGlobal}
	if class, ok := hostClass(u.Hostname()); ok {
		if class == classMetadata {
			return nil, fmt.Errorf("GET %s refused: %w", shown, hostError(u.Hostname(), class))
		}
		f.endpoint = class
	}
	parent := ctx
	ctx = httptrace.WithClientTrace(withFence(ctx, f), &httptrace.ClientTrace{GotConn: f.gotConn})
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("GET %s: %w", shown, withoutURL(err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Encoding", "gzip")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		err = withoutURL(err)
		var (
			redirect *RedirectError
			refused  *AddressError
		)
		switch {
		case errors.As(err, &redirect):
			redirect.URL = shown
			return nil, redirect
		case errors.As(err, &refused):
			if to, ok := f.redirection(); ok {
				return nil, &RedirectError{URL: shown, To: to, Reason: refused.Error()}
			}
			return nil, fmt.Errorf("GET %s refused: %w", shown, refused)
		case parent.Err() != nil: // the run was cancelled or is out of time
			return nil, fmt.Errorf("GET %s: %w", shown, err)
		}
		return nil, &TransportError{Op: "GET " + shown, Err: err}
	}
	// The body's own URL, after any redirects.
	from := shown
	if resp.Request != nil && resp.Request.URL != nil {
		from = RedactURL(resp.Request.URL.String())
	}
	fail := func(err error) (*Body, error) {
		resp.Body.Close()
		cancel()
		return nil, err
	}
	contentType := resp.Header.Get("Content-Type")
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fail(&StatusError{
			URL:         from,
			StatusCode:  resp.StatusCode,
			Status:      resp.Status,
			ContentType: contentType,
			Snippet:     snippet(resp),
			RetryAfter:  parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		})
	}
	if !isJSONContentType(contentType) {
		return fail(&ContentTypeError{URL: from, Status: resp.Status, ContentType: contentType, Snippet: snippet(resp)})
	}

	stall := &stallReader{r: resp.Body, timeout: c.stallTimeout, cancel: cancel}
	wire := &countingReader{r: stall}
	body := &Body{
		Source:        from,
		StatusCode:    resp.StatusCode,
		ETag:          resp.Header.Get("ETag"),
		LastModified:  resp.Header.Get("Last-Modified"),
		ContentLength: resp.ContentLength,
		wire:          wire,
		closer: func() error {
			cancel()
			return resp.Body.Close()
		},
	}
	var r io.Reader = wire
	if enc := strings.ToLower(resp.Header.Get("Content-Encoding")); enc == "gzip" || enc == "x-gzip" {
		body.gzip = &gzipTap{r: wire}
		r = &lazyGzipReader{r: body.gzip}
	}
	if from != shown {
		body.Requested = shown
	}
	body.r = &transportErrorReader{r: r, op: "read body of " + from}
	return body, nil
}

// OpenFile opens a saved body (a path or a file:// URL). Gzip-compressed
// files (".gz", or any file starting with the gzip magic bytes) are
// decompressed.
func OpenFile(source string) (*Body, error) {
	src, err := ParseSource(source)
	if err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	if src.Kind != SourceFile {
		return nil, fmt.Errorf("open source %s: not a file", source)
	}
	return openPath(src.Path)
}

func openPath(path string) (*Body, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	size := int64(-1)
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	return savedBody("file://"+abs, f, size, true)
}

// savedBody reads a saved body from r, decompressing it if it starts with
// the gzip magic bytes. It closes r on error. Its read errors are
// *BodyError, but for those of the store r reads from when it is not
// the local disk (see storeReader).
func savedBody(source string, r io.ReadCloser, size int64, local bool) (*Body, error) {
	store := &storeReader{r: r}
	wire := &countingReader{r: store}
	br := bufio.NewReaderSize(wire, 64<<10)
	body := &Body{Source: source, ContentLength: size, wire: wire, saved: true, closer: r.Close}
	read := &savedBodyReader{r: br, source: source, local: local}
	body.r = read
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		body.gzip = &gzipTap{r: br, holding: true}
		zr, err := gzip.NewReader(body.gzip)
		body.gzip.holding = false
		if err != nil {
			r.Close()
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			err = read.err(err)
			if errors.As(err, new(*BodyError)) {
				return nil, fmt.Errorf("open source: %w", err)
			}
			return nil, fmt.Errorf("open source %s: %w", source, err)
		}
		read.r = zr
	}
	return body, nil
}

// storeError is an error of the store a saved body is read from, set
// apart from what decompression makes of the bytes.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }

// storeReader marks its reader's errors but io.EOF as *storeError.
type storeReader struct{ r io.Reader }

func (s *storeReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &storeError{err}
	}
	return n, err
}

// savedBodyReader gives a saved body's read errors their kind: a
// *BodyError when the bytes are at fault (cut or corrupt, as the gzip
// reader finds) or the local disk is, which no second reading mends; the
// store's own error otherwise (a network read of an object may well
// succeed the next time).
type savedBodyReader struct {
	r      io.Reader
	source string
	local  bool
}

func (s *savedBodyReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = s.err(err)
	}
	return n, err
}

func (s *savedBodyReader) err(err error) error {
	var store *storeError
	if errors.As(err, &store) {
		if !s.local {
			return store.err
		}
		err = store.err
	}
	return &BodyError{Source: s.source, Err: err}
}

// isJSONContentType accepts application/json, any +json type, and a
// missing Content-Type (the decoder still rejects a body that is not JSON).
func isJSONContentType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// snippet reads the start of a rejected body for the error message,
// folded to one printable line.
func snippet(resp *http.Response) string {
	var r io.Reader = io.LimitReader(resp.Body, 4<<10)
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return ""
		}
		r = io.LimitReader(zr, 4<<10)
	}
	b, _ := io.ReadAll(r)
	// An error page may repeat the URL asked for.
	s := strings.Join(strings.FieldsFunc(redactText(string(b)), func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// stallReader cancels the request when one Read waits longer than the
// timeout. The timer runs only inside Read, so time the consumer spends
// elsewhere (encoding, uploading) never counts as a stalled download.
type stallReader struct {
	r       io.Reader
	timeout time.Duration
	cancel  context.CancelFunc
	timer   *time.Timer
	stalled atomic.Bool
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.timeout <= 0 {
		return s.r.Read(p)
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(s.timeout, s.fire)
	} else {
		s.timer.Reset(s.timeout)
	}
	n, err := s.r.Read(p)
	s.timer.Stop()
	if err != nil && err != io.EOF && s.stalled.Load() {
		err = fmt.Errorf("no bytes for %s: %w", s.timeout, ErrStalled)
	}
	return n, err
}

func (s *stallReader) fire() {
	s.stalled.Store(true)
	s.cancel()
}

// lazyGzipReader starts the gzip reader on the first Read, so that reading
// the gzip header happens in the body's read path (and its errors are
// transport errors), not in Fetch.
type lazyGzipReader struct {
	r  io.Reader
	zr *gzip.Reader
}

func (l *lazyGzipReader) Read(p []byte) (int, error) {
	if l.zr == nil {
		zr, err := gzip.NewReader(l.r)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		l.zr = zr
	}
	return l.zr.Read(p)
}

// transportErrorReader marks every read error but io.EOF as a
// *TransportError: whatever breaks while the body streams in (a reset, a
// cut, a stall, corrupt gzip) is the transfer's fault, not the JSON's.
type transportErrorReader struct {
	r  io.Reader
	op string
}

func (t *transportErrorReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		err = &TransportError{Op: t.op, Err: err}
	}
	return n, err
}
