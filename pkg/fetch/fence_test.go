package fetch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// trap watches a Client's connections: it records every address the
// dialer is about to connect to and every DNS query, answers the queries
// itself (fakeDNS) and lets through only connections to loopback
// addresses that the Client's own rules let through. No test reaches
// another host, and a refusal is seen as what it is: no connection
// attempted, no name looked up.
type trap struct {
	mu      sync.Mutex
	dials   []string // addresses the dialer was about to connect to
	lookups []string // names queried in DNS
}

// fakeDNS answers A queries for these names (and none for AAAA).
var fakeDNS = map[string][4]byte{
	"intranet.test.":       {10, 1, 2, 3},
	"metadata-alias.test.": {169, 254, 169, 254},
}

func newTrappedClient(t *testing.T, opts ClientOptions) (*Client, *trap) {
	t.Helper()
	c, err := NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	tr := &trap{}
	own := c.dialer.ControlContext
	c.dialer.ControlContext = func(ctx context.Context, network, address string, raw syscall.RawConn) error {
		tr.mu.Lock()
		tr.dials = append(tr.dials, address)
		tr.mu.Unlock()
		if own != nil {
			if err := own(ctx, network, address, raw); err != nil {
				return err
			}
		}
		if ap, err := netip.ParseAddrPort(address); err != nil || !ap.Addr().IsLoopback() {
			return fmt.Errorf("test trap: %s is not loopback", address)
		}
		return nil
	}
	c.dialer.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		client, server := net.Pipe()
		go tr.serveDNS(server)
		return client, nil
	}}
	return c, tr
}

// serveDNS answers one stream of DNS queries (RFC 1035 4.2.2 framing)
// from fakeDNS.
func (tr *trap) serveDNS(conn net.Conn) {
	defer conn.Close()
	for {
		var size [2]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(conn, q); err != nil || len(q) < 12 {
			return
		}
		// The question: labels up to the root, then type and class.
		var name strings.Builder
		i := 12
		for i < len(q) && q[i] != 0 {
			n := int(q[i])
			if i+1+n > len(q) {
				return
			}
			name.Write(q[i+1 : i+1+n])
			name.WriteByte('.')
			i += 1 + n
		}
		end := i + 5
		if end > len(q) {
			return
		}
		qtype := binary.BigEndian.Uint16(q[i+1:])
		tr.mu.Lock()
		tr.lookups = append(tr.lookups, strings.ToLower(name.String()))
		tr.mu.Unlock()
		a, ok := fakeDNS[strings.ToLower(name.String())]
		answers := 0
		if ok && qtype == 1 {
			answers = 1
		}
		resp := append([]byte{}, q[:2]...)                                  // ID
		resp = append(resp, 0x81, 0x80, 0, 1, 0, byte(answers), 0, 0, 0, 0) // response, recursion available; one question
		resp = append(resp, q[12:end]...)
		if answers == 1 {
			resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
			resp = append(resp, a[:]...)
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := conn.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

// reached is the addresses the Client was about to connect to that are
// not among allowed.
func (tr *trap) reached(allowed ...string) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for _, d := range tr.dials {
		ok := false
		for _, a := range allowed {
			ok = ok || d == a
		}
		if !ok {
			out = append(out, d)
		}
	}
	return out
}

func (tr *trap) looked() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.lookups...)
}

func jsonServer(t *testing.T, seen func(*http.Request)) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			seen(r)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data":{"results":[]}}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func redirectTo(t *testing.T, to string) *httptest.Server {
	srv := httptest.NewServer(http.RedirectHandler(to, http.StatusFound))
	t.Cleanup(srv.Close)
	return srv
}

func fetchAll(c *Client, url string) error {
	b, err := c.Open(context.Background(), url)
	if err != nil {
		return err
	}
	defer b.Close()
	_, err = io.ReadAll(b)
	return err
}

