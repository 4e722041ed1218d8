package spoc

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
)

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
		// A body that ended cleanly before its JSON did: as transient as a reset.
		{fmt.Errorf("decode: %w", &SyntaxError{Msg: "unexpected end", Truncated: true}), FailureReset, true},
		{&SyntaxError{Msg: "invalid character"}, FailureBadJSON, false},
		{fmt.Errorf("decode: %w", ErrBodyTooLarge), FailureTooLarge, false},
		{ErrValueTooLong, FailureTooLarge, false},
		{ErrNoResults, FailureNoResults, false},
		{&TransportError{Op: "GET", Err: x509.UnknownAuthorityError{}}, FailureTLS, false},
		{&TransportError{Op: "GET", Err: &CertificateError{Check: CheckExpired}}, FailureTLS, false},
		{fmt.Errorf("open body.json: %w", syscall.ENOENT), FailureNotFound, false},
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

func TestDuplicateCounter(t *testing.T) {
	for _, tc := range []struct {
		keys             []uint64
		repeats, several int64
	}{
		{nil, 0, 0},
		{[]uint64{7}, 0, 0},
		{[]uint64{3, 1, 2}, 0, 0},
		{[]uint64{2, 1, 2}, 1, 1},
		{[]uint64{3, 1, 3, 2, 3, 2}, 3, 2},
		{[]uint64{5, 5, 5, 5}, 3, 1},
		{manyKeys(3*duplicateChunk+5, 1000), 3*duplicateChunk + 5 - 1000, 1000},
	} {
		var d duplicateCounter
		for i, k := range tc.keys {
			d.add(k)
			if i == 1 {
				d.counts() // a look half-way must not change the result
			}
		}
		if r, s := d.counts(); r != tc.repeats || s != tc.several {
			t.Errorf("%v: repeats %d, several %d; want %d, %d", tc.keys, r, s, tc.repeats, tc.several)
		}
	}
}

// manyKeys is n keys over distinct values, each value at least twice,
// spread over several chunks.
func manyKeys(n, distinct int) []uint64 {
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = uint64(i%distinct) * 0x9E3779B97F4A7C15
	}
	return keys
}
