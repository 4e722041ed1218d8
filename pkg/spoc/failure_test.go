package spoc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
)

func TestFailureKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&StatusError{StatusCode: 503}, FailureHTTP5xx},
		{fmt.Errorf("attempt 2 of 2: %w", &StatusError{StatusCode: 429}), FailureHTTP429},
		{&StatusError{StatusCode: 404}, FailureHTTP4xx},
		{&ContentTypeError{ContentType: "text/html"}, FailureNotJSON},
		{&TransportError{Op: "read body", Err: fmt.Errorf("no bytes for 1m: %w", ErrStalled)}, FailureTimeout},
		{fmt.Errorf("decode: %w", context.DeadlineExceeded), FailureTimeout},
		{fmt.Errorf("decode: %w", context.Canceled), FailureCanceled},
		{&TransportError{Op: "GET", Err: syscall.ECONNREFUSED}, FailureRefused},
		{&TransportError{Op: "read body", Err: syscall.ECONNRESET}, FailureReset},
		{&TransportError{Op: "read body", Err: io.ErrUnexpectedEOF}, FailureReset},
		{&TransportError{Op: "GET", Err: errors.New("no route")}, FailureTransport},
		{&SyntaxError{Msg: "unexpected end", Truncated: true}, FailureReset},
		{&SyntaxError{Msg: "invalid character"}, FailureBadJSON},
		{fmt.Errorf("decode: %w", ErrBodyTooLarge), FailureTooLarge},
		{ErrNoResults, FailureNoResults},
		{fmt.Errorf("open body.json: %w", syscall.ENOENT), FailureNotFound},
		{errors.New("write gs://b/o: quota exceeded"), FailureOtherError},
	} {
		if got := FailureKind(tc.err); got != tc.want {
			t.Errorf("FailureKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
