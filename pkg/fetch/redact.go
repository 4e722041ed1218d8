package fetch

import (
	"net/url"
	"strings"
)

// secretWords are what a query parameter's name holds when its value is
// a credential, once lower-cased and stripped of separators: signed URLs
// (X-Goog-Signature, X-Amz-Credential), API keys and tokens, passwords,
// client secrets, session ids. A rule rather than a list of names: a
// harmless parameter hidden costs a log reader little, a secret shown
// costs much.
var secretWords = []string{"key", "token", "secret", "pass", "pwd", "signature", "cred", "auth", "session"}

// isSecretName says whether a query parameter named name carries a
// credential: its name holds one of secretWords, or is or ends in "sig"
// (Azure's sig, hmac_sig).
func isSecretName(name string) bool {
	n := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return -1
	}, name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return strings.HasSuffix(n, "sig")
}

// Redacted is what stands for a hidden secret.
const Redacted = "REDACTED"

// RedactURL returns rawURL with its user information, and the value of
// every query parameter whose name speaks of a credential (see
// isSecretName: X-Goog-Signature, sig, api-key, access_token,
// client_secret, password and the like, in any case and with any
// separators), replaced by REDACTED, for logs, errors, manifests and
// footers. Parameters in a fragment (#access_token=...) are redacted
// too. The rest stays as written. Anything that does not parse as a URL
// is returned as it is (paths of saved bodies), or as a placeholder when
// it has a "://".
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
	u.RawQuery = redactQuery(u.RawQuery)
	if u.Fragment == "" {
		return u.String()
	}
	fragment := u.EscapedFragment()
	u.Fragment, u.RawFragment = "", ""
	return u.String() + "#" + redactQuery(fragment)
}

// redactQuery hides the values of the credentials in a query as written,
// its parameters separated by & or ;.
func redactQuery(q string) string {
	var b strings.Builder
	for q != "" {
		param, sep := q, ""
		if i := strings.IndexAny(q, "&;"); i >= 0 {
			param, sep, q = q[:i], q[i:i+1], q[i+1:]
		} else {
			q = ""
		}
		k, _, hasValue := strings.Cut(param, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if hasValue && isSecretName(name) {
			param = k + "=" + Redacted
		}
		b.WriteString(param)
		b.WriteString(sep)
	}
	return b.String()
}

// redactURLsIn redacts every URL in a message of another package, such
// as net/http's *url.Error or a proxy's error, which print the URL they
// were given: each "scheme://" and what follows it up to a space, a
// quote or an angle bracket is read as a URL (punctuation after it too:
// a secret's last character is not told from a full stop).
func redactURLsIn(msg string) string {
	if !strings.Contains(msg, "://") {
		return msg
	}
	var b strings.Builder
	for {
		i := strings.Index(msg, "://")
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		start := i
		for start > 0 && isSchemeByte(msg[start-1]) {
			start--
		}
		end := i + len("://")
		for end < len(msg) && !strings.ContainsRune(urlEnds, rune(msg[end])) {
			end++
		}
		b.WriteString(msg[:start])
		if start == i {
			b.WriteString(msg[start:end]) // no scheme: not a URL
		} else {
			b.WriteString(RedactURL(msg[start:end]))
		}
		msg = msg[end:]
	}
}

// redactText hides the credentials in a message of another package or
// of a server: every URL in it (redactURLsIn), and the value of every
// name=value pair whose name speaks of a credential (isSecretName), as
// in a URL's query repeated without its scheme and host.
func redactText(msg string) string {
	msg = redactURLsIn(msg)
	if !strings.Contains(msg, "=") {
		return msg
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(msg); i++ {
		if msg[i] != '=' {
			continue
		}
		start := i
		for start > 0 && isNameByte(msg[start-1]) {
			start--
		}
		end := i + 1
		for end < len(msg) && !strings.ContainsRune(valueEnds, rune(msg[end])) {
			end++
		}
		name, err := url.QueryUnescape(msg[start:i])
		if err != nil {
			name = msg[start:i]
		}
		if start == i || end == i+1 || msg[i+1:end] == Redacted || !isSecretName(name) {
			continue
		}
		b.WriteString(msg[last : i+1])
		b.WriteString(Redacted)
		last, i = end, end-1
	}
	b.WriteString(msg[last:])
	return b.String()
}

// urlEnds are the bytes that end a URL in a message, and valueEnds a
// parameter's value.
const (
	urlEnds   = " \t\r\n\"'<>`\\"
	valueEnds = "&;" + urlEnds
)

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-.%+", c) >= 0
}

func isSchemeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
}