// TestRedirectFence: a redirect from a loopback endpoint may lead to
// loopback addresses (another port, localhost) and the internet, never
// to a cloud metadata server, a link-local or private address, nor out
// of http(s). What the name alone decides (an IP address, a metadata
// server's name, another scheme) is refused before any lookup or
// connection; a name is refused at the dialer, on the address it
// resolves to, before any packet is sent to it. A refusal is a
// *RedirectError and is not retried.
func TestRedirectFence(t *testing.T) {
	final := jsonServer(t, nil)
	_, port, _ := net.SplitHostPort(final.Listener.Addr().String())
	for _, tc := range []struct {
		to      string
		refused string // what the refusal says; "": followed
		lookup  string // the one name looked up; "": none
	}{
		{to: "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token", refused: "metadata server"},
		{to: "http://[fd00:ec2::254]/latest/meta-data/", refused: "metadata server"},
		{to: "http://[::ffff:169.254.169.254]/", refused: "metadata server"},
		{to: "http://metadata.google.internal/computeMetadata/v1/", refused: "metadata server"},
		{to: "http://METADATA.google.internal./computeMetadata/v1/", refused: "metadata server"},
		{to: "http://metadata/computeMetadata/v1/", refused: "metadata server"},
		{to: "http://169.254.1.1/", refused: "link-local"},
		{to: "http://[fe80::1]/", refused: "link-local"},
		{to: "http://10.1.2.3/", refused: "private"},
		{to: "http://192.168.1.1:" + port + "/", refused: "private"},
		{to: "http://0.0.0.0:" + port + "/", refused: "non-global"},
		{to: "http://2852039166/latest/meta-data/", refused: "169.254.169.254 is a link-local metadata server"},
		{to: "http://0xa9fea9fe/latest/meta-data/", refused: "169.254.169.254 is a link-local metadata server"},
		{to: "http://0251.0376.0251.0376/latest/meta-data/", refused: "169.254.169.254 is a link-local metadata server"},
		{to: "http://169.254.43518/latest/meta-data/", refused: "169.254.169.254 is a link-local metadata server"},
		{to: "http://0x7f.1:" + port + "/", refused: "0x7f.1 spells 127.0.0.1"},
		{to: "http://127.0.0.1.:" + port + "/", refused: "127.0.0.1. spells 127.0.0.1"},
		{to: "http://[fd00:ec2::254%25eth0]/", refused: "metadata server"},
		{to: "http://[64:ff9b::a9fe:a9fe%25eth0]/", refused: "metadata server"},
		{to: "http://intranet.test:" + port + "/", refused: "10.1.2.3 is a private address", lookup: "intranet.test."},
		{to: "http://metadata-alias.test/", refused: "metadata server", lookup: "metadata-alias.test."},
		{to: "file:///etc/passwd", refused: "not http"},
		{to: "gs://bucket/day/spoc-list-public.json.gz", refused: "not http"},
		{to: "ftp://127.0.0.1/", refused: "not http"},
		{to: final.URL + "/list"},
		{to: "http://localhost:" + port + "/list"},
	} {
		t.Run(tc.to, func(t *testing.T) {
			c, tr := newTrappedClient(t, ClientOptions{})
			hop := redirectTo(t, tc.to)
			hopAddr := hop.Listener.Addr().String()
			err := fetchAll(c, hop.URL+"/list?X-Goog-Signature=s3cr3t")
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("redirect to %s: %v, want it followed", tc.to, err)
				}
				return
			}
			wantRedirectRefused(t, err, tc.refused)
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error repeats the signature: %v", err)
			}
			var want []string
			if tc.lookup != "" {
				want = []string{tc.lookup, tc.lookup} // A and AAAA
			}
			if got := tr.looked(); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("looked up %q, want %q", got, want)
			}
			// The name resolved: the dialer saw its address and refused it.
			switch got := tr.reached(hopAddr); {
			case tc.lookup == "" && len(got) > 0:
				t.Errorf("about to connect to %v: want the refusal before any dial", got)
			case tc.lookup != "" && len(got) != 1:
				t.Errorf("about to connect to %v: want the one address of %s, refused", got, tc.lookup)
			}
		})
	}
}

