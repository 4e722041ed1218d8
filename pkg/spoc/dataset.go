package spoc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// A Dataset is one public MSPO list as the job takes it: where it is,
// where its records are in the body, and its tidy columns with the rule
// that converts each. Everything that differs between two lists is here,
// so that a list is added by declaring one Dataset (see SPOC, OSH and GM),
// never by copying code. Build one with NewDataset, which checks it and
// derives the decoder's tables once.
type Dataset struct {
	// Name selects the dataset (SPOC_DATASET) and names its metrics.
	Name string
	// Group is the declared group the dataset is in, if any (References
	// for a reference list): naming the group selects every dataset in
	// it, so a list declared with its group is selected with it.
	Group string
	// URL is the endpoint's default URL, and Query the query a URL
	// without one is sent with (fetch.ClientOptions.Query).
	URL   string
	Query url.Values
	// Object is the base name of the dataset's objects in a day's folder
	// ("spoc-list-public": spoc-list-public.parquet, its manifest...),
	// and Prefix the default folder of the days, which mirrors the API's
	// path.
	Object, Prefix string
	// Records is the path of the records array in the body, one or two
	// keys deep: {"data", "results"} for data.results, {"data"} for a
	// reference list's array directly under data.
	Records []string
	// Columns are the tidy columns in the order of the published table;
	// the first is the key (a record without a usable one is dropped).
	Columns []Column
	// Dropped are the JSON fields the list sends that the table leaves
	// out on purpose (SPOC's geolocation repeats the coordinates). Any
	// other field that is not a column's is reported as undeclared
	// (Stats.UndeclaredFields).
	Dropped []string
	// Floor is the fewest records a real day of the list has had room
	// for: a deployment refuses a body below it (SPOC_MIN_RECORDS), even
	// on the first day, when the drop guard has nothing to compare with.
	Floor int64

	schema *arrow.Schema
	fields map[string]int // JSON field name to column, -1 for a Dropped one
	// lookup is a perfect hash of the JSON field names on their length
	// and three of their bytes, found when the dataset is built: the
	// decoder looks up every key of every record, and this costs one
	// string comparison where a map hashes the whole key.
	lookup     [lookupSize]fieldEntry
	lookupSeed uint32
	kinds      []Kind
	roles      roleColumns
	// point is the longitude and latitude columns, -1 each for a
	// dataset without a point (Point).
	point [2]int
}

// Column is one tidy column and the JSON field it comes from.
type Column struct {
	JSON string // the upstream field; "" if the column has none
	Name string // the tidy name
	Kind Kind
	// Dictionary says values repeat enough for dictionary encoding in
	// Parquet to pay (regions, statuses, personal names).
	Dictionary bool
	// Coordinate marks the GPS columns, whose low bytes are close to
	// random (see CoordinateColumns).
	Coordinate bool
	// Role gives the column a part in the statistics (the licence number
	// whose repeats are counted, the status counted by value, the
	// soft-delete flag) or in the change table, which holds the status,
	// the certified area and the update time of a plot before and after.
	Role Role
}

// Kind is how a column converts a JSON value, and its Arrow type.
type Kind uint8

// The kinds of column; the package documentation gives their rules.
const (
	KindString    Kind = iota // string, kept exactly
	KindKey                   // int64, the record's key: not null
	KindInt32                 // int32 from an integer or an integer string
	KindFloat                 // float64 from a number or a decimal string
	KindLatitude              // float64 in [-90, 90]
	KindLongitude             // float64 in [-180, 180]
	KindBool                  // bool from true/false or "true"/"false"
	KindTimestamp             // timestamp[us, UTC] from RFC 3339
	KindKey32                 // int32, the record's key: not null (a reference list's id)
)

// IsKey says whether the kind is one of a key: KindKey or KindKey32.
func (k Kind) IsKey() bool { return k == KindKey || k == KindKey32 }

