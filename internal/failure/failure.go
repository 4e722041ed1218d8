// Package failure names the kinds of failure of a run: the label of the
// failure metrics and logs, and the key of the retry decision. They are
// declared here, below both the client that classifies a run's errors
// (package fetch) and the decoder whose errors name their own kind
// (package spoc and internal/jsonscan), so that neither imports the
// other and no kind is spelled twice.
//
// They are few and fixed, so they can label metrics without growing
// their cardinality. Their values are what the metrics' outcome label
// and the logs' reason say, so queries on them break if one changes.
package failure

// Kinds of failure.
const (
	HTTP4xx    = "http_4xx"
	HTTP429    = "http_429"
	HTTP5xx    = "http_5xx"
	NotJSON    = "not_json"    // a 2xx page that is not JSON
	Timeout    = "timeout"     // a connect, first-byte or stall timeout, or the run's deadline
	Reset      = "reset"       // the connection was reset or the body cut off, JSON incomplete
	Refused    = "refused"     // nothing listened
	TLS        = "tls"         // the certificate did not verify
	Transport  = "transport"   // any other network failure
	BadJSON    = "bad_json"    // malformed JSON
	TooLarge   = "too_large"   // past the decoder's body or value limit
	NoResults  = "no_results"  // valid JSON without data.results
	Canceled   = "canceled"    // the run was cancelled (SIGTERM)
	NotFound   = "not_found"   // a source file that does not exist
	BadBody    = "bad_body"    // a saved body cut or corrupt (a *fetch.BodyError)
	Redirect   = "redirect"    // a redirect refused: out of http(s) or https, to an address out of bounds, or too many
	OtherError = "other_error" // anything else, such as a failed write
)
