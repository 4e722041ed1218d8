package spoctest

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/geo"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// GenOptions configures Generate.
type GenOptions struct {
	// Dataset is the list the body imitates (default spoc.SPOC): its
	// records are where its Records path says and hold the fields it
	// declares (see Generate), so that spoc.OSH's are under data.data,
	// with entity_code and without the mukim, zone, spoc_code,
	// record_status, deleted and geolocation fields, and spoc.GM's have
	// gm_code for spoc_code, no geolocation, coordinates of eight
	// decimals and now and then a certified area above the planted one.
	Dataset *spoc.Dataset
	Records int    // elements of the records array
	Seed    uint64 // the same seed gives the same body, byte for byte
	// DropEvery, when above zero, makes every DropEvery-th record lack
	// its entity_smallholder_id (the job drops such records).
	DropEvery int
	// NextDay makes the body of a later day: the same records as the same
	// Seed gives, changed as it says. Planted then describes the records
	// written, but for DuplicateIDs and MPOBWithSeveralPlots, which are
	// those of the day before.
	NextDay Changes
	// Long, when Long.Every is above zero, makes every Long.Every-th
	// record (counting from 1) far larger than a real plot: Long.Bytes
	// of random letters in each of four declared string fields
	// (entity_name, name, lot_no and track_id). Within the decoder's
	// caps when Long.Bytes is, such records test memory that grows with
	// the size of records rather than their number.
	Long LongValues
	// Geo, when above zero, plants geolocation cases in a body of a
	// dataset with a point (spoc.Dataset.Point): every Geo-th record
	// (counting from 1) takes the coordinates and planted area of the
	// next of GeoCases instead of its own (points outside Malaysia and
	// in it, missing and invalid ones, 0 to 22 decimals, areas either
	// side of 4 ha), and once each is planted, the last: one point many
	// plots share. The generator's own points then lie well inland, so
	// that whether each point is in Malaysia is known, and Planted.Geo
	// holds the row of the geolocation layer every record written with
	// its id must have. Generate then keeps a row and a point per
	// record until the body is written.
	Geo int
}

// LongValues is which records carry long values, and how long.
type LongValues struct {
	Every int
	Bytes int
	// Moving puts the long values in four string fields that change from
	// one long record to the next, instead of longFields: every column
	// then holds a long value now and then, the worst case for what a
	// Parquet writer keeps per column (a page's values, its statistics).
	Moving bool
}

// longFields are the declared string fields a long record fills: two
// dictionary-encoded columns and two plain ones.
var longFields = map[string]bool{"entity_name": true, "name": true, "lot_no": true, "track_id": true}

// Changes is how a next day's body differs from the day before. Every
// n-th record (counting from 1) is affected; zero means none.
type Changes struct {
	RemoveEvery int // the record is gone
	StatusEvery int // its cert_status is the next of the four
	AreaEvery   int // its certified_area is one hectare more
	Added       int // records with new ids after the last one
}

// Planted is what a generated body holds, counted while it was written,
// so that tests can check the decoder's statistics against it.
type Planted struct {
	Records int // elements of the records array, dropped ones included
	// Dropped counts records without an id (see GenOptions.DropEvery).
	Dropped int
	// Nulls counts, per tidy column, the JSON nulls and missing fields in
	// records that keep their id; invalid values are not included.
	Nulls map[string]int
	// Invalid counts, per tidy column and reason, the values planted to be
	// unusable ("-", "N/A", "", coordinates off the globe, bad dates).
	Invalid map[string]map[string]int
	// DuplicateIDs counts records that repeat an earlier record's id.
	DuplicateIDs int
	// MPOBWithSeveralPlots counts MPOB numbers given to more than one plot.
	MPOBWithSeveralPlots int
	ByCertStatus         map[string]int
	Deleted              int
	IDSum                int64 // sum of the ids of records that keep theirs
	// OverCertified counts records that keep their id and whose
	// certified area exceeds their planted area (GM's upstream, or a
	// next day's NextDay.AreaEvery).
	OverCertified int
	// Geo is, with GenOptions.Geo, the row of the geolocation layer of
	// each record written with its id, in the body's order; GeoAccount
	// is the layer's account of them.
	Geo        []GeoRow
	GeoAccount geo.Account
}

