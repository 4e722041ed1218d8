package spoc

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
)

// decodeAll decodes body completely and returns every row as a map from
// column name to Go value (nil for null), the stats and the error. It also
// checks, for every batch, that the arrays are valid and match Schema, and
// that no Arrow memory leaks.
func decodeAll(t testing.TB, r io.Reader, opts ...DecoderOption) ([]map[string]any, Stats, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dec := NewDecoder(r, append([]DecoderOption{WithAllocator(mem)}, opts...)...)
	defer dec.Release()
	var rows []map[string]any
	for dec.Next() {
		rec := dec.RecordBatch()
		checkBatch(t, rec, dec.Schema())
		for i := range int(rec.NumRows()) {
			row := make(map[string]any, len(rec.Columns()))
			for c, col := range rec.Columns() {
				row[dec.Schema().Field(c).Name] = parquettest.CellValue(col, i)
			}
			rows = append(rows, row)
		}
	}
	return rows, dec.Stats(), dec.Err()
}

// checkBatch fails the test unless rec has schema (the dataset's),
// columns of the batch's length that pass Arrow's full validation, and no
// row without an id.
func checkBatch(t testing.TB, rec arrow.RecordBatch, schema *arrow.Schema) {
	t.Helper()
	if !rec.Schema().Equal(schema) {
		t.Fatalf("batch schema %s, want %s", rec.Schema(), schema)
	}
	for c, col := range rec.Columns() {
		if col.Len() != int(rec.NumRows()) {
			t.Fatalf("column %d has %d rows, batch %d", c, col.Len(), rec.NumRows())
		}
		if v, ok := col.(interface{ ValidateFull() error }); ok {
			if err := v.ValidateFull(); err != nil {
				t.Fatalf("column %d invalid: %v", c, err)
			}
		}
	}
	if rec.Column(keyColumn).NullN() != 0 {
		t.Fatal("a row without id was written")
	}
}

