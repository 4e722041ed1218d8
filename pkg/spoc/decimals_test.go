package spoc

import (
	"strconv"
	"strings"
	"testing"
)

// TestCoordinateDecimals checks the decimal places the decoder counts for
// each written row, as the body wrote its coordinates: numbers as their
// text, strings as their contents, the fewer of the two, and 0 for a row
// without both coordinates valid.
func TestCoordinateDecimals(t *testing.T) {
	cases := []struct {
		name     string
		lat, lon string // JSON values
		want     uint8
	}{
		{"eight and six", `"1.57191667"`, `"103.982194"`, 6},
		{"numbers as their text", `2.125`, `101.5`, 1},
		{"trailing zeros count", `"3.100000"`, `"101.700000"`, 6},
		{"integers", `3`, `"101"`, 0},
		{"negative zero", `-0`, `"101.123456"`, 0},
		{"zero zero", `0`, `0`, 0},
		{"an exponent moves the point", `5.5e-3`, `"101.1234567"`, 4},
		{"a positive exponent removes places", `1.2345e1`, `"101.1234567"`, 3},
		{"long string", `"5.5510600000000000000001"`, `"100.3303840000000000000000001"`, 22},
		{"spaces around", `" 5.123456 "`, `"100.1234567"`, 6},
		{"past 255", `"1.` + strings.Repeat("1", 300) + `"`, `"100.` + strings.Repeat("2", 400) + `"`, 255},
		{"latitude out of range", `95.123456`, `"101.123456"`, 0},
		{"longitude overflows", `"3.123456"`, `1e400`, 0},
		{"latitude null", `null`, `"101.123456"`, 0},
		{"longitude not a number", `"3.123456"`, `"east"`, 0},
	}
	var b strings.Builder
	b.WriteString(`{"data":{"results":[`)
	for i, c := range cases {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"entity_smallholder_id":` + strconv.Itoa(i+1) + `,"gps_coordinate_lat":` + c.lat + `,"gps_coordinate_long":` + c.lon + `}`)
	}
	b.WriteString(`]}}`)
	dec := NewDecoder(strings.NewReader(b.String()))
	defer dec.Release()
	rows := 0
	for dec.Next() {
		rows += int(dec.RecordBatch().NumRows())
	}
	if err := dec.Err(); err != nil {
		t.Fatal(err)
	}
	got := dec.CoordinateDecimals()
	if rows != len(cases) || len(got) != rows {
		t.Fatalf("%d rows and %d decimals, want %d of each", rows, len(got), len(cases))
	}
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("%s (lat %s, long %.40s): %d decimals, want %d", c.name, c.lat, c.lon, got[i], c.want)
		}
	}
}

// TestCoordinateDecimalsOnlyWithAPoint checks that a dataset without a
// point counts none.
func TestCoordinateDecimalsOnlyWithAPoint(t *testing.T) {
	dec := NewDecoder(strings.NewReader(`{"data":[{"stateId":1,"state":"Johor"}]}`), WithDataset(States))
	defer dec.Release()
	for dec.Next() {
	}
	if err := dec.Err(); err != nil {
		t.Fatal(err)
	}
	if got := dec.CoordinateDecimals(); got != nil {
		t.Errorf("states: decimals %v, want none", got)
	}
}
