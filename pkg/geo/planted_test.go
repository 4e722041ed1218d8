package geo_test

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/geo"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// Every dataset with a point gets a layer whose every flag, plot by plot,
// is what the generator planted: points outside Malaysia and in it,
// missing and invalid ones, 0 to 22 decimals as strings and numbers, a
// point many plots share, areas either side of 4 ha; and an account
// that counts them.
func TestLayerOfPlantedBodies(t *testing.T) {
	layers := 0
	for name, ds := range spoc.Datasets() {
		if !geo.HasLayer(ds) {
			continue
		}
		layers++
		t.Run(name, func(t *testing.T) {
			var body bytes.Buffer
			planted, err := spoctest.Generate(&body, spoctest.GenOptions{Dataset: ds, Records: 4000, Seed: 35, Geo: 9})
			if err != nil {
				t.Fatal(err)
			}
			recs, decimals := decode(t, ds, &body, 1000)
			data, w := write(t, ds, recs, count(t, ds, recs), decimals)
			cols := parquettest.Columns(t, data)
			if len(cols["entity_smallholder_id"]) != len(planted.Geo) {
				t.Fatalf("%d rows, planted %d", len(cols["entity_smallholder_id"]), len(planted.Geo))
			}
			cases := map[string]int{}
			for i, want := range planted.Geo {
				cases[want.Case]++
				if id := cols["entity_smallholder_id"][i]; id != want.ID {
					t.Fatalf("row %d: id %v, planted %d", i, id, want.ID)
				}
				checkRow(t, cols, i, want)
			}
			for _, name := range spoctest.GeoCases() {
				if cases[name] == 0 {
					t.Errorf("case %q not planted", name)
				}
			}
			if n := cases[spoctest.GeoCases()[len(spoctest.GeoCases())-1]]; n < 100 {
				t.Errorf("%d plots at the shared placeholder, want many", n)
			}
			if got := w.Account(); got != planted.GeoAccount {
				t.Errorf("account %+v, planted %+v", got, planted.GeoAccount)
			}
			// Every kind of plot is in the account, so that a flag never
			// set would show.
			a := planted.GeoAccount
			if a.WithPoint == 0 || a.WithoutPoint == 0 || a.OutsideMalaysia < 12 || a.FewerDecimals < 10 || a.SharingAPoint < 100 || a.OverPolygonArea == 0 {
				t.Errorf("the body plants too little: %+v", a)
			}
		})
	}
	if layers < 3 { // SPOC, OSH and GM at least
		t.Errorf("%d datasets with a layer", layers)
	}
}

// checkRow checks row i of a layer read back against want: every flag,
// and the point of its geometry and bbox.
func checkRow(t *testing.T, cols map[string][]any, i int, want spoctest.GeoRow) {
	t.Helper()
	name := cmp.Or(want.Case, "generated")
	wantCells := map[string]any{geo.InMalaysia: nil, geo.CoordinateDecimals: nil, geo.SharedPointPlots: nil, geo.NeedsPolygon: nil}
	if want.Point {
		wantCells[geo.InMalaysia], wantCells[geo.CoordinateDecimals], wantCells[geo.SharedPointPlots] = want.InMalaysia, want.Decimals, want.SharedPointPlots
	}
	if want.Area {
		wantCells[geo.NeedsPolygon] = want.NeedsPolygon
	}
	for col, v := range wantCells {
		if got := cols[col][i]; got != v {
			t.Errorf("plot %d (%s): %s %v, want %v", want.ID, name, col, got, v)
		}
	}
	g, box := cols[geo.Geometry][i], cols[geo.BBox][i]
	if !want.Point {
		if g != nil || box != nil {
			t.Errorf("plot %d (%s): geometry %x and bbox %v, want null", want.ID, name, g, box)
		}
		return
	}
	x, y := point(t, g)
	if math.Float64bits(x) != math.Float64bits(want.Lon) || math.Float64bits(y) != math.Float64bits(want.Lat) {
		t.Errorf("plot %d (%s): point (%v %v), want (%v %v)", want.ID, name, x, y, want.Lon, want.Lat)
	}
	if got, wantBox := fmt.Sprint(box), fmt.Sprint(map[string]any{"xmin": x, "ymin": y, "xmax": x, "ymax": y}); got != wantBox {
		t.Errorf("plot %d (%s): bbox %s, want %s", want.ID, name, got, wantBox)
	}
}

