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
		{"::a9fe:a9fe", "non-global", nil},                            // IPv4-compatible form of 169.254.169.254
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

// TestParseNumericIPv4: the forms inet_aton reads as an IPv4 address (one
// to four parts; each decimal, octal after a 0 or hex after 0x; the last
// filling the bytes left), which a proxy's resolver takes for one, and
// names that are not addresses.
func TestParseNumericIPv4(t *testing.T) {
	for _, tc := range []struct {
		host string
		want string // "": not an address
	}{
		{"169.254.169.254", "169.254.169.254"},
		{"2852039166", "169.254.169.254"},
		{"0xa9fea9fe", "169.254.169.254"},
		{"0XA9FEA9FE", "169.254.169.254"},
		{"0x00000000a9fea9fe", "169.254.169.254"},
		{"025177524776", "169.254.169.254"},
		{"0251.0376.0251.0376", "169.254.169.254"},
		{"0xa9.0xfe.0xa9.0xfe", "169.254.169.254"},
		{"169.254.43518", "169.254.169.254"},
		{"169.16689662", "169.254.169.254"},
		{"0xa9.254.0251.0xfe", "169.254.169.254"},
		{"0x7f.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"0177.0.0.01", "127.0.0.1"},
		{"010.0.0.1", "8.0.0.1"},
		{"00", "0.0.0.0"},
		{"0", "0.0.0.0"},
		{"4294967295", "255.255.255.255"},
		{"1.16777215", "1.255.255.255"},
		{"1.2.65535", "1.2.255.255"},
		{"4294967296", ""},         // past 32 bits
		{"1.16777216", ""},         // the last part past the 3 bytes left
		{"1.2.65536", ""},          // past the 2 bytes left
		{"1.2.3.256", ""},          // past its byte
		{"256.1", ""},              // a leading part past its byte
		{"1.2.3.4.5", ""},          // five parts
		{"0x7f.example", ""},       // a name
		{"08.1", ""},               // 8 is no octal digit
		{"09", ""},                 // the same
		{"0x", ""},                 // no hex digit
		{"0x.1", ""},               // the same
		{"0xg1", ""},               // not hex
		{"00x1", ""},               // octal, then an x
		{"", ""},                   // empty
		{".1.2.3", ""},             // an empty part
		{"1..2", ""},               // the same
		{"1.2.3.", ""},             // the same, last
		{"+1.2.3.4", ""},           // a sign
		{"1_000", ""},              // Go's digit separators
		{"1.2.3.4 ", ""},           // a space
		{"example.com", ""},        // a name
		{"1e3", ""},                // a name
		{"::1", ""},                // IPv6 is netip's
		{"１２７.0.0.1", ""},          // digits other than ASCII
		{"0x7fffffffffffffff", ""}, // past 32 bits
	} {
		got, ok := parseNumericIPv4(tc.host)
		switch {
		case tc.want == "" && ok:
			t.Errorf("parseNumericIPv4(%q) = %s, want no address", tc.host, got)
		case tc.want != "" && (!ok || got != netip.MustParseAddr(tc.want)):
			t.Errorf("parseNumericIPv4(%q) = %s, %v; want %s", tc.host, got, ok, tc.want)
		}
	}
}
