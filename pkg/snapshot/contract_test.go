package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// contractDataset is a dataset with its generated bodies, for the tests
// of the schema contract that run on each.
type contractDataset struct {
	ds   *spoc.Dataset
	body func(t testing.TB, n int, seed uint64) []byte
}

func contractDatasets() []contractDataset {
	return []contractDataset{
		{spoc.SPOC, generated},
		{spoc.OSH, func(t testing.TB, n int, seed uint64) []byte { return generatedOSH(t.(*testing.T), n, seed) }},
		{spoc.GM, generatedGMBody},
	}
}

// fieldValue matches a field and its value in a generated body (the
// generator writes no nested values in the fields these tests touch).
func fieldValue(field string) *regexp.Regexp {
	return regexp.MustCompile(`"` + regexp.QuoteMeta(field) + `":(?:null|"(?:[^"\\]|\\.)*"|[-+0-9.eE]+|true|false)`)
}

// renamed is body with every field from renamed to.
func renamed(body []byte, from, to string) []byte {
	return []byte(strings.ReplaceAll(string(body), `"`+from+`":`, `"`+to+`":`))
}

// withNulls is body with the field's value null in the first share of
// the records that have it.
func withNulls(t testing.TB, body []byte, field string, share float64) []byte {
	t.Helper()
	re := fieldValue(field)
	total := len(re.FindAllIndex(body, -1))
	if total == 0 {
		t.Fatalf("the body has no %s", field)
	}
	n := 0
	return re.ReplaceAllFunc(body, func(m []byte) []byte {
		n++
		if float64(n) <= share*float64(total) {
			return []byte(`"` + field + `":null`)
		}
		return m
	})
}

// contractDay publishes day 1 (n records, every guard default of the job)
// and returns the options of day 2 with body.
func contractDay(t *testing.T, cd contractDataset, store sink.Store, day1Body, day2Body []byte) snapshot.Options {
	t.Helper()
	opts := func(body []byte, d int) snapshot.Options {
		o := options(t, serve(t, body), store)
		o.Dataset, o.Prefix = cd.ds, cd.ds.Prefix
		o.Day = day.AddDate(0, 0, d)
		o.Outputs.Archive, o.Outputs.Changes = true, true
		o.Guards.CollapseWasPercent, o.Guards.CollapseBelowPercent = 90, 10
		return o
	}
	if day1Body != nil {
		if _, err := snapshot.Run(context.Background(), opts(day1Body, -1)); err != nil {
			t.Fatalf("day 1: %v", err)
		}
	}
	return opts(day2Body, 0)
}