func (p *Planted) invalid(column, reason string) {
	if p.Invalid[column] == nil {
		p.Invalid[column] = map[string]int{}
	}
	p.Invalid[column][reason]++
}

// Generate writes a body of the public endpoint's shape with opts.Records
// realistic records, and the quirks of the published data-quality notes:
// null and junk coordinates, coordinates with a slipped decimal point,
// districts and mukims mostly null, MPOB numbers shared by several plots,
// all four certification statuses, deleted records, a few ids repeated,
// and a few unparseable dates. It streams: memory does not depend on
// opts.Records.
//
// A reference list (spoc.States, spoc.Zones) is its fixed list instead
// (see referenceLists).
//
// The generator makes the records of SPOC's upstream; another dataset's
// keep the fields it declares, in the same order, and Planted counts its
// columns only. Of the fields a dataset may declare that SPOC does not,
// the generator makes entity_code and gm_code (in spoc_code's place);
// any other is an error.
func Generate(w io.Writer, opts GenOptions) (Planted, error) {
	ds := opts.Dataset
	if ds == nil {
		ds = spoc.SPOC
	}
	if names, ok := referenceLists[ds]; ok {
		return generateReference(w, ds, names, opts)
	}
	shape, err := shapeOf(ds)
	if err != nil {
		return Planted{}, err
	}
	g := &generator{
		rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed)),
		p: Planted{
			Nulls:        map[string]int{},
			Invalid:      map[string]map[string]int{},
			ByCertStatus: map[string]int{},
		},
		opts: opts,
		up:   shape.up,
	}
	if opts.Geo > 0 {
		if _, _, ok := ds.Point(); !ok {
			return Planted{}, fmt.Errorf("spoctest: dataset %q has no point to plant geolocation cases in", ds.Name)
		}
		if opts.Long.Moving {
			// Moving long values would overwrite the planted coordinates.
			return Planted{}, errors.New("spoctest: Geo and Long.Moving do not go together")
		}
		g.geo = &geoPlan{every: opts.Geo, area: shape.columns["planted_area"], plots: map[[2]float64]int32{}}
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	bw.WriteString(shape.head)
	var buf []byte
	written := 0
	for i := range opts.Records + opts.NextDay.Added {
		removed := every(opts.NextDay.RemoveEvery, i) && i < opts.Records
		buf = buf[:0]
		if written > 0 {
			buf = append(buf, ',')
		}
		// A removed record is still generated, unwritten, so that the
		// records after it are those of the day before.
		start := len(buf)
		buf = g.record(buf, i, removed)
		if every(opts.Long.Every, i) {
			buf = append(buf[:start], g.lengthen(buf[start:])...)
		}
		if shape.reshapes() {
			buf = append(buf[:start], shape.record(buf[start:])...)
		}
		if removed {
			continue
		}
		written++
		if _, err := bw.Write(buf); err != nil {
			return g.p, err
		}
	}
	bw.WriteString(`],"total":` + strconv.Itoa(written) + `}}`)
	shape.planted(&g.p)
	if g.geo != nil {
		g.geo.finish(&g.p)
	}
	return g.p, bw.Flush()
}

// upstream is what a list's upstream sends and its Dataset does not say:
// around the records array, the value of "status" and the page fields
// before the array; in the records, the decimals of the coordinates and
// how often the certified area exceeds the planted one.
type upstream struct {
	status, page string
	// coordDecimals is the decimals of a coordinate; 0 means SPOC's six.
	coordDecimals int
	// overCertified is the share of records certified for more than
	// they have planted.
	overCertified float64
}

