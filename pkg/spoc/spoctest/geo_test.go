package spoctest_test

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// GenOptions.Geo plants its cases in every dataset with a point, and
// Planted stays true of the body: the decoder finds the nulls and
// invalid values it counts, and the rows' points, decimal places and
// over-certified areas it states. The rest of the body is the one the
// same Seed gives without Geo.
func TestGenerateGeo(t *testing.T) {
	for _, ds := range []*spoc.Dataset{spoc.SPOC, spoc.OSH, spoc.GM} {
		t.Run(ds.Name, func(t *testing.T) {
			opts := spoctest.GenOptions{Dataset: ds, Records: 3000, Seed: 8, DropEvery: 250}
			var plain bytes.Buffer
			if _, err := spoctest.Generate(&plain, opts); err != nil {
				t.Fatal(err)
			}
			opts.Geo = 7
			var body bytes.Buffer
			planted, err := spoctest.Generate(&body, opts)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := withoutGeo(body.String()), withoutGeo(plain.String()); a != b {
				t.Errorf("with Geo, the body differs beyond coordinates and areas:\n%.300s\nwithout:\n%.300s", a[mismatch(a, b):], b[mismatch(a, b):])
			}
			if len(planted.Geo) != planted.Records-planted.Dropped || int(planted.GeoAccount.Plots) != len(planted.Geo) {
				t.Fatalf("%d rows, account of %d plots; planted %d records, %d without id", len(planted.Geo), planted.GeoAccount.Plots, planted.Records, planted.Dropped)
			}

			dec := spoc.NewDecoder(&body, spoc.WithDataset(ds), spoc.WithBatchSize(500))
			defer dec.Release()
			row, overCertified := 0, 0
			for dec.Next() {
				rec := dec.RecordBatch()
				col := func(name string) *array.Float64 {
					return rec.Column(rec.Schema().FieldIndices(name)[0]).(*array.Float64)
				}
				lats, lons, area, certified := col("gps_coordinate_lat"), col("gps_coordinate_long"), col("planted_area"), col("certified_area")
				for i := range int(rec.NumRows()) {
					want := planted.Geo[row]
					point := lats.IsValid(i) && lons.IsValid(i)
					if point != want.Point || point && (lons.Value(i)+0 != want.Lon || lats.Value(i)+0 != want.Lat) {
						t.Errorf("row %d (%q): point %v (%v %v), planted %v (%v %v)", row, want.Case, point, lons.Value(i), lats.Value(i), want.Point, want.Lon, want.Lat)
					}
					if area.IsValid(i) != want.Area || want.Area && (area.Value(i) > 4) != want.NeedsPolygon {
						t.Errorf("row %d (%q): planted area %v, planted valid %v, over 4 ha %v", row, want.Case, area.ValueStr(i), want.Area, want.NeedsPolygon)
					}
					if area.IsValid(i) && certified.IsValid(i) && certified.Value(i) > area.Value(i) {
						overCertified++
					}
					row++
				}
			}
			if err := dec.Err(); err != nil {
				t.Fatal(err)
			}
			for i, places := range dec.CoordinateDecimals() {
				if want := planted.Geo[i]; want.Point && int32(places) != want.Decimals {
					t.Errorf("row %d (%q): %d decimal places, planted %d", i, want.Case, places, want.Decimals)
				}
			}
			if overCertified != planted.OverCertified {
				t.Errorf("%d rows certified for more than planted, planted %d", overCertified, planted.OverCertified)
			}
			st := dec.Stats()
			for _, name := range []string{"gps_coordinate_lat", "gps_coordinate_long", "planted_area"} {
				cs := st.Columns[name]
				want := int64(planted.Nulls[name])
				for reason, n := range planted.Invalid[name] {
					want += int64(n)
					if cs.Invalid[reason] != int64(n) {
						t.Errorf("%s: %d invalid (%s), planted %d", name, cs.Invalid[reason], reason, n)
					}
				}
				if cs.Nulls != want || len(cs.Invalid) != len(planted.Invalid[name]) {
					t.Errorf("%s: %d nulls, invalid %v; planted %d nulls, invalid %v", name, cs.Nulls, cs.Invalid, planted.Nulls[name], planted.Invalid[name])
				}
			}
		})
	}
}

// geoFields are the fields Geo changes, with their values.
var geoFields = regexp.MustCompile(`"(gps_coordinate_lat|gps_coordinate_long|geolocation|planted_area)":("[^"]*"|[^,}]*),?`)

func withoutGeo(body string) string { return geoFields.ReplaceAllString(body, "") }

// mismatch is where a and b first differ.
func mismatch(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return max(i-100, 0)
}

// Geo needs a point to plant, and coordinates that stay as planted.
func TestGenerateGeoRefuses(t *testing.T) {
	noPoint, err := spoc.NewDataset(spoc.Dataset{Name: "few", Object: "few", Floor: 1, Records: []string{"data", "items"},
		Columns: []spoc.Column{{JSON: "entity_smallholder_id", Name: "id", Kind: spoc.KindKey}, {JSON: "planted_area", Name: "planted_area", Kind: spoc.KindFloat}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string]spoctest.GenOptions{
		"no point":    {Dataset: noPoint, Records: 10, Geo: 2},
		"long values": {Records: 10, Geo: 2, Long: spoctest.LongValues{Every: 3, Bytes: 10, Moving: true}},
	} {
		if _, err := spoctest.Generate(io.Discard, opts); err == nil || !strings.Contains(err.Error(), "Geo") && !strings.Contains(err.Error(), "point") {
			t.Errorf("%s: error %v", name, err)
		}
	}
}
