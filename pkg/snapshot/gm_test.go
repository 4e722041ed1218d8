package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// generatedGM is a generated GM body, and what it planted.
func generatedGM(t testing.TB, opts spoctest.GenOptions) ([]byte, spoctest.Planted) {
	t.Helper()
	var b bytes.Buffer
	opts.Dataset = spoc.GM
	p, err := spoctest.Generate(&b, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), p
}

// generatedGMBody is a generated GM body of n records.
func generatedGMBody(t testing.TB, n int, seed uint64) []byte {
	t.Helper()
	body, _ := generatedGM(t, spoctest.GenOptions{Records: n, Seed: seed})
	return body
}

// A generated GM body, with SPOC's quirks (null, junk and off-the-globe
// coordinates, records without an id, a repeated id, bad dates, shared
// licences, deleted records) and GM's (coordinates of eight decimals,
// more certified than planted), is published value for value: every row
// of the table is its record converted by the documented rules, read
// here with encoding/json, apart from the decoder; each coordinate
// prints back with the eight decimals sent, and the certified areas
// above the planted ones are published as sent.
func TestGMPublishedValueForValue(t *testing.T) {
	body, planted := generatedGM(t, spoctest.GenOptions{Records: 20_100, Seed: 3, DropEvery: 450})
	if planted.DuplicateIDs == 0 || planted.Dropped == 0 || planted.OverCertified == 0 || planted.Deleted == 0 ||
		len(planted.Invalid["gps_coordinate_lat"]) != 2 || planted.Invalid["created_at"]["bad_timestamp"] == 0 {
		t.Fatalf("the generator planted too few quirks: %+v", planted)
	}
	out := t.TempDir()
	store, _ := sink.NewLocal(out)
	opts := options(t, serve(t, body), store)
	opts.Dataset, opts.Prefix = spoc.GM, spoc.GM.Prefix
	m, err := snapshot.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, spoc.GM.Prefix, opts.Day.Format(snapshot.DateLayout), "groupmanager-list-public.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	tbl := parquettest.ReadTable(t, data)
	for i, f := range spoc.GM.Schema().Fields() {
		if g := tbl.Schema().Field(i); tbl.Schema().NumFields() != len(spoc.GM.Columns) || g.Name != f.Name || !arrow.TypeEqual(g.Type, f.Type) || g.Nullable != f.Nullable {
			t.Fatalf("schema %s, want GM's %s", tbl.Schema(), spoc.GM.Schema())
		}
	}
	want := gmRows(t, body)
	if int(tbl.NumRows()) != len(want) || m.Stats.RecordsWritten != int64(len(want)) || m.Stats.DuplicateIDs != int64(planted.DuplicateIDs) {
		t.Fatalf("%d rows, %d written, %d duplicate ids; the body has %d records with an id, %d repeated", tbl.NumRows(), m.Stats.RecordsWritten, m.Stats.DuplicateIDs, len(want), planted.DuplicateIDs)
	}
	lat, long := spoc.GM.Schema().FieldIndices("gps_coordinate_lat")[0], spoc.GM.Schema().FieldIndices("gps_coordinate_long")[0]
	plantedCol, certifiedCol := spoc.GM.Schema().FieldIndices("planted_area")[0], spoc.GM.Schema().FieldIndices("certified_area")[0]
	tr := array.NewTableReader(tbl, 4096)
	defer tr.Release()
	row, mismatches, eightDecimals, overCertified := 0, 0, 0, 0
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := range int(rec.NumRows()) {
			w := want[row]
			for c, col := range rec.Columns() {
				if got := parquettest.CellValue(col, i); got != w.values[c] && mismatches < 10 {
					mismatches++
					t.Errorf("row %d (id %v) %s = %#v, want %#v", row, w.values[0], spoc.GM.Columns[c].Name, got, w.values[c])
				}
			}
			for _, c := range []int{lat, long} {
				if text := w.texts[c]; !rec.Column(c).IsNull(i) {
					if got := strconv.FormatFloat(rec.Column(c).(*array.Float64).Value(i), 'f', 8, 64); got != text {
						t.Errorf("row %d %s prints back as %s, sent %q", row, spoc.GM.Columns[c].Name, got, text)
					}
					eightDecimals++
				}
			}
			p, c := rec.Column(plantedCol).(*array.Float64), rec.Column(certifiedCol).(*array.Float64)
			if p.IsValid(i) && c.IsValid(i) && c.Value(i) > p.Value(i) {
				overCertified++
			}
			row++
		}
	}
	if eightDecimals < len(want) || overCertified != planted.OverCertified {
		t.Errorf("%d coordinates of eight decimals, %d rows certified for more than planted; planted %d", eightDecimals, overCertified, planted.OverCertified)
	}
}

// gmRow is a record's expected values, one per GM column (nil for a
// null), and the text sent for each, trimmed.
type gmRow struct {
	values []any
	texts  []string
}

// gmRows converts the records of a GM body that have an id by the
// package documentation's rules, with encoding/json.
func gmRows(t *testing.T, body []byte) []gmRow {
	t.Helper()
	var doc struct {
		Data struct {
			Results []map[string]json.RawMessage `json:"results"`
		} `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, c := range spoc.GM.Columns {
		declared[c.JSON] = true
	}
	var rows []gmRow
	for _, rec := range doc.Data.Results {
		for f := range rec {
			if !declared[f] {
				t.Fatalf("a GM record has the undeclared field %q", f)
			}
		}
		if _, ok := rec["entity_smallholder_id"]; !ok {
			continue
		}
		r := gmRow{values: make([]any, len(spoc.GM.Columns)), texts: make([]string, len(spoc.GM.Columns))}
		for c, col := range spoc.GM.Columns {
			raw, ok := rec[col.JSON]
			if !ok || string(raw) == "null" {
				continue
			}
			var v any
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				t.Fatal(err)
			}
			text := strings.TrimSpace(strings.Trim(string(raw), `"`))
			r.texts[c] = text
			r.values[c] = convertByTheRules(col.Kind, v, text)
		}
		rows = append(rows, r)
	}
	return rows
}

// convertByTheRules is a JSON value as the documented rules convert it
// for a column of kind k, nil where they make it null.
func convertByTheRules(k spoc.Kind, v any, text string) any {
	switch k {
	case spoc.KindString:
		if s, ok := v.(string); ok {
			return s
		}
	case spoc.KindKey, spoc.KindInt32:
		n, err := strconv.ParseInt(text, 10, map[spoc.Kind]int{spoc.KindKey: 64, spoc.KindInt32: 32}[k])
		if err != nil {
			return nil
		}
		if k == spoc.KindInt32 {
			return int32(n)
		}
		return n
	case spoc.KindFloat, spoc.KindLatitude, spoc.KindLongitude:
		f, err := strconv.ParseFloat(text, 64)
		limit := map[spoc.Kind]float64{spoc.KindFloat: 1e308, spoc.KindLatitude: 90, spoc.KindLongitude: 180}[k]
		if err != nil || text == "" || f < -limit || f > limit {
			return nil
		}
		return f
	case spoc.KindBool:
		if b, ok := v.(bool); ok {
			return b
		}
	case spoc.KindTimestamp:
		if s, ok := v.(string); ok {
			if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return ts.Truncate(time.Microsecond).UTC()
			}
		}
	}
	return nil
}
