package spoc

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
)

// Failure kinds returned by FailureKind. They are few and fixed, so they
// can label metrics without growing their cardinality.
const (
	FailureHTTP4xx    = "http_4xx"
	FailureHTTP429    = "http_429"
	FailureHTTP5xx    = "http_5xx"
	FailureNotJSON    = "not_json"    // a 2xx page that is not JSON
	FailureTimeout    = "timeout"     // a connect, first-byte or stall timeout, or the run's deadline
	FailureReset      = "reset"       // the connection was reset or the body cut off
	FailureRefused    = "refused"     // nothing listened
	FailureTLS        = "tls"         // the certificate did not verify
	FailureTransport  = "transport"   // any other network failure
	FailureBadJSON    = "bad_json"    // malformed or truncated JSON
	FailureTooLarge   = "too_large"   // past SPOC_MAX_BODY_BYTES or SPOC_MAX_STRING_BYTES
	FailureNoResults  = "no_results"  // valid JSON without data.results
	FailureCanceled   = "canceled"    // the run was cancelled (SIGTERM)
	FailureNotFound   = "not_found"   // a source file that does not exist
	FailureOtherError = "other_error" // anything else, such as a failed write
)

// FailureKind sorts an error of Fetch, Open or the Decoder into one of the
// Failure* kinds, for metrics and logs. Errors of other packages are
// FailureOtherError unless they wrap a context or network error.
func FailureKind(err error) string {
	var (
		status *StatusError
		ctype  *ContentTypeError
		syntax *SyntaxError
		netErr net.Error
	)
	switch {
	case errors.As(err, &status):
		switch {
		case status.StatusCode == http.StatusTooManyRequests:
			return FailureHTTP429
		case status.StatusCode >= 500:
			return FailureHTTP5xx
		default:
			return FailureHTTP4xx
		}
	case errors.As(err, &ctype):
		return FailureNotJSON
	case errors.Is(err, ErrStalled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return FailureTimeout
	case errors.Is(err, context.Canceled):
		return FailureCanceled
	case isCertificateError(err):
		return FailureTLS
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailureRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return FailureReset
	case errors.As(err, &syntax):
		if syntax.Truncated {
			// A body that ends mid-document is a cut transfer as often
			// as bad JSON; the decoder cannot tell which.
			return FailureReset
		}
		return FailureBadJSON
	case errors.Is(err, ErrBodyTooLarge), errors.Is(err, ErrValueTooLong):
		return FailureTooLarge
	case errors.Is(err, ErrNoResults):
		return FailureNoResults
	case errors.Is(err, syscall.ENOENT):
		return FailureNotFound
	}
	var transport *TransportError
	if errors.As(err, &transport) {
		return FailureTransport
	}
	return FailureOtherError
}