// point is the point of a little-endian WKB Point.
func point(t *testing.T, g any) (x, y float64) {
	t.Helper()
	wkb, _ := g.([]byte)
	if len(wkb) != 21 || wkb[0] != 1 || binary.LittleEndian.Uint32(wkb[1:]) != 1 {
		t.Fatalf("geometry %x is no little-endian WKB point", g)
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(wkb[5:])), math.Float64frombits(binary.LittleEndian.Uint64(wkb[13:]))
}

// records is a SPOC body of n records, ids from 1, whose coordinates
// coords gives as JSON values.
func records(n int, coords func(i int) (lat, lon string)) *strings.Reader {
	var b strings.Builder
	b.Grow(n * 100)
	b.WriteString(`{"data":{"results":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		lat, lon := coords(i)
		fmt.Fprintf(&b, `{"entity_smallholder_id":%d,"gps_coordinate_lat":%s,"gps_coordinate_long":%s,"planted_area":"2"}`, i+1, lat, lon)
	}
	b.WriteString(`]}}`)
	return strings.NewReader(b.String())
}

// countMeasured counts the points of recs, and the bytes of heap the
// count keeps.
func countMeasured(t *testing.T, recs []arrow.RecordBatch) (*geo.Points, float64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	points := count(t, spoc.SPOC, recs)
	runtime.GC()
	runtime.ReadMemStats(&after)
	kept := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	runtime.KeepAlive(points)
	return points, kept
}

// 300,000 plots on one point share it, each of them; on as many points,
// none does. Either way, counting them keeps about eight bytes a plot.
func TestLayerOfManyPlots(t *testing.T) {
	const n = 300_000
	for _, tc := range []struct {
		name     string
		coords   func(i int) (lat, lon string)
		lon, lat float64 // the first plot's point
		shared   int32
	}{
		{"one point", func(int) (string, string) { return `"3.800000"`, `"102.300000"` }, 102.3, 3.8, n},
		{"as many points", func(i int) (string, string) {
			return fmt.Sprintf(`"%.6f"`, 3.5+float64(i)*1e-6), `"102.300000"`
		}, 102.3, 3.5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, decimals := decode(t, spoc.SPOC, records(n, tc.coords), 16384)
			points, kept := countMeasured(t, recs)
			points.Finish()
			if points.Len() != n || points.Plots(tc.lon, tc.lat) != int(tc.shared) {
				t.Errorf("%d points counted, %d plots at the first; want %d and %d", points.Len(), points.Plots(tc.lon, tc.lat), n, tc.shared)
			}
			// A slice grown by appending holds up to a quarter more than
			// it is given.
			t.Logf("counting %d points keeps %.1f bytes a plot", n, kept/n)
			if perPlot := kept / n; perPlot > 11 {
				t.Errorf("counting %d points keeps %.0f bytes, %.1f a plot; want about 8", n, kept, perPlot)
			}
			data, w := write(t, spoc.SPOC, recs, points, decimals)
			shared := parquettest.Columns(t, data)[geo.SharedPointPlots]
			if len(shared) != n {
				t.Fatalf("%d rows, want %d", len(shared), n)
			}
			for i, v := range shared {
				if v != tc.shared {
					t.Fatalf("row %d: shared_point_plots %v, want %d", i, v, tc.shared)
				}
			}
			wantSharing := int64(0)
			if tc.shared > 1 {
				wantSharing = n
			}
			if got, want := w.Account(), (geo.Account{Plots: n, WithPoint: n, SharingAPoint: wantSharing}); got != want {
				t.Errorf("account %+v, want %+v", got, want)
			}
		})
	}
}

// Coordinates made to trip a parser or a hash: numbers beyond float64
// either way, negative zero, more decimals than float64 holds, 0,0.
func TestLayerOfHostileCoordinates(t *testing.T) {
	zero := func(name string, decimals int32) spoctest.GeoRow {
		return spoctest.GeoRow{Case: name, Point: true, Decimals: decimals, SharedPointPlots: 4}
	}
	seberangPerai := func(name string, decimals int32) spoctest.GeoRow {
		return spoctest.GeoRow{Case: name, Point: true, Lon: 100.4877, Lat: 5.55106, InMalaysia: true, Decimals: decimals, SharedPointPlots: 3}
	}
	plots := []struct {
		lat, lon string
		want     spoctest.GeoRow
	}{
		{`"3.1"`, `1e400`, spoctest.GeoRow{Case: "longitude 1e400"}},
		{`"1e400"`, `"102.3"`, spoctest.GeoRow{Case: "latitude 1e400, a string"}},
		{`0`, `-0`, zero("longitude -0", 0)},
		{`-0`, `-0.0`, zero("both -0", 0)},
		{`0`, `0`, zero("0,0", 0)},
		{`"0.000000"`, `"0.000000"`, zero("0,0 of 6 decimals", 6)},
		{`"5.5510600000000000000001"`, `"100.487700"`, seberangPerai("a latitude of 22 decimals", 6)},
		{`"5.55106"`, `"100.4877000000000000000001"`, seberangPerai("a longitude of 22 decimals", 5)},
		{`"5.5510600000000000000001"`, `"100.4877000000000000000001"`, seberangPerai("both of 22 decimals", 22)},
		// Below float64's least, the latitude is 0: a point in Sumatra.
		{`"1e-400"`, `"102.3"`, spoctest.GeoRow{Case: "latitude 1e-400", Point: true, Lon: 102.3, Decimals: 1, SharedPointPlots: 1}},
	}
	recs, decimals := decode(t, spoc.SPOC, records(len(plots), func(i int) (string, string) { return plots[i].lat, plots[i].lon }), 4)
	points := count(t, spoc.SPOC, recs)
	data, w := write(t, spoc.SPOC, recs, points, decimals)
	cols := parquettest.Columns(t, data)
	for i, p := range plots {
		p.want.ID, p.want.Area = int64(i+1), true
		checkRow(t, cols, i, p.want)
	}
	if n, negative := points.Len(), points.Plots(math.Copysign(0, -1), math.Copysign(0, -1)); n != 8 || negative != 4 {
		t.Errorf("%d points counted, %d plots at -0,-0; want 8 and 4", n, negative)
	}
	want := geo.Account{Plots: 10, WithPoint: 8, WithoutPoint: 2, OutsideMalaysia: 5, FewerDecimals: 5, SharingAPoint: 7}
	if got := w.Account(); got != want {
		t.Errorf("account %+v, want %+v", got, want)
	}
}

// NaN and Infinity are no JSON: a body that holds them is refused as
// malformed, not read as a plot with or without a point.
func TestLayerRefusesNaNAndInfinity(t *testing.T) {
	for _, v := range []string{`NaN`, `Infinity`, `-Infinity`, `-NaN`} {
		dec := spoc.NewDecoder(records(3, func(i int) (string, string) {
			if i == 1 {
				return v, `"102.3"`
			}
			return `"3.8"`, `"102.3"`
		}), spoc.WithDataset(spoc.SPOC))
		for dec.Next() {
		}
		var syntax *spoc.SyntaxError
		if err := dec.Err(); !errors.As(err, &syntax) {
			t.Errorf("a latitude %s: error %v, want a syntax error", v, err)
		}
		dec.Release()
	}
}
