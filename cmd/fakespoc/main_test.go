package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// -help shows the next day's flags, and they change the body whether it
// is written (-o) or served.
func TestNextDayFlags(t *testing.T) {
	fs := flag.NewFlagSet("fakespoc", flag.ContinueOnError)
	var help bytes.Buffer
	fs.SetOutput(&help)
	o := defineFlags(fs)
	if err := fs.Parse([]string{"-records", "40", "-add", "5", "-remove-every", "10"}); err != nil {
		t.Fatal(err)
	}
	fs.PrintDefaults()
	for _, f := range []string{"-add", "-remove-every", "-status-every", "-area-every"} {
		if !strings.Contains(help.String(), "  "+f+" ") {
			t.Errorf("-help does not show %s:\n%s", f, help.String())
		}
	}
	gen, err := o.gen()
	if err != nil {
		t.Fatal(err)
	}
	var written bytes.Buffer
	if _, err := spoctest.Generate(&written, gen); err != nil {
		t.Fatal(err)
	}
	opts, err := serverOptions(o)
	if err != nil {
		t.Fatal(err)
	}
	served := serve(t, opts)
	for name, body := range map[string][]byte{"written": written.Bytes(), "served": served} {
		var list struct {
			Data struct{ Results []json.RawMessage }
		}
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := len(list.Data.Results); got != 40-4+5 {
			t.Errorf("%s body holds %d records, want 40, 4 removed, 5 added", name, got)
		}
	}
	o.bodyFile = "body.json"
	if _, err := serverOptions(o); err == nil {
		t.Error("-body with a next day's flags: no error")
	}
}

// -dataset gm serves the group managers' list: its records under
// data.results with gm_code and without spoc_code or geolocation.
func TestDatasetGM(t *testing.T) {
	fs := flag.NewFlagSet("fakespoc", flag.ContinueOnError)
	o := defineFlags(fs)
	if err := fs.Parse([]string{"-records", "30", "-dataset", "gm"}); err != nil {
		t.Fatal(err)
	}
	opts, err := serverOptions(o)
	if err != nil {
		t.Fatal(err)
	}
	body := serve(t, opts)
	var list struct {
		Data struct{ Results []map[string]any }
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Data.Results) != 30 {
		t.Fatalf("%d records under data.results, want 30", len(list.Data.Results))
	}
	for _, rec := range list.Data.Results {
		code, _ := rec["gm_code"].(string)
		_, spocCode := rec["spoc_code"]
		_, geolocation := rec["geolocation"]
		if !strings.HasPrefix(code, "GRM") || len(code) != len("GRM1086921") || spocCode || geolocation {
			t.Fatalf("a record that is not GM's: %v", rec)
		}
	}
}

// serve starts the fake upstream with opts on loopback and returns the
// body it answers a GET with.
func serve(t *testing.T, opts []spoctest.Option) []byte {
	t.Helper()
	up := spoctest.NewServer(opts...)
	defer up.Close()
	resp, err := http.Get(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}