// Role is a column's part in the statistics and the change table.
type Role uint8

// Roles of a column. A dataset gives each to one column at most, of the
// kind the role names (KindString for RoleStatus, say).
const (
	RoleNone          Role = iota
	RoleLicence            // counted for licence numbers held by several plots
	RoleStatus             // counted by value (Stats.RecordsByCertStatus); before and after in the change table, with its transitions
	RoleDeleted            // true counts as a soft-deleted record
	RoleCertifiedArea      // the area certified: before and after in the change table
	RoleUpdateTime         // when the upstream last changed the record: before and after in the change table
)

// roleKinds is the kind of column each role needs.
var roleKinds = map[Role]Kind{
	RoleLicence:       KindString,
	RoleStatus:        KindString,
	RoleDeleted:       KindBool,
	RoleCertifiedArea: KindFloat,
	RoleUpdateTime:    KindTimestamp,
}

// keyColumn is every dataset's first column: the key.
const keyColumn = 0

// dropped is the column of a Dropped field: none.
const dropped = -1

// maxFieldLength is the longest JSON field name a dataset may declare.
const maxFieldLength = 63

const lookupSize = 256

// fieldEntry is a slot of the lookup table: a field's name, its column
// and the column's kind, and the name as the words matchesInBuffer
// compares a key with.
type fieldEntry struct {
	name string
	col  int
	kind Kind
	// short is len(name) for a name of at most 24 bytes, else -1 (and -1
	// for an empty slot); w holds its bytes, zero-padded, and m the mask
	// of those that are the name's.
	short int
	w, m  [3]uint64
}

func newFieldEntry(name string, col int) fieldEntry {
	e := fieldEntry{name: name, col: col, short: -1}
	if len(name) <= 24 {
		e.short = len(name)
		var b, mask [24]byte
		copy(b[:], name)
		for i := range len(name) {
			mask[i] = 0xff
		}
		for i := range e.w {
			e.w[i], e.m[i] = binary.LittleEndian.Uint64(b[8*i:]), binary.LittleEndian.Uint64(mask[8*i:])
		}
	}
	return e
}

// matches reports whether key is the entry's name.
func (e *fieldEntry) matches(key []byte) bool {
	return e.matchesInBuffer(key) || (e.short < 0 || cap(key) < 24) && string(key) == e.name
}

// matchesInBuffer is matches for a name of at most 24 bytes and a key
// whose buffer holds 24 bytes from its start (the quote after it at
// least, and usually more of the body): three masked loads compare the
// key whole, where a string comparison calls the runtime's. It is false
// for any other key. Small enough to be inlined into the decoder, which
// compares every key of every record.
func (e *fieldEntry) matchesInBuffer(key []byte) bool {
	if len(key) != e.short || cap(key) < 24 {
		return false
	}
	k := key[:24]
	return (binary.LittleEndian.Uint64(k)^e.w[0])&e.m[0]|(binary.LittleEndian.Uint64(k[8:])^e.w[1])&e.m[1]|
		(binary.LittleEndian.Uint64(k[16:])^e.w[2])&e.m[2] == 0
}

// fieldHash places a key in the lookup table for a seed.
func fieldHash(key []byte, seed uint32) uint32 {
	n := len(key)
	h := uint32(n)
	h = h*31 + uint32(key[0])
	h = h*31 + uint32(key[n/2])
	h = h*31 + uint32(key[n-1])
	h = h*31 + uint32(key[max(n-2, 0)])
	return (h * seed) >> 24 // lookupSize is 1<<8
}

