package spoc

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// An OSH body decodes into the OSH schema by SPOC's rules; a body of one
// dataset given as the other fails clearly, naming where it looked.
func TestDatasetsDecodeTheirOwnBodies(t *testing.T) {
	osh := `{"status":true,"data":{"page":1,"page_size":10,"data":[` +
		`{"entity_smallholder_id":7,"entity_code":"ORS15721","entity_name":"FELDA X","mpob_no":null,"planted_area":"4.0000",` +
		`"certified_area":"3.5000","gps_coordinate_lat":"3.12345","gps_coordinate_long":"101.12345","name":"A BIN B","stateId":6,` +
		`"state":"PAHANG","daerahId":null,"daerah":null,"lot_no":"L1","cert_status":"ACTIVE","cert_no":"MYMS12195673",` +
		`"created_at":"2024-01-02T03:04:05.000Z","updated_at":"2024-01-02T11:04:05+08:00","track_id":"MTS0000014"}]}}`
	spoc := body(`{"entity_smallholder_id":1,"cert_status":"ACTIVE"}`)

	rows, st, err := decodeAll(t, strings.NewReader(osh), WithDataset(OSH))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"entity_smallholder_id": int64(7), "entity_code": "ORS15721", "mpob_no": nil, "planted_area": 4.0,
		"certified_area": 3.5, "gps_coordinate_lat": 3.12345, "state_id": int32(6), "daerah_id": nil, "cert_no": "MYMS12195673", "track_id": "MTS0000014"}
	for k, v := range want {
		if rows[0][k] != v {
			t.Errorf("%s = %v (%T), want %v", k, rows[0][k], rows[0][k], v)
		}
	}
	if len(rows[0]) != len(OSH.Columns) || st.RecordsByCertStatus["ACTIVE"] != 1 {
		t.Errorf("row %v, statuses %v", rows[0], st.RecordsByCertStatus)
	}
	if _, ok := rows[0]["mukim"]; ok {
		t.Error("an OSH row has a mukim column")
	}
	if c, u := rows[0]["created_at"], rows[0]["updated_at"]; c != u {
		t.Errorf("created_at %v, updated_at %v: the same instant", c, u)
	}

	for _, tc := range []struct {
		name, body string
		ds         *Dataset
		mention    string
	}{
		{"the SPOC body as OSH", spoc, OSH, "no data.data array, where the osh dataset has its records"},
		{"the OSH body as SPOC", osh, SPOC, "no data.results array, where the spoc dataset has its records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, _, err := decodeAll(t, strings.NewReader(tc.body), WithDataset(tc.ds))
			if !errors.Is(err, ErrNoResults) || !strings.Contains(err.Error(), tc.mention) || len(rows) != 0 {
				t.Errorf("%d rows, error %v: want ErrNoResults saying %q", len(rows), err, tc.mention)
			}
		})
	}
}

// gmExample is the record of the GM endpoint's public documentation
// (docs.jinlee.org/scrapers/MSPO/smallholders/group-manager), with
// coordinates of eight decimals and more certified than planted.
const gmExample = `{"entity_smallholder_id":77890,"entity_name":"Greenview Plantations Sdn Bhd","mpob_no":"840560001007",` +
	`"planted_area":"5.0700","certified_area":"5.2600","gps_coordinate_lat":"1.57191667","gps_coordinate_long":"103.98219444",` +
	`"name":"Greenview Plantations Sdn Bhd","stateId":1,"state":"Johor","daerahId":null,"daerah":null,"mukimId":null,"mukim":null,` +
	`"lot_no":"9","cert_status":"DELAYED","zoneId":5,"zone":"Zon Selatan 2","cert_no":"M001C","gm_code":"GRM1086921",` +
	`"created_at":"2025-06-03T04:46:41.581Z","updated_at":"2024-07-24T01:17:06.101Z","track_id":"OPMC205399",` +
	`"record_status":"NO CHANGE","deleted":false}`

