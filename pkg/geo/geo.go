// Package geo writes a dataset's geolocation layer: one row per plot of
// a snapshot, with its point as a GeoParquet 1.1 geometry that GIS tools
// open as a layer (QGIS, GDAL, GeoPandas, DuckDB's spatial functions), and
// the checks that EU Deforestation Regulation due diligence asks of a
// plot's geolocation:
//
//   - in_malaysia: whether the point is on Malaysia's land (package
//     boundary, within its 1 km tolerance);
//   - coordinate_decimals: the decimal places the upstream published, of
//     which the regulation asks for at least MinDecimals;
//   - shared_point_plots: how many plots have exactly this point, for
//     points copied from one plot to many, or placeholders;
//   - needs_polygon: whether the plot is over PolygonAreaHectares, where
//     the regulation asks for a polygon, not a point.
//
// The layer is written from the snapshot's rows once the whole snapshot
// is known: a point's sharing is counted over every plot first (Points),
// and the decimal places come from the decoder, which counted them as it
// read the body (spoc.Decoder.CoordinateDecimals). Its Account is the
// run's count of each check.
package geo

import (
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// The columns of the layer that are not the dataset's.
const (
	Geometry           = "geometry"            // WKB Point, longitude then latitude (OGC:CRS84); null without a valid point
	BBox               = "bbox"                // the point's bounding box, GeoParquet 1.1's covering column
	InMalaysia         = "in_malaysia"         // null without a point
	CoordinateDecimals = "coordinate_decimals" // null without a point
	SharedPointPlots   = "shared_point_plots"  // null without a point; 1 for a point no other plot has
	NeedsPolygon       = "needs_polygon"       // planted_area > PolygonAreaHectares; null without an area
)

// MinDecimals is the fewest decimal places of a coordinate that EU
// Deforestation Regulation due diligence accepts (Regulation (EU)
// 2023/1115, Article 2(28)).
const MinDecimals = 6

// PolygonAreaHectares is the area over which a plot needs a polygon
// rather than a point (Article 9(1)(d)).
const PolygonAreaHectares = 4.0

// carried are the dataset's columns the layer repeats after its own,
// where the dataset has them: what a GIS user labels or filters a plot
// by, the MPOB licence that supplier plots are matched on, and the
// soft-delete flag, without which a layer would show plots the list no
// longer stands by.
var carried = []string{"planted_area", "mpob_no", "state_id", "state", "deleted"}

// bboxType is the covering column's type: xmin, ymin, xmax, ymax.
var bboxType = arrow.StructOf(
	arrow.Field{Name: "xmin", Type: arrow.PrimitiveTypes.Float64},
	arrow.Field{Name: "ymin", Type: arrow.PrimitiveTypes.Float64},
	arrow.Field{Name: "xmax", Type: arrow.PrimitiveTypes.Float64},
	arrow.Field{Name: "ymax", Type: arrow.PrimitiveTypes.Float64},
)

// HasLayer says whether ds has a point (spoc.Dataset.Point), and so a
// layer.
func HasLayer(ds *spoc.Dataset) bool {
	_, _, ok := ds.Point()
	return ok
}

// Schema is the layer of ds, a dataset with a point: its key, Geometry,
// BBox, the four checks, then the carried columns ds has.
func Schema(ds *spoc.Dataset) *arrow.Schema {
	key := ds.Schema().Field(0)
	fields := []arrow.Field{
		key,
		{Name: Geometry, Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: BBox, Type: bboxType, Nullable: true},
		{Name: InMalaysia, Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: CoordinateDecimals, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: SharedPointPlots, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: NeedsPolygon, Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	}
	for _, name := range carriedColumns(ds) {
		fields = append(fields, ds.Schema().Field(ds.Schema().FieldIndices(name)[0]))
	}
	return arrow.NewSchema(fields, nil)
}

// SnapshotColumns are the snapshot's columns the layer is made from, in
// the snapshot's order: what a reader of the snapshot needs to read.
func SnapshotColumns(ds *spoc.Dataset) []string {
	lon, lat, _ := ds.Point()
	want := map[string]bool{ds.Columns[0].Name: true, ds.Columns[lon].Name: true, ds.Columns[lat].Name: true}
	for _, name := range carriedColumns(ds) {
		want[name] = true
	}
	var cols []string
	for _, c := range ds.Columns {
		if want[c.Name] {
			cols = append(cols, c.Name)
		}
	}
	return cols
}

// DictionaryColumns are the layer's columns whose values repeat.
func DictionaryColumns(ds *spoc.Dataset) []string {
	var cols []string
	for _, name := range carriedColumns(ds) {
		for _, c := range ds.Columns {
			if c.Name == name && c.Dictionary {
				cols = append(cols, name)
			}
		}
	}
	return append(cols, CoordinateDecimals, SharedPointPlots)
}

func carriedColumns(ds *spoc.Dataset) []string {
	var names []string
	for _, name := range carried {
		if len(ds.Schema().FieldIndices(name)) > 0 {
			names = append(names, name)
		}
	}
	return names
}
