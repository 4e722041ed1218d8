package geo_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/geo"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// plot is a planted record and what its layer row must say.
type plot struct {
	lat, lon, area string // JSON values; "" leaves the field out
	point          bool
	in             bool
	decimals       int32
	shared         int32
	polygon        any // true, false or nil
}

var planted = []plot{
	{lat: `"3.139003"`, lon: `"101.686855"`, area: `"2.5"`, point: true, in: true, decimals: 6, shared: 1, polygon: false},               // Kuala Lumpur
	{lat: `"5.33780"`, lon: `"116.16020"`, area: `4`, point: true, in: true, decimals: 5, shared: 1, polygon: false},                     // Keningau, Sabah, 5 decimals, exactly 4 ha
	{lat: `2.0301`, lon: `103.3185`, area: `4.01`, point: true, in: true, decimals: 4, shared: 1, polygon: true},                         // Kluang, 4 decimals, just over 4 ha
	{lat: `"2.30000000"`, lon: `"111.80000000"`, area: `"8.5"`, point: true, in: true, decimals: 8, shared: 1, polygon: true},            // Sarawak, 8 decimals
	{lat: `"1.352083"`, lon: `"103.819836"`, area: `"1.0"`, point: true, in: false, decimals: 6, shared: 1, polygon: false},              // Singapore
	{lat: `"4.000000"`, lon: `"105.500000"`, area: `"1"`, point: true, in: false, decimals: 6, shared: 1, polygon: false},                // South China Sea
	{lat: `"-0.026330"`, lon: `"109.342503"`, area: `"1"`, point: true, in: false, decimals: 6, shared: 1, polygon: false},               // Pontianak, Kalimantan
	{lat: `"3.595196"`, lon: `"98.672226"`, area: `"1"`, point: true, in: false, decimals: 6, shared: 1, polygon: false},                 // Medan, Sumatra
	{lat: `"7.008620"`, lon: `"100.474688"`, area: `"1"`, point: true, in: false, decimals: 6, shared: 1, polygon: false},                // Hat Yai, southern Thailand
	{lat: `0`, lon: `-0`, area: `"3.99"`, point: true, in: false, decimals: 0, shared: 2, polygon: false},                                // 0,0 ...
	{lat: `"0.0"`, lon: `"0"`, area: `"5"`, point: true, in: false, decimals: 0, shared: 2, polygon: true},                               // ... twice, -0 being 0
	{lat: `null`, lon: `"101.5"`, area: `"6"`, point: false, polygon: true},                                                              // no latitude
	{lon: `"101.5"`, point: false, polygon: nil},                                                                                         // no latitude field, no area
	{lat: `"95.1"`, lon: `"101.5"`, area: `null`, point: false, polygon: nil},                                                            // latitude out of range
	{lat: `"3.1"`, lon: `1e400`, area: `"1"`, point: false, polygon: false},                                                              // longitude overflows
	{lat: `"5.6470000000000000000001"`, lon: `"100.487700"`, area: `"1"`, point: true, in: true, decimals: 6, shared: 1, polygon: false}, // Sungai Petani, a long string
}