func body(records ...string) string {
	return `{"data":{"page_size":"10","results":[` + strings.Join(records, ",") + `]}}`
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestConversionRules(t *testing.T) {
	tests := []struct {
		name   string
		field  string // upstream JSON key
		value  string // raw JSON value
		column string // tidy column
		want   any    // nil for null
		reason string // invalid-value reason counted, "" for none
	}{
		{"area as string with four decimals", "planted_area", `"2.4300"`, "planted_area", 2.43, ""},
		{"area as JSON number", "certified_area", `2.43`, "certified_area", 2.43, ""},
		{"coordinate with surrounding spaces", "gps_coordinate_lat", `" 5.551060 "`, "gps_coordinate_lat", 5.55106, ""},
		{"coordinate as JSON number", "gps_coordinate_long", `101.920321`, "gps_coordinate_long", 101.920321, ""},
		{"negative coordinate", "gps_coordinate_long", `"-0.5"`, "gps_coordinate_long", -0.5, ""},
		{"exponent in a string", "planted_area", `"1.5e1"`, "planted_area", 15.0, ""},
		{"null area is null, not invalid", "planted_area", `null`, "planted_area", nil, ""},
		{"empty string area is invalid", "planted_area", `""`, "planted_area", nil, ReasonEmpty},
		{"spaces only is empty", "planted_area", `"   "`, "planted_area", nil, ReasonEmpty},
		{"dash is not a number", "gps_coordinate_lat", `"-"`, "gps_coordinate_lat", nil, ReasonNotANumber},
		{"N/A is not a number", "gps_coordinate_long", `"N/A"`, "gps_coordinate_long", nil, ReasonNotANumber},
		{"NaN is not a number", "planted_area", `"NaN"`, "planted_area", nil, ReasonNotANumber},
		{"Inf is not a number", "planted_area", `"Inf"`, "planted_area", nil, ReasonNotANumber},
		{"hex float is not a number", "planted_area", `"0x1p3"`, "planted_area", nil, ReasonNotANumber},
		{"two numbers in one string", "planted_area", `"1.0 2.0"`, "planted_area", nil, ReasonNotANumber},
		{"area overflowing float64", "planted_area", `"1e400"`, "planted_area", nil, ReasonOutOfRange},
		{"latitude above 90", "gps_coordinate_lat", `"91.5"`, "gps_coordinate_lat", nil, ReasonOutOfRange},
		{"latitude below -90", "gps_coordinate_lat", `-90.0001`, "gps_coordinate_lat", nil, ReasonOutOfRange},
		{"latitude on the bound", "gps_coordinate_lat", `"-90"`, "gps_coordinate_lat", -90.0, ""},
		{"longitude above 180", "gps_coordinate_long", `"1019.20321"`, "gps_coordinate_long", nil, ReasonOutOfRange},
		{"longitude on the bound", "gps_coordinate_long", `180`, "gps_coordinate_long", 180.0, ""},
		{"longitude as object", "gps_coordinate_long", `{"x":1}`, "gps_coordinate_long", nil, ReasonWrongType},
		{"area as boolean", "planted_area", `true`, "planted_area", nil, ReasonWrongType},

		{"id as integer", "stateId", `3`, "state_id", int32(3), ""},
		{"id as integer string", "stateId", `"3"`, "state_id", int32(3), ""},
		{"id string with spaces", "zoneId", `" 11 "`, "zone_id", int32(11), ""},
		{"null district id", "daerahId", `null`, "daerah_id", nil, ""},
		{"id with a fraction", "mukimId", `3.5`, "mukim_id", nil, ReasonNotAnInteger},
		{"id with an exponent", "mukimId", `3e2`, "mukim_id", nil, ReasonNotAnInteger},
		{"id as text", "zoneId", `"Zon 3"`, "zone_id", nil, ReasonNotAnInteger},
		{"id beyond int32", "stateId", `"3000000000"`, "state_id", nil, ReasonOutOfRange},
		{"empty id string", "stateId", `""`, "state_id", nil, ReasonEmpty},
		{"id as array", "stateId", `[3]`, "state_id", nil, ReasonWrongType},

		{"timestamp with Z and milliseconds", "created_at", `"2025-06-03T04:46:41.581Z"`, "created_at", ts("2025-06-03T04:46:41.581Z"), ""},
		{"timestamp without fraction", "updated_at", `"2024-07-24T01:17:06Z"`, "updated_at", ts("2024-07-24T01:17:06Z"), ""},
		{"timestamp with positive offset is stored in UTC", "created_at", `"2025-06-03T12:46:41.5+08:00"`, "created_at", ts("2025-06-03T04:46:41.5Z"), ""},
		{"timestamp with negative offset", "created_at", `"2025-06-02T23:46:41-05:00"`, "created_at", ts("2025-06-03T04:46:41Z"), ""},
		{"timestamp crossing the year in UTC", "created_at", `"2025-01-01T07:59:59+08:00"`, "created_at", ts("2024-12-31T23:59:59Z"), ""},
		{"timestamp lower-case t and z", "created_at", `"2025-06-03t04:46:41z"`, "created_at", ts("2025-06-03T04:46:41Z"), ""},
		{"nanoseconds truncated to microseconds", "created_at", `"2025-06-03T04:46:41.123456789Z"`, "created_at", ts("2025-06-03T04:46:41.123456Z"), ""},
		{"leap day", "created_at", `"2024-02-29T00:00:00Z"`, "created_at", ts("2024-02-29T00:00:00Z"), ""},
		{"timestamp without zone", "created_at", `"2025-06-03T04:46:41"`, "created_at", nil, ReasonBadTimestamp},
		{"date only", "created_at", `"2025-06-03"`, "created_at", nil, ReasonBadTimestamp},
		{"space instead of T", "created_at", `"2025-06-03 04:46:41Z"`, "created_at", nil, ReasonBadTimestamp},
		{"February 30", "created_at", `"2025-02-30T00:00:00Z"`, "created_at", nil, ReasonBadTimestamp},
		{"February 29 of a common year", "created_at", `"2025-02-29T00:00:00Z"`, "created_at", nil, ReasonBadTimestamp},
		{"hour 24", "created_at", `"2025-06-03T24:00:00Z"`, "created_at", nil, ReasonBadTimestamp},
		{"dot without digits", "created_at", `"2025-06-03T04:46:41.Z"`, "created_at", nil, ReasonBadTimestamp},
		{"offset without colon", "created_at", `"2025-06-03T04:46:41+0800"`, "created_at", nil, ReasonBadTimestamp},
		{"timestamp as number", "created_at", `1717390000`, "created_at", nil, ReasonWrongType},
		{"empty timestamp", "updated_at", `""`, "updated_at", nil, ReasonEmpty},
		{"null timestamp", "updated_at", `null`, "updated_at", nil, ""},

		{"deleted false", "deleted", `false`, "deleted", false, ""},
		{"deleted true", "deleted", `true`, "deleted", true, ""},
		{"deleted as string", "deleted", `"TRUE"`, "deleted", true, ""},
		{"deleted as number", "deleted", `1`, "deleted", nil, ReasonBadBoolean},
		{"deleted as other text", "deleted", `"yes"`, "deleted", nil, ReasonBadBoolean},

		{"string kept exactly", "name", `"ROSNANI BINTI IBRAHIM"`, "name", "ROSNANI BINTI IBRAHIM", ""},
		{"escapes decoded", "name", `"A \"B\"\\C\/D\n\t\u00e9"`, "name", "A \"B\"\\C/D\n\té", ""},
		{"raw Unicode kept", "entity_name", `"KOPERASI PEKEBUN 棕榈 😀"`, "entity_name", "KOPERASI PEKEBUN 棕榈 😀", ""},
		{"surrogate pair escape", "name", `"\ud83d\ude00"`, "name", "😀", ""},
		{"lone high surrogate replaced", "name", `"\ud83d x"`, "name", "\ufffd x", ""},
		{"lone low surrogate replaced", "name", `"\ude00"`, "name", "\ufffd", ""},
		{"high surrogate then other escape", "name", `"\ud83d\n"`, "name", "\ufffd\n", ""},
		{"two high surrogates", "name", `"\ud83d\ud83d\ude00"`, "name", "\ufffd😀", ""},
		{"invalid UTF-8 replaced", "name", "\"a\xffb\"", "name", "a\ufffdb", ""},
		{"leading zeros kept", "mpob_no", `"012345678901"`, "mpob_no", "012345678901", ""},
		{"spaces in strings kept", "lot_no", `" 14165 "`, "lot_no", " 14165 ", ""},
		{"number in a string column keeps its text", "lot_no", `14165.50`, "lot_no", "14165.50", ""},
		{"boolean in a string column", "record_status", `true`, "record_status", "true", ""},
		{"empty string kept as empty", "daerah", `""`, "daerah", "", ""},
		{"null string", "mukim", `null`, "mukim", nil, ""},
		{"string column as object", "state", `{"id":3}`, "state", nil, ReasonWrongType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, stats, err := decodeAll(t, strings.NewReader(body(`{"entity_smallholder_id":1,"`+tt.field+`":`+tt.value+`}`)))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 {
				t.Fatalf("got %d rows, want 1", len(rows))
			}
			got := rows[0][tt.column]
			if !equalValue(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.column, got, tt.want)
			}
			cs := stats.Columns[tt.column]
			wantInvalid := map[string]int64(nil)
			if tt.reason != "" {
				wantInvalid = map[string]int64{tt.reason: 1}
			}
			if fmt.Sprint(cs.Invalid) != fmt.Sprint(wantInvalid) {
				t.Errorf("invalid values of %s = %v, want %v", tt.column, cs.Invalid, wantInvalid)
			}
			wantNulls := int64(0)
			if tt.want == nil {
				wantNulls = 1
			}
			if cs.Nulls != wantNulls {
				t.Errorf("nulls of %s = %d, want %d", tt.column, cs.Nulls, wantNulls)
			}
			if stats.InvalidValues() != int64(len(wantInvalid)) {
				t.Errorf("invalid values in all = %d, want %d", stats.InvalidValues(), len(wantInvalid))
			}
		})
	}
}

