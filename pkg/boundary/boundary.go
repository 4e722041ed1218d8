// Package boundary says whether a point lies in Malaysia's land boundary.
//
// The boundary is Natural Earth's 10m admin-0 countries (public domain),
// reduced to Malaysia by the generator in internal/boundarygen and embedded
// in the binary; data/README.md names the source, its precision and how to
// regenerate. It is parsed and indexed once, on first use.
//
// # Tolerance
//
// The source is drawn at 1:10,000,000 and quantized to about 400 m of
// longitude and 190 m of latitude, so a plot on the coast or on the Thai,
// Indonesian or Bruneian border may fall just outside the drawn line. A
// point outside the polygons but within [Tolerance] of any boundary segment
// therefore counts as in.
//
// Distances use an equirectangular approximation scaled by cos(latitude) of
// the point: across a 1 km neighbourhood at Malaysia's latitudes (0.8° to
// 7.4° N) its error is far below a metre, well under the source's precision.
//
// # Holes and islands
//
// Inside is decided by counting the crossings of a ray from the point
// eastwards over every ring (even-odd), so islands and any holes need no
// special case. The data has no rings that cross the antimeridian.
package boundary

//go:generate go run ./internal/boundarygen -in ${WORLD_ATLAS_COUNTRIES} -out data/malaysia.bin

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
)

// Tolerance is how far outside the drawn boundary a point may be and still
// count as in Malaysia, in metres.
const Tolerance = 1000.0

//go:embed data/malaysia.bin
var malaysiaData []byte

var malaysia = sync.OnceValue(func() *shape {
	s, err := parse(malaysiaData)
	if err != nil {
		// The data is embedded and its parse is tested, so this is a
		// build defect, not a runtime condition.
		panic(fmt.Sprintf("boundary: embedded Malaysia data: %v", err))
	}
	return s
})

// InMalaysia reports whether the point (longitude, latitude in degrees,
// WGS84 / OGC:CRS84 axis order) is in Malaysia's land boundary or within
// [Tolerance] of it. NaN and infinite coordinates are not in Malaysia.
// It is safe for concurrent use.
func InMalaysia(lon, lat float64) bool {
	return malaysia().contains(lon, lat)
}

// errFormat is returned by parse for data that is not a boundary file.
var errFormat = errors.New("boundary: bad data")

const (
	bandHeight      = 0.01                      // degrees of latitude per band of the ray-cast index
	cellSize        = 0.02                      // degrees per side of a cell of the distance index
	metresPerDegree = 6371008.8 * math.Pi / 180 // along a great circle of the mean Earth radius
)

// segment is one edge of a ring, in degrees.
type segment struct{ x1, y1, x2, y2 float64 }

// shape is a set of rings indexed for point-in-polygon and near-boundary
// queries. Build one with parse.
type shape struct {
	// Extent of all vertices, in degrees.
	MinLon, MinLat, MaxLon, MaxLat float64

	segs []segment

	// bands[i] lists the segments whose latitude span meets band i, so
	// that a ray cast reads only the edges near the point's latitude.
	bands [][]int32

	// cells lists, per cell of a grid over the extent grown by the
	// tolerance, the segments whose box grown by the tolerance meets it.
	cells        [][]int32
	cols, rows   int
	margin       float64 // tolerance in degrees, generous for every latitude here
	gMinX, gMinY float64
}

// parse reads the binary boundary format written by the generator and
// builds its indexes.
func parse(data []byte) (*shape, error) {
	if len(data) < 8 || string(data[:4]) != "BND1" {
		return nil, fmt.Errorf("%w: no BND1 header", errFormat)
	}
	n := binary.LittleEndian.Uint32(data[4:])
	off := 8
	s := &shape{
		MinLon: math.Inf(1), MinLat: math.Inf(1),
		MaxLon: math.Inf(-1), MaxLat: math.Inf(-1),
	}
	for r := range n {
		if len(data)-off < 4 {
			return nil, fmt.Errorf("%w: ring %d: truncated", errFormat, r)
		}
		k := int(binary.LittleEndian.Uint32(data[off:]))
		off += 4
		if k < 3 || (len(data)-off)/8 < k {
			return nil, fmt.Errorf("%w: ring %d: %d vertices", errFormat, r, k)
		}
		pt := func(i int) (float64, float64) {
			p := data[off+8*i:]
			return float64(int32(binary.LittleEndian.Uint32(p))) / 1e6,
				float64(int32(binary.LittleEndian.Uint32(p[4:]))) / 1e6
		}
		for i := range k {
			x1, y1 := pt(i)
			x2, y2 := pt((i + 1) % k)
			s.segs = append(s.segs, segment{x1, y1, x2, y2})
			s.MinLon, s.MaxLon = min(s.MinLon, x1), max(s.MaxLon, x1)
			s.MinLat, s.MaxLat = min(s.MinLat, y1), max(s.MaxLat, y1)
		}
		off += 8 * k
	}
	if off != len(data) {
		return nil, fmt.Errorf("%w: %d trailing bytes", errFormat, len(data)-off)
	}
	if len(s.segs) == 0 {
		return nil, fmt.Errorf("%w: no rings", errFormat)
	}
	s.index()
	return s, nil
}

