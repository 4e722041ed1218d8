package fetch

import (
	"context"
	"fmt"
	"net"
	"net/http/httptrace"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// addressClass is what kind of network an address is on, for the
// connections a URL from elsewhere may lead to: a redirect's, or a CA
// Issuers URL's from a certificate not yet trusted. They may reach the
// internet, never a cloud metadata server, and this host or its network
// only from an endpoint there.
type addressClass int

const (
	classGlobal    addressClass = iota // the internet
	classLoopback                      // this host
	classPrivate                       // RFC 1918, CGNAT 100.64/10, unique local fc00::/7
	classMetadata                      // cloud metadata servers: never
	classLinkLocal                     // 169.254/16, fe80::/10
	classOther                         // multicast, reserved, documentation...
)

func (c addressClass) String() string {
	return [...]string{"global", "loopback", "private", "metadata server", "link-local", "non-global"}[c]
}

// nonGlobal are the special-purpose blocks (IANA's registries) that
// netip's own predicates leave as global unicast, or that carry another
// address inside.
var nonGlobal = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.88.99.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001::/23"), // Teredo and other protocol assignments
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("fec0::/10"),
	netip.MustParsePrefix("::/96"), // IPv4-compatible: ::a9fe:a9fe is 169.254.169.254 to some stacks
}

var (
	cgnat      = netip.MustParsePrefix("100.64.0.0/10")
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour  = netip.MustParsePrefix("2002::/16")
	// Metadata servers: GCE, AWS and the like at 169.254.169.254 (also
	// link-local), AWS's and GCP's IPv6 ones inside fc00::/7.
	metadataAddresses = []netip.Addr{
		netip.MustParseAddr("169.254.169.254"),
		netip.MustParseAddr("fd00:ec2::254"),
		netip.MustParseAddr("fd20:ce::254"),
	}
)

// classify says which class ip is in, looking through IPv4-mapped,
// NAT64 and 6to4 forms at the IPv4 address they carry. A zone only
// picks the interface: the address is the same (and netip's prefixes
// contain no zoned address).
func classify(ip netip.Addr) addressClass {
	ip = ip.WithZone("").Unmap()
	switch {
	case nat64.Contains(ip):
		b := ip.As16()
		return classify(netip.AddrFrom4([4]byte(b[12:16])))
	case nat64Local.Contains(ip):
		return classOther
	case sixToFour.Contains(ip):
		b := ip.As16()
		return classify(netip.AddrFrom4([4]byte(b[2:6])))
	}
	for _, m := range metadataAddresses {
		if ip == m {
			return classMetadata
		}
	}
	switch {
	case ip.IsLoopback():
		return classLoopback
	case ip.IsPrivate(), cgnat.Contains(ip):
		return classPrivate
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return classLinkLocal
	case !ip.IsGlobalUnicast():
		return classOther
	}
	for _, p := range nonGlobal {
		if p.Contains(ip) {
			return classOther
		}
	}
	return classGlobal
}

// allowedFrom says whether a connection may reach an address of class
// c from an endpoint (the address first asked for) of class endpoint:
// global addresses always; loopback or private ones only when the
// endpoint is itself of that class (a test on 127.0.0.1, a server on the
// same private network); metadata servers, link-local and other
// non-global addresses never.
func allowedFrom(c, endpoint addressClass) bool {
	return c == classGlobal || (c == classLoopback || c == classPrivate) && c == endpoint
}

// AddressError is a connection refused for the class of its address
// before anything is sent to it: a cloud metadata server, or an address
// a redirect or a CA Issuers URL may not lead to.
type AddressError struct {
	Host  string // the address or the name refused
	Class string // "metadata server", "link-local", "private"...
	Name  bool   // Host is a name, refused without a lookup
}

func (e *AddressError) Error() string {
	if e.Name {
		return fmt.Sprintf("%s names a %s address", e.Host, e.Class)
	}
	return fmt.Sprintf("%s is a %s address", e.Host, e.Class)
}