// The documented GM record decodes by SPOC's rules into the GM schema,
// gm_code where SPOC has spoc_code: the coordinates keep their eight
// decimals (the float64 prints back as the text sent), the certified
// area above the planted one is kept as sent, and every field is
// declared.
func TestGMDecodesTheDocumentedRecord(t *testing.T) {
	rows, st, err := decodeAll(t, strings.NewReader(body(gmExample)), WithDataset(GM))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || len(rows[0]) != len(GM.Columns) {
		t.Fatalf("rows %v", rows)
	}
	row := rows[0]
	want := map[string]any{"entity_smallholder_id": int64(77890), "mpob_no": "840560001007", "planted_area": 5.07, "certified_area": 5.26,
		"gps_coordinate_lat": 1.57191667, "gps_coordinate_long": 103.98219444, "state_id": int32(1), "daerah_id": nil, "mukim": nil,
		"zone_id": int32(5), "gm_code": "GRM1086921", "cert_no": "M001C", "cert_status": "DELAYED", "deleted": false,
		"updated_at": ts("2024-07-24T01:17:06.101Z")}
	for k, v := range want {
		if row[k] != v {
			t.Errorf("%s = %v (%T), want %v", k, row[k], row[k], v)
		}
	}
	for col, text := range map[string]string{"gps_coordinate_lat": "1.57191667", "gps_coordinate_long": "103.98219444"} {
		if got := strconv.FormatFloat(row[col].(float64), 'f', 8, 64); got != text {
			t.Errorf("%s prints back as %s, sent %s", col, got, text)
		}
	}
	if _, ok := row["spoc_code"]; ok {
		t.Error("a GM row has a spoc_code column")
	}
	if len(st.UndeclaredFields) != 0 || st.RecordsByCertStatus["DELAYED"] != 1 || st.Columns["certified_area"].Nulls != 0 {
		t.Errorf("undeclared %v, statuses %v, certified_area %+v", st.UndeclaredFields, st.RecordsByCertStatus, st.Columns["certified_area"])
	}
	// A geolocation string, should the list send one, is no field of GM's.
	withGeo := strings.Replace(gmExample, `"name":`, `"geolocation":"1.57191667, 103.98219444","name":`, 1)
	if _, st, err := decodeAll(t, strings.NewReader(body(withGeo)), WithDataset(GM)); err != nil || len(st.UndeclaredFields) != 1 || st.UndeclaredFields[0].Name != "geolocation" {
		t.Errorf("geolocation in a GM record: undeclared %+v, error %v", st.UndeclaredFields, err)
	}
}

// NewDataset refuses a dataset the decoder could not take.
func TestNewDatasetChecks(t *testing.T) {
	key := Column{JSON: "id", Name: "id", Kind: KindKey}
	for _, tc := range []struct {
		name string
		d    Dataset
		want string
	}{
		{"no key first", Dataset{Name: "x", Object: "x", Records: []string{"a", "b"}, Floor: 1, Columns: []Column{{JSON: "n", Name: "n"}, key}}, "the first column must be the key"},
		{"a second key", Dataset{Name: "x", Object: "x", Records: []string{"a", "b"}, Floor: 1, Columns: []Column{key, {JSON: "k", Name: "k", Kind: KindKey}}}, "only the first column is the key"},
		{"a repeated name", Dataset{Name: "x", Object: "x", Records: []string{"a", "b"}, Floor: 1, Columns: []Column{key, {JSON: "a", Name: "id"}}}, "repeated name"},
		{"one field, two columns", Dataset{Name: "x", Object: "x", Records: []string{"a", "b"}, Floor: 1, Columns: []Column{key, {JSON: "id", Name: "id2"}}}, "feeds two columns"},
		{"two status columns", Dataset{Name: "x", Object: "x", Records: []string{"a", "b"}, Floor: 1, Columns: []Column{key, {JSON: "s", Name: "s", Role: RoleStatus}, {JSON: "t", Name: "t", Role: RoleStatus}}}, "two columns with one role"},
		{"an update time that is text", Dataset{Name: "x", Object: "x", Records: []string{"a", "b"}, Floor: 1, Columns: []Column{key, {JSON: "u", Name: "u", Role: RoleUpdateTime}}}, "its role needs another kind"},
		{"two certified areas", Dataset{Name: "x", Object: "x", Records: []string{"a", "b"}, Floor: 1, Columns: []Column{key, {JSON: "a", Name: "a", Kind: KindFloat, Role: RoleCertifiedArea}, {JSON: "b", Name: "b", Kind: KindFloat, Role: RoleCertifiedArea}}}, "two columns with one role"},
		{"no records path", Dataset{Name: "x", Object: "x", Columns: []Column{key}}, "records path"},
		{"a bool dictionary", Dataset{Name: "x", Object: "x", Records: []string{"a", "b"}, Floor: 1, Columns: []Column{key, {JSON: "b", Name: "b", Kind: KindBool, Dictionary: true}}}, "never dictionary-encoded"},
		{"a dropped field that is a column's", Dataset{Name: "x", Object: "x", Records: []string{"a", "b"}, Floor: 1, Columns: []Column{key}, Dropped: []string{"id"}}, "declared twice"},
		{"no floor", Dataset{Name: "x", Object: "x", Records: []string{"a", "b"}, Columns: []Column{key}}, "a floor of at least one record"},
		{"a records path three keys deep", Dataset{Name: "x", Object: "x", Records: []string{"a", "b", "c"}, Floor: 1, Columns: []Column{key}}, "one or two"},
		{"an empty key in the records path", Dataset{Name: "x", Object: "x", Records: []string{"a", ""}, Floor: 1, Columns: []Column{key}}, "records path"},
		{"an int32 key after the key", Dataset{Name: "x", Object: "x", Records: []string{"a"}, Floor: 1, Columns: []Column{key, {JSON: "k", Name: "k", Kind: KindKey32}}}, "only the first column is the key"},
		{"an undeclared group", Dataset{Name: "x", Object: "x", Records: []string{"a", "b"}, Floor: 1, Columns: []Column{key}, Group: "refs"}, `group "refs" is not declared`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewDataset(tc.d); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewDataset: %v, want an error saying %q", err, tc.want)
			}
		})
	}
	// Every field of a declared dataset is found, and nothing else.
	for _, ds := range Datasets() {
		for _, c := range ds.Columns {
			if col, ok := ds.column([]byte(c.JSON)); !ok || ds.Columns[col].Name != c.Name {
				t.Errorf("%s: field %q maps to %d, %v", ds.Name, c.JSON, col, ok)
			}
		}
		for _, k := range []string{"entity_name_", "x", "gps_coordinate_lag", "stateid"} {
			if _, known := ds.column([]byte(k)); known {
				t.Errorf("%s: undeclared field %q found", ds.Name, k)
			}
		}
		// A dropped field is known, and has no column.
		for _, k := range ds.Dropped {
			if col, known := ds.column([]byte(k)); !known || col != dropped {
				t.Errorf("%s: dropped field %q maps to %d, %v", ds.Name, k, col, known)
			}
		}
	}
}

