package fetch

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// addressClass is what kind of network an address is on, for the CA
// Issuers fetch: its URL comes from a certificate not yet trusted, so it
// may only reach the internet, never this host, its network or a cloud
// metadata server.
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
// NAT64 and 6to4 forms at the IPv4 address they carry.
func classify(ip netip.Addr) addressClass {
	ip = ip.Unmap()
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

// issuerAddressAllowed says whether the CA Issuers fetch may connect to
// ip, for an endpoint whose own address is of class endpoint: global
// addresses always; loopback or private ones only when the endpoint is
// itself of that class (a test on 127.0.0.1, a server on the same
// private network: its CA is likely there too); metadata servers and
// other non-global addresses never.
func issuerAddressAllowed(ip netip.Addr, endpoint addressClass) error {
	c := classify(ip)
	switch {
	case c == classGlobal:
		return nil
	case (c == classLoopback || c == classPrivate) && c == endpoint:
		return nil
	}
	if c == classMetadata && ip.Unmap().IsLinkLocalUnicast() {
		return fmt.Errorf("refused: %s is a link-local %s address", ip, c)
	}
	return fmt.Errorf("refused: %s is a %s address", ip, c)
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