func equalValue(got, want any) bool {
	switch w := want.(type) {
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w)
	case float64:
		g, ok := got.(float64)
		return ok && (g == w || math.Abs(g-w) < 1e-12*math.Abs(w))
	}
	return got == want
}

func TestRecordsWithoutUsableIDAreDropped(t *testing.T) {
	tests := []struct {
		name    string
		element string
		reason  string
	}{
		{"missing id", `{"name":"A"}`, DropMissingID},
		{"null id", `{"entity_smallholder_id":null}`, DropNullID},
		{"empty id", `{"entity_smallholder_id":""}`, DropInvalidID},
		{"id with a fraction", `{"entity_smallholder_id":1.5}`, DropInvalidID},
		{"id as text", `{"entity_smallholder_id":"A1"}`, DropInvalidID},
		{"id beyond int64", `{"entity_smallholder_id":99999999999999999999}`, DropInvalidID},
		{"id as object", `{"entity_smallholder_id":{}}`, DropInvalidID},
		{"element is null", `null`, DropNotAnObject},
		{"element is a number", `42`, DropNotAnObject},
		{"element is an array", `[{"entity_smallholder_id":1}]`, DropNotAnObject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, stats, err := decodeAll(t, strings.NewReader(body(`{"entity_smallholder_id":"7","name":"kept"}`, tt.element)))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[0]["entity_smallholder_id"] != int64(7) {
				t.Fatalf("rows = %v, want only the record with id 7", rows)
			}
			want := Stats{RecordsRead: 2, RecordsWritten: 1, RecordsDropped: 1}
			if stats.RecordsRead != want.RecordsRead || stats.RecordsWritten != want.RecordsWritten || stats.RecordsDropped != want.RecordsDropped {
				t.Errorf("read/written/dropped = %d/%d/%d, want 2/1/1", stats.RecordsRead, stats.RecordsWritten, stats.RecordsDropped)
			}
			if stats.DroppedByReason[tt.reason] != 1 {
				t.Errorf("dropped by reason = %v, want %s: 1", stats.DroppedByReason, tt.reason)
			}
			if stats.InvalidValues() != 0 {
				t.Errorf("a dropped record's values were counted: %v", stats.Columns)
			}
		})
	}
}

