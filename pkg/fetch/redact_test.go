package fetch_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/fetch"
)

// TestRedactURL: user information and the value of every query
// parameter whose name speaks of a credential, whatever its case and
// separators, are hidden; harmless parameters, paths and the URL's
// shape are kept.
func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://api.example/x?page=1&pageSize=10&state=all", "https://api.example/x?page=1&pageSize=10&state=all"},
		{"http://user:pw@host/x", "http://REDACTED@host/x"},
		{"http://t0ken@host/x", "http://REDACTED@host/x"},
		{"https://b.storage.example/o?X-Goog-Signature=abc&X-Goog-Date=1", "https://b.storage.example/o?X-Goog-Signature=REDACTED&X-Goog-Date=1"},
		{"https://b/o?X-Goog-Credential=sa%40p%2F2026&X-Goog-SignedHeaders=host&X-Goog-Expires=900", "https://b/o?X-Goog-Credential=REDACTED&X-Goog-SignedHeaders=host&X-Goog-Expires=900"},
		{"https://h/o?x-amz-signature=abc&X-Amz-Security-Token=t&X-Amz-Credential=c", "https://h/o?x-amz-signature=REDACTED&X-Amz-Security-Token=REDACTED&X-Amz-Credential=REDACTED"},
		{"https://h/o?sv=2024&sp=r&sig=abc", "https://h/o?sv=2024&sp=r&sig=REDACTED"}, // Azure SAS
		{"https://h/o?SIG=a&Signature=b&Token=c&key=d&keep=e", "https://h/o?SIG=REDACTED&Signature=REDACTED&Token=REDACTED&key=REDACTED&keep=e"},
		{"https://h/o?api-key=1&apikey=2&api_key=3&x-api-key=4&X_API_KEY=5&ApiKey=6", "https://h/o?api-key=REDACTED&apikey=REDACTED&api_key=REDACTED&x-api-key=REDACTED&X_API_KEY=REDACTED&ApiKey=REDACTED"},
		{"https://h/o?password=1&passwd=2&pwd=3&pass=4&user_password=5", "https://h/o?password=REDACTED&passwd=REDACTED&pwd=REDACTED&pass=REDACTED&user_password=REDACTED"},
		{"https://h/o?client_secret=1&Client-Secret=2&secret=3&app.secret=4", "https://h/o?client_secret=REDACTED&Client-Secret=REDACTED&secret=REDACTED&app.secret=REDACTED"},
		{"https://h/o?access_token=1&refresh-token=2&id_token=3&sessionToken=4&session_id=5", "https://h/o?access_token=REDACTED&refresh-token=REDACTED&id_token=REDACTED&sessionToken=REDACTED&session_id=REDACTED"},
		{"https://h/o?auth=1&Authorization=2&oauth_verifier=3&credentials=4&creds=5", "https://h/o?auth=REDACTED&Authorization=REDACTED&oauth_verifier=REDACTED&credentials=REDACTED&creds=REDACTED"},
		{"https://h/o?hmac_sig=1&urlsig=2&signed=3&design=4", "https://h/o?hmac_sig=REDACTED&urlsig=REDACTED&signed=3&design=4"},
		{"https://h/o?api%2Dkey=1&to%6Ben=2", "https://h/o?api%2Dkey=REDACTED&to%6Ben=REDACTED"}, // escaped names
		{"https://h/o?a=1;key=2;b=3", "https://h/o?a=1;key=REDACTED;b=3"},                        // ; as a separator
		{"https://h/o?token&key=&state=x", "https://h/o?token&key=REDACTED&state=x"},             // no value, empty value
		{"https://h/o?key=a&key=b", "https://h/o?key=REDACTED&key=REDACTED"},                     // repeated
		{"https://h/cb#access_token=abc&state=x", "https://h/cb#access_token=REDACTED&state=x"},  // OAuth fragment
		{"https://h/a%2Fb/o?x=%7e&key=1", "https://h/a%2Fb/o?x=%7e&key=REDACTED"},                // kept as written
		{"/data/body.json.gz", "/data/body.json.gz"},
		{"gs://bucket/day/spoc-list-public.json.gz", "gs://bucket/day/spoc-list-public.json.gz"},
		{"http://h/%zz?key=1", "(a URL that does not parse)"},
	} {
		if got := fetch.RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// TestErrorsRedactURLs: an error of net/http or a proxy that prints a
// URL, such as a *url.Error, or a query, is shown redacted by the
// TransportError that carries it.
func TestErrorsRedactURLs(t *testing.T) {
	for _, inner := range []error{
		&url.Error{Op: "Get", URL: "http://u:pw5ecret@h/o?api-key=k5ecret&a=1", Err: errors.New("connection refused")},
		fmt.Errorf(`proxyconnect tcp: invalid proxy address "http://proxy-user:pw5ecret@proxy:3128/?x-api-key=k5ecret": bad port`),
		errors.New("redirect to https://b/o?X-Goog-Signature=k5ecret, then http://h/?token=pw5ecret."),
		errors.New(`request "/o?state=all&client_secret=k5ecret;Password=pw5ecret" failed`),
	} {
		msg := (&fetch.TransportError{Op: "GET https://h/o", Err: inner}).Error()
		if strings.Contains(msg, "5ecret") || !strings.Contains(msg, "REDACTED") {
			t.Errorf("error %q: want every URL in it redacted", msg)
		}
	}
}

// TestRejectedBodyRedactsURLs: the start of a rejected body, quoted in
// the error, is redacted too: an upstream's error page may repeat the
// URL asked for.
func TestRejectedBodyRedactsURLs(t *testing.T) {
	for _, contentType := range []string{"text/html", "application/json"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			status := http.StatusForbidden
			if contentType == "text/html" {
				status = http.StatusOK
			}
			w.WriteHeader(status)
			fmt.Fprintf(w, "<p>Access to http://%s%s denied</p><p>%s</p>", r.Host, r.RequestURI, r.RequestURI)
		}))
		_, _, err := readAll(t, newClient(t, fetch.ClientOptions{}), srv.URL+"/o?X-Goog-Signature=s1gn5ecret&api-key=k5ecret")
		srv.Close()
		if err == nil || strings.Contains(err.Error(), "5ecret") || !strings.Contains(err.Error(), "denied") {
			t.Errorf("%s: error %v, want the page quoted with the URL redacted", contentType, err)
		}
	}
}