func (s *shape) index() {
	nb := int(math.Ceil((s.MaxLat-s.MinLat)/bandHeight)) + 1
	s.bands = make([][]int32, nb)
	for i, g := range s.segs {
		lo, hi := s.band(min(g.y1, g.y2)), s.band(max(g.y1, g.y2))
		for b := lo; b <= hi; b++ {
			s.bands[b] = append(s.bands[b], int32(i))
		}
	}

	// One degree of longitude is shortest at the highest latitude, so
	// the tolerance in degrees is largest there.
	s.margin = Tolerance / (metresPerDegree * math.Cos(math.Max(math.Abs(s.MinLat), math.Abs(s.MaxLat))*math.Pi/180))
	s.gMinX, s.gMinY = s.MinLon-s.margin, s.MinLat-s.margin
	s.cols = int((s.MaxLon+s.margin-s.gMinX)/cellSize) + 1
	s.rows = int((s.MaxLat+s.margin-s.gMinY)/cellSize) + 1
	s.cells = make([][]int32, s.cols*s.rows)
	for i, g := range s.segs {
		c0, r0 := s.cell(min(g.x1, g.x2)-s.margin, min(g.y1, g.y2)-s.margin)
		c1, r1 := s.cell(max(g.x1, g.x2)+s.margin, max(g.y1, g.y2)+s.margin)
		for r := r0; r <= r1; r++ {
			for c := c0; c <= c1; c++ {
				s.cells[r*s.cols+c] = append(s.cells[r*s.cols+c], int32(i))
			}
		}
	}
}

func (s *shape) band(lat float64) int {
	return min(max(int((lat-s.MinLat)/bandHeight), 0), len(s.bands)-1)
}

func (s *shape) cell(lon, lat float64) (col, row int) {
	col = min(max(int((lon-s.gMinX)/cellSize), 0), s.cols-1)
	row = min(max(int((lat-s.gMinY)/cellSize), 0), s.rows-1)
	return col, row
}

// contains reports whether the point is inside the shape or within
// Tolerance of its boundary. NaN and infinite coordinates are outside.
func (s *shape) contains(lon, lat float64) bool {
	// Written so that NaN fails every comparison and lands outside.
	if !(lon >= s.MinLon-s.margin && lon <= s.MaxLon+s.margin &&
		lat >= s.MinLat-s.margin && lat <= s.MaxLat+s.margin) {
		return false
	}
	return s.inside(lon, lat) || s.near(lon, lat)
}

// inside casts a ray from the point towards increasing longitude and counts
// the edges it crosses.
func (s *shape) inside(lon, lat float64) bool {
	if lat < s.MinLat || lat > s.MaxLat {
		return false
	}
	in := false
	for _, i := range s.bands[s.band(lat)] {
		if s.segs[i].crossedBy(lon, lat) {
			in = !in
		}
	}
	return in
}

// crossedBy reports whether a ray from the point towards increasing
// longitude crosses the edge. The edge is half-open in latitude, so a ray
// through a shared vertex counts it once.
func (g *segment) crossedBy(lon, lat float64) bool {
	return (g.y1 > lat) != (g.y2 > lat) &&
		lon < g.x1+(lat-g.y1)*(g.x2-g.x1)/(g.y2-g.y1)
}

// near reports whether any boundary edge is within Tolerance of the point.
func (s *shape) near(lon, lat float64) bool {
	c, r := s.cell(lon, lat)
	kx := metresPerDegree * math.Cos(lat*math.Pi/180)
	for _, i := range s.cells[r*s.cols+c] {
		if s.segs[i].distance2(lon, lat, kx) <= Tolerance*Tolerance {
			return true
		}
	}
	return false
}

// distance2 is the squared distance in metres from the point to the edge,
// on a local plane with the point at the origin: kx metres per degree of
// longitude at the point's latitude, metresPerDegree per degree of latitude.
func (g *segment) distance2(lon, lat, kx float64) float64 {
	ax, ay := (g.x1-lon)*kx, (g.y1-lat)*metresPerDegree
	bx, by := (g.x2-lon)*kx, (g.y2-lat)*metresPerDegree
	dx, dy := bx-ax, by-ay
	t := 0.0
	if l2 := dx*dx + dy*dy; l2 > 0 {
		t = min(max(-(ax*dx+ay*dy)/l2, 0), 1)
	}
	px, py := ax+t*dx, ay+t*dy
	return px*px + py*py
}
