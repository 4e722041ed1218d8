package spoc

import "testing"

// Every reference list is in the References group, with its records
// directly under data, an int32 key and a floor below the records the
// documentation lists for it.
func TestReferenceListsAreDeclared(t *testing.T) {
	in, _ := InGroup(References)
	documented := map[string]int64{"states": 16, "zones": 11}
	if len(in) != len(documented) {
		t.Errorf("the group holds %d lists, want %d", len(in), len(documented))
	}
	for _, ds := range in {
		n, ok := documented[ds.Name]
		if !ok || ds.RecordsPath() != "data" || ds.Columns[0].Kind != KindKey32 || ds.Floor >= n || ds.Floor < n/2 {
			t.Errorf("%s: records path %q, key %v, floor %d for %d documented records", ds.Name, ds.Records, ds.Columns[0].Kind, ds.Floor, n)
		}
	}
}
