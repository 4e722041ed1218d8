package spoc

import "net/url"

// SPOC is the list of certified independent smallholders (SPOC), about
// 306,000 plots: the upstream fields in the order of the published table,
// camelCase ids renamed to snake_case, numbers and timestamps typed, and
// the redundant "geolocation" string dropped (it repeats
// gps_coordinate_lat and gps_coordinate_long).
//
// Dictionary marks the columns with repeated values (regions, zones,
// codes, statuses, personal names), where dictionary encoding in Parquet
// pays. Ids, licence numbers, coordinates and timestamps are nearly
// unique per row, and a dictionary would only cost time there. Personal
// names repeat a lot (BIN/BINTI patronymics over a few thousand given
// names); should a day's names not, the Parquet writer falls back to
// plain encoding once a row group's dictionary passes its page limit.
var SPOC = mustDataset(Dataset{
	Name:   "spoc",
	URL:    "https://api.mspots.org.my/api/spoc/get-spoc-list-public",
	Object: "spoc-list-public",
	Prefix: "raw/mspo/api/spoc/get-spoc-list-public",
	// The endpoint ignores page and pageSize and returns every record;
	// they are sent as the public site sends them.
	Query:   url.Values{"page": {"1"}, "pageSize": {"10"}},
	Floor:   250_000, // a little below the ~306,000 plots of 2026
	Records: []string{"data", "results"},
	Columns: []Column{
		{JSON: "entity_smallholder_id", Name: "entity_smallholder_id", Kind: KindKey},
		{JSON: "entity_name", Name: "entity_name", Dictionary: true},
		{JSON: "mpob_no", Name: "mpob_no", Role: RoleLicence},
		{JSON: "name", Name: "name", Dictionary: true},
		{JSON: "planted_area", Name: "planted_area", Kind: KindFloat},
		{JSON: "certified_area", Name: "certified_area", Kind: KindFloat, Role: RoleCertifiedArea},
		{JSON: "gps_coordinate_lat", Name: "gps_coordinate_lat", Kind: KindLatitude, Coordinate: true},
		{JSON: "gps_coordinate_long", Name: "gps_coordinate_long", Kind: KindLongitude, Coordinate: true},
		{JSON: "stateId", Name: "state_id", Kind: KindInt32, Dictionary: true},
		{JSON: "state", Name: "state", Dictionary: true},
		{JSON: "daerahId", Name: "daerah_id", Kind: KindInt32, Dictionary: true},
		{JSON: "daerah", Name: "daerah", Dictionary: true},
		{JSON: "mukimId", Name: "mukim_id", Kind: KindInt32, Dictionary: true},
		{JSON: "mukim", Name: "mukim", Dictionary: true},
		{JSON: "lot_no", Name: "lot_no"},
		{JSON: "zoneId", Name: "zone_id", Kind: KindInt32, Dictionary: true},
		{JSON: "zone", Name: "zone", Dictionary: true},
		{JSON: "spoc_code", Name: "spoc_code", Dictionary: true},
		{JSON: "cert_no", Name: "cert_no", Dictionary: true},
		{JSON: "cert_status", Name: "cert_status", Dictionary: true, Role: RoleStatus},
		{JSON: "track_id", Name: "track_id"},
		{JSON: "record_status", Name: "record_status", Dictionary: true},
		{JSON: "deleted", Name: "deleted", Kind: KindBool, Role: RoleDeleted},
		{JSON: "created_at", Name: "created_at", Kind: KindTimestamp},
		{JSON: "updated_at", Name: "updated_at", Kind: KindTimestamp, Role: RoleUpdateTime},
	},
	Dropped: []string{"geolocation"},
})

// Schema is the tidy Arrow schema of one SPOC snapshot (SPOC.Schema()).
// Every column is nullable except entity_smallholder_id, the primary key:
// a record without a usable id is dropped, never written with a null key.
var Schema = SPOC.Schema()

// DictionaryColumns names the SPOC columns where dictionary encoding pays.
func DictionaryColumns() []string { return SPOC.DictionaryColumns() }

// CoordinateColumns names the GPS columns. Their low bytes are close to
// random, so zstd finds few matches at its default level; its best level
// makes them about 30% smaller, at a cost in CPU and memory that the
// other columns do not repay (see WithColumnZstdLevel in package sink).
func CoordinateColumns() []string { return SPOC.CoordinateColumns() }
