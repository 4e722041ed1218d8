package geo_test

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/internal/outside"
	"github.com/calee-data/mspo-spoc/pkg/boundary"
	"github.com/calee-data/mspo-spoc/pkg/geo"
)

// outsideExtra are the plots added to the planted ones in the outside
// readers' layer, all at one point, so that the file has more than one
// page of a column's values.
const outsideExtra = 300

// want is what a layer row must say, by the planted plots.
type want struct {
	id       int
	point    bool
	lon, lat float64
	in       bool
	decimals int32
	shared   int32
	polygon  any
}

// wantRows are the rows of the layer of body(extra), in order.
func wantRows(t *testing.T, extra int) []want {
	t.Helper()
	var rows []want
	for i, p := range planted {
		w := want{id: i + 1, point: p.point, in: p.in, decimals: p.decimals, shared: p.shared, polygon: p.polygon}
		if p.point {
			w.lon, w.lat = number(t, p.lon), number(t, p.lat)
		}
		rows = append(rows, w)
	}
	// body's extra plots: 1.862000, 103.092000, 2 ha.
	for i := range extra {
		rows = append(rows, want{id: len(planted) + i + 1, point: true, lon: 103.092, lat: 1.862,
			in: boundary.InMalaysia(103.092, 1.862), decimals: 6, shared: int32(extra), polygon: false})
	}
	return rows
}

// checks are the flag columns of w, as a reader gives them: nil where
// the layer has null.
func (w want) checks() map[string]any {
	c := map[string]any{geo.InMalaysia: nil, geo.CoordinateDecimals: nil, geo.SharedPointPlots: nil, geo.NeedsPolygon: w.polygon}
	if w.point {
		c[geo.InMalaysia], c[geo.CoordinateDecimals], c[geo.SharedPointPlots] = w.in, w.decimals, w.shared
	}
	return c
}

// wkb is the little-endian WKB of w's point, in hexadecimal.
func (w want) wkb() string {
	b := []byte{1, 1, 0, 0, 0}
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(w.lon))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(w.lat))
	return strings.ToUpper(hex.EncodeToString(b))
}

// same says whether a reader's value is v, by their text: JSON gives
// every number as a float64, and an integer's text is the same either
// way.
func same(got, v any) bool { return fmt.Sprint(got) == fmt.Sprint(v) }

// writeLayer writes the layer of body(extra) to a file and returns its
// path and its geo metadata as written.
func writeLayer(t *testing.T, extra int) (path, metadata string) {
	t.Helper()
	data, w := layer(t, body(extra), 7)
	metadata, err := w.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "spoc.geo.parquet")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, metadata
}