// upstreams are the lists' upstreams; a dataset without one gets SPOC's.
// GM's eight decimals and areas certified above the planted ones are
// those of its documented example ("1.57191667"; 5.26 ha certified of
// 5.07 planted); how many records are so is not documented, and 5%
// plants some in any body a test would generate.
var upstreams = map[*spoc.Dataset]upstream{
	spoc.SPOC: {status: `"success"`, page: `"page_size":"10"`},
	spoc.OSH:  {status: `true`, page: `"page":1,"page_size":10`},
	spoc.GM:   {status: `"success"`, page: `"page_size":"10"`, coordDecimals: 8, overCertified: 0.05},
}

// entityCode is the field the generator makes, after the id, for a
// dataset that declares it (OSH): "ORS" and the id's last five digits.
const entityCode = "entity_code"

// gmCode is the field the generator makes in spoc_code's place for a
// dataset that declares it (GM): "GRM10" and five digits that follow
// from the SPOC code, so that a few dozen group managers hold the plots.
const gmCode = "gm_code"

// shape is how a dataset's body differs from the generated SPOC one.
type shape struct {
	head       string          // the body up to the first record
	skip       map[string]bool // fields SPOC's upstream sends and the dataset does not declare
	entityCode bool
	gmCode     bool
	columns    map[string]bool // the dataset's tidy columns
	deleted    bool            // the dataset has a RoleDeleted column
	up         upstream
}

// shapeOf is ds's shape: its envelope and records path, and the fields
// it declares (its columns' and Dropped) compared with SPOC's.
func shapeOf(ds *spoc.Dataset) (shape, error) {
	want := declared(ds)
	up, ok := upstreams[ds]
	if !ok {
		up = upstreams[spoc.SPOC]
	}
	s := shape{
		head:       `{"status":` + up.status + `,"message":"OK","` + ds.Records[0] + `":{` + up.page + `,"` + ds.Records[1] + `":[`,
		skip:       map[string]bool{},
		entityCode: want[entityCode],
		gmCode:     want[gmCode],
		columns:    map[string]bool{},
		up:         up,
	}
	for f := range declared(spoc.SPOC) {
		if !want[f] {
			s.skip[f] = true
		}
		delete(want, f)
	}
	delete(want, entityCode)
	delete(want, gmCode)
	if len(want) > 0 {
		return shape{}, fmt.Errorf("spoctest: dataset %q declares fields the generator does not make: %q", ds.Name, slices.Sorted(maps.Keys(want)))
	}
	for _, c := range ds.Columns {
		s.columns[c.Name] = true
		s.deleted = s.deleted || c.Role == spoc.RoleDeleted
	}
	return s, nil
}

// declared is the set of JSON fields ds declares.
func declared(ds *spoc.Dataset) map[string]bool {
	fields := map[string]bool{}
	for _, c := range ds.Columns {
		if c.JSON != "" {
			fields[c.JSON] = true
		}
	}
	for _, f := range ds.Dropped {
		fields[f] = true
	}
	return fields
}

// reshapes says whether the dataset's records are not SPOC's.
func (s shape) reshapes() bool { return len(s.skip) > 0 || s.entityCode || s.gmCode }

// planted leaves out of p what the dataset has no column for.
func (s shape) planted(p *Planted) {
	maps.DeleteFunc(p.Nulls, func(col string, _ int) bool { return !s.columns[col] })
	maps.DeleteFunc(p.Invalid, func(col string, _ map[string]int) bool { return !s.columns[col] })
	if !s.deleted {
		p.Deleted = 0
	}
}