func TestDocumentShapes(t *testing.T) {
	rec := `{"entity_smallholder_id":1,"name":"A"}`
	tests := []struct {
		name    string
		body    string
		records int
	}{
		{"the documented shape", body(rec), 1},
		{"results after other keys of any shape", `{"status":true,"meta":{"a":[1,{"b":null}],"c":"x"},"data":{"page_size":"10","total":[1,2],"extra":{"results":[]},"results":[` + rec + `,` + rec + `]},"trailer":[[]]}`, 2},
		{"data after other keys", `{"z":[{"data":1}],"data":{"results":[` + rec + `]}}`, 1},
		{"keys after results", `{"data":{"results":[` + rec + `],"page":1,"x":{"results":1}},"after":{"y":[true,false,null]}}`, 1},
		{"fields in any order with unknown nested fields", body(`{"name":"A","extra":{"deep":[{"deeper":{"k":"v"}}],"n":-1.5e-3},"geolocation":"5.5, 101.9","entity_smallholder_id":1}`), 1},
		{"white space everywhere", " \n{ \"data\" :\t{ \"results\" : [ \r\n" + rec + " , " + rec + " ] } } \n", 2},
		{"empty results", body(), 0},
		{"empty objects", `{"data":{"results":[{}]}}`, 0},
		{"duplicate key in a record: last wins", body(`{"entity_smallholder_id":1,"entity_smallholder_id":2}`), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, _, err := decodeAll(t, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != tt.records {
				t.Fatalf("got %d rows, want %d", len(rows), tt.records)
			}
		})
	}
	rows, _, _ := decodeAll(t, strings.NewReader(body(`{"entity_smallholder_id":1,"entity_smallholder_id":2}`)))
	if rows[0]["entity_smallholder_id"] != int64(2) {
		t.Errorf("duplicate key: id = %v, want the last value 2", rows[0]["entity_smallholder_id"])
	}
}

