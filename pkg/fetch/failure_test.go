package fetch

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// kinded stands for an error of the decoder, which knows its kind.
type kinded struct{ kind string }

func (k kinded) Error() string       { return "decoder: " + k.kind }
func (k kinded) FailureKind() string { return k.kind }

// TestClassify checks the one table of failures: each error's metric label
// and whether it is retried, from the same case.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err       error
		kind      string
		retryable bool
	}{
		{&StatusError{StatusCode: 503}, FailureHTTP5xx, true},
		{fmt.Errorf("attempt 2 of 2: %w", &StatusError{StatusCode: 429}), FailureHTTP429, true},
		{&StatusError{StatusCode: 404}, FailureHTTP4xx, false},
		{&ContentTypeError{ContentType: "text/html"}, FailureNotJSON, false},
		{&TransportError{Op: "read body", Err: fmt.Errorf("no bytes for 1m: %w", ErrStalled)}, FailureTimeout, true},
		{fmt.Errorf("decode: %w", context.DeadlineExceeded), FailureTimeout, true},
		{fmt.Errorf("decode: %w", context.Canceled), FailureCanceled, false},
		{&TransportError{Op: "GET", Err: syscall.ECONNREFUSED}, FailureRefused, true},
		{&TransportError{Op: "read body", Err: syscall.ECONNRESET}, FailureReset, true},
		{&TransportError{Op: "read body", Err: io.ErrUnexpectedEOF}, FailureReset, true},
		{&TransportError{Op: "GET", Err: errors.New("no route")}, FailureTransport, true},
		{fmt.Errorf("decode: %w", kinded{FailureBadJSON}), FailureBadJSON, false},
		{kinded{FailureReset}, FailureReset, true},
		{&TransportError{Op: "GET", Err: x509.UnknownAuthorityError{}}, FailureTLS, false},
		{&TransportError{Op: "GET", Err: &CertificateError{Check: CheckExpired}}, FailureTLS, false},
		{fmt.Errorf("open body.json: %w", syscall.ENOENT), FailureNotFound, false},
		{&RedirectError{Reason: "10.0.0.1 is a private address"}, FailureRedirect, false},
		// A metadata server as the URL asked for: it cannot change.
		{fmt.Errorf("GET u refused: %w", &AddressError{Host: "169.254.169.254", Class: "metadata server"}), FailureOtherError, false},
		{&TransportError{Op: "GET", Err: &net.OpError{Op: "dial", Err: &AddressError{Host: "169.254.169.254", Class: "metadata server"}}}, FailureOtherError, false},
		{&BodyError{Source: "file:///b.json.gz", Err: io.ErrUnexpectedEOF}, FailureBadBody, false},
		{fmt.Errorf("read file:///b.json.gz: %w", &BodyError{Err: gzip.ErrChecksum}), FailureBadBody, false},
		{&RedirectError{Reason: "gs: is not http(s)"}, FailureRedirect, false},
		{errors.New("write gs://b/o: quota exceeded"), FailureOtherError, false},
	} {
		got := Classify(tc.err)
		if got.Kind != tc.kind || got.Retryable != tc.retryable {
			t.Errorf("Classify(%v) = %+v, want {Kind:%s Retryable:%v}", tc.err, got, tc.kind, tc.retryable)
		}
		if FailureKind(tc.err) != got.Kind || IsRetryable(tc.err) != got.Retryable {
			t.Errorf("FailureKind and IsRetryable disagree with Classify on %v", tc.err)
		}
	}
}
