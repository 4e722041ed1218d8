package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

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
	return layerRowsAt(t, data, nil)
}

// layerRowsAt is the rows at of a layer (every row for nil), read from
// its Arrow columns one cell at a time: a large layer is not boxed whole.
func layerRowsAt(t *testing.T, data []byte, at []int) []layerRow {
	t.Helper()
	tbl := parquettest.ReadTable(t, data)
	defer tbl.Release()
	cols := map[string]arrow.Array{}
	for k, f := range tbl.Schema().Fields() {
		col, err := array.Concatenate(tbl.Column(k).Data().Chunks(), memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		defer col.Release()
		cols[f.Name] = col
	}
	if at == nil {
		for i := range int(tbl.NumRows()) {
			at = append(at, i)
		}
	}
	cell := func(name string, i int) any { return parquettest.CellValue(cols[name], i) }
	rows := make([]layerRow, len(at))
	for k, i := range at {
		point := "null"
		if wkb, ok := cell(geo.Geometry, i).([]byte); ok {
			if len(wkb) != 21 || wkb[0] != 1 || binary.LittleEndian.Uint32(wkb[1:]) != 1 {
				t.Fatalf("row %d: geometry %x is no little-endian WKB point", i, wkb)
			}
			point = fmt.Sprint(math.Float64frombits(binary.LittleEndian.Uint64(wkb[5:])), " ", math.Float64frombits(binary.LittleEndian.Uint64(wkb[13:])))
		}
		rows[k] = layerRow(fmt.Sprint(cell("entity_smallholder_id", i), " (", point, ") ", cell(geo.InMalaysia, i), " ",
			cell(geo.CoordinateDecimals, i), " ", cell(geo.SharedPointPlots, i), " ", cell(geo.NeedsPolygon, i)))
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

// TestJobGeolocationOfHostileBodies publishes bodies an upstream could
// send to break the layer: 300,000 plots on one point (each shares it
// with all the others: a count per plot must not cost a pass over the
// others), and coordinates that overflow (1e400), are negative zero, or
// carry 22 decimals. Each publishes, with the layer and the account
// saying exactly what the body holds.
func TestJobGeolocationOfHostileBodies(t *testing.T) {
	const onePoint = 300_000
	out := publishRecords(t, func(b *bufio.Writer) {
		for i := range onePoint {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, `{"entity_smallholder_id":%d,"gps_coordinate_lat":"2.7297","gps_coordinate_long":"101.9381","planted_area":"1"}`, i+1)
		}
		// 1e400 overflows: no point. -0,-0 is 0,0: one point with 0,0, at
		// sea. 22 decimals parse to 5.55106 (a float64 has no more).
		b.WriteString(`,{"entity_smallholder_id":300001,"gps_coordinate_lat":1e400,"gps_coordinate_long":101.5,"planted_area":"5"}`)
		b.WriteString(`,{"entity_smallholder_id":300002,"gps_coordinate_lat":-0,"gps_coordinate_long":-0.0,"planted_area":"4"}`)
		b.WriteString(`,{"entity_smallholder_id":300003,"gps_coordinate_lat":0,"gps_coordinate_long":0,"planted_area":"4.01"}`)
		b.WriteString(`,{"entity_smallholder_id":300004,"gps_coordinate_lat":"5.5510600000000000000001","gps_coordinate_long":"100.4877000000000000000001","planted_area":null}`)
	})
	dir := filepath.Join(out, testPrefix, "20261206")
	m := readManifest(t, mustRead(t, filepath.Join(dir, snapshot.ManifestName)))
	want := geo.Account{Plots: onePoint + 4, WithPoint: onePoint + 3, WithoutPoint: 1, OutsideMalaysia: 2,
		FewerDecimals: onePoint + 2, SharingAPoint: onePoint + 2, OverPolygonArea: 2}
	if m.Geo == nil || m.Geo.Account != want {
		t.Fatalf("manifest geo %+v, want the account %+v", m.Geo, want)
	}
	wants := map[int]layerRow{
		0:            "1 (101.9381 2.7297) true 4 300000 false",
		onePoint - 1: "300000 (101.9381 2.7297) true 4 300000 false",
		onePoint:     "300001 (null) <nil> <nil> <nil> true",
		onePoint + 1: "300002 (0 0) false 0 2 false",
		onePoint + 2: "300003 (0 0) false 0 2 true",
		onePoint + 3: "300004 (100.4877 5.55106) true 22 1 <nil>",
	}
	var at []int
	for i := range wants {
		at = append(at, i)
	}
	rows := layerRowsAt(t, mustRead(t, filepath.Join(dir, snapshot.GeoName)), at)
	for k, i := range at {
		if want := wants[i]; rows[k] != want {
			t.Errorf("row %d: %s, want %s", i, rows[k], want)
		}
	}
}

// TestJobGeolocationOfLongLicences publishes plots whose licence numbers
// (carried into the layer) are 20 KB each, within every cap: the layer,
// made from the snapshot read back, must stay within the memory target
// as the snapshot does, whatever the size of the rows it reads.
func TestJobGeolocationOfLongLicences(t *testing.T) {
	if testing.Short() {
		t.Skip("a body of 120 MB")
	}
	const plots, licence = 6_000, 20_000
	pad := strings.Repeat("X", licence)
	out := publishRecords(t, func(b *bufio.Writer) {
		for i := range plots {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, `{"entity_smallholder_id":%d,"mpob_no":"%08d%s","gps_coordinate_lat":"3.%06d","gps_coordinate_long":"101.500000","planted_area":"1","stateId":1,"state":"JOHOR"}`, i+1, i, pad, i)
		}
	})
	m := readManifest(t, mustRead(t, filepath.Join(out, testPrefix, "20261206", snapshot.ManifestName)))
	if m.Geo == nil || m.Geo.Rows != plots || m.Geo.Account.WithPoint != plots {
		t.Errorf("manifest geo %+v, want %d plots with a point", m.Geo, plots)
	}
}

// publishRecords publishes, as SPOC on 20261206, a body of the records
// records writes (comma-separated, into data.results) and returns the
// output folder. The body goes to a file as it is made, and the job runs
// as a child, as the memory tests run it, its peak RSS within the
// memory target: a run this size in the test process would raise the
// test's own peak, which its children inherit (childPeak). The records
// hold only the fields a test needs, so the first-day column guard is
// off.
func publishRecords(t *testing.T, records func(*bufio.Writer)) (out string) {
	t.Helper()
	body := filepath.Join(t.TempDir(), "body.json")
	f, err := os.Create(body)
	if err != nil {
		t.Fatal(err)
	}
	b := bufio.NewWriterSize(f, 1<<20)
	b.WriteString(`{"data":{"results":[`)
	records(b)
	b.WriteString(`]}}`)
	if err := errors.Join(b.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
	out = t.TempDir()
	cmd := jobCommand(body, out)
	cmd.Env = append(cmd.Env, "SPOC_COLLAPSE_BELOW_PERCENT=0")
	logs := runChild(t, cmd)
	if !cmd.ProcessState.Success() {
		t.Fatalf("the job failed:\n%s", logs)
	}
	peak := childPeak(t, cmd)
	t.Logf("peak RSS %d MiB", peak>>20)
	if peak > memoryTarget {
		t.Errorf("peak RSS %d MiB, want at most %d MiB", peak>>20, memoryTarget>>20)
	}
	return out
}
