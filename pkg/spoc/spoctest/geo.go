package spoctest

import (
	"strconv"
	"strings"

	"github.com/calee-data/mspo-spoc/pkg/geo"
)

// GeoRow is what a record's row of the geolocation layer (package geo)
// must say, as the generator knows it from what it wrote
// (GenOptions.Geo).
type GeoRow struct {
	ID int64
	// Case names the planted case (GeoCases); "" for a record of the
	// generator's own.
	Case string
	// Point says whether both coordinates are valid, the point being
	// (Lon, Lat); without one the row's geometry, in_malaysia,
	// coordinate_decimals and shared_point_plots are null.
	Point    bool
	Lon, Lat float64
	// InMalaysia is stated by hand for a planted case and true for the
	// generator's own points, which lie well inland (see states).
	InMalaysia bool
	// Decimals is the fewer decimal places of the two coordinates as
	// written, stated by hand for a planted case.
	Decimals int32
	// SharedPointPlots is how many records of the body, with an id, have
	// exactly this point (-0 being 0).
	SharedPointPlots int32
	// Area says whether the record has a valid planted_area; without one
	// the row's needs_polygon is null.
	Area         bool
	NeedsPolygon bool // planted_area over 4 ha
}

// The due-diligence thresholds the rows are stated against, from the
// regulation (Regulation (EU) 2023/1115) rather than from package geo,
// so that a test of the layer checks geo's against them.
const (
	minDecimals         = 6
	polygonAreaHectares = 4.0
)

// geoCase is a record's coordinates and planted area as a planted case
// writes them, and what the record's row of the layer must say.
type geoCase struct {
	name           string
	lat, lon, area string // JSON values; "" leaves the field out
	point          bool   // both coordinates valid
	in             bool   // the point is on Malaysia's land (see docs/geo.md)
	decimals       int32  // the fewer decimal places of the two, as written
	// bad is, for a case without a point, how the decoder takes the
	// latitude and the longitude: "null" (null or missing), "" (valid),
	// or the reason it finds the value invalid.
	bad [2]string
}