// wantRedirectRefused fails t unless err is a *RedirectError saying
// refused, classified as a refused redirect and not retried.
func wantRedirectRefused(t *testing.T, err error, refused string) {
	t.Helper()
	var re *RedirectError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), refused) {
		t.Fatalf("error %v, want a *RedirectError saying %q", err, refused)
	}
	if f := Classify(err); f.Kind != FailureRedirect || f.Retryable {
		t.Errorf("classified %+v, want %s, not retried", f, FailureRedirect)
	}
}

// TestRedirectFenceBehindProxy: behind a proxy, which reads a host in
// any numeric form as the IPv4 address it spells (glibc's resolver
// does), a redirect to one is refused before the proxy gets anything,
// the metadata server's forms and loopback's. So is a redirect to a
// loopback name that goes through the proxy, which would reach its own
// host, not the endpoint's on 127.0.0.1; localhost itself goes direct.
// The proxy, on loopback, answers 502 to whatever it gets and forwards
// nothing.
func TestRedirectFenceBehindProxy(t *testing.T) {
	var (
		mu  sync.Mutex
		got []string
	)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.RequestURI)
		mu.Unlock()
		http.Error(w, "test proxy: forwards nothing", http.StatusBadGateway)
	}))
	t.Cleanup(proxy.Close)
	proxyURL, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	final := jsonServer(t, nil)
	_, finalPort, _ := net.SplitHostPort(final.Listener.Addr().String())
	// As HTTP_PROXY set and NO_PROXY empty: loopback addresses and
	// localhost go direct (http.ProxyFromEnvironment), all else to the proxy.
	fromEnvironment := func(req *http.Request) (*url.URL, error) {
		if h := req.URL.Hostname(); h == "localhost" || net.ParseIP(h).IsLoopback() {
			return nil, nil
		}
		return proxyURL, nil
	}
	for _, tc := range []struct {
		to      string
		refused string // what the refusal says; "": followed
		proxied bool   // followed through the proxy, which answers 502
	}{
		{to: "http://2852039166/latest/meta-data/", refused: "169.254.169.254 is a link-local metadata server"},
		{to: "http://0xa9fea9fe/latest/meta-data/", refused: "169.254.169.254 is a link-local metadata server"},
		{to: "http://0251.0376.0251.0376/latest/meta-data/", refused: "169.254.169.254 is a link-local metadata server"},
		{to: "http://169.254.43518/latest/meta-data/", refused: "169.254.169.254 is a link-local metadata server"},
		{to: "http://0x7f.1/", refused: "0x7f.1 spells 127.0.0.1"},
		{to: "http://0177.0.0.1/", refused: "0177.0.0.1 spells 127.0.0.1"},
		{to: "http://2130706433/", refused: "2130706433 spells 127.0.0.1"},
		{to: "http://010.1.2.3/", refused: "010.1.2.3 spells 8.1.2.3"}, // 10.1.2.3 to a reader of decimals
		{to: "http://0169.254.169.254/latest/meta-data/", refused: "ends in a number"},
		{to: "http://[64:ff9b::a9fe:a9fe%25eth0]/", refused: "metadata server"},
		// Loopback by name, but not localhost itself: the proxy would
		// reach its own host, not the endpoint's.
		{to: "http://api.localhost/", refused: "api.localhost names a loopback address"},
		{to: "http://LOCALHOST/", refused: "LOCALHOST names a loopback address"},
		{to: "http://localhost./", refused: "localhost. names a loopback address"},
		{to: "http://localhost:" + finalPort + "/list"}, // direct: followed
		{to: "http://storage.test/o", proxied: true},    // a name: the proxy's to resolve
		{to: "http://storage.test./o", proxied: true},   // the same
		{to: "http://8.8.8.8/", proxied: true},          // global
	} {
		t.Run(tc.to, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			c, tr := newTrappedClient(t, ClientOptions{})
			c.http.Transport.(*http.Transport).Proxy = fencedProxy(fromEnvironment)
			hop := redirectTo(t, tc.to)
			err := fetchAll(c, hop.URL+"/list")
			mu.Lock()
			sent := append([]string(nil), got...)
			mu.Unlock()
			switch {
			case tc.proxied:
				// The proxy is in the path: the refusals are not for want of one.
				if want := "GET " + tc.to; len(sent) != 1 || sent[0] != want || err == nil {
					t.Fatalf("the proxy got %q (error %v), want %q answered 502", sent, err, want)
				}
				return
			case tc.refused == "":
				if err != nil || len(sent) > 0 {
					t.Fatalf("error %v, the proxy got %q: want it followed directly", err, sent)
				}
				return
			}
			wantRedirectRefused(t, err, tc.refused)
			if len(sent) > 0 {
				t.Errorf("the proxy got %q, want nothing", sent)
			}
			if got, looked := tr.reached(hop.Listener.Addr().String()), tr.looked(); len(got) > 0 || len(looked) > 0 {
				t.Errorf("dialled %v, looked up %v: want neither", got, looked)
			}
		})
	}
}