func TestMalformedJSONIsAnError(t *testing.T) {
	rec := `{"entity_smallholder_id":1}`
	tests := []struct {
		name    string
		body    string
		wantErr error // nil: any *SyntaxError
	}{
		{"empty body", ``, nil},
		{"HTML page", `<html><body>Maintenance</body></html>`, nil},
		{"top level is an array", `[` + rec + `]`, nil},
		{"no data.results", `{"data":{"page_size":"10"}}`, ErrNoResults},
		{"data is null", `{"data":null}`, ErrNoResults},
		{"results is null", `{"data":{"results":null}}`, ErrNoResults},
		{"results is an object", `{"data":{"results":{"a":1}}}`, ErrNoResults},
		{"missing comma between records", `{"data":{"results":[` + rec + rec + `]}}`, nil},
		{"trailing comma", `{"data":{"results":[` + rec + `,]}}`, nil},
		{"single quotes", `{'data':{}}`, nil},
		{"unquoted key", `{"data":{"results":[{entity_smallholder_id:1}]}}`, nil},
		{"bad literal", `{"data":{"results":[{"deleted":tru}]}}`, nil},
		{"number with leading zero", `{"data":{"results":[{"entity_smallholder_id":01}]}}`, nil},
		{"number with two dots", `{"data":{"results":[{"planted_area":1.2.3}]}}`, nil},
		{"bad escape", `{"data":{"results":[{"name":"\x"}]}}`, nil},
		{"bad unicode escape", `{"data":{"results":[{"name":"\u12g4"}]}}`, nil},
		{"control character in string", "{\"data\":{\"results\":[{\"name\":\"a\nb\"}]}}", nil},
		{"garbage after the document", body(rec) + `x`, nil},
		{"second document", body(rec) + body(rec), nil},
		{"duplicate results", `{"data":{"results":[],"results":[]}}`, nil},
		{"duplicate data", `{"data":{"results":[]},"data":{}}`, nil},
		{"unclosed unknown field", `{"meta":{"a":[1,2}, "data":{"results":[]}}`, nil},
		{"deep nesting", `{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `,"data":{"results":[]}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeAll(t, strings.NewReader(tt.body))
			if err == nil {
				t.Fatal("decoded without error")
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a *SyntaxError", err, err)
			}
		})
	}
}

// Every proper prefix of a valid body is truncated JSON and must fail,
// wherever the cut falls: no half-read body ever looks complete.
func TestEveryTruncationIsAnError(t *testing.T) {
	full := `{"data":{"page_size":"10","results":[{"entity_smallholder_id":73042,"name":"ROS\u004eANI","planted_area":"2.4300","deleted":false,"x":[1,{"y":null}]},{"entity_smallholder_id":"2","created_at":"2025-06-03T04:46:41.581Z","gps_coordinate_lat":-5.5e0}]}}`
	if _, _, err := decodeAll(t, strings.NewReader(full)); err != nil {
		t.Fatalf("full body: %v", err)
	}
	for n := range len(full) {
		_, _, err := decodeAll(t, strings.NewReader(full[:n]))
		var se *SyntaxError
		if !errors.As(err, &se) || !se.Truncated {
			t.Errorf("body cut after %d bytes (%q): error %v, want a truncated *SyntaxError", n, full[max(0, n-10):n], err)
		}
	}
}