// geoCases are the cases GenOptions.Geo plants, once each and in this
// order, then placeholder. The places outside Malaysia are those
// docs/geo.md says the boundary leaves out; those inside lie tens of
// kilometres from any coast or border, beyond the boundary's
// generalisation. Their areas fall either side of 4 ha.
var geoCases = []geoCase{
	{name: "Singapore", lat: `"1.352083"`, lon: `"103.819836"`, area: `"1.5"`, point: true, decimals: 6},
	{name: "South China Sea", lat: `"4.000000"`, lon: `"105.500000"`, area: `"3.99"`, point: true, decimals: 6},
	{name: "Celebes Sea, numbers of one decimal", lat: `3.5`, lon: `119.5`, area: `4`, point: true, decimals: 1},
	{name: "Pontianak, Kalimantan", lat: `"-0.026330"`, lon: `"109.342503"`, area: `"4.00"`, point: true, decimals: 6},
	{name: "Palangka Raya, Kalimantan, 4 decimals", lat: `"-2.2161"`, lon: `"113.9135"`, area: `"4.01"`, point: true, decimals: 4},
	{name: "Medan, Sumatra", lat: `"3.595196"`, lon: `"98.672226"`, area: `5`, point: true, decimals: 6},
	{name: "Hat Yai, southern Thailand", lat: `"7.008620"`, lon: `"100.474688"`, area: `"5.0"`, point: true, decimals: 6},
	{name: "Yala, southern Thailand, numbers of 5 decimals", lat: `6.54250`, lon: `101.28130`, area: `null`, point: true, decimals: 5},
	{name: "Bandar Seri Begawan, Brunei, 8 decimals", lat: `"4.89030000"`, lon: `"114.94020000"`, area: `"2"`, point: true, decimals: 8},
	{name: "0,0 as numbers", lat: `0`, lon: `0`, area: `"3.99"`, point: true, decimals: 0},
	{name: "0,0 with longitude -0", lat: `0`, lon: `-0`, area: `"4.0001"`, point: true, decimals: 0},
	{name: "0,0 of 6 decimals, longitude negative", lat: `"0.000000"`, lon: `"-0.000000"`, area: `1`, point: true, decimals: 6},

	{name: "Kuala Lumpur", lat: `"3.139003"`, lon: `"101.686855"`, area: `"2.5"`, point: true, in: true, decimals: 6},
	{name: "Kuala Lipis, Pahang, numbers of 6 decimals", lat: `4.184000`, lon: `102.048000`, area: `4`, point: true, in: true, decimals: 6},
	{name: "Kuala Lipis again, 8 and 4 decimals", lat: `"4.18400000"`, lon: `"102.0480"`, area: `"1"`, point: true, in: true, decimals: 4},
	{name: "Keningau, Sabah, 5 decimals", lat: `"5.33780"`, lon: `"116.16020"`, area: `"4.00"`, point: true, in: true, decimals: 5},
	{name: "Ipoh, Perak, numbers of 5 decimals", lat: `4.59750`, lon: `101.09010`, area: `4.01`, point: true, in: true, decimals: 5},
	{name: "Kluang, Johor, 4 decimals", lat: `"2.0301"`, lon: `"103.3185"`, area: `"3.99"`, point: true, in: true, decimals: 4},
	{name: "Kapit, Sarawak, numbers of 4 decimals", lat: `2.0167`, lon: `112.9333`, area: `5`, point: true, in: true, decimals: 4},
	{name: "Sibu, Sarawak, 8 decimals", lat: `"2.30000000"`, lon: `"111.80000000"`, area: `"8.5"`, point: true, in: true, decimals: 8},
	{name: "Temerloh, Pahang, numbers of 8 decimals", lat: `3.44830000`, lon: `102.41770000`, area: `"4.0"`, point: true, in: true, decimals: 8},
	{name: "Pahang, whole degrees", lat: `3`, lon: `102`, area: `null`, point: true, in: true, decimals: 0},
	{name: "Seberang Perai, a latitude of 22 decimals", lat: `"5.5510600000000000000001"`, lon: `"100.487700"`, area: `"1"`, point: true, in: true, decimals: 6},

	{name: "null coordinates", lat: `null`, lon: `null`, area: `"6"`, bad: [2]string{"null", "null"}},
	{name: "no coordinate fields, no area", bad: [2]string{"null", "null"}},
	{name: "null latitude", lat: `null`, lon: `"101.5"`, area: `"4.5"`, bad: [2]string{"null", ""}},
	{name: "no latitude field", lon: `"101.5"`, area: `null`, bad: [2]string{"null", ""}},
	{name: "latitude off the globe", lat: `"95.1"`, lon: `"101.5"`, area: `"-"`, bad: [2]string{"out_of_range", ""}},
	{name: "longitude 1e400", lat: `"3.1"`, lon: `1e400`, area: `"3"`, bad: [2]string{"", "out_of_range"}},
	{name: "NaN and Infinity as strings", lat: `"NaN"`, lon: `"Infinity"`, area: `4.02`, bad: [2]string{"not_a_number", "not_a_number"}},
	{name: "empty coordinates", lat: `""`, lon: `" "`, area: `"0.5"`, bad: [2]string{"empty", "empty"}},
}

// placeholder is the point of every GenOptions.Geo-th record once each
// of geoCases is planted: one point that many plots share, as a
// placeholder copied from plot to plot would be. Its areas take turns
// among placeholderAreas.
var placeholder = geoCase{name: "placeholder shared by many plots", lat: `"3.800000"`, lon: `"102.300000"`, point: true, in: true, decimals: 6}

var placeholderAreas = []string{`"3.99"`, `4`, `"4.01"`, `5`, `null`, `"2.5"`}

// GeoCases names the cases GenOptions.Geo plants, in the order it
// plants them (GeoRow.Case): each once, and the last one on every
// Geo-th record after.
func GeoCases() []string {
	var names []string
	for _, c := range geoCases {
		names = append(names, c.name)
	}
	return append(names, placeholder.name)
}