// A field renamed upstream collapses its column: the day is refused,
// naming the column, its field and the new name, nothing is published
// and the body is kept under rejected/; Force publishes it, and says so.
func TestRenamedFieldIsRefused(t *testing.T) {
	for _, cd := range contractDatasets() {
		t.Run(cd.ds.Name, func(t *testing.T) {
			out := t.TempDir()
			store, _ := sink.NewLocal(out)
			day1 := cd.body(t, 400, 1)
			day2 := renamed(cd.body(t, 400, 2), "cert_status", "certStatus")
			opts := contractDay(t, cd, store, day1, day2)
			dir := filepath.Join(out, cd.ds.Prefix, opts.Day.Format(snapshot.DateLayout))
			names := snapshot.NamesOf(cd.ds)

			_, err := snapshot.Run(context.Background(), opts)
			var collapsed *snapshot.CollapsedError
			if !errors.Is(err, snapshot.ErrColumnCollapsed) || !errors.As(err, &collapsed) {
				t.Fatalf("day 2: %v, want ErrColumnCollapsed", err)
			}
			if len(collapsed.Columns) != 1 || collapsed.Columns[0].Column != "cert_status" || collapsed.Columns[0].LikelyRename != "certStatus" {
				t.Errorf("collapsed %+v, want cert_status, likely renamed certStatus", collapsed.Columns)
			}
			for _, want := range []string{`cert_status (field "cert_status")`, `likely renamed "cert_status" -> "certStatus"`, "rejected/" + names.Archive} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
			if got, want := files(t, dir), []string{"rejected/" + names.Archive}; !slices.Equal(got, want) {
				t.Errorf("day 2 holds %v, want only the rejected body %v", got, want)
			}

			opts.Guards.Force = true
			reader, mp, _, _ := newTelemetry()
			opts.Telemetry.MeterProvider = mp
			m, err := snapshot.Run(context.Background(), opts)
			if err != nil {
				t.Fatalf("forced: %v", err)
			}
			if !m.Forced || m.Stats.Columns["cert_status"].NonNullShare != 0 {
				t.Errorf("forced manifest: forced %v, cert_status %+v", m.Forced, m.Stats.Columns["cert_status"])
			}
			if i := slices.IndexFunc(m.Stats.UndeclaredFields, func(f spoc.FieldSeen) bool { return f.Name == "certStatus" }); i < 0 || m.Stats.UndeclaredFields[i].Count != 400 {
				t.Errorf("undeclared fields %+v, want certStatus 400 times", m.Stats.UndeclaredFields)
			}
			// The metrics say it too, under the dataset's names.
			metrics := points(t, reader)
			for name, want := range map[string]int64{
				snapshot.MetricName(cd.ds, snapshot.MetricUndeclaredFields) + "{field=certStatus}":                 400,
				snapshot.MetricName(cd.ds, snapshot.MetricMissingFields) + "{field=cert_status}":                   1,
				snapshot.MetricName(cd.ds, snapshot.MetricColumnFilled) + "{column=cert_status}":                   0,
				snapshot.MetricName(cd.ds, snapshot.MetricColumnFilled) + "{column=" + cd.ds.Columns[0].Name + "}": 1000,
			} {
				if got, ok := metrics[name]; !ok || got != want {
					t.Errorf("%s = %d (%v), want %d", name, got, ok, want)
				}
			}
		})
	}
}