// The npm geoparquet package reads the layer: every row's point and
// flags as written, the rows without a point null (and no feature), and
// the GeoParquet metadata as the specification asks.
func TestOutsideGeoParquetReader(t *testing.T) {
	path, _ := writeLayer(t, outsideExtra)
	got := outside.GeoParquet(t, path)
	wants := wantRows(t, outsideExtra)

	if got.Geo == nil {
		t.Fatal("the reader found no geo metadata")
	}
	// The planted points' extremes: 0,0 west, Pontianak south, Keningau
	// east, Hat Yai north.
	wantGeo := outside.GeoMetadata{Version: "1.1.0", PrimaryColumn: "geometry", Columns: map[string]outside.GeoColumnMeta{
		"geometry": {
			Encoding: "WKB", GeometryTypes: []string{"Point"}, BBox: []float64{0, -0.02633, 116.1602, 7.00862},
			Covering: map[string]map[string][]string{"bbox": {
				"xmin": {"bbox", "xmin"}, "ymin": {"bbox", "ymin"}, "xmax": {"bbox", "xmax"}, "ymax": {"bbox", "ymax"},
			}},
		},
	}}
	if !reflect.DeepEqual(*got.Geo, wantGeo) {
		t.Errorf("geo metadata as the reader parsed it:\n%+v\nwant\n%+v", *got.Geo, wantGeo)
	}
	if got.GeometryType != "GEOMETRY" {
		t.Errorf("the reader typed the geometry column %q, want GEOMETRY", got.GeometryType)
	}

	if len(got.Rows) != len(wants) {
		t.Fatalf("the reader read %d rows, want %d", len(got.Rows), len(wants))
	}
	var withPoint []want
	for i, w := range wants {
		row := got.Rows[i]
		if !same(row.Columns["entity_smallholder_id"], w.id) {
			t.Fatalf("row %d: entity_smallholder_id %v, want %d", i, row.Columns["entity_smallholder_id"], w.id)
		}
		for col, v := range w.checks() {
			if !same(row.Columns[col], v) {
				t.Errorf("plot %d: %s %v, want %v", w.id, col, row.Columns[col], v)
			}
		}
		if !w.point {
			if row.Geometry != nil || row.Columns[geo.BBox] != nil {
				t.Errorf("plot %d: geometry %+v and bbox %v, want null", w.id, row.Geometry, row.Columns[geo.BBox])
			}
			continue
		}
		withPoint = append(withPoint, w)
		if wantG := (outside.Geometry{Type: "Point", Coordinates: []float64{w.lon, w.lat}}); row.Geometry == nil || !reflect.DeepEqual(*row.Geometry, wantG) {
			t.Errorf("plot %d: geometry %+v, want %+v", w.id, row.Geometry, wantG)
		}
		wantBox := map[string]any{"xmin": w.lon, "ymin": w.lat, "xmax": w.lon, "ymax": w.lat}
		if !reflect.DeepEqual(row.Columns[geo.BBox], wantBox) {
			t.Errorf("plot %d: bbox %v, want %v", w.id, row.Columns[geo.BBox], wantBox)
		}
	}

	// toGeoJson, the package's reading as GeoJSON: a feature per plot
	// with a point, in order, its null columns left out.
	if len(got.Features) != len(withPoint) {
		t.Fatalf("%d GeoJSON features, want one per plot with a point, %d", len(got.Features), len(withPoint))
	}
	for k, w := range withPoint {
		f := got.Features[k]
		if wantG := (outside.Geometry{Type: "Point", Coordinates: []float64{w.lon, w.lat}}); f.Type != "Feature" || f.Geometry == nil || !reflect.DeepEqual(*f.Geometry, wantG) {
			t.Errorf("feature %d: %s %+v, want a Feature at %+v", k, f.Type, f.Geometry, wantG)
		}
		if !same(f.Properties["entity_smallholder_id"], w.id) {
			t.Fatalf("feature %d: entity_smallholder_id %v, want %d", k, f.Properties["entity_smallholder_id"], w.id)
		}
		for col, v := range w.checks() {
			p, ok := f.Properties[col]
			if v == nil && ok || v != nil && !same(p, v) {
				t.Errorf("feature of plot %d: %s %v (present %v), want %v", w.id, col, p, ok, v)
			}
		}
	}
}

// DuckDB reads the layer without its spatial extension: the geometry as
// WKB (BLOB) and the bbox struct, or, as it does by default since it has
// a GEOMETRY type of its own, as a GEOMETRY in OGC:CRS84; and it finds
// the geo metadata as written.
func TestDuckDBReadsLayer(t *testing.T) {
	query := outside.DuckDB(t)
	path, metadata := writeLayer(t, outsideExtra)
	wants := wantRows(t, outsideExtra)
	file := "'" + strings.ReplaceAll(path, "'", "''") + "'"

	blob := query(`SET enable_geoparquet_conversion = false;
SELECT entity_smallholder_id, typeof(geometry) AS type, hex(geometry) AS wkb,
  bbox.xmin, bbox.ymin, bbox.xmax, bbox.ymax,
  in_malaysia, coordinate_decimals, shared_point_plots, needs_polygon
FROM read_parquet(` + file + `) ORDER BY entity_smallholder_id`)
	geometry := query(`SELECT entity_smallholder_id, typeof(geometry) AS type, hex(ST_AsWKB(geometry)) AS wkb
FROM read_parquet(` + file + `) ORDER BY entity_smallholder_id`)
	if len(blob) != len(wants) || len(geometry) != len(wants) {
		t.Fatalf("DuckDB read %d and %d rows, want %d", len(blob), len(geometry), len(wants))
	}
	for i, w := range wants {
		b, g := blob[i], geometry[i]
		if !same(b["entity_smallholder_id"], w.id) || !same(g["entity_smallholder_id"], w.id) {
			t.Fatalf("row %d: entity_smallholder_id %v and %v, want %d", i, b["entity_smallholder_id"], g["entity_smallholder_id"], w.id)
		}
		for col, v := range w.checks() {
			if !same(b[col], v) {
				t.Errorf("plot %d: %s %v, want %v", w.id, col, b[col], v)
			}
		}
		if b["type"] != "BLOB" || g["type"] != "GEOMETRY('OGC:CRS84')" {
			t.Errorf("plot %d: the geometry column read as %v, and by default as %v; want BLOB, and GEOMETRY('OGC:CRS84')", w.id, b["type"], g["type"])
		}
		var wkb, box any
		if w.point {
			wkb, box = w.wkb(), []float64{w.lon, w.lat, w.lon, w.lat}
		}
		if !same(b["wkb"], wkb) || !same(g["wkb"], wkb) {
			t.Errorf("plot %d: WKB %v, and as GEOMETRY %v; want %v", w.id, b["wkb"], g["wkb"], wkb)
		}
		if got := []any{b["xmin"], b["ymin"], b["xmax"], b["ymax"]}; box == nil && !same(got, []any{nil, nil, nil, nil}) || box != nil && !same(got, box) {
			t.Errorf("plot %d: bbox %v, want %v", w.id, got, box)
		}
	}

	kv := query(`SELECT decode(value) AS value FROM parquet_kv_metadata(` + file + `) WHERE decode(key) = '` + geo.MetadataKey + `'`)
	if len(kv) != 1 || kv[0]["value"] != metadata {
		t.Errorf("DuckDB's %q key-value metadata: %v, want one, as written:\n%s", geo.MetadataKey, kv, metadata)
	}
}