// TestMetadataServerNeverDialled: not even as the URL asked for, written
// as an address, a metadata server's name or a name that resolves to one.
// It is refused without a retry.
func TestMetadataServerNeverDialled(t *testing.T) {
	for _, u := range []string{
		"http://169.254.169.254/computeMetadata/v1/",
		"http://[fd20:ce::254]/",
		"http://metadata.google.internal/computeMetadata/v1/",
		"https://metadata/computeMetadata/v1/",
		"http://metadata-alias.test/computeMetadata/v1/",
		"http://2852039166/computeMetadata/v1/",
		"http://0xa9.0xfe.0xa9.0xfe/computeMetadata/v1/",
	} {
		t.Run(u, func(t *testing.T) {
			c, tr := newTrappedClient(t, ClientOptions{})
			err := fetchAll(c, u)
			var ae *AddressError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), "metadata server") || IsRetryable(err) {
				t.Fatalf("error %v (retryable %v), want an *AddressError naming a metadata server, not retried", err, IsRetryable(err))
			}
			if strings.Contains(u, ".test/") {
				if got := tr.reached(); len(got) != 1 || !strings.HasPrefix(got[0], "169.254.169.254:") {
					t.Errorf("dialer saw %v, want only the resolved address, refused", got)
				}
				return
			}
			if got, looked := tr.reached(), tr.looked(); len(got) > 0 || len(looked) > 0 {
				t.Errorf("dialled %v, looked up %v: want neither", got, looked)
			}
		})
	}
}

