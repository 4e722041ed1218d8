package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testResolver, in the environment of this test binary run as the job,
// replaces the job's DNS resolver, so that no query leaves the machine:
// "offline" refuses every dial of the resolver as a machine without a
// network does; an address (127.0.0.1:PORT) sends the queries there.
const testResolver = "MSPO_SPOC_TEST_RESOLVER"

// installTestResolver sets net.DefaultResolver as testResolver says. The
// job's HTTP client resolves through it: its dialer has no resolver of
// its own.
func installTestResolver() {
	how := os.Getenv(testResolver)
	if how == "" {
		return
	}
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		if how == "offline" {
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ENETUNREACH}
		}
		var d net.Dialer
		return d.DialContext(ctx, "udp", how)
	}}
}

// startNXDOMAIN starts a DNS server on loopback that answers every query
// "no such name", as a resolver does for a name under .invalid (RFC 6761).
func startNXDOMAIN(t *testing.T) (addr string, answered *atomic.Int64) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	answered = new(atomic.Int64)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			end := 12 // the question: a name of labels, then type and class
			for end < n && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5
			if n < 12 || end > n {
				continue
			}
			reply := append([]byte{}, q[:end]...)
			reply[2], reply[3] = 0x81, 0x83 // a response, recursion, NXDOMAIN
			clear(reply[6:12])              // no answer, authority or additional records
			if _, err := pc.WriteTo(reply, from); err == nil {
				answered.Add(1)
			}
		}
	}()
	return pc.LocalAddr().String(), answered
}

// A newcomer's first run without a network, at the defaults (output
// ./data): the job says the source's host could not be resolved, points
// to the README's "Try it offline", and leaves no data directory behind;
// nor, with an output folder nested in folders that do not exist yet
// (relative or absolute), any of the folders it created. The source is
// under .invalid and the resolver never leaves loopback.
func TestJobOffline(t *testing.T) {
	dns, answered := startNXDOMAIN(t)
	for _, tc := range []struct {
		name, resolver string
		output         func(dir string) string // "": the default
	}{
		{"no network", "offline", nil},
		{"no such host", dns, nil},
		{"nested relative output", "offline", func(string) string { return "./a/b/c" }},
		{"nested absolute output", "offline", func(dir string) string { return filepath.Join(dir, "x", "o8", "x", "y") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0])
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), runAsJob+"=1", testResolver+"="+tc.resolver,
				"HTTPS_PROXY=", "https_proxy=", "HTTP_PROXY=", "http_proxy=", "ALL_PROXY=", "all_proxy=",
				"SPOC_URL=https://mspo-spoc-test.invalid/api/spoc/get-spoc-list-public",
				"SPOC_LOG_FORMAT=json", "SPOC_RETRY_INITIAL=5ms", "SPOC_RETRY_MAX=20ms")
			if tc.output != nil {
				cmd.Env = append(cmd.Env, "SPOC_OUTPUT="+tc.output(dir))
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != exitFailed {
				t.Fatalf("%v, want exit %d\n%s", err, exitFailed, stderr.String())
			}
			last := strings.TrimSpace(stderr.String())
			var failed map[string]any
			if err := json.Unmarshal([]byte(last[strings.LastIndex(last, "\n")+1:]), &failed); err != nil {
				t.Fatalf("last log line: %v\n%s", err, stderr.String())
			}
			if msg, _ := failed["error"].(string); !strings.HasPrefix(msg, "the source's host mspo-spoc-test.invalid could not be resolved") {
				t.Errorf("error %q: want it to say the host could not be resolved", msg)
			}
			if fix, _ := failed["fix"].(string); !strings.Contains(fix, `"Try it offline"`) {
				t.Errorf("fix %q: want a pointer to the README's \"Try it offline\"", fix)
			}
			if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
				t.Errorf("the failed run left %v behind in its working folder (%v)", left, err)
			}
		})
	}
	if answered.Load() == 0 {
		t.Error("the loopback DNS server answered nothing: the job resolved elsewhere")
	}
}
