package spoc

import "net/url"

// OSH is the list of organised smallholders (OSH), about 47,500 records
// of smallholders certified through a scheme (a FELDA settlement, a
// cooperative): its records are under data.data, it has entity_code
// instead of the mukim, zone and soft-delete fields, and the conversion
// rules are SPOC's.
var OSH = mustDataset(Dataset{
	Name:   "osh",
	URL:    "https://api.mspots.org.my/api/osh/all-smallholder",
	Object: "osh-all-smallholder",
	Prefix: "raw/mspo/api/osh/all-smallholder",
	// The endpoint ignores page and pageSize and returns every record;
	// they are sent as the public site sends them.
	Query:   url.Values{"page": {"1"}, "pageSize": {"10"}},
	Floor:   40_000, // a little below the ~47,500 records of 2026
	Records: []string{"data", "data"},
	Columns: []Column{
		{JSON: "entity_smallholder_id", Name: "entity_smallholder_id", Kind: KindKey},
		{JSON: "entity_code", Name: "entity_code", Dictionary: true},
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
		{JSON: "lot_no", Name: "lot_no"},
		{JSON: "cert_no", Name: "cert_no"},
		{JSON: "cert_status", Name: "cert_status", Dictionary: true, Role: RoleStatus},
		{JSON: "track_id", Name: "track_id"},
		{JSON: "created_at", Name: "created_at", Kind: KindTimestamp},
		{JSON: "updated_at", Name: "updated_at", Kind: KindTimestamp, Role: RoleUpdateTime},
	},
})
