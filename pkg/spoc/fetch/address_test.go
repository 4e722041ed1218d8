package fetch

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

// TestIssuerAddressAllowed covers every class of address a CA Issuers
// URL can resolve to, through the dialer's own hook, for an endpoint on
// the internet, on loopback and on a private network.
func TestIssuerAddressAllowed(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		class   string // what a refusal names; "" when allowed from a global endpoint
		allowed []addressClass
	}{
		{"8.8.8.8", "", []addressClass{classGlobal, classLoopback, classPrivate}},
		{"2001:4860:4860::8888", "", []addressClass{classGlobal, classLoopback, classPrivate}},
		{"64:ff9b::808:808", "", []addressClass{classGlobal, classLoopback, classPrivate}}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", "", []addressClass{classGlobal, classLoopback, classPrivate}},  // 6to4 of 8.8.8.8
		{"127.0.0.1", "loopback", []addressClass{classLoopback}},
		{"127.8.9.10", "loopback", []addressClass{classLoopback}},
		{"::1", "loopback", []addressClass{classLoopback}},
		{"::ffff:127.0.0.1", "loopback", []addressClass{classLoopback}},
		{"10.1.2.3", "private", []addressClass{classPrivate}},
		{"172.16.0.1", "private", []addressClass{classPrivate}},
		{"172.31.255.255", "private", []addressClass{classPrivate}},
		{"192.168.1.1", "private", []addressClass{classPrivate}},
		{"100.64.0.1", "private", []addressClass{classPrivate}},
		{"100.127.255.254", "private", []addressClass{classPrivate}},
		{"fc00::1", "private", []addressClass{classPrivate}},
		{"fd12:3456::1", "private", []addressClass{classPrivate}},
		{"::ffff:10.0.0.1", "private", []addressClass{classPrivate}},
		{"64:ff9b::a00:1", "private", []addressClass{classPrivate}},   // NAT64 of 10.0.0.1
		{"2002:c0a8:101::1", "private", []addressClass{classPrivate}}, // 6to4 of 192.168.1.1
		{"169.254.169.254", "link-local metadata server", nil},        // GCE, AWS
		{"fd00:ec2::254", "metadata server", nil},                     // AWS IPv6
		{"fd20:ce::254", "metadata server", nil},                      // GCE IPv6
		{"64:ff9b::a9fe:a9fe", "metadata server", nil},                // NAT64 of 169.254.169.254
		{"2002:a9fe:a9fe::1", "metadata server", nil},                 // 6to4 of 169.254.169.254
		{"::ffff:169.254.169.254", "link-local metadata server", nil}, // IPv4-mapped
		{"169.254.1.1", "link-local", nil},
		{"fe80::1", "link-local", nil},
		{"0.0.0.0", "non-global", nil},
		{"::", "non-global", nil},
		{"0.1.2.3", "non-global", nil},
		{"255.255.255.255", "non-global", nil},
		{"240.0.0.1", "non-global", nil},
		{"224.0.0.1", "link-local", nil}, // link-local multicast
		{"239.1.2.3", "non-global", nil},
		{"ff02::1", "link-local", nil},
		{"ff05::2", "non-global", nil},
		{"192.0.2.1", "non-global", nil},
		{"198.18.0.1", "non-global", nil},
		{"2001:db8::1", "non-global", nil},
		{"2001::1", "non-global", nil}, // Teredo
		{"64:ff9b:1::1", "non-global", nil},
		{"100::1", "non-global", nil},
	} {
		ip := netip.MustParseAddr(tc.addr)
		for _, endpoint := range []addressClass{classGlobal, classLoopback, classPrivate} {
			ctx := withEndpointClass(context.Background(), endpoint)
			err := refuseInternalAddress(ctx, "tcp", netip.AddrPortFrom(ip, 80).String(), nil)
			want := false
			for _, a := range tc.allowed {
				want = want || a == endpoint
			}
			switch {
			case want && err != nil:
				t.Errorf("%s from a %s endpoint: %v, want it allowed", tc.addr, endpoint, err)
			case !want && err == nil:
				t.Errorf("%s from a %s endpoint: allowed, want it refused", tc.addr, endpoint)
			case !want && !strings.Contains(err.Error(), "is a "+tc.class+" address"):
				t.Errorf("%s from a %s endpoint: %v, want it named a %s address", tc.addr, endpoint, err, tc.class)
			}
		}
	}
	// Without a known endpoint (through a proxy) the strictest rule holds.
	if err := refuseInternalAddress(context.Background(), "tcp", "127.0.0.1:80", nil); err == nil {
		t.Error("loopback allowed with no endpoint class")
	}
	if err := refuseInternalAddress(context.Background(), "tcp", "localhost:80", nil); err == nil {
		t.Error("an unresolved name allowed")
	}
}
