package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/fetch"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// TestJobTLS runs the job against HTTPS upstreams with a CA hierarchy
// generated here, all on loopback: what publishes, and what fails with
// one line naming the failed check and the setting that fixes it, and
// publishes nothing.
func TestJobTLS(t *testing.T) {
	pki, err := spoctest.NewPKI("")
	if err != nil {
		t.Fatal(err)
	}
	issuers := spoctest.NewIssuersServer(pki.Intermediate.Raw)
	defer issuers.Close()
	caFile := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(caFile, pki.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	leaf := func(opts spoctest.LeafOptions) tls.Certificate {
		if opts.Hosts == nil {
			opts.Hosts = []string{"127.0.0.1"}
		}
		c, err := pki.Leaf(opts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	aia := issuers.URL + "/intermediate.cer"
	selfSigned := leaf(spoctest.LeafOptions{SelfSigned: true})

	for _, tc := range []struct {
		name    string
		cert    tls.Certificate
		env     map[string]string
		fail    string // the failed check; "" when the run publishes
		fix     string // in the failure's fix, or in the logs of a success
		mention string // in the failure's error
	}{
		{
			name: "full chain",
			cert: pki.WithChain(leaf(spoctest.LeafOptions{})),
			env:  map[string]string{"SPOC_CA_FILE": caFile},
		},
		{
			name: "leaf only, the intermediate fetched from its CA Issuers URL",
			cert: leaf(spoctest.LeafOptions{IssuersURL: aia}),
			env:  map[string]string{"SPOC_CA_FILE": caFile},
			fix:  "fetched a missing intermediate certificate",
		},
		{
			name:    "leaf only, CA Issuers URL unreachable",
			cert:    leaf(spoctest.LeafOptions{IssuersURL: "http://127.0.0.1:1/intermediate.cer"}),
			env:     map[string]string{"SPOC_CA_FILE": caFile},
			fail:    "unknown authority",
			mention: "CA Issuers fetch: http://127.0.0.1:1/intermediate.cer",
			fix:     "put the missing intermediate and root CA certificates (PEM) in SPOC_CA_FILE",
		},
		{
			name:    "intermediate fetched, root not trusted",
			cert:    leaf(spoctest.LeafOptions{IssuersURL: aia}),
			fail:    "unknown authority",
			mention: "still no chain to a trusted root",
			fix:     "put the root CA certificate (PEM) in SPOC_CA_FILE",
		},
		{
			name:    "a certificate for another host",
			cert:    pki.WithChain(leaf(spoctest.LeafOptions{Hosts: []string{"other.example"}})),
			env:     map[string]string{"SPOC_CA_FILE": caFile},
			fail:    "hostname",
			mention: "for other.example",
			fix:     "check the host in SPOC_URL",
		},
		{
			name:    "self-signed",
			cert:    selfSigned,
			env:     map[string]string{"SPOC_CA_FILE": caFile},
			fail:    "unknown authority",
			mention: "not possible, the certificate has no CA Issuers URL",
			fix:     "SPOC_TLS_PIN_SHA256=" + fetch.KeyPin(selfSigned.Leaf),
		},
		{
			name: "self-signed with its key pinned",
			cert: selfSigned,
			env:  map[string]string{"SPOC_TLS_PIN_SHA256": "sha256/" + fetch.KeyPin(selfSigned.Leaf)},
			fix:  "replaced by key pins",
		},
		{
			name:    "a full chain whose key is not the pinned one",
			cert:    pki.WithChain(leaf(spoctest.LeafOptions{})),
			env:     map[string]string{"SPOC_CA_FILE": caFile, "SPOC_TLS_PIN_SHA256": fetch.KeyPin(pki.Root)},
			fail:    "pin",
			mention: "matches none of the pins",
			fix:     "is not one of SPOC_TLS_PIN_SHA256",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := spoctest.NewTLSServer(tc.cert, spoctest.WithRecords(500))
			defer up.Close()
			out := t.TempDir()
			env := map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out}
			maps.Copy(env, tc.env)
			code, logs := runJob(t, context.Background(), env)
			if tc.fail == "" {
				if code != exitOK {
					t.Fatalf("exit %d\n%s", code, logs)
				}
				if len(files(t, out)) != 7 {
					t.Errorf("files %v", files(t, out))
				}
				if !strings.Contains(logs, tc.fix) {
					t.Errorf("logs do not say %q:\n%s", tc.fix, logs)
				}
				return
			}
			if code != exitFailed {
				t.Fatalf("exit %d, want %d\n%s", code, exitFailed, logs)
			}
			if got := files(t, out); len(got) != 0 {
				t.Errorf("a failed run left %v", got)
			}
			if up.Requests() != 0 {
				t.Errorf("%d requests reached the server", up.Requests())
			}
			lines := strings.Split(strings.TrimSpace(logs), "\n")
			var last map[string]any
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
				t.Fatal(err)
			}
			msg, _ := last["error"].(string)
			fix, _ := last["fix"].(string)
			if last["reason"] != fetch.FailureTLS || !strings.Contains(msg, "failed the "+tc.fail+" check") ||
				!strings.Contains(msg, tc.mention) || !strings.Contains(fix, tc.fix) {
				t.Errorf("last line %v\nwant reason tls, the %s check, %q in the error and %q in the fix", last, tc.fail, tc.mention, tc.fix)
			}
			if n := strings.Count(logs, "attempt failed, retrying"); n != 0 {
				t.Errorf("a certificate failure was retried %d times", n)
			}
		})
	}

	t.Run("pins and insecure mode together", func(t *testing.T) {
		code, logs := runJob(t, context.Background(), map[string]string{"SPOC_OUTPUT": t.TempDir(),
			"SPOC_TLS_PIN_SHA256": fetch.KeyPin(pki.Root), "SPOC_INSECURE_SKIP_VERIFY": "true"})
		if code != exitConfig || !strings.Contains(logs, "SPOC_TLS_PIN_SHA256") {
			t.Errorf("exit %d, want %d naming SPOC_TLS_PIN_SHA256\n%s", code, exitConfig, logs)
		}
	})
}