// buildLookup finds a seed that gives every field its own slot.
func (d *Dataset) buildLookup() error {
seeds:
	for seed := uint32(0x9E3779B1); seed < 0x9E3779B1+1<<20; seed += 2 {
		var t [lookupSize]fieldEntry
		for name, col := range d.fields {
			slot := &t[fieldHash([]byte(name), seed)]
			if slot.name != "" {
				continue seeds
			}
			*slot = newFieldEntry(name, col)
			if col != dropped {
				slot.kind = d.kinds[col]
			}
		}
		// An empty slot matches no key, the empty one included.
		for i := range t {
			if t[i].name == "" {
				t[i].short = -1
			}
		}
		d.lookup, d.lookupSeed = t, seed
		return nil
	}
	return errors.New("no perfect hash of its JSON fields")
}

type roleColumns struct{ licence, status, deleted int } // -1: none

var timestampUTC = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

func (k Kind) arrowType() arrow.DataType {
	switch k {
	case KindKey:
		return arrow.PrimitiveTypes.Int64
	case KindInt32, KindKey32:
		return arrow.PrimitiveTypes.Int32
	case KindFloat, KindLatitude, KindLongitude:
		return arrow.PrimitiveTypes.Float64
	case KindBool:
		return arrow.FixedWidthTypes.Boolean
	case KindTimestamp:
		return timestampUTC
	}
	return arrow.BinaryTypes.String
}

// NewDataset checks d and returns it ready for decoding: the key first
// and only there, names and JSON fields unique, at most one column of
// each role, and that of the kind the role needs.
func NewDataset(d Dataset) (*Dataset, error) {
	bad := func(format string, args ...any) (*Dataset, error) {
		return nil, fmt.Errorf("dataset %q: %s", d.Name, fmt.Sprintf(format, args...))
	}
	if d.Name == "" || d.Object == "" || len(d.Records) == 0 || slices.Contains(d.Records, "") {
		return bad("a name, an object name and a records path are needed")
	}
	if len(d.Records) > 2 {
		return bad("a records path of %d keys; the decoder follows one or two", len(d.Records))
	}
	d.Records = slices.Clone(d.Records)
	if d.Floor < 1 {
		return bad("a floor of at least one record is needed")
	}
	if d.Group != "" && !slices.Contains(groups, d.Group) {
		return bad("group %q is not declared (Groups)", d.Group)
	}
	if len(d.Columns) == 0 || !d.Columns[0].Kind.IsKey() {
		return bad("the first column must be the key")
	}
	d.fields = map[string]int{}
	d.roles = roleColumns{-1, -1, -1}
	d.point = [2]int{-1, -1}
	names := map[string]bool{}
	roles := map[Role]bool{}
	fields := make([]arrow.Field, len(d.Columns))
	for i, c := range d.Columns {
		switch {
		case c.Name == "" || names[c.Name]:
			return bad("column %d: a missing or repeated name %q", i, c.Name)
		case i > 0 && c.Kind.IsKey():
			return bad("column %s: only the first column is the key", c.Name)
		case c.Dictionary && c.Kind == KindBool:
			// Parquet writes booleans bit-packed; the writer ignores a
			// dictionary for them.
			return bad("column %s: a bool column is never dictionary-encoded", c.Name)
		case c.Role != RoleNone && roles[c.Role]:
			return bad("two columns with one role")
		case c.Role != RoleNone && roleKinds[c.Role] != c.Kind:
			return bad("column %s: its role needs another kind of column", c.Name)
		}
		names[c.Name] = true
		roles[c.Role] = true
		if c.JSON != "" {
			if _, dup := d.fields[c.JSON]; dup {
				return bad("JSON field %q feeds two columns", c.JSON)
			}
			if len(c.JSON) > maxFieldLength {
				return bad("JSON field %q is longer than %d bytes", c.JSON, maxFieldLength)
			}
			d.fields[c.JSON] = i
		}
		d.kinds = append(d.kinds, c.Kind)
		switch c.Kind {
		case KindLongitude, KindLatitude:
			axis := 0
			if c.Kind == KindLatitude {
				axis = 1
			}
			if d.point[axis] >= 0 {
				return bad("column %s: a second column of the point's %s", c.Name, [...]string{"longitude", "latitude"}[axis])
			}
			d.point[axis] = i
		}
		switch c.Role {
		case RoleLicence:
			d.roles.licence = i
		case RoleStatus:
			d.roles.status = i
		case RoleDeleted:
			d.roles.deleted = i
		}
		fields[i] = arrow.Field{Name: c.Name, Type: c.Kind.arrowType(), Nullable: !c.Kind.IsKey()}
	}
	for _, f := range d.Dropped {
		if _, dup := d.fields[f]; dup || f == "" || len(f) > maxFieldLength {
			return bad("dropped field %q is empty, too long or declared twice", f)
		}
		d.fields[f] = dropped
	}
	if err := d.buildLookup(); err != nil {
		return bad("%v", err)
	}
	d.schema = arrow.NewSchema(fields, nil)
	return &d, nil
}