// TestFenceRule is the rule the dialer applies, for each state of a fetch.
func TestFenceRule(t *testing.T) {
	for _, tc := range []struct {
		addr       string
		endpoint   addressClass
		redirected bool
		proxied    bool
		allowed    bool
	}{
		{"127.0.0.1", classLoopback, false, false, true},
		{"10.0.0.1", classPrivate, false, false, true},
		{"169.254.1.1", classLinkLocal, false, false, true},
		{"169.254.169.254", classGlobal, false, false, false},
		{"169.254.169.254", classGlobal, false, true, false}, // not even as the proxy
		{"8.8.8.8", classGlobal, true, false, true},
		{"8.8.8.8", classLoopback, true, false, true},
		{"127.0.0.1", classLoopback, true, false, true},
		{"127.0.0.1", classGlobal, true, false, false},
		{"127.0.0.1", classPrivate, true, false, false},
		{"10.0.0.1", classPrivate, true, false, true},
		{"10.0.0.1", classLoopback, true, false, false},
		{"169.254.1.1", classLinkLocal, true, false, false},
		{"fd00:ec2::254", classPrivate, true, false, false},
		{"10.0.0.1", classGlobal, true, true, true}, // the proxy, which resolves the redirect's name
	} {
		f := &fence{endpoint: tc.endpoint, redirected: tc.redirected, proxied: tc.proxied}
		ctx := context.WithValue(context.Background(), fenceKey{}, f)
		err := fenceControl(ctx, "tcp", netip.AddrPortFrom(netip.MustParseAddr(tc.addr), 80).String(), nil)
		if (err == nil) != tc.allowed {
			t.Errorf("%s (endpoint %s, redirected %v, proxied %v): %v, want allowed %v", tc.addr, tc.endpoint, tc.redirected, tc.proxied, err, tc.allowed)
		}
	}
	// Outside a fetch, only metadata servers are refused.
	if err := fenceControl(context.Background(), "tcp", "169.254.169.254:80", nil); err == nil {
		t.Error("metadata server allowed outside a fetch")
	}
	if err := fenceControl(context.Background(), "tcp", "127.0.0.1:80", nil); err != nil {
		t.Errorf("loopback outside a fetch: %v", err)
	}
}

// TestHostClass: the hosts whose class is known without a lookup, and
// the names left to the dialer.
func TestHostClass(t *testing.T) {
	for _, tc := range []struct {
		host  string
		class addressClass
		known bool
	}{
		{"127.0.0.1", classLoopback, true},
		{"::1", classLoopback, true},
		{"localhost", classLoopback, true},
		{"LocalHost.", classLoopback, true},
		{"api.localhost", classLoopback, true},
		{"10.0.0.1", classPrivate, true},
		{"169.254.169.254", classMetadata, true},
		{"fe80::1%eth0", classLinkLocal, true},
		{"metadata.google.internal", classMetadata, true},
		{"Metadata.Google.Internal.", classMetadata, true},
		{"metadata", classMetadata, true},
		{"metadata.goog", classMetadata, true},
		{"instance-data.ec2.internal", classMetadata, true},
		{"8.8.8.8", classGlobal, true},
		{"2852039166", classMetadata, true},
		{"0xA9FEA9FE", classMetadata, true},
		{"0251.0376.0251.0376", classMetadata, true},
		{"169.254.43518", classMetadata, true},
		{"169.254.43518.", classMetadata, true},
		{"0x7f.1", classLoopback, true},
		{"012.1", classPrivate, true},
		{"134744072", classGlobal, true}, // 8.8.8.8
		{"fd00:ec2::254%eth0", classMetadata, true},
		{"64:ff9b::a9fe:a9fe%eth0", classMetadata, true},
		{"::ffff:169.254.169.254%eth0", classMetadata, true},
		{"64:ff9b::a00:1%1", classPrivate, true},
		{"2001:db8::1%eth0", classOther, true},
		{"0x7f.example", 0, false},
		{"1.2.3.4.5", 0, false},
		{"08.1", 0, false},
		{"api.mspots.org.my", 0, false},
		{"localhost.example", 0, false},
		{"notmetadata.google.internal", 0, false},
	} {
		c, known := hostClass(tc.host)
		if known != tc.known || known && c != tc.class {
			t.Errorf("hostClass(%q) = %s, %v; want %s, %v", tc.host, c, known, tc.class, tc.known)
		}
	}
}

