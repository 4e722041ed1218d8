package geo

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/calee-data/mspo-spoc/pkg/boundary"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// MetadataKey is the Parquet footer key of the GeoParquet metadata
// (Writer.Metadata).
const MetadataKey = "geo"

// Version is the GeoParquet specification the layer follows.
const Version = "1.1.0"

// Account is a snapshot's count of each check of the layer, by plot.
type Account struct {
	Plots        int64 `json:"plots"`
	WithPoint    int64 `json:"with_point"`
	WithoutPoint int64 `json:"without_point"`
	// OutsideMalaysia are the points not on Malaysia's land (in_malaysia
	// false), of the plots with one.
	OutsideMalaysia int64 `json:"outside_malaysia"`
	// FewerDecimals are the points published with fewer than MinDecimals
	// decimal places.
	FewerDecimals int64 `json:"fewer_than_6_decimals"`
	// SharingAPoint are the plots whose point at least one other plot
	// has too (shared_point_plots over 1).
	SharingAPoint int64 `json:"sharing_a_point"`
	// OverPolygonArea are the plots planted over PolygonAreaHectares,
	// which need a polygon (needs_polygon true).
	OverPolygonArea int64 `json:"over_4_ha"`
}

// Check is one check of an Account: its name (the field's JSON name)
// and the plots counted.
type Check struct {
	Name  string
	Plots int64
}

// Checks are the account's counts by name, in the order of its fields.
func (a Account) Checks() []Check {
	return []Check{
		{"plots", a.Plots}, {"with_point", a.WithPoint}, {"without_point", a.WithoutPoint},
		{"outside_malaysia", a.OutsideMalaysia}, {"fewer_than_6_decimals", a.FewerDecimals},
		{"sharing_a_point", a.SharingAPoint}, {"over_4_ha", a.OverPolygonArea},
	}
}

// RecordWriter takes the layer batch by batch; a sink.ParquetWriter is
// one.
type RecordWriter interface {
	Write(rec arrow.RecordBatch) error
}

// Writer writes a snapshot's layer to a RecordWriter, from the
// snapshot's rows in their order. It is not safe for concurrent use.
type Writer struct {
	w        RecordWriter
	schema   *arrow.Schema
	ds       *spoc.Dataset
	points   *Points
	decimals []uint8
	mem      memory.Allocator
	rows     int
	account  Account
	// bbox is the points' bounding box: xmin, ymin, xmax, ymax.
	bbox [4]float64
}

// NewWriter writes the layer of a snapshot of ds whose points were
// counted (Points, finished) and whose decimal places the decoder gave
// (spoc.Decoder.CoordinateDecimals, one per row).
func NewWriter(w RecordWriter, ds *spoc.Dataset, points *Points, decimals []uint8) (*Writer, error) {
	if !HasLayer(ds) {
		return nil, fmt.Errorf("%w: %s", ErrNoPoint, ds.Name)
	}
	points.Finish()
	return &Writer{
		w: w, schema: Schema(ds), ds: ds, points: points, decimals: decimals, mem: memory.DefaultAllocator,
		bbox: [4]float64{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)},
	}, nil
}

// Write writes the layer's rows of rec, the snapshot's next rows: a batch
// of its columns, or of its SnapshotColumns at least.
func (w *Writer) Write(rec arrow.RecordBatch) error {
	out, err := w.Batch(rec)
	if err != nil {
		return err
	}
	defer out.Release()
	return w.w.Write(out)
}

