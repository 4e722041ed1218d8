package geo_test

import (
	"encoding/json"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/geo"
)

// TestChecksAreTheAccountsFields checks that the metric's checks are the
// manifest's fields, by name and value: a field added to Account and not
// to Checks, or named differently, fails.
func TestChecksAreTheAccountsFields(t *testing.T) {
	a := geo.Account{Plots: 1, WithPoint: 2, WithoutPoint: 3, OutsideMalaysia: 4, FewerDecimals: 5, SharingAPoint: 6, OverPolygonArea: 7}
	data, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]int64
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatal(err)
	}
	checks := a.Checks()
	if len(checks) != len(fields) {
		t.Errorf("%d checks, %d fields in %s", len(checks), len(fields), data)
	}
	for _, c := range checks {
		if v, ok := fields[c.Name]; !ok || v != c.Plots {
			t.Errorf("check %s = %d; the manifest's field is %d (present: %v)", c.Name, c.Plots, v, ok)
		}
	}
}
