package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
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

// The first run has nothing to compare with: a renamed field publishes
// (and is reported).
func TestRenamedFieldOnTheFirstRunPublishes(t *testing.T) {
	for _, cd := range contractDatasets() {
		t.Run(cd.ds.Name, func(t *testing.T) {
			store, _ := sink.NewLocal(t.TempDir())
			opts := contractDay(t, cd, store, nil, renamed(cd.body(t, 300, 1), "cert_status", "certStatus"))
			m, err := snapshot.Run(context.Background(), opts)
			if err != nil {
				t.Fatalf("first run: %v", err)
			}
			if m.Forced || len(m.Stats.UndeclaredFields) != 1 || m.Stats.UndeclaredFields[0].Name != "certStatus" || !slices.Contains(m.Stats.MissingFields, "cert_status") {
				t.Errorf("first run: forced %v, undeclared %+v, missing %v", m.Forced, m.Stats.UndeclaredFields, m.Stats.MissingFields)
			}
		})
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