// Batch is the layer's rows of rec, the snapshot's next rows, counted in
// the account but not written: a caller that encodes the layer on
// another goroutine gives each batch to the RecordWriter itself, in
// order. The caller releases the batch.
func (w *Writer) Batch(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	n := int(rec.NumRows())
	if w.rows+n > len(w.decimals) {
		return nil, fmt.Errorf("geo: %d rows of the snapshot, and the decimal places of %d", w.rows+n, len(w.decimals))
	}
	lon, lat, _ := w.ds.Point()
	lons, lats, err := pointColumns(rec, w.ds.Columns[lon].Name, w.ds.Columns[lat].Name)
	if err != nil {
		return nil, err
	}
	var area *array.Float64
	if idx := rec.Schema().FieldIndices("planted_area"); len(idx) > 0 {
		area, _ = rec.Column(idx[0]).(*array.Float64)
	}
	b := array.NewRecordBuilder(w.mem, w.schema)
	defer b.Release()
	b.Reserve(n)
	geometry := b.Field(1).(*array.BinaryBuilder)
	bbox := b.Field(2).(*array.StructBuilder)
	corners := [4]*array.Float64Builder{}
	for k := range corners {
		corners[k] = bbox.FieldBuilder(k).(*array.Float64Builder)
	}
	inMalaysia := b.Field(3).(*array.BooleanBuilder)
	decimals := b.Field(4).(*array.Int32Builder)
	shared := b.Field(5).(*array.Int32Builder)
	needsPolygon := b.Field(6).(*array.BooleanBuilder)
	var wkb [21]byte
	for i := range n {
		x, y, ok := pointAt(lons, lats, i)
		if !ok {
			geometry.AppendNull()
			bbox.AppendNull()
			inMalaysia.AppendNull()
			decimals.AppendNull()
			shared.AppendNull()
			w.account.WithoutPoint++
		} else {
			w.account.WithPoint++
			geometry.Append(appendPoint(wkb[:0], x, y))
			bbox.Append(true)
			for k, v := range [4]float64{x, y, x, y} {
				corners[k].Append(v)
			}
			w.bbox = [4]float64{min(w.bbox[0], x), min(w.bbox[1], y), max(w.bbox[2], x), max(w.bbox[3], y)}
			in := boundary.InMalaysia(x, y)
			inMalaysia.Append(in)
			if !in {
				w.account.OutsideMalaysia++
			}
			places := w.decimals[w.rows+i]
			decimals.Append(int32(places))
			if places < MinDecimals {
				w.account.FewerDecimals++
			}
			plots := w.points.Plots(x, y)
			shared.Append(int32(min(plots, math.MaxInt32)))
			if plots > 1 {
				w.account.SharingAPoint++
			}
		}
		switch {
		case area == nil || area.IsNull(i):
			needsPolygon.AppendNull()
		case area.Value(i) > PolygonAreaHectares:
			needsPolygon.Append(true)
			w.account.OverPolygonArea++
		default:
			needsPolygon.Append(false)
		}
	}
	w.account.Plots += int64(n)
	w.rows += n
	cols := make([]arrow.Array, w.schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for k := 1; k < madeColumns; k++ {
		cols[k] = b.Field(k).NewArray()
	}
	// The key and the carried columns are the snapshot's, as they are.
	for k := range w.schema.NumFields() {
		if k >= 1 && k < madeColumns {
			continue
		}
		name := w.schema.Field(k).Name
		idx := rec.Schema().FieldIndices(name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("geo: the batch has no column %s", name)
		}
		c := rec.Column(idx[0])
		if !arrow.TypeEqual(c.DataType(), w.schema.Field(k).Type) {
			return nil, fmt.Errorf("geo: column %s is %s, want %s", name, c.DataType(), w.schema.Field(k).Type)
		}
		c.Retain()
		cols[k] = c
	}
	return array.NewRecordBatch(w.schema, cols, int64(n)), nil
}

// madeColumns ends the columns of Schema before the carried ones: the
// key, then the six the layer makes (Geometry to NeedsPolygon).
const madeColumns = 7

// appendPoint appends the little-endian WKB of the point (x, y).
func appendPoint(b []byte, x, y float64) []byte {
	b = append(b, 1)                           // little-endian
	b = binary.LittleEndian.AppendUint32(b, 1) // Point
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(y))
}

// Rows is the number of rows written.
func (w *Writer) Rows() int64 { return int64(w.rows) }

// Account is the count of each check over the rows written.
func (w *Writer) Account() Account { return w.account }

// Check says whether the layer has a row for every decimal count the
// decoder gave: the snapshot was read whole.
func (w *Writer) Check() error {
	if w.rows != len(w.decimals) {
		return fmt.Errorf("geo: %d rows of the snapshot read, and the decimal places of %d", w.rows, len(w.decimals))
	}
	return nil
}

// Metadata is the GeoParquet metadata of the rows written, the value of
// MetadataKey: the version, the primary column, and the geometry
// column's encoding, types, bounding box and covering. The CRS is left
// out, which GeoParquet defines as OGC:CRS84 (longitude, latitude on
// WGS84); so is the bounding box when no row has a point.
func (w *Writer) Metadata() (string, error) {
	type covering struct {
		XMin [2]string `json:"xmin"`
		YMin [2]string `json:"ymin"`
		XMax [2]string `json:"xmax"`
		YMax [2]string `json:"ymax"`
	}
	type column struct {
		Encoding      string              `json:"encoding"`
		GeometryTypes []string            `json:"geometry_types"`
		BBox          []float64           `json:"bbox,omitempty"`
		Covering      map[string]covering `json:"covering"`
	}
	col := column{
		Encoding:      "WKB",
		GeometryTypes: []string{"Point"},
		Covering: map[string]covering{"bbox": {
			XMin: [2]string{BBox, "xmin"}, YMin: [2]string{BBox, "ymin"},
			XMax: [2]string{BBox, "xmax"}, YMax: [2]string{BBox, "ymax"},
		}},
	}
	if w.account.WithPoint > 0 {
		col.BBox = w.bbox[:]
	}
	b, err := json.Marshal(struct {
		Version       string            `json:"version"`
		PrimaryColumn string            `json:"primary_column"`
		Columns       map[string]column `json:"columns"`
	}{Version, Geometry, map[string]column{Geometry: col}})
	return string(b), err
}
