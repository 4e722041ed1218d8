package spoc

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestDuplicateCounter(t *testing.T) {
	for _, tc := range []struct {
		keys             []uint64
		repeats, several int64
	}{
		{nil, 0, 0},
		{[]uint64{7}, 0, 0},
		{[]uint64{3, 1, 2}, 0, 0},
		{[]uint64{2, 1, 2}, 1, 1},
		{[]uint64{3, 1, 3, 2, 3, 2}, 3, 2},
		{[]uint64{5, 5, 5, 5}, 3, 1},
		{manyKeys(3*duplicateChunk+5, 1000), 3*duplicateChunk + 5 - 1000, 1000},
	} {
		var d duplicateCounter
		for i, k := range tc.keys {
			d.add(k)
			if i == 1 {
				d.counts() // a look half-way must not change the result
			}
		}
		if r, s := d.counts(); r != tc.repeats || s != tc.several {
			t.Errorf("%v: repeats %d, several %d; want %d, %d", tc.keys, r, s, tc.repeats, tc.several)
		}
	}
}

// manyKeys is n keys over distinct values, each value at least twice,
// spread over several chunks.
func manyKeys(n, distinct int) []uint64 {
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = uint64(i%distinct) * 0x9E3779B97F4A7C15
	}
	return keys
}

// The schema contract's figures: the fields a body has that the dataset
// does not declare (with their count and JSON types, a dropped field not
// among them), the declared fields it lacks, and each column's presence
// and share of values; the undeclared names are bounded in number and
// length whatever the body holds.
func TestSchemaContractStats(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	for _, tc := range []struct {
		name       string
		records    []string
		undeclared string // fmt of Stats.UndeclaredFields
		missing    []string
	}{
		{"declared fields only", []string{`{"entity_smallholder_id":1,"cert_status":"ACTIVE","geolocation":"1,2"}`}, "[]", nil},
		{"a new field, two types", []string{`{"entity_smallholder_id":1,"band":2}`, `{"entity_smallholder_id":2,"band":"A"}`, `{"entity_smallholder_id":3,"band":null}`},
			"[{band 3 [null number string]}]", nil},
		{"object and array values", []string{`{"entity_smallholder_id":1,"extra":{"a":[1]},"more":[{}]}`}, "[{extra 1 [object]} {more 1 [array]}]", nil},
		{"a renamed field", []string{`{"entity_smallholder_id":1,"certStatus":"ACTIVE"}`, `{"entity_smallholder_id":2,"certStatus":"EXPIRED"}`}, "[{certStatus 2 [string]}]", nil},
		{"an empty name is no column's", []string{`{"":7,"entity_smallholder_id":1}`, `{"entity_smallholder_id":2,"":8}`}, "[{ 2 [number]}]", nil},
		{"a long name is cut", []string{`{"entity_smallholder_id":1,"` + long + `":1}`}, "[{" + strings.Repeat("é", 32) + "… 1 [number]}]", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := decodeRecords(t, tc.records)
			if got := fmt.Sprint(st.UndeclaredFields); got != tc.undeclared {
				t.Errorf("undeclared %s, want %s", got, tc.undeclared)
			}
		})
	}

	// Presence, shares and missing fields.
	st := decodeRecords(t, []string{`{"entity_smallholder_id":1,"cert_status":"ACTIVE","name":null}`, `{"entity_smallholder_id":2,"cert_status":"ACTIVE"}`,
		`{"entity_smallholder_id":3,"cert_status":null}`, `{"entity_smallholder_id":4}`})
	if c := st.Columns["cert_status"]; c.Present != 3 || c.NonNullShare != 0.5 {
		t.Errorf("cert_status %+v, want present 3, share 0.5", c)
	}
	if c := st.Columns["name"]; c.Present != 1 || c.NonNullShare != 0 {
		t.Errorf("name %+v, want present 1, share 0", c)
	}
	var wantMissing []string
	for _, c := range SPOC.Columns {
		if c.JSON != "entity_smallholder_id" && c.JSON != "cert_status" && c.JSON != "name" {
			wantMissing = append(wantMissing, c.JSON)
		}
	}
	if !slices.Equal(st.MissingFields, wantMissing) {
		t.Errorf("missing %v, want %v", st.MissingFields, wantMissing)
	}

	// Presence is among the rows written: a field that only a dropped
	// record holds (no id, a null id) is in no row of the table, so it
	// is missing.
	st = decodeRecords(t, []string{`{"entity_smallholder_id":1,"cert_status":"ACTIVE"}`, `{"name":"X","cert_status":"ACTIVE"}`,
		`{"entity_smallholder_id":null,"lot_no":"L1"}`})
	if c := st.Columns["cert_status"]; c.Present != 1 {
		t.Errorf("cert_status %+v, want present 1 (one row written)", c)
	}
	for _, field := range []string{"name", "lot_no"} {
		if c := st.Columns[field]; c.Present != 0 || !slices.Contains(st.MissingFields, field) {
			t.Errorf("%s %+v, missing %v; want present 0 and missing: only a dropped record holds it", field, c, st.MissingFields)
		}
	}

	// A hostile body: many distinct names, each repeated.
	var recs []string
	for i := range 5000 {
		recs = append(recs, fmt.Sprintf(`{"entity_smallholder_id":%d,"f%d":1,"g%d":"x"}`, i, i, i%3))
	}
	st = decodeRecords(t, recs)
	var total int64
	for _, f := range st.UndeclaredFields {
		total += f.Count
		if len(f.Name) > maxFieldNameBytes+len("…") {
			t.Errorf("name of %d bytes kept", len(f.Name))
		}
	}
	if len(st.UndeclaredFields) > maxUndeclaredFields+1 || total != 10000 || !slices.ContainsFunc(st.UndeclaredFields, func(f FieldSeen) bool { return f.Name == OtherField }) {
		t.Errorf("%d undeclared names, %d occurrences; want at most %d names, 10000 occurrences, the rest as %s", len(st.UndeclaredFields), total, maxUndeclaredFields+1, OtherField)
	}
	if st.UndeclaredFields[0].Name != "g0" && st.UndeclaredFields[0].Name != OtherField {
		t.Errorf("most frequent first: %+v", st.UndeclaredFields[:3])
	}
}

// decodeRecords decodes a SPOC body of records and returns its Stats.
func decodeRecords(t *testing.T, records []string) Stats {
	t.Helper()
	body := `{"data":{"results":[` + strings.Join(records, ",") + `]}}`
	dec := NewDecoder(strings.NewReader(body))
	defer dec.Release()
	for dec.Next() {
	}
	if err := dec.Err(); err != nil {
		t.Fatal(err)
	}
	return dec.Stats()
}
