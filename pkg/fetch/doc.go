// Package fetch gets the body of a public MSPO list: a Client that
// streams it over HTTP (gzip undone, bytes counted on the wire and
// after, a stall timer), verifies the server's certificate as browsers
// do (fetching a missing intermediate from its CA Issuers URL, fenced
// in to global addresses and small budgets), follows only safe
// redirects (never to a metadata server, to this host or its network
// only from there), sends the URL as written and redacts credentials
// wherever a URL is shown; a saved
// body read back from disk or another store (ParseSource, Open); and the
// run's failure classification (Classify: a kind for metrics, and
// whether another attempt may succeed) with the retry policy built on it
// (Backoff).
//
// It knows nothing of the body's shape: package spoc decodes it, and its
// errors name their own failure kind (KindedError).
package fetch