// mustDataset is NewDataset for the datasets declared in this package.
func mustDataset(d Dataset) *Dataset {
	ds, err := NewDataset(d)
	if err != nil {
		panic(err)
	}
	return ds
}

// Schema is the dataset's tidy Arrow schema.
func (d *Dataset) Schema() *arrow.Schema { return d.schema }

// RecordsPath is the records array's path, as in "data.results".
func (d *Dataset) RecordsPath() string { return strings.Join(d.Records, ".") }

// DictionaryColumns names the columns marked Dictionary.
func (d *Dataset) DictionaryColumns() []string {
	return d.namesWhere(func(c Column) bool { return c.Dictionary })
}

// ColumnWithRole is the column that has role r, if one has.
func (d *Dataset) ColumnWithRole(r Role) (Column, bool) {
	for _, c := range d.Columns {
		if c.Role == r && r != RoleNone {
			return c, true
		}
	}
	return Column{}, false
}

// Point is the columns of a plot's point, its longitude and its latitude
// (KindLongitude and KindLatitude), by index; ok is false for a dataset
// without both.
func (d *Dataset) Point() (lon, lat int, ok bool) {
	return d.point[0], d.point[1], d.point[0] >= 0 && d.point[1] >= 0
}

// CoordinateColumns names the columns marked Coordinate.
func (d *Dataset) CoordinateColumns() []string {
	return d.namesWhere(func(c Column) bool { return c.Coordinate })
}

func (d *Dataset) namesWhere(keep func(Column) bool) []string {
	var names []string
	for _, c := range d.Columns {
		if keep(c) {
			names = append(names, c.Name)
		}
	}
	return names
}

// slot is the lookup slot of key, if the dataset knows it; the slot's col
// is the key's column, dropped (-1) for a Dropped field.
func (d *Dataset) slot(key []byte) (uint8, bool) {
	if len(key) == 0 {
		return 0, false
	}
	h := fieldHash(key, d.lookupSeed)
	return uint8(h), d.lookup[h].matches(key)
}

// References is the group of the reference lists, the small lists that
// name the ids the others hold (states, zones, certification bodies...).
const References = "references"

// groups are the declared groups. A group is declared before any dataset
// is in it, so that naming it is known even when it selects nothing.
var groups = []string{References}

// Groups names the declared groups.
func Groups() []string { return slices.Clone(groups) }

// InGroup lists the datasets of group, sorted by name: none for a
// declared group no dataset is in yet, and ok false for a name that is
// no declared group.
func InGroup(group string) (in []*Dataset, ok bool) {
	if !slices.Contains(groups, group) {
		return nil, false
	}
	for _, ds := range Datasets() {
		if ds.Group == group {
			in = append(in, ds)
		}
	}
	slices.SortFunc(in, func(a, b *Dataset) int { return strings.Compare(a.Name, b.Name) })
	return in, true
}

// Datasets are the lists the job knows, by Name.
func Datasets() map[string]*Dataset {
	return map[string]*Dataset{SPOC.Name: SPOC, OSH.Name: OSH, GM.Name: GM, States.Name: States, Zones.Name: Zones}
}