// On a first day there is nothing to compare with, so the guard refuses
// a declared field that no record holds: the body of another list served
// at the URL (GM's at SPOC's), or a field renamed upstream before the
// list was ever published. The day publishes nothing, keeps its body
// under rejected/ and names the column and the field likely in its
// place; Force publishes it, and says so. A field there with nulls in
// every record, and every list's generated body, publish.
func TestFirstDayWithoutADeclaredField(t *testing.T) {
	type firstDay struct {
		name string
		ds   *spoc.Dataset
		body []byte
		// refused are the columns refused, each with the field likely
		// in its place; none: the day publishes.
		refused map[string]string
	}
	var tests []firstDay
	for _, cd := range contractDatasets() {
		tests = append(tests,
			firstDay{name: cd.ds.Name + " generated", ds: cd.ds, body: cd.body(t, 300, 1)},
			firstDay{name: cd.ds.Name + " cert_status renamed", ds: cd.ds, body: renamed(cd.body(t, 300, 1), "cert_status", "certStatus"),
				refused: map[string]string{"cert_status": "certStatus"}},
			firstDay{name: cd.ds.Name + " cert_status null in every record", ds: cd.ds, body: withNulls(t, cd.body(t, 300, 1), "cert_status", 1)},
		)
	}
	refs, _ := spoc.InGroup(spoc.References)
	for _, ds := range refs {
		tests = append(tests, firstDay{name: ds.Name + " generated", ds: ds, body: referenceBody(t, ds)})
	}
	// A field sent in a shape the column cannot hold, in every record,
	// publishes no value at all.
	tests = append(tests,
		firstDay{name: "states with state an object", ds: spoc.States, refused: map[string]string{"state": ""},
			body: fieldValue("state").ReplaceAllFunc(referenceBody(t, spoc.States), func(m []byte) []byte {
				return []byte(`"state":{"name":` + string(m[len(`"state":`):]) + `}`)
			})},
		firstDay{name: "spoc with cert_status an array", ds: spoc.SPOC, refused: map[string]string{"cert_status": ""},
			body: fieldValue("cert_status").ReplaceAll(generated(t, 300, 1), []byte(`"cert_status":["ACTIVE"]`))},
	)
	tests = append(tests,
		firstDay{name: "gm body at spoc", ds: spoc.SPOC, body: generatedGMBody(t, 300, 1), refused: map[string]string{"spoc_code": "gm_code"}},
		firstDay{name: "spoc body at gm", ds: spoc.GM, body: generated(t, 300, 1), refused: map[string]string{"gm_code": "spoc_code"}},
		// A record without an id is dropped: the field it alone holds is
		// in no row published.
		firstDay{name: "gm body at spoc, spoc_code only in a record without an id", ds: spoc.SPOC,
			body:    []byte(strings.Replace(string(generatedGMBody(t, 300, 1)), `"results":[`, `"results":[{"spoc_code":"K9"},`, 1)),
			refused: map[string]string{"spoc_code": "gm_code"}},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			store, _ := sink.NewLocal(out)
			opts := contractDay(t, contractDataset{ds: tt.ds}, store, nil, tt.body)
			dir := filepath.Join(out, tt.ds.Prefix, opts.Day.Format(snapshot.DateLayout))
			names := snapshot.NamesOf(tt.ds)
			m, err := snapshot.Run(context.Background(), opts)
			if tt.refused == nil {
				if err != nil || m.Forced {
					t.Fatalf("first day: %v (forced %v), want it published", err, m != nil && m.Forced)
				}
				return
			}
			var collapsed *snapshot.CollapsedError
			if !errors.Is(err, snapshot.ErrColumnCollapsed) || !errors.As(err, &collapsed) {
				t.Fatalf("first day: %v, want ErrColumnCollapsed", err)
			}
			got := map[string]string{}
			for _, c := range collapsed.Columns {
				got[c.Column] = c.LikelyRename
				if want := tt.refused[c.Column]; want != "" && !strings.Contains(err.Error(), fmt.Sprintf("likely renamed %q -> %q", c.Field, want)) {
					t.Errorf("the error does not name %s and %s: %v", c.Field, want, err)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%s (field %q)", c.Column, c.Field)) {
					t.Errorf("the error does not name %s: %v", c.Column, err)
				}
			}
			if !maps.Equal(got, tt.refused) {
				t.Errorf("refused %v, want %v", got, tt.refused)
			}
			if !strings.Contains(err.Error(), "rejected/"+names.Archive) {
				t.Errorf("the error does not say where the body is: %v", err)
			}
			if got, want := files(t, dir), []string{"rejected/" + names.Archive}; !slices.Equal(got, want) {
				t.Errorf("the day holds %v, want only the rejected body %v", got, want)
			}

			opts.Guards.Force = true
			m, err = snapshot.Run(context.Background(), opts)
			if err != nil {
				t.Fatalf("forced: %v", err)
			}
			if !m.Forced || m.Previous != nil {
				t.Errorf("forced manifest: forced %v, previous %+v", m.Forced, m.Previous)
			}
			// Each column refused is missing, or there with invalid
			// values only.
			for col := range tt.refused {
				field := tt.ds.Columns[slices.IndexFunc(tt.ds.Columns, func(c spoc.Column) bool { return c.Name == col })].JSON
				cs := m.Stats.Columns[col]
				if !slices.Contains(m.Stats.MissingFields, field) && (len(cs.Invalid) == 0 || cs.NonNullShare != 0) {
					t.Errorf("forced manifest: missing fields %v, %s %+v; want %s missing or its values invalid", m.Stats.MissingFields, col, cs, field)
				}
			}
		})
	}
}