// geoPlan is what GenOptions.Geo makes the generator keep: a row per
// record written with its id, and the plots at each point, until the
// body is written. It grows with the body, as Generate otherwise does
// not.
type geoPlan struct {
	every int
	area  bool // the dataset has a planted_area column
	rows  []GeoRow
	plots map[[2]float64]int32
}

// caseOf is the case planted on record i (from 0), if any.
func (pl *geoPlan) caseOf(i int) (geoCase, bool) {
	if pl == nil || !every(pl.every, i) {
		return geoCase{}, false
	}
	if k := (i+1)/pl.every - 1; k < len(geoCases) {
		return geoCases[k], true
	}
	c := placeholder
	c.area = placeholderAreas[((i+1)/pl.every-1-len(geoCases))%len(placeholderAreas)]
	return c, true
}

// add keeps row, whose Lon and Lat are set if it has a point.
func (pl *geoPlan) add(row GeoRow) {
	if row.Point {
		pl.plots[[2]float64{row.Lon, row.Lat}]++
	}
	pl.rows = append(pl.rows, row)
}

// finish sets the rows' shared counts, and p's rows and account.
func (pl *geoPlan) finish(p *Planted) {
	a := geo.Account{Plots: int64(len(pl.rows))}
	for k := range pl.rows {
		r := &pl.rows[k]
		if !pl.area {
			r.Area, r.NeedsPolygon = false, false
		}
		if r.Area && r.NeedsPolygon {
			a.OverPolygonArea++
		}
		if !r.Point {
			a.WithoutPoint++
			continue
		}
		a.WithPoint++
		r.SharedPointPlots = pl.plots[[2]float64{r.Lon, r.Lat}]
		if !r.InMalaysia {
			a.OutsideMalaysia++
		}
		if r.Decimals < minDecimals {
			a.FewerDecimals++
		}
		if r.SharedPointPlots > 1 {
			a.SharingAPoint++
		}
	}
	p.Geo, p.GeoAccount = pl.rows, a
}

// number is the value of v, a JSON number or a string of one that
// strconv takes; -0 is 0.
func number(v string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(strings.Trim(v, `"`)), 64)
	return f + 0, err == nil
}

// areaValue is the planted area c writes, as the decoder takes it: ok
// says whether it is valid, and how why not ("null" for null or missing,
// or the reason it is invalid).
func (c geoCase) areaValue() (v float64, ok bool, how string) {
	switch c.area {
	case "", "null":
		return 0, false, "null"
	case `"-"`:
		return 0, false, "not_a_number"
	}
	v, ok = number(c.area)
	if !ok {
		panic("spoctest: the planted area " + c.area + " of " + c.name + " is not a number")
	}
	return v, true, ""
}

// appendArea appends c's planted_area field, unless c leaves it out.
func (c geoCase) appendArea(b []byte) []byte {
	if c.area == "" {
		return b
	}
	b = appendKey(b, "planted_area")
	b = append(b, c.area...)
	return append(b, ',')
}

// appendPoint appends c's coordinate fields and SPOC's geolocation, and
// returns its point, if it has one.
func (c geoCase) appendPoint(b []byte) (_ []byte, lon, lat float64) {
	for _, f := range [2][2]string{{"gps_coordinate_lat", c.lat}, {"gps_coordinate_long", c.lon}} {
		if f[1] != "" {
			b = appendKey(b, f[0])
			b = append(b, f[1]...)
			b = append(b, ',')
		}
	}
	if c.lat != "" && c.lon != "" && c.lat != "null" && c.lon != "null" {
		b = appendStr(b, "geolocation", strings.Trim(c.lat, `"`)+", "+strings.Trim(c.lon, `"`))
	} else {
		b = append(b, `"geolocation":null,`...)
	}
	if !c.point {
		return b, 0, 0
	}
	lon, okLon := number(c.lon)
	lat, okLat := number(c.lat)
	if !okLon || !okLat {
		panic("spoctest: the planted point of " + c.name + " does not parse")
	}
	return b, lon, lat
}