// addressError describes ip, of class c, refused.
func addressError(ip netip.Addr, c addressClass) *AddressError {
	class := c.String()
	if c == classMetadata && ip.Unmap().IsLinkLocalUnicast() {
		class = "link-local " + class
	}
	return &AddressError{Host: ip.String(), Class: class}
}

// issuerAddressAllowed says whether the CA Issuers fetch may connect to
// ip, for an endpoint whose own address is of class endpoint (see
// allowedFrom).
func issuerAddressAllowed(ip netip.Addr, endpoint addressClass) error {
	c := classify(ip)
	if allowedFrom(c, endpoint) {
		return nil
	}
	return fmt.Errorf("refused: %w", addressError(ip, c))
}

// hostClass is the class of a URL's host when the host alone tells it:
// an IP address in any form hostAddr reads, a metadata server's name,
// localhost.
func hostClass(host string) (addressClass, bool) {
	if ip, _, ok := hostAddr(host); ok {
		return classify(ip), true
	}
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	switch {
	case isMetadataHost(h):
		return classMetadata, true
	case h == "localhost" || strings.HasSuffix(h, ".localhost"):
		return classLoopback, true
	}
	return 0, false
}

// hostError describes host, of class c as hostClass tells it, refused.
func hostError(host string, c addressClass) *AddressError {
	if ip, _, ok := hostAddr(host); ok {
		return addressError(ip, c)
	}
	return &AddressError{Host: host, Class: c.String(), Name: true}
}

// hostAddr is the IP address a URL's host spells, if any: one netip
// reads, or an IPv4 address in a form inet_aton reads (2852039166,
// 0xa9fea9fe, 0x7f.1...), with or without a final dot. A proxy's
// resolver (glibc's getaddrinfo) takes all of these for the address,
// where Go's looks the other forms up in DNS. exact says host is
// written as netip reads it, the one form both read alike.
func hostAddr(host string) (ip netip.Addr, exact, ok bool) {
	h := strings.TrimSuffix(host, ".")
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip, h == host, true
	}
	if ip, ok := parseNumericIPv4(h); ok {
		return ip, false, true
	}
	return netip.Addr{}, false, false
}

// ambiguousHost says why a redirect may not lead to host, which
// resolvers read apart: an IP address in another form than netip's,
// which Go's resolver looks up as a name and a proxy's takes for the
// address, or a host ending in a number that is no address, which
// lenient parsers (taking 0169 for 169) read as one. "" for any other.
func ambiguousHost(host string) string {
	ip, exact, ok := hostAddr(host)
	switch {
	case ok && !exact:
		return fmt.Sprintf("%s spells %s in a form resolvers read apart", host, ip)
	case !ok && endsInNumber(strings.TrimSuffix(host, ".")):
		return fmt.Sprintf("%s ends in a number but is no IP address", host)
	}
	return ""
}

// endsInNumber says whether the last label of h is all decimal digits,
// or 0x and hex digits, which no DNS name's top-level domain is.
func endsInNumber(h string) bool {
	last := h[strings.LastIndexByte(h, '.')+1:]
	if len(last) > 1 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') {
		return strings.Trim(last[2:], "0123456789abcdefABCDEF") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// parseNumericIPv4 reads s as inet_aton does: one to four parts
// separated by dots, each decimal, octal after a leading 0 or hex after
// 0x or 0X; each part but the last is one byte, and the last fills the
// bytes left (127.1 is 127.0.0.1, 2852039166 is 169.254.169.254).
func parseNumericIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, p := range parts {
		base := 10
		switch {
		case len(p) > 1 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		// ParseUint takes no sign nor digit separator with a base given.
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if v > 0xff {
				return netip.Addr{}, false
			}
			b[i] = byte(v)
			continue
		}
		if v >= 1<<(8*(4-i)) {
			return netip.Addr{}, false
		}
		for j := 3; j >= i; j-- {
			b[j], v = byte(v), v>>8
		}
	}
	return netip.AddrFrom4(b), true
}

// isMetadataHost reports the host names of cloud metadata servers.
func isMetadataHost(host string) bool {
	switch strings.TrimSuffix(strings.ToLower(host), ".") {
	case "metadata.google.internal", "metadata", "metadata.goog", "instance-data", "instance-data.ec2.internal":
		return true
	}
	return false
}