// body is a SPOC body of the planted plots, ids from 1, and of extra
// plots at one point shared with none of them.
func body(extra int) string {
	var b strings.Builder
	b.WriteString(`{"data":{"results":[`)
	for i, p := range planted {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"entity_smallholder_id":%d`, i+1)
		for k, v := range map[string]string{"gps_coordinate_lat": p.lat, "gps_coordinate_long": p.lon, "planted_area": p.area} {
			if v != "" {
				fmt.Fprintf(&b, `,%q:%s`, k, v)
			}
		}
		b.WriteString(`,"mpob_no":"MPOB` + fmt.Sprint(i+1) + `","stateId":"1","state":"JOHOR"}`)
	}
	for i := range extra {
		fmt.Fprintf(&b, `,{"entity_smallholder_id":%d,"gps_coordinate_lat":"1.862000","gps_coordinate_long":"103.092000","planted_area":"2"}`, len(planted)+i+1)
	}
	b.WriteString(`]}}`)
	return b.String()
}

// layer decodes body as SPOC in batches of batchSize and writes its layer,
// returning the file and the writer.
func layer(t *testing.T, body string, batchSize int) ([]byte, *geo.Writer) {
	t.Helper()
	recs, decimals := decode(t, spoc.SPOC, strings.NewReader(body), batchSize)
	return write(t, spoc.SPOC, recs, count(t, spoc.SPOC, recs), decimals)
}

// decode decodes body as ds in batches of batchSize: the batches, kept
// until the test ends, and their rows' decimal places.
func decode(t *testing.T, ds *spoc.Dataset, body io.Reader, batchSize int) ([]arrow.RecordBatch, []uint8) {
	t.Helper()
	dec := spoc.NewDecoder(body, spoc.WithDataset(ds), spoc.WithBatchSize(batchSize))
	defer dec.Release()
	var recs []arrow.RecordBatch
	t.Cleanup(func() {
		for _, rec := range recs {
			rec.Release()
		}
	})
	for dec.Next() {
		rec := dec.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := dec.Err(); err != nil {
		t.Fatal(err)
	}
	return recs, dec.CoordinateDecimals()
}

// count counts the points of recs, batches of ds.
func count(t *testing.T, ds *spoc.Dataset, recs []arrow.RecordBatch) *geo.Points {
	t.Helper()
	points, err := geo.NewPoints(ds)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := points.Add(rec); err != nil {
			t.Fatal(err)
		}
	}
	return points
}

// write writes the layer of recs, batches of ds, into a Parquet file
// with its GeoParquet metadata: the file and the writer.
func write(t *testing.T, ds *spoc.Dataset, recs []arrow.RecordBatch, points *geo.Points, decimals []uint8) ([]byte, *geo.Writer) {
	t.Helper()
	var out bytes.Buffer
	pw, err := sink.NewParquetWriter(&out, geo.Schema(ds), sink.WithDictionary(geo.DictionaryColumns(ds)...))
	if err != nil {
		t.Fatal(err)
	}
	w, err := geo.NewWriter(pw, ds, points, decimals)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Check(); err != nil {
		t.Fatal(err)
	}
	md, err := w.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.SetMetadata(geo.MetadataKey, md); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), w
}

func TestLayerFlagsEveryPlantedPlot(t *testing.T) {
	const extra = 1000
	for _, batchSize := range []int{1, 7, 16384} {
		t.Run(fmt.Sprint("batches of ", batchSize), func(t *testing.T) {
			data, w := layer(t, body(extra), batchSize)
			rows := parquettest.Columns(t, data)
			if n := len(rows["entity_smallholder_id"]); n != len(planted)+extra {
				t.Fatalf("%d rows, want %d", n, len(planted)+extra)
			}
			for i, p := range planted {
				get := func(col string) any { return rows[col][i] }
				want := map[string]any{geo.InMalaysia: nil, geo.CoordinateDecimals: nil, geo.SharedPointPlots: nil, geo.NeedsPolygon: p.polygon}
				if p.point {
					want[geo.InMalaysia], want[geo.CoordinateDecimals], want[geo.SharedPointPlots] = p.in, p.decimals, p.shared
				}
				for col, v := range want {
					if got := get(col); fmt.Sprint(got) != fmt.Sprint(v) {
						t.Errorf("plot %d (lat %s, long %s): %s %v, want %v", i+1, p.lat, p.lon, col, got, v)
					}
				}
				if id := get("entity_smallholder_id"); fmt.Sprint(id) != fmt.Sprint(i+1) {
					t.Errorf("row %d: id %v", i, id)
				}
				g := get(geo.Geometry)
				if !p.point {
					if g != nil || get(geo.BBox) != nil {
						t.Errorf("plot %d: geometry %v and bbox %v, want null", i+1, g, get(geo.BBox))
					}
					continue
				}
				wkb, _ := g.([]byte)
				if len(wkb) != 21 || wkb[0] != 1 || binary.LittleEndian.Uint32(wkb[1:]) != 1 {
					t.Fatalf("plot %d: geometry %x is no little-endian WKB point", i+1, g)
				}
				x, y := math.Float64frombits(binary.LittleEndian.Uint64(wkb[5:])), math.Float64frombits(binary.LittleEndian.Uint64(wkb[13:]))
				if x != number(t, p.lon) || y != number(t, p.lat) {
					t.Errorf("plot %d: point (%v %v), want (%s %s)", i+1, x, y, p.lon, p.lat)
				}
				box := fmt.Sprint(get(geo.BBox))
				if want := fmt.Sprint(map[string]any{"xmin": x, "ymin": y, "xmax": x, "ymax": y}); box != want {
					t.Errorf("plot %d: bbox %s, want %s", i+1, box, want)
				}
			}
			for i := len(planted); i < len(planted)+extra; i++ {
				if got := rows[geo.SharedPointPlots][i]; fmt.Sprint(got) != fmt.Sprint(extra) {
					t.Fatalf("row %d: shared_point_plots %v, want %d", i, got, extra)
				}
			}
			wantAccount := geo.Account{Plots: int64(len(planted) + extra)}
			for _, p := range planted {
				if !p.point {
					wantAccount.WithoutPoint++
				} else {
					wantAccount.WithPoint++
					if !p.in {
						wantAccount.OutsideMalaysia++
					}
					if p.decimals < 6 {
						wantAccount.FewerDecimals++
					}
					if p.shared > 1 {
						wantAccount.SharingAPoint++
					}
				}
				if p.polygon == true {
					wantAccount.OverPolygonArea++
				}
			}
			wantAccount.WithPoint += extra
			wantAccount.SharingAPoint += extra
			if got := w.Account(); got != wantAccount {
				t.Errorf("account %+v, want %+v", got, wantAccount)
			}
			var meta struct {
				Version       string `json:"version"`
				PrimaryColumn string `json:"primary_column"`
				Columns       map[string]struct {
					Encoding      string                         `json:"encoding"`
					GeometryTypes []string                       `json:"geometry_types"`
					BBox          []float64                      `json:"bbox"`
					Covering      map[string]map[string][]string `json:"covering"`
				} `json:"columns"`
			}
			value := parquettest.Open(t, data).MetaData().KeyValueMetadata().FindValue(geo.MetadataKey)
			if value == nil {
				t.Fatalf("no %q metadata", geo.MetadataKey)
			}
			if err := json.Unmarshal([]byte(*value), &meta); err != nil {
				t.Fatal(err)
			}
			g := meta.Columns[geo.Geometry]
			got := fmt.Sprint(meta.Version, meta.PrimaryColumn, len(meta.Columns), g.Encoding, g.GeometryTypes, g.BBox, g.Covering)
			// The planted points' extremes: 0,0 west, Pontianak south,
			// Keningau east, Hat Yai north.
			want := fmt.Sprint("1.1.0", "geometry", 1, "WKB", []string{"Point"}, []float64{0, -0.02633, 116.1602, 7.00862},
				map[string]map[string][]string{"bbox": {"xmin": {"bbox", "xmin"}, "ymin": {"bbox", "ymin"}, "xmax": {"bbox", "xmax"}, "ymax": {"bbox", "ymax"}}})
			if got != want {
				t.Errorf("geo metadata\n%s\nwant\n%s", *value, want)
			}
		})
	}
}

// number is the value of a planted JSON coordinate.
func number(t *testing.T, v string) float64 {
	f, err := strconv.ParseFloat(strings.Trim(v, `"`), 64)
	if err != nil {
		t.Fatal(err)
	}
	return f + 0
}