// record reshapes a generated SPOC record as the dataset's upstream
// sends one: the fields it does not declare left out, entity_code after
// the id and gm_code for spoc_code if it declares them. The record is the
// generator's own output: an object of scalar values.
func (s shape) record(rec []byte) []byte {
	out := []byte{'{'}
	i := 1
	for i < len(rec) && rec[i] != '}' {
		keyEnd := i + 1 + bytes.IndexByte(rec[i+1:], '"')
		key := string(rec[i+1 : keyEnd])
		v := keyEnd + 2 // past '"' and ':'
		end := v
		if rec[v] == '"' {
			for end = v + 1; rec[end] != '"'; end++ {
				if rec[end] == '\\' {
					end++
				}
			}
			end++
		} else {
			for rec[end] != ',' && rec[end] != '}' {
				end++
			}
		}
		if s.gmCode && key == "spoc_code" {
			// spoc_code is a letter and a digit: 99 group managers.
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, `"`+gmCode+`":"GRM10`...)
			out = strconv.AppendInt(out, 86000+int64(rec[v+1]-'A')*10+int64(rec[v+2]-'0'), 10)
			out = append(out, '"')
		} else if !s.skip[key] {
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, rec[i:end]...)
			if s.entityCode && key == "entity_smallholder_id" {
				out = append(out, `,"`+entityCode+`":"ORS`...)
				out = append(out, rec[max(v, end-5):end]...)
				out = append(out, '"')
			}
		}
		i = end
		if rec[i] == ',' {
			i++
		}
	}
	return append(out, '}')
}