// The DuckDB SQL of docs/geo.md's "Opening the layer" runs as written on
// the planted layer, in place of the file the page names: the flagged
// plots, the geo metadata as written, and the GeoJSON of chosen plots.
func TestDocsOpeningTheLayer(t *testing.T) {
	query := outside.DuckDB(t)
	path, metadata := writeLayer(t, 0)
	const docFile, docLayer, docGeoJSON = "../../docs/geo.md", "spoc-list-public.geo.parquet", "plots.geojson"
	doc, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Opening the layer\n")
	if !ok {
		t.Fatalf("%s has no section \"Opening the layer\"", docFile)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	geojson := filepath.Join(t.TempDir(), docGeoJSON)
	local := strings.NewReplacer("'"+docLayer+"'", "'"+path+"'", "'"+docGeoJSON+"'", "'"+geojson+"'")

	byID := map[string]want{}
	for _, w := range wantRows(t, 0) {
		byID[fmt.Sprint(w.id)] = w
	}
	var selects, metadataRead, features int
	for rest := section; ; {
		_, block, ok := strings.Cut(rest, "```sql\n")
		if !ok {
			break
		}
		var sql string
		sql, rest, _ = strings.Cut(block, "```")
		if !strings.Contains(sql, "'"+docLayer+"'") {
			t.Fatalf("a DuckDB block reads no %s:\n%s", docLayer, sql)
		}
		rows := query(local.Replace(sql))
		switch {
		case strings.HasPrefix(sql, "COPY"):
			var fc struct {
				Type     string            `json:"type"`
				Features []outside.Feature `json:"features"`
			}
			data, err := os.ReadFile(geojson)
			if err == nil {
				err = json.Unmarshal(data, &fc)
			}
			if err != nil || fc.Type != "FeatureCollection" || len(fc.Features) == 0 {
				t.Fatalf("the GeoJSON export: %v, %s", err, data)
			}
			for _, f := range fc.Features {
				w, ok := byID[fmt.Sprint(f.Properties["entity_smallholder_id"])]
				if wantG := (outside.Geometry{Type: "Point", Coordinates: []float64{w.lon, w.lat}}); !ok || !w.point || f.Type != "Feature" || f.Geometry == nil || !reflect.DeepEqual(*f.Geometry, wantG) {
					t.Errorf("the GeoJSON export has %+v, %+v", f, f.Geometry)
				}
				if !same(f.Properties[geo.NeedsPolygon], w.polygon) {
					t.Errorf("the GeoJSON export has plot %d's needs_polygon %v, want %v", w.id, f.Properties[geo.NeedsPolygon], w.polygon)
				}
				features++
			}
		case strings.Contains(sql, "parquet_kv_metadata"):
			if len(rows) != 1 || rows[0]["geo"] != metadata {
				t.Errorf("the metadata query gives %v, want the geo metadata as written:\n%s", rows, metadata)
			}
			metadataRead++
		default:
			var got, flagged []string
			for _, r := range rows {
				id := fmt.Sprint(r["entity_smallholder_id"])
				got = append(got, id)
				if w := byID[id]; w.point && (!same(r["longitude"], w.lon) || !same(r["latitude"], w.lat)) {
					t.Errorf("the query gives plot %s at %v, %v, want %v, %v", id, r["longitude"], r["latitude"], w.lon, w.lat)
				}
			}
			for _, w := range wantRows(t, 0) {
				if !w.point || !w.in || w.decimals < geo.MinDecimals || w.shared > 1 || w.polygon == true {
					flagged = append(flagged, fmt.Sprint(w.id))
				}
			}
			if !slices.Equal(got, flagged) {
				t.Errorf("the query gives plots %v, want the flagged ones, %v", got, flagged)
			}
			selects++
		}
	}
	if selects == 0 || metadataRead == 0 || features == 0 {
		t.Errorf("%d queries, %d of the metadata and %d GeoJSON features: the section lost its examples", selects, metadataRead, features)
	}
}