// Tokens split across reads (strings, escapes, numbers, literals) decode
// the same as whole ones: the one-byte reader makes every token cross a
// buffer boundary.
func TestOneByteReadsDecodeTheSame(t *testing.T) {
	b := body(
		`{"entity_smallholder_id":73042,"entity_name":"JELI/ GUA MUSANG","mpob_no":"832452001098","planted_area":"2.4300","gps_coordinate_lat":5.551060,"name":"A \"B\" \u00e9 \ud83d\ude00 \ud83d","stateId":3,"deleted":true,"created_at":"2025-06-03T04:46:41.581Z","x":{"y":["z",-1e-5,null,false]}}`,
		`{"entity_smallholder_id":-12345678901234,"mukimId":null,"zoneId":"11","lot_no":140000000000000000000,"record_status":"NO CHANGE"}`,
	)
	whole, wholeStats, err := decodeAll(t, strings.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	split, splitStats, err := decodeAll(t, iotest.OneByteReader(strings.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(whole) != fmt.Sprint(split) {
		t.Errorf("one-byte reads decoded\n%v\nwhole body decoded\n%v", split, whole)
	}
	if fmt.Sprint(wholeStats) != fmt.Sprint(splitStats) {
		t.Errorf("stats differ: %v vs %v", splitStats, wholeStats)
	}
	if whole[0]["name"] != "A \"B\" é 😀 \ufffd" || whole[1]["lot_no"] != "140000000000000000000" {
		t.Errorf("unexpected values %v", whole)
	}
}

func TestBatchSize(t *testing.T) {
	var recs []string
	for i := range 10 {
		recs = append(recs, fmt.Sprintf(`{"entity_smallholder_id":%d}`, i))
	}
	dec := NewDecoder(strings.NewReader(body(recs...)), WithBatchSize(3))
	defer dec.Release()
	var sizes []int64
	for dec.Next() {
		sizes = append(sizes, dec.RecordBatch().NumRows())
	}
	if err := dec.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[3 3 3 1]" {
		t.Errorf("batch sizes %v, want [3 3 3 1]", sizes)
	}
}

// A batch ends before the record that would take its text past the
// batch byte cap; a record larger than the cap makes a batch of its own,
// and the record left over when the body ends is still emitted.
func TestBatchBytes(t *testing.T) {
	var recs []string
	for i, n := range []int{40, 40, 40, 300, 10} {
		recs = append(recs, fmt.Sprintf(`{"entity_smallholder_id":%d,"name":"%s","state":"%s"}`, i, strings.Repeat("n", n-1), "s"))
	}
	recs = slices.Insert(recs, 1, `{"name":"`+strings.Repeat("d", 500)+`"}`) // dropped: no id
	dec := NewDecoder(strings.NewReader(body(recs...)), WithMaxBatchBytes(100))
	defer dec.Release()
	var sizes, ids []int64
	for dec.Next() {
		rec := dec.RecordBatch()
		sizes = append(sizes, rec.NumRows())
		ids = append(ids, rec.Column(0).(*array.Int64).Int64Values()...)
	}
	if err := dec.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[2 1 1 1]" || fmt.Sprint(ids) != "[0 1 2 3 4]" {
		t.Errorf("batch sizes %v, ids %v: want [2 1 1 1] and [0 1 2 3 4]", sizes, ids)
	}
	if st := dec.Stats(); st.RecordsWritten != 5 || st.RecordsDropped != 1 {
		t.Errorf("written %d, dropped %d: want 5 and 1", st.RecordsWritten, st.RecordsDropped)
	}
}

func TestLimits(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		name    string
		body    string
		opts    []DecoderOption
		wantErr error
	}{
		{"key over the cap", body(`{"entity_smallholder_id":1,"` + long + `":1}`), []DecoderOption{WithMaxStringBytes(99)}, ErrValueTooLong},
		{"string at the cap", body(`{"entity_smallholder_id":1,"name":"` + long + `"}`), []DecoderOption{WithMaxStringBytes(100)}, nil},
		{"unknown field over the cap is skipped", body(`{"entity_smallholder_id":1,"notes":"` + long + `"}`), []DecoderOption{WithMaxStringBytes(len("entity_smallholder_id"))}, nil},
		{"body over the cap", body(`{"entity_smallholder_id":1,"name":"` + long + `"}`), []DecoderOption{WithMaxBodyBytes(100)}, ErrBodyTooLarge},
		{"body at the cap", body(`{"entity_smallholder_id":1}`), []DecoderOption{WithMaxBodyBytes(int64(len(body(`{"entity_smallholder_id":1}`))))}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeAll(t, strings.NewReader(tt.body), tt.opts...)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// A declared value past the value cap drops its record, counted as
// too large, as a record past the record cap is; the records around it
// are kept, and so is the run.
func TestValueTooLongDropsItsRecord(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, tt := range []struct{ name, record string }{
		{"string", `{"entity_smallholder_id":2,"name":"` + long + `","state":"s"}`},
		{"string with escapes", `{"entity_smallholder_id":2,"name":"\n\u00e9` + long + `\"","state":"s"}`},
		{"string across reads", `{"entity_smallholder_id":2,"name":"` + strings.Repeat("y", 300<<10) + `","state":"s"}`},
		{"invalid UTF-8 that grows past the cap", `{"entity_smallholder_id":2,"name":"` + strings.Repeat("\xff", 40) + `","state":"s"}`},
		{"number", `{"entity_smallholder_id":2,"planted_area":1` + strings.Repeat("0", 100) + `,"state":"s"}`},
		{"the id", `{"entity_smallholder_id":1` + strings.Repeat("0", 100) + `,"state":"s"}`},
		{"the last field", `{"entity_smallholder_id":2,"state":"s","name":"` + long + `"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := body(`{"entity_smallholder_id":1,"name":"a"}`, tt.record, `{"entity_smallholder_id":3,"name":"c"}`)
			rows, st, err := decodeAll(t, strings.NewReader(b), WithMaxStringBytes(99))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 2 || rows[0]["entity_smallholder_id"] != int64(1) || rows[1]["entity_smallholder_id"] != int64(3) || rows[1]["name"] != "c" {
				t.Errorf("rows %v: want records 1 and 3", rows)
			}
			if st.DroppedByReason[DropTooLarge] != 1 || st.RecordsRead != 3 {
				t.Errorf("read %d, dropped %v: want 3 read, one dropped as %s", st.RecordsRead, st.DroppedByReason, DropTooLarge)
			}
		})
	}
}

func TestReadErrorsAreWrapped(t *testing.T) {
	cut := io.MultiReader(strings.NewReader(`{"data":{"results":[{"entity_smallholder_id":1},`), iotest.ErrReader(io.ErrUnexpectedEOF))
	_, _, err := decodeAll(t, cut)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error %v, want it to wrap io.ErrUnexpectedEOF", err)
	}
	var se *SyntaxError
	if errors.As(err, &se) {
		t.Fatalf("a read error was reported as bad JSON: %v", err)
	}
}

func TestStats(t *testing.T) {
	b := body(
		`{"entity_smallholder_id":1,"mpob_no":"832452001098","cert_status":"ACTIVE","deleted":false}`,
		`{"entity_smallholder_id":2,"mpob_no":"832452001098","cert_status":"ACTIVE","deleted":true}`,
		`{"entity_smallholder_id":3,"mpob_no":"832452001098","cert_status":"EXPIRED"}`,
		`{"entity_smallholder_id":4,"mpob_no":"032452001098","cert_status":"DELAYED","deleted":true}`,
		`{"entity_smallholder_id":5,"mpob_no":"32452001098","cert_status":"SUSPENDED"}`,
		`{"entity_smallholder_id":2,"mpob_no":"MPOB-X","cert_status":null}`,
		`{"entity_smallholder_id":6,"mpob_no":"MPOB-X"}`,
		`{"entity_smallholder_id":7,"mpob_no":""}`,
		`{"entity_smallholder_id":8,"mpob_no":""}`,
		`{"entity_smallholder_id":null,"mpob_no":"032452001098","deleted":true}`,
	)
	_, st, err := decodeAll(t, strings.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"records read", st.RecordsRead, int64(10)},
		{"records written", st.RecordsWritten, int64(9)},
		{"records dropped", st.RecordsDropped, int64(1)},
		{"duplicate ids", st.DuplicateIDs, int64(1)},
		{"MPOB numbers with several plots (dropped rows and empty values excluded)", st.MPOBWithSeveralPlots, int64(2)},
		{"deleted records (dropped rows excluded)", st.DeletedRecords, int64(2)},
		{"records by cert_status", fmt.Sprint(st.RecordsByCertStatus), "map[(null):4 ACTIVE:2 DELAYED:1 EXPIRED:1 SUSPENDED:1]"},
		{"nulls in cert_status", st.Columns["cert_status"].Nulls, int64(4)},
		{"nulls in entity_smallholder_id", st.Columns["entity_smallholder_id"].Nulls, int64(0)},
		{"dropped percent", st.DroppedPercent(), 10.0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(st.Columns) != len(Schema.Fields()) {
		t.Errorf("stats cover %d columns, want %d", len(st.Columns), len(Schema.Fields()))
	}
}

func TestCertStatusValuesAreBounded(t *testing.T) {
	var recs []string
	for i := range maxStatusValues + 10 {
		recs = append(recs, fmt.Sprintf(`{"entity_smallholder_id":%d,"cert_status":"S%d"}`, i, i))
	}
	_, st, err := decodeAll(t, strings.NewReader(body(recs...)))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.RecordsByCertStatus) != maxStatusValues+1 || st.RecordsByCertStatus[otherStatus] != 10 {
		t.Errorf("%d distinct statuses kept, %d under %s; want %d and 10", len(st.RecordsByCertStatus), st.RecordsByCertStatus[otherStatus], otherStatus, maxStatusValues+1)
	}
}

// A records path may be one key deep, the array directly under data as
// a reference list sends it, and a key may be an int32: the decoder finds
// the array, keeps the key's type and drops a record whose id does not
// fit it.
func TestRecordsDirectlyUnderData(t *testing.T) {
	states := mustDataset(Dataset{Name: "states", Object: "states", Records: []string{"data"}, Floor: 1, Columns: []Column{
		{JSON: "stateId", Name: "state_id", Kind: KindKey32},
		{JSON: "state", Name: "state"},
	}})
	if got := states.Schema().Field(0); got.Type.ID() != arrow.INT32 || got.Nullable {
		t.Errorf("the key is %v, want an INT32 that is not null", got)
	}
	johor, kedah := `{"stateId":1,"state":"Johor"}`, `{"stateId":"2","state":"Kedah"}`
	for _, tc := range []struct {
		name, body string
		ids        []any // the rows' state_id
		dropped    int64
	}{
		{"the documented shape", `{"data":[` + johor + `,` + kedah + `]}`, []any{int32(1), int32(2)}, 0},
		{"keys around data", `{"status":"success","meta":{"data":[1]},"data":[` + johor + `],"total":1}`, []any{int32(1)}, 0},
		{"an empty list", `{"data":[]}`, nil, 0},
		{"an id past int32", `{"data":[` + johor + `,{"stateId":2147483648,"state":"X"}]}`, []any{int32(1)}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, st, err := decodeAll(t, strings.NewReader(tc.body), WithDataset(states))
			if err != nil {
				t.Fatal(err)
			}
			var ids []any
			for _, r := range rows {
				ids = append(ids, r["state_id"])
			}
			if len(ids) != len(tc.ids) || st.RecordsDropped != tc.dropped {
				t.Fatalf("ids %v, dropped %d; want %v, %d", ids, st.RecordsDropped, tc.ids, tc.dropped)
			}
			for i := range ids {
				if ids[i] != tc.ids[i] {
					t.Errorf("row %d: state_id %v (%T), want %v", i, ids[i], ids[i], tc.ids[i])
				}
			}
		})
	}
	for _, tc := range []struct{ name, body, want string }{
		{"records under data.results", `{"data":{"results":[` + johor + `]}}`, "data is not an array"},
		{"no data", `{"results":[` + johor + `]}`, "no data array"},
		{"a second data after the array", `{"data":[` + johor + `],"data":[]}`, `duplicate key "data"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeAll(t, strings.NewReader(tc.body), WithDataset(states))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
			if !strings.Contains(tc.want, "duplicate") && !errors.Is(err, ErrNoResults) {
				t.Errorf("error %v, want ErrNoResults", err)
			}
		})
	}
}