// lengthen gives the string fields of longFields in rec, a record of
// the generator's, values of opts.Long.Bytes random letters. The letters
// come from a source of their own, so that the other records are those
// the same Seed gives without Long.
func (g *generator) lengthen(rec []byte) []byte {
	if g.letters == nil {
		g.letters = rand.New(rand.NewPCG(g.opts.Seed^0x1e7, g.opts.Seed))
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -"
	out := make([]byte, 0, len(rec)+len(longFields)*g.opts.Long.Bytes)
	stringFields, first := 0, 0
	if g.opts.Long.Moving {
		stringFields = bytes.Count(rec, []byte(`":"`))
		first = g.lengthened * 3
		g.lengthened++
	}
	for field := 0; len(rec) > 0; {
		// At a key: copy it, and its value unless it is to be lengthened.
		keyEnd := bytes.Index(rec[1:], []byte(`":`)) + 1
		if keyEnd == 0 {
			break
		}
		long := longFields[string(rec[bytes.LastIndexByte(rec[:keyEnd], '"')+1:keyEnd])]
		out = append(out, rec[:keyEnd+2]...)
		rec = rec[keyEnd+2:]
		end := valueEnd(rec)
		if stringFields > 0 && rec[0] == '"' {
			long = (field-first%stringFields+stringFields)%stringFields < 4
			field++
		}
		if long && rec[0] == '"' {
			out = append(out, '"')
			for n := 0; n < g.opts.Long.Bytes; n += 8 {
				r := g.letters.Uint64()
				for k := 0; k < 8 && n+k < g.opts.Long.Bytes; k++ {
					out = append(out, alphabet[r&63])
					r >>= 6
				}
			}
			out = append(out, '"')
		} else {
			out = append(out, rec[:end]...)
		}
		rec = rec[end:]
	}
	return append(out, rec...)
}

// valueEnd is the length of the scalar value at the start of v, one of
// the generator's: a string without escaped quotes, or a bare word.
func valueEnd(v []byte) int {
	if v[0] == '"' {
		return 2 + bytes.IndexByte(v[1:], '"')
	}
	return bytes.IndexAny(v, ",}")
}

type generator struct {
	up         upstream // the dataset's quirks
	rng        *rand.Rand
	letters    *rand.Rand // of long values (GenOptions.Long)
	lengthened int        // long records written so far (LongValues.Moving)
	p          Planted
	opts       GenOptions
	lastID     int64
	mpobSerial int64
	mpob       []byte
	mpobPlots  int
	geo        *geoPlan // with GenOptions.Geo
}

type state struct {
	id     int
	name   string
	zoneID int
	zone   string
	lat    [2]float64
	long   [2]float64
	// inland is a box of the state's land (latitudes, longitudes), for
	// bodies whose points must all be in Malaysia (GenOptions.Geo).
	inland [2][2]float64
}

// States of Malaysia with the MSPO zone that covers them, a box that
// holds their plots, some of it sea or another country as a slipped
// digit might make a plot, and an inland box. Every point of an inland
// box, and 0.03° (3 km) around it, is in Malaysia by package boundary:
// checked once on a grid of 0.005°, so that the 1 km of its tolerance
// and the boundary's generalisation both lie off these boxes.
var states = []state{
	{1, "Johor", 5, "Zon Selatan 1", [2]float64{1.3, 2.8}, [2]float64{102.5, 104.3}, [2][2]float64{{1.9, 2.2}, {103.1, 103.4}}},
	{2, "Kedah", 1, "Zon Utara 1", [2]float64{5.1, 6.5}, [2]float64{100.1, 101.1}, [2][2]float64{{5.7, 5.95}, {100.6, 100.85}}},
	{3, "Kelantan", 11, "Zon Timur 2", [2]float64{4.5, 6.2}, [2]float64{101.3, 102.6}, [2][2]float64{{4.7, 5.1}, {101.8, 102.1}}},
	{4, "Melaka", 4, "Zon Tengah 2", [2]float64{2.1, 2.5}, [2]float64{102.0, 102.6}, [2][2]float64{{2.3, 2.4}, {102.15, 102.3}}},
	{5, "Negeri Sembilan", 4, "Zon Tengah 2", [2]float64{2.4, 3.3}, [2]float64{101.7, 102.6}, [2][2]float64{{2.6, 2.85}, {102.1, 102.35}}},
	{6, "Pahang", 7, "Zon Timur 1", [2]float64{2.5, 4.7}, [2]float64{101.3, 103.4}, [2][2]float64{{3.3, 3.7}, {102.2, 102.6}}},
	{7, "Pulau Pinang", 2, "Zon Utara 2", [2]float64{5.2, 5.5}, [2]float64{100.3, 100.5}, [2][2]float64{{5.3, 5.38}, {100.47, 100.53}}},
	{8, "Perak", 2, "Zon Utara 2", [2]float64{3.7, 5.9}, [2]float64{100.4, 101.7}, [2][2]float64{{4.6, 4.9}, {100.9, 101.2}}},
	{9, "Perlis", 1, "Zon Utara 1", [2]float64{6.3, 6.7}, [2]float64{100.1, 100.4}, [2][2]float64{{6.4, 6.5}, {100.2, 100.3}}},
	{10, "Selangor", 3, "Zon Tengah 1", [2]float64{2.6, 3.8}, [2]float64{100.8, 101.9}, [2][2]float64{{3.1, 3.4}, {101.45, 101.7}}},
	{11, "Terengganu", 8, "Zon Timur 2", [2]float64{3.9, 5.8}, [2]float64{102.4, 103.5}, [2][2]float64{{4.9, 5.2}, {102.8, 103.05}}},
	{12, "Sabah", 9, "Zon Sabah 1", [2]float64{4.2, 7.0}, [2]float64{115.5, 119.2}, [2][2]float64{{4.9, 5.5}, {116.0, 116.6}}},
	{13, "Sarawak", 11, "Zon Sarawak", [2]float64{1.0, 4.9}, [2]float64{109.6, 115.5}, [2][2]float64{{2.3, 2.8}, {112.5, 113.5}}},
}

var (
	entityNames = []string{
		"JELI/ GUA MUSANG/ KRAI/ MACHANG", "BATU PAHAT/ KLUANG", "MUAR/ LEDANG/ SEGAMAT",
		"KUALA LANGAT/ SEPANG", "KINABATANGAN/ SANDAKAN", "MIRI/ BINTULU", "TEMERLOH/ MARAN/ JERANTUT",
		"KOPERASI PEKEBUN KECIL SAWIT DAERAH KOTA TINGGI BERHAD", "PERTUBUHAN PELADANG KAWASAN (PPK) KEMAMAN",
	}
	givenNames = []string{"ROSNANI", "AHMAD", "SITI AISYAH", "MOHD FAIZAL", "NUR HIDAYAH", "ABDUL RAHMAN",
		"TAN AH KOW", "LIM MEI LING", "MUTHU A/L RAMASAMY", "JOSEPHINE ANAK JAWA", "ZAINAB", "ISMAIL"}
	fatherNames = []string{"IBRAHIM", "ABDULLAH", "HASSAN", "OTHMAN", "YUSOF", "SALLEH", "MAT", "OMAR"}
	daerahNames = []string{"JELI", "KLUANG", "MUAR", "SEPANG", "SANDAKAN", "MIRI", "TEMERLOH", "KEMAMAN"}
	mukimNames  = []string{"KUALA BALAH", "BELIT", "SUNGAI RAYA", "TANJUNG", "BUKIT BESAR", "PADANG"}
	certStatus  = []string{"ACTIVE", "DELAYED", "EXPIRED", "SUSPENDED"}
	epoch       = time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	span        = time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC).UnixMilli() - epoch
)

