package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/calee-data/mspo-spoc/internal/failure"
)

// Failure kinds, the Kind of a Failure: the kinds of package failure,
// which the decoder's errors name too (KindedError).
const (
	FailureHTTP4xx    = failure.HTTP4xx
	FailureHTTP429    = failure.HTTP429
	FailureHTTP5xx    = failure.HTTP5xx
	FailureNotJSON    = failure.NotJSON
	FailureTimeout    = failure.Timeout
	FailureReset      = failure.Reset
	FailureRefused    = failure.Refused
	FailureTLS        = failure.TLS
	FailureTransport  = failure.Transport
	FailureBadJSON    = failure.BadJSON
	FailureTooLarge   = failure.TooLarge
	FailureNoResults  = failure.NoResults
	FailureCanceled   = failure.Canceled
	FailureNotFound   = failure.NotFound
	FailureBadBody    = failure.BadBody
	FailureRedirect   = failure.Redirect
	FailureOtherError = failure.OtherError
)

// KindedError is an error that knows its failure kind: those of the
// decoder (malformed or truncated JSON, a body past its limits, no
// records array) implement it, so that this package classifies a whole
// run's errors without depending on the decoder.
type KindedError interface {
	error
	FailureKind() string
}

// Failure is what Classify makes of an error: a kind for metrics and logs,
// and whether another attempt may succeed.
type Failure struct {
	Kind      string // one of the Failure* constants
	Retryable bool
}

// retryable says, per kind, whether another attempt is worth it: the
// network and an overloaded upstream fail for a while, a certificate, a
// 404 or bad JSON fail the same way every time. The run's own deadline
// and cancellation are "timeout" and "canceled", and Backoff.Do stops on
// them through the context whatever this says.
func retryable(kind string) bool {
	switch kind {
	case FailureHTTP429, FailureHTTP5xx, FailureTimeout, FailureReset, FailureRefused, FailureTransport:
		return true
	}
	return false
}

// Classify sorts an error of Fetch, Open or the Decoder into one Failure.
// It is the only place that does: the metric label and the retry decision
// come from the same case, so they cannot disagree. Errors of other
// packages are FailureOtherError (not retried) unless they wrap a context
// or network error.
//
// A body that ends cleanly before its JSON does (a proxy or the upstream
// closing a chunked response early) is FailureReset and retried, like a
// connection reset: the decoder cannot tell it from a cut transfer.
func Classify(err error) Failure {
	kind := failureKind(err)
	return Failure{Kind: kind, Retryable: retryable(kind)}
}

// FailureKind is Classify(err).Kind.
func FailureKind(err error) string { return Classify(err).Kind }

// IsRetryable is Classify(err).Retryable: a transport failure (reset,
// refused, timeout, a body cut short), or a 429 or 5xx status. Bad JSON,
// a non-JSON page, a 4xx status, a certificate that does not verify, a
// refused redirect, a cut or corrupt saved body and the decoder's limits
// are not.
func IsRetryable(err error) bool { return Classify(err).Retryable }

func failureKind(err error) string {
	var (
		status *StatusError
		ctype  *ContentTypeError
		kinded KindedError
		netErr net.Error
	)
	switch {
	case err == nil:
		return ""
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
	case errors.As(err, new(*RedirectError)):
		return FailureRedirect
	case errors.As(err, new(*AddressError)):
		return FailureOtherError
	case errors.As(err, new(*BodyError)):
		return FailureBadBody
	case isCertificateError(err):
		return FailureTLS
	case errors.Is(err, ErrStalled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return FailureTimeout
	case errors.Is(err, context.Canceled):
		return FailureCanceled
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailureRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return FailureReset
	case errors.As(err, &kinded):
		return kinded.FailureKind()
	case errors.Is(err, syscall.ENOENT):
		return FailureNotFound
	}
	var transport *TransportError
	if errors.As(err, &transport) {
		return FailureTransport
	}
	return FailureOtherError
}

func isCertificateError(err error) bool {
	var (
		certificate      *CertificateError
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
	)
	return errors.As(err, &certificate) || errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verification)
}