// referenceBody is a generated body of a reference list, ds.
func referenceBody(t testing.TB, ds *spoc.Dataset) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := spoctest.Generate(&b, spoctest.GenOptions{Dataset: ds, Records: 100}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// With the guard turned off (CollapseBelowPercent 0), a first day
// publishes a body that lacks a declared field, and reports the field
// missing.
func TestFirstDayWithoutADeclaredFieldGuardOff(t *testing.T) {
	store, _ := sink.NewLocal(t.TempDir())
	opts := contractDay(t, contractDataset{ds: spoc.SPOC}, store, nil, generatedGMBody(t, 300, 1))
	opts.Guards.CollapseBelowPercent = 0
	m, err := snapshot.Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	if m.Forced || !slices.Equal(m.Stats.MissingFields, []string{"spoc_code"}) || m.Stats.UndeclaredFields[0].Name != "gm_code" {
		t.Errorf("first run: forced %v, undeclared %+v, missing %v", m.Forced, m.Stats.UndeclaredFields, m.Stats.MissingFields)
	}
}

// A field the dataset does not declare is published without it and
// reported: its name, how often, its JSON types. One that disappears is
// reported as missing. Neither fails the run by itself (a full column
// whose field goes collapses: TestRenamedFieldIsRefused).
func TestAddedAndMissingFieldsAreReported(t *testing.T) {
	for _, cd := range contractDatasets() {
		t.Run(cd.ds.Name, func(t *testing.T) {
			store, _ := sink.NewLocal(t.TempDir())
			day2 := cd.body(t, 300, 2)
			// Every record gets a new field, a number in some and a string
			// in others; lot_no goes.
			n := 0
			day2 = regexp.MustCompile(`"cert_status":`).ReplaceAllFunc(day2, func(m []byte) []byte {
				n++
				if n%3 == 0 {
					return []byte(`"hectare_band":"A",` + string(m))
				}
				return []byte(`"hectare_band":2,` + string(m))
			})
			day2 = fieldValue("lot_no").ReplaceAll(day2, []byte(`"x_removed":null`))
			day2 = []byte(strings.ReplaceAll(string(day2), `"x_removed":null,`, ``))
			if strings.Contains(string(day2), `"lot_no"`) || strings.Contains(string(day2), `x_removed`) {
				t.Fatal("the test body still has lot_no")
			}
			// lot_no was half empty yesterday: its going is reported, not
			// refused (from a full column it would be a collapse).
			opts := contractDay(t, cd, store, withNulls(t, cd.body(t, 300, 1), "lot_no", 0.5), day2)
			m, err := snapshot.Run(context.Background(), opts)
			if err != nil {
				t.Fatalf("day 2: %v", err)
			}
			want := []spoc.FieldSeen{{Name: "hectare_band", Count: 300, Types: []string{"number", "string"}}}
			if fmt.Sprint(m.Stats.UndeclaredFields) != fmt.Sprint(want) {
				t.Errorf("undeclared fields %+v, want %+v", m.Stats.UndeclaredFields, want)
			}
			if !slices.Equal(m.Stats.MissingFields, []string{"lot_no"}) || m.Stats.Columns["lot_no"].Present != 0 || m.Stats.Columns["cert_status"].Present != 300 {
				t.Errorf("missing fields %v, lot_no %+v; want lot_no only", m.Stats.MissingFields, m.Stats.Columns["lot_no"])
			}
			if m.Forced {
				t.Error("the day was forced")
			}
		})
	}
}

// Nulls that rise day after day but stay above the floor publish every
// day: the guard compares with the previous day, and refuses only a
// column that falls below it.
func TestGraduallyEmptyingColumnPublishes(t *testing.T) {
	for _, cd := range contractDatasets() {
		t.Run(cd.ds.Name, func(t *testing.T) {
			store, _ := sink.NewLocal(t.TempDir())
			for d, share := range []float64{0, 0.3, 0.6, 0.85} {
				opts := contractDay(t, cd, store, nil, withNulls(t, cd.body(t, 300, uint64(d+1)), "cert_status", share))
				opts.Day = day.AddDate(0, 0, d)
				m, err := snapshot.Run(context.Background(), opts)
				if err != nil {
					t.Fatalf("day %d (%.0f%% of cert_status null): %v", d+1, 100*share, err)
				}
				if got := m.Stats.Columns["cert_status"].NonNullShare; got > 1-share+0.01 || got < 1-share-0.05 {
					t.Errorf("day %d: cert_status non-null share %.3f, want about %.2f", d+1, got, 1-share)
				}
			}
		})
	}
}