func (g *generator) chance(p float64) bool { return g.rng.Float64() < p }

// every reports whether record i (from 0) is an n-th one.
func every(n, i int) bool { return n > 0 && (i+1)%n == 0 }

func appendKey(b []byte, key string) []byte {
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

func appendStr(b []byte, key, v string) []byte {
	b = appendKey(b, key)
	b = strconv.AppendQuote(b, v)
	return append(b, ',')
}

func (g *generator) record(b []byte, i int, removed bool) []byte {
	var unwritten Planted // counts of a removed record go nowhere
	p := &g.p
	if removed {
		unwritten = Planted{Nulls: map[string]int{}, Invalid: map[string]map[string]int{}, ByCertStatus: map[string]int{}}
		p = &unwritten
	}
	p.Records++
	dropped := g.opts.DropEvery > 0 && (i+1)%g.opts.DropEvery == 0
	count := !dropped // a dropped record's fields are not in the table
	null := func(col string) {
		if count {
			p.Nulls[col]++
		}
	}
	invalid := func(col, reason string) {
		if count {
			p.invalid(col, reason)
		}
	}
	// taken counts a planted value the decoder takes as how says: valid
	// (""), "null", or invalid for that reason.
	taken := func(col, how string) {
		switch how {
		case "":
		case "null":
			null(col)
		default:
			invalid(col, how)
		}
	}

	b = append(b, '{')
	id := int64(70000 + i)
	if i > 0 && i%20011 == 0 { // a few ids come twice, as the upstream's join sometimes does
		id = g.lastID
		if count {
			p.DuplicateIDs++
		}
	}
	if dropped {
		p.Dropped++
	} else {
		b = appendKey(b, "entity_smallholder_id")
		b = strconv.AppendInt(b, id, 10)
		b = append(b, ',')
		p.IDSum += id
		g.lastID = id
	}
	st := &states[g.rng.IntN(len(states))]
	b = appendStr(b, "entity_name", entityNames[g.rng.IntN(len(entityNames))])

	// MPOB licences are issued in sequence; about one in six holders has
	// more than one plot, listed one after the other.
	if g.mpobPlots == 0 || !g.chance(0.18) {
		g.mpobSerial += 1 + int64(g.rng.IntN(3))
		g.mpob = strconv.AppendInt(g.mpob[:0], 832452000000+g.mpobSerial, 10)
		if g.mpobSerial%97 == 0 { // some licences keep a leading zero
			g.mpob[0] = '0'
		}
		g.mpobPlots = 0
	}
	if count {
		g.mpobPlots++
		if g.mpobPlots == 2 {
			p.MPOBWithSeveralPlots++
		}
	}
	b = appendKey(b, "mpob_no")
	b = append(b, '"')
	b = append(b, g.mpob...)
	b = append(b, '"', ',')

	// A planted geolocation case replaces the record's planted area and
	// coordinates; the random values are drawn all the same, so that the
	// other records are those of the same Seed without it.
	gc, planting := g.geo.caseOf(i)
	row := GeoRow{ID: id, Case: gc.name, Area: true}
	planted := 0.5 + g.rng.Float64()*20
	area, areaOK := planted, true
	if planting {
		var how string
		area, areaOK, how = gc.areaValue()
		taken("planted_area", how)
		b = gc.appendArea(b)
		row.Area = areaOK
	} else {
		b = appendKey(b, "planted_area")
		b = append(b, '"')
		at := len(b)
		b = strconv.AppendFloat(b, planted, 'f', 4, 64)
		if g.geo != nil {
			area, _ = number(string(b[at:]))
		}
		b = append(b, '"', ',')
	}
	row.NeedsPolygon = areaOK && area > polygonAreaHectares
	certified := planted * (0.6 + 0.4*g.rng.Float64())
	if g.up.overCertified > 0 && g.chance(g.up.overCertified) {
		// At least 1% more than planted: still more once both are
		// rounded to four decimals.
		certified = planted * (1.01 + 0.1*g.rng.Float64())
	}
	if every(g.opts.NextDay.AreaEvery, i) {
		certified++
	}
	if planting {
		planted = area
	}
	if certified > planted && areaOK && count {
		p.OverCertified++
	}
	b = appendKey(b, "certified_area")
	if g.chance(0.02) { // sometimes a JSON number rather than a string
		b = strconv.AppendFloat(b, certified, 'f', 4, 64)
	} else {
		b = append(b, '"')
		b = strconv.AppendFloat(b, certified, 'f', 4, 64)
		b = append(b, '"')
	}
	b = append(b, ',')

	lats, longs := st.lat, st.long
	if g.geo != nil {
		lats, longs = st.inland[0], st.inland[1]
	}
	lat := lats[0] + g.rng.Float64()*(lats[1]-lats[0])
	long := longs[0] + g.rng.Float64()*(longs[1]-longs[0])
	var latText, longText string
	decimals := cmp.Or(g.up.coordDecimals, 6)
	switch r := g.rng.Float64(); {
	case planting:
		if r >= 0.05 {
			// Where the generator would have written a point of its
			// own (the default below), it draws as for one.
			g.chance(0.01)
		}
		taken("gps_coordinate_lat", gc.bad[0])
		taken("gps_coordinate_long", gc.bad[1])
		b, row.Lon, row.Lat = gc.appendPoint(b)
		row.Point, row.InMalaysia, row.Decimals = gc.point, gc.in, gc.decimals
	case r < 0.03:
		null("gps_coordinate_lat")
		null("gps_coordinate_long")
		b = append(b, `"gps_coordinate_lat":null,"gps_coordinate_long":null,"geolocation":null,`...)
	case r < 0.04:
		latText, longText = "-", "-"
		invalid("gps_coordinate_lat", "not_a_number")
		invalid("gps_coordinate_long", "not_a_number")
	case r < 0.045:
		latText, longText = "N/A", ""
		invalid("gps_coordinate_lat", "not_a_number")
		invalid("gps_coordinate_long", "empty")
	case r < 0.05: // a slipped decimal point puts the plot off the globe
		latText = strconv.FormatFloat(lat*100, 'f', decimals, 64)
		longText = strconv.FormatFloat(long*10, 'f', decimals, 64)
		invalid("gps_coordinate_lat", "out_of_range")
		invalid("gps_coordinate_long", "out_of_range")
	default:
		latText = strconv.FormatFloat(lat, 'f', decimals, 64)
		longText = strconv.FormatFloat(long, 'f', decimals, 64)
		if g.geo != nil {
			row.Lon, _ = number(longText)
			row.Lat, _ = number(latText)
			row.Point, row.InMalaysia, row.Decimals = true, true, int32(decimals)
		}
		if g.chance(0.01) {
			latText = " " + latText + " "
		}
	}
	if latText != "" || longText != "" {
		b = appendStr(b, "gps_coordinate_lat", latText)
		b = appendStr(b, "gps_coordinate_long", longText)
		b = appendStr(b, "geolocation", latText+", "+longText)
	}

	b = appendKey(b, "name")
	b = append(b, '"')
	b = append(b, givenNames[g.rng.IntN(len(givenNames))]...)
	if g.chance(0.5) {
		b = append(b, " BINTI "...)
	} else {
		b = append(b, " BIN "...)
	}
	b = append(b, fatherNames[g.rng.IntN(len(fatherNames))]...)
	b = append(b, '"', ',')

	b = appendKey(b, "stateId")
	b = strconv.AppendInt(b, int64(st.id), 10)
	b = append(b, ',')
	b = appendStr(b, "state", st.name)
	if g.chance(0.6) {
		null("daerah_id")
		null("daerah")
		null("mukim_id")
		null("mukim")
		b = append(b, `"daerahId":null,"daerah":null,"mukimId":null,"mukim":null,`...)
	} else {
		d := g.rng.IntN(len(daerahNames))
		b = appendKey(b, "daerahId")
		b = strconv.AppendInt(b, int64(st.id*100+d), 10)
		b = append(b, ',')
		b = appendStr(b, "daerah", daerahNames[d])
		if g.chance(0.3) {
			null("mukim_id")
			null("mukim")
			b = append(b, `"mukimId":null,"mukim":null,`...)
		} else {
			m := g.rng.IntN(len(mukimNames))
			b = appendKey(b, "mukimId")
			b = strconv.AppendInt(b, int64(st.id*10000+d*100+m), 10)
			b = append(b, ',')
			b = appendStr(b, "mukim", mukimNames[m])
		}
	}
	b = appendKey(b, "lot_no")
	b = append(b, '"')
	if g.chance(0.2) {
		b = append(b, "PT "...)
	}
	b = strconv.AppendInt(b, int64(1+g.rng.IntN(99999)), 10)
	b = append(b, '"', ',')

	status := certStatus[0]
	switch r := g.rng.Float64(); {
	case r < 0.15:
		status = certStatus[1]
	case r < 0.25:
		status = certStatus[2]
	case r < 0.30:
		status = certStatus[3]
	}
	if every(g.opts.NextDay.StatusEvery, i) {
		for k, s := range certStatus {
			if s == status {
				status = certStatus[(k+1)%len(certStatus)]
				break
			}
		}
	}
	if count {
		p.ByCertStatus[status]++
	}
	b = appendStr(b, "cert_status", status)
	b = appendKey(b, "zoneId")
	b = strconv.AppendInt(b, int64(st.zoneID), 10)
	b = append(b, ',')
	b = appendStr(b, "zone", st.zone)
	b = appendKey(b, "cert_no")
	b = append(b, `"MSPO-`...)
	b = strconv.AppendInt(b, int64(1+g.rng.IntN(999)), 10)
	b = append(b, '/', '2', byte('0'+g.rng.IntN(6)), '"', ',')
	b = appendKey(b, "spoc_code")
	b = append(b, '"', byte('A'+g.rng.IntN(11)), byte('1'+g.rng.IntN(9)), '"', ',')

	created := epoch + g.rng.Int64N(span)
	b = appendKey(b, "created_at")
	if g.chance(0.0005) {
		invalid("created_at", "bad_timestamp")
		b = append(b, `"0000-00-00 00:00:00"`...)
	} else {
		b = append(b, '"')
		b = time.UnixMilli(created).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
		b = append(b, '"')
	}
	b = append(b, ',')
	b = appendKey(b, "updated_at")
	b = append(b, '"')
	b = time.UnixMilli(created+g.rng.Int64N(span/4)).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, '"', ',')

	b = appendKey(b, "track_id")
	b = append(b, `"OPMC`...)
	b = strconv.AppendInt(b, 100000+id, 10)
	b = append(b, '"', ',')
	if g.chance(0.1) {
		b = appendStr(b, "record_status", "UPDATED")
	} else {
		b = appendStr(b, "record_status", "NO CHANGE")
	}
	deleted := g.chance(0.02)
	if deleted && count {
		p.Deleted++
	}
	b = appendKey(b, "deleted")
	b = strconv.AppendBool(b, deleted)
	if g.geo != nil && count && !removed {
		g.geo.add(row)
	}
	return append(b, '}')
}
