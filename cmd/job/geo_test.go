package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/calee-data/mspo-spoc/internal/outside"
	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/geo"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// pointLists are the lists with coordinates: each gets a layer.
var pointLists = []*spoc.Dataset{spoc.SPOC, spoc.OSH, spoc.GM}

// TestJobPublishesEachListsGeolocationLayer runs the job on SPOC, OSH and
// GM bodies with planted points (outside Malaysia: Singapore, the sea,
// Kalimantan, Sumatra, southern Thailand, Brunei, 0,0; inside; missing
// and invalid; 0 to 8 and 22 decimals; one point shared by many plots;
// areas either side of 4 ha) and checks every row of each published
// layer, plot by plot, against what the generator planted; the
// manifest's account; and what two readers that are not ours, the npm
// GeoParquet reader and DuckDB, read in the published files.
func TestJobPublishesEachListsGeolocationLayer(t *testing.T) {
	lists := map[*spoc.Dataset][]spoctest.Option{}
	for _, ds := range pointLists {
		lists[ds] = []spoctest.Option{spoctest.WithRecords(3000), spoctest.WithGeo(7)}
	}
	api, handlers := fakeAPI(t, lists)
	out := t.TempDir()
	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_DATASET": "spoc,osh,gm", "SPOC_API_BASE": api.URL, "SPOC_OUTPUT": out})
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, logs)
	}
	for _, ds := range pointLists {
		t.Run(ds.Name, func(t *testing.T) {
			planted := handlers[ds].Planted()
			dir := filepath.Join(out, ds.Prefix, today())
			names := snapshot.NamesOf(ds)
			path := filepath.Join(dir, names.Geo)
			rows := layerRows(t, mustRead(t, path))
			if len(rows) != len(planted.Geo) {
				t.Fatalf("%d rows in the layer, %d plots planted", len(rows), len(planted.Geo))
			}
			cases := map[string]bool{}
			for i, want := range planted.Geo {
				cases[want.Case] = true
				if got, exp := rows[i], expectedRow(want); got != exp {
					t.Errorf("row %d (case %q):\n got %s\nwant %s", i, want.Case, got, exp)
				}
			}
			if n := len(spoctest.GeoCases()); len(cases) < n {
				t.Errorf("%d planted cases in the body, want all %d", len(cases)-1, n)
			}
			m := readManifest(t, mustRead(t, filepath.Join(dir, names.Manifest)))
			if m.Geo == nil || m.Geo.Account != planted.GeoAccount || m.Geo.Rows != int64(len(planted.Geo)) {
				t.Errorf("manifest geo %+v, want the account %+v of %d rows", m.Geo, planted.GeoAccount, len(planted.Geo))
			}

			t.Run("npm GeoParquet reader", func(t *testing.T) {
				l := outside.GeoParquet(t, path)
				if l.Geo == nil || l.Geo.Version != geo.Version || l.Geo.PrimaryColumn != geo.Geometry || l.GeometryType != "GEOMETRY" {
					t.Fatalf("the reader saw geo metadata %+v and a %q column", l.Geo, l.GeometryType)
				}
				if len(l.Rows) != len(planted.Geo) {
					t.Fatalf("the reader saw %d rows, want %d", len(l.Rows), len(planted.Geo))
				}
				for i, want := range planted.Geo {
					r := l.Rows[i]
					got := fmt.Sprint(r.Geometry != nil, r.Columns[geo.InMalaysia], r.Columns[geo.SharedPointPlots], r.Columns[geo.NeedsPolygon])
					exp := fmt.Sprint(want.Point, orNull(want.Point, want.InMalaysia), orNull(want.Point, float64(want.SharedPointPlots)), orNull(want.Area, want.NeedsPolygon))
					if r.Geometry != nil && (r.Geometry.Type != "Point" || len(r.Geometry.Coordinates) != 2 || r.Geometry.Coordinates[0] != want.Lon || r.Geometry.Coordinates[1] != want.Lat) {
						got += fmt.Sprint(" at ", r.Geometry)
					}
					if got != exp {
						t.Errorf("row %d (case %q): the reader saw %s, want %s at (%v %v)", i, want.Case, got, exp, want.Lon, want.Lat)
					}
				}
			})
			t.Run("DuckDB", func(t *testing.T) {
				query := outside.DuckDB(t)
				got := query(fmt.Sprintf(`SELECT count(*) AS plots,
  count(*) FILTER (WHERE geometry IS NOT NULL) AS with_point,
  count(*) FILTER (WHERE NOT in_malaysia) AS outside_malaysia,
  count(*) FILTER (WHERE coordinate_decimals < 6) AS fewer,
  count(*) FILTER (WHERE shared_point_plots > 1) AS sharing,
  count(*) FILTER (WHERE needs_polygon) AS over_4_ha,
  count(*) FILTER (WHERE bbox.xmin IS DISTINCT FROM bbox.xmax OR bbox.ymin IS DISTINCT FROM bbox.ymax) AS not_a_point
FROM read_parquet('%s')`, path))
				a := planted.GeoAccount
				want := fmt.Sprintf("%v %v %v %v %v %v %v", a.Plots, a.WithPoint, a.OutsideMalaysia, a.FewerDecimals, a.SharingAPoint, a.OverPolygonArea, 0)
				if len(got) != 1 || fmt.Sprintf("%v %v %v %v %v %v %v", got[0]["plots"], got[0]["with_point"], got[0]["outside_malaysia"], got[0]["fewer"], got[0]["sharing"], got[0]["over_4_ha"], got[0]["not_a_point"]) != want {
					t.Errorf("DuckDB counts %v, want %s", got, want)
				}
			})
		})
	}
}

// layerRow is a row of a layer as text: id, point, in_malaysia,
// coordinate_decimals, shared_point_plots, needs_polygon.
type layerRow string

func layerRows(t *testing.T, data []byte) []layerRow {
	t.Helper()
	cols := parquettest.Columns(t, data)
	rows := make([]layerRow, len(cols["entity_smallholder_id"]))
	for i := range rows {
		point := "null"
		if wkb, ok := cols[geo.Geometry][i].([]byte); ok {
			if len(wkb) != 21 || wkb[0] != 1 || binary.LittleEndian.Uint32(wkb[1:]) != 1 {
				t.Fatalf("row %d: geometry %x is no little-endian WKB point", i, wkb)
			}
			point = fmt.Sprint(math.Float64frombits(binary.LittleEndian.Uint64(wkb[5:])), " ", math.Float64frombits(binary.LittleEndian.Uint64(wkb[13:])))
		}
		rows[i] = layerRow(fmt.Sprint(cols["entity_smallholder_id"][i], " (", point, ") ", cols[geo.InMalaysia][i], " ",
			cols[geo.CoordinateDecimals][i], " ", cols[geo.SharedPointPlots][i], " ", cols[geo.NeedsPolygon][i]))
	}
	return rows
}

// expectedRow is the layer row the generator stated.
func expectedRow(r spoctest.GeoRow) layerRow {
	point := "null"
	if r.Point {
		point = fmt.Sprint(r.Lon, " ", r.Lat)
	}
	return layerRow(fmt.Sprint(r.ID, " (", point, ") ", orNull(r.Point, r.InMalaysia), " ", orNull(r.Point, r.Decimals), " ",
		orNull(r.Point, r.SharedPointPlots), " ", orNull(r.Area, r.NeedsPolygon)))
}

// orNull is v, or nil unless ok.
func orNull(ok bool, v any) any {
	if !ok {
		return nil
	}
	return v
}