// fence is where one fetch may connect. Its first URL may reach any
// address but a metadata server's (it is the job's setting); a redirect
// may only lead where allowedFrom lets it from the first URL's address.
// It travels in the context of the fetch's requests, which net/http
// passes on to the proxy hook (fencedProxy), to the dialer of every
// connection (fenceControl), and to checkRedirect.
type fence struct {
	mu sync.Mutex
	// endpoint is the class of the first URL's address: known from the
	// URL for an IP address, from the connection otherwise; global (the
	// strictest) while unknown, as through a proxy.
	endpoint   addressClass
	redirected bool   // the fetch is following a redirect
	to         string // where the last redirect leads, redacted
	// proxied says the current request goes through a proxy: its
	// connection is to the proxy, which the job's settings name.
	proxied bool
	// endpointProxied says the first URL's request went through one.
	endpointProxied bool
}

type fenceKey struct{}

func withFence(ctx context.Context, f *fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

func fenceOf(ctx context.Context) *fence {
	f, _ := ctx.Value(fenceKey{}).(*fence)
	return f
}

// redirect records that the fetch follows a redirect to the redacted
// URL to, and returns the first URL's class.
func (f *fence) redirect(to string) addressClass {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.redirected, f.to = true, to
	return f.endpoint
}

// redirection says where the redirect being followed leads, if any.
func (f *fence) redirection() (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.to, f.redirected
}

// through records whether the request for host goes through a proxy.
// A redirect that does when the first URL's request did not is judged
// as from the internet: the proxy reaches loopback and private
// addresses on its own network, not on the endpoint's.
func (f *fence) through(host string, proxied bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.proxied = proxied
	if !f.redirected {
		f.endpointProxied = proxied
		return nil
	}
	if c, ok := hostClass(host); ok && proxied && !f.endpointProxied && !allowedFrom(c, classGlobal) {
		return hostError(host, c)
	}
	return nil
}

// gotConn learns the first URL's class from its connection, pooled or
// new (httptrace.ClientTrace.GotConn).
func (f *fence) gotConn(info httptrace.GotConnInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.redirected && !f.proxied && info.Conn != nil {
		f.endpoint = classOfAddr(info.Conn.RemoteAddr())
	}
}

// fenceControl is the ControlContext of the dialer of every connection
// of a Client: it runs on the resolved address before any packet is
// sent, so a name is judged by the address it resolves to. A metadata
// server is refused always, any other address only on a redirect of a
// fetch (see fence).
func fenceControl(ctx context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused: %s is not an IP address and port", address)
	}
	ip := ap.Addr()
	c := classify(ip)
	if c == classMetadata {
		return addressError(ip, c)
	}
	f := fenceOf(ctx)
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.redirected || f.proxied || allowedFrom(c, f.endpoint) {
		return nil
	}
	return addressError(ip, c)
}

type endpointClassKey struct{}

// withEndpointClass records the class of the endpoint's address for the
// CA Issuers fetches of its handshake.
func withEndpointClass(ctx context.Context, c addressClass) context.Context {
	return context.WithValue(ctx, endpointClassKey{}, c)
}

// endpointClassOf is the class recorded in ctx; global (the strictest)
// when unknown, as through a proxy.
func endpointClassOf(ctx context.Context) addressClass {
	c, ok := ctx.Value(endpointClassKey{}).(addressClass)
	if !ok {
		return classGlobal
	}
	return c
}

// classOfAddr is the class of a connection's remote address.
func classOfAddr(a net.Addr) addressClass {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return classGlobal
	}
	return classify(ap.Addr())
}

// refuseInternalAddress is the CA Issuers dialer's ControlContext: it
// runs on the resolved address before any packet is sent, so a name that
// resolves to a refused address is refused too.
func refuseInternalAddress(ctx context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused: %s is not an IP address and port", address)
	}
	return issuerAddressAllowed(ap.Addr(), endpointClassOf(ctx))
}