// The lookup finds each declared field and nothing that differs from one
// by a byte, a byte more or a byte less, at any length.
func TestFieldLookupNearMisses(t *testing.T) {
	for _, ds := range Datasets() {
		for _, c := range ds.Columns {
			name := []byte(c.JSON)
			if col, known := ds.column(name); !known || ds.Columns[col].JSON != c.JSON {
				t.Errorf("%s: %q not found", ds.Name, name)
			}
			for i := range name {
				for _, b := range []byte{name[i] ^ 1, name[i] ^ 0x80, 0} {
					miss := append([]byte(nil), name...)
					miss[i] = b
					if col, known := ds.column(miss); known && ds.Columns[max(col, 0)].JSON != string(miss) {
						t.Errorf("%s: %q found as %q", ds.Name, miss, ds.Columns[col].JSON)
					}
				}
			}
			for _, miss := range [][]byte{name[:len(name)-1], append(append([]byte(nil), name...), 'x'), append([]byte{'x'}, name[1:]...)} {
				if col, known := ds.column(miss); known && (col < 0 || ds.Columns[col].JSON != string(miss)) {
					t.Errorf("%s: %q found as column %d", ds.Name, miss, col)
				}
			}
		}
	}
	// Every length up to the longest a dataset may declare.
	for n := 1; n <= maxFieldLength; n++ {
		name := make([]byte, n)
		for i := range name {
			name[i] = byte('a' + (i*7+n)%26)
		}
		e := newFieldEntry(string(name), 3)
		if !e.matches(name) {
			t.Errorf("length %d: the name does not match itself", n)
		}
		for i := range name {
			miss := append([]byte(nil), name...)
			miss[i] ^= 0x20
			if e.matches(miss) {
				t.Errorf("length %d: %q matches %q", n, miss, name)
			}
		}
	}
}

// column maps a JSON field name to its column as the decoder's lookup
// does, dropped (-1) for a Dropped field; known is false for a field the
// dataset does not declare.
func (d *Dataset) column(key []byte) (col int, known bool) {
	if slot, ok := d.slot(key); ok {
		return d.lookup[slot].col, true
	}
	return 0, false
}

// Each list gives its roles to the columns the statistics and the change
// table read; OSH has no soft-delete flag, and no column has RoleNone as
// a role.
func TestColumnWithRole(t *testing.T) {
	for _, ds := range []*Dataset{SPOC, OSH, GM} {
		for role, want := range map[Role]string{RoleLicence: "mpob_no", RoleStatus: "cert_status", RoleCertifiedArea: "certified_area",
			RoleUpdateTime: "updated_at", RoleDeleted: map[*Dataset]string{SPOC: "deleted", OSH: "", GM: "deleted"}[ds], RoleNone: ""} {
			c, ok := ds.ColumnWithRole(role)
			if ok != (want != "") || c.Name != want {
				t.Errorf("%s: role %d is column %q (%v), want %q", ds.Name, role, c.Name, ok, want)
			}
		}
	}
}

// A group is declared before any dataset is in it, so that naming it
// selects what it holds, none yet included; no group has a dataset's
// name, and a dataset is in the group it declares.
func TestGroups(t *testing.T) {
	if !slices.Contains(Groups(), References) {
		t.Errorf("the groups %v do not include %q", Groups(), References)
	}
	for _, g := range Groups() {
		if _, clash := Datasets()[g]; clash {
			t.Errorf("group %q has a dataset's name", g)
		}
		in, ok := InGroup(g)
		if !ok {
			t.Errorf("InGroup(%q) does not know a declared group", g)
		}
		if !slices.IsSortedFunc(in, func(a, b *Dataset) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("group %q: not sorted by name", g)
		}
		for _, ds := range in {
			if ds.Group != g {
				t.Errorf("group %q holds %s, of group %q", g, ds.Name, ds.Group)
			}
		}
		for _, ds := range Datasets() {
			if ds.Group == g && !slices.Contains(in, ds) {
				t.Errorf("group %q leaves out %s", g, ds.Name)
			}
		}
	}
	if in, ok := InGroup("spoc"); ok || in != nil {
		t.Errorf("InGroup(spoc) = %v, %v: a dataset is no group", in, ok)
	}
}