// TestCheckRedirectByName: what a redirect's host alone tells is judged
// against the first URL's class before any lookup; other names are left
// to the dialer.
func TestCheckRedirectByName(t *testing.T) {
	for _, tc := range []struct {
		endpoint addressClass
		to       string
		refused  bool
	}{
		{classGlobal, "http://localhost:8080/", true},
		{classGlobal, "http://127.0.0.1/", true},
		{classGlobal, "http://10.0.0.1/", true},
		{classGlobal, "http://[fd12::1]/", true},
		{classGlobal, "http://8.8.8.8/", false},
		{classGlobal, "https://storage.example/o", false},
		{classPrivate, "http://10.0.0.1/", false},
		{classPrivate, "http://localhost/", true},
		{classPrivate, "http://metadata.google.internal/", true},
		{classLoopback, "http://192.168.0.1/", true},
		{classLoopback, "http://localhost/", false},
		{classGlobal, "http://2852039166/latest/meta-data/", true},
		{classPrivate, "http://0xa9fea9fe/", true},
		{classGlobal, "http://0x7f.1/", true},
		{classLoopback, "http://0x7f.1/", true}, // allowed as 127.0.0.1, but Go's resolver and a proxy's read it apart
		{classGlobal, "http://012.1/", true},
		{classPrivate, "http://012.1/", true},
		{classGlobal, "http://134744072/", true},
		{classLoopback, "http://127.0.0.1./", true},
		{classPrivate, "http://[fd00:ec2::254%25eth0]/", true},
		{classGlobal, "http://[64:ff9b::a9fe:a9fe%25eth0]/", true},
		{classGlobal, "http://0x7f.example/", false},
		{classGlobal, "http://0169.254.169.254/", true}, // 169.254.169.254 to a lenient parser
		{classGlobal, "http://1.2.3.4.5/", true},
		{classLoopback, "http://08.1/", true},
		{classGlobal, "http://example.0x1f./", true},
		{classGlobal, "http://1.example/", false},
		{classGlobal, "http://example.x1/", false},
	} {
		f := &fence{endpoint: tc.endpoint}
		first, _ := http.NewRequestWithContext(withFence(context.Background(), f), http.MethodGet, "http://first.example/", nil)
		req, _ := http.NewRequestWithContext(withFence(context.Background(), f), http.MethodGet, tc.to, nil)
		err := checkRedirect(req, []*http.Request{first})
		var re *RedirectError
		if refused := errors.As(err, &re); refused != tc.refused {
			t.Errorf("from a %s endpoint to %s: %v, want refused %v", tc.endpoint, tc.to, err, tc.refused)
		}
		if to, redirected := f.redirection(); !redirected || to != tc.to {
			t.Errorf("from a %s endpoint to %s: the fence says redirected %v to %q", tc.endpoint, tc.to, redirected, to)
		}
	}
}

// TestFenceThroughProxy: a redirect through the proxy is judged from the
// endpoint's class only when the first URL's request went through it too.
func TestFenceThroughProxy(t *testing.T) {
	for _, tc := range []struct {
		endpoint        addressClass
		endpointProxied bool
		host            string
		proxied         bool
		allowed         bool
	}{
		{classPrivate, true, "10.1.2.3", true, true}, // both on the proxy's network
		{classPrivate, false, "10.1.2.3", true, false},
		{classPrivate, false, "10.1.2.3", false, true}, // the dialer judges it
		{classLoopback, false, "localhost", false, true},
		{classLoopback, false, "api.localhost", true, false},
		{classLoopback, true, "api.localhost", true, true},
		{classLoopback, false, "storage.example", true, true}, // the proxy's to resolve
		{classLoopback, false, "8.8.8.8", true, true},
		{classGlobal, false, "169.254.1.1", true, false},
	} {
		f := &fence{endpoint: tc.endpoint}
		if err := f.through("first.example", tc.endpointProxied); err != nil {
			t.Fatalf("the first URL's request: %v", err)
		}
		f.redirect("http://" + tc.host + "/")
		err := f.through(tc.host, tc.proxied)
		if (err == nil) != tc.allowed {
			t.Errorf("%s (proxied %v) from a %s endpoint (proxied %v): %v, want allowed %v", tc.host, tc.proxied, tc.endpoint, tc.endpointProxied, err, tc.allowed)
		}
	}
}
