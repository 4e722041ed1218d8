package fetch

import (
	"net/url"
	"strings"
)

// secretParameters are query parameters that carry credentials: signed
// URLs (GCS, S3), SAS and API tokens and keys. Lower case: they are
// matched without regard to case.
var secretParameters = map[string]bool{
	"x-goog-signature":     true,
	"x-amz-signature":      true,
	"x-goog-credential":    true,
	"x-amz-credential":     true,
	"x-amz-security-token": true,
	"sig":                  true,
	"signature":            true,
	"token":                true,
	"access_token":         true,
	"key":                  true,
	"api_key":              true,
	"apikey":               true,
}

// Redacted is what stands for a hidden secret.
const Redacted = "REDACTED"

// RedactURL returns rawURL with its user information and the values of
// credential-like query parameters (X-Goog-Signature, X-Amz-Signature,
// sig, signature, token, key and the like, in any case) replaced by
// REDACTED, for logs, errors, manifests and footers. Anything that does
// not parse as a URL is returned as it is: paths of saved bodies.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		if strings.Contains(rawURL, "://") {
			return "(a URL that does not parse)"
		}
		return rawURL
	}
	if u.User != nil {
		u.User = url.User(Redacted)
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		changed := false
		for i, p := range parts {
			k, _, hasValue := strings.Cut(p, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if secretParameters[strings.ToLower(name)] && hasValue {
				parts[i] = k + "=" + Redacted
				changed = true
			}
		}
		if changed {
			u.RawQuery = strings.Join(parts, "&")
		}
	}
	return u.String()
}
