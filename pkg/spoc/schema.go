package spoc

import "github.com/apache/arrow-go/v18/arrow"

// Schema is the tidy Arrow schema of one SPOC snapshot: the upstream fields
// in the order of the published table, camelCase ids renamed to snake_case,
// numbers and timestamps typed, and the redundant "geolocation" string
// dropped (it repeats gps_coordinate_lat and gps_coordinate_long).
//
// Every column is nullable except entity_smallholder_id, the primary key:
// a record without a usable id is dropped, never written with a null key.
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "entity_smallholder_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "entity_name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "mpob_no", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "planted_area", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "certified_area", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "gps_coordinate_lat", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "gps_coordinate_long", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "state_id", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "state", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "daerah_id", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "daerah", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "mukim_id", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "mukim", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "lot_no", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "zone_id", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "zone", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "spoc_code", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "cert_no", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "cert_status", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "track_id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "record_status", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "deleted", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "created_at", Type: timestampUTC, Nullable: true},
	{Name: "updated_at", Type: timestampUTC, Nullable: true},
}, nil)

var timestampUTC = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// Column indexes into Schema, in the same order. The decoder and the
// statistics address columns by these, never by name, on the hot path.
const (
	colID = iota
	colEntityName
	colMPOBNo
	colName
	colPlantedArea
	colCertifiedArea
	colLat
	colLong
	colStateID
	colState
	colDaerahID
	colDaerah
	colMukimID
	colMukim
	colLotNo
	colZoneID
	colZone
	colSpocCode
	colCertNo
	colCertStatus
	colTrackID
	colRecordStatus
	colDeleted
	colCreatedAt
	colUpdatedAt
	numColumns
)

// jsonFieldColumn maps an upstream JSON field name to its column.
// Fields not listed here ("geolocation" and anything new) are skipped.
func jsonFieldColumn(key []byte) (int, bool) {
	switch string(key) {
	case "entity_smallholder_id":
		return colID, true
	case "entity_name":
		return colEntityName, true
	case "mpob_no":
		return colMPOBNo, true
	case "name":
		return colName, true
	case "planted_area":
		return colPlantedArea, true
	case "certified_area":
		return colCertifiedArea, true
	case "gps_coordinate_lat":
		return colLat, true
	case "gps_coordinate_long":
		return colLong, true
	case "stateId":
		return colStateID, true
	case "state":
		return colState, true
	case "daerahId":
		return colDaerahID, true
	case "daerah":
		return colDaerah, true
	case "mukimId":
		return colMukimID, true
	case "mukim":
		return colMukim, true
	case "lot_no":
		return colLotNo, true
	case "zoneId":
		return colZoneID, true
	case "zone":
		return colZone, true
	case "spoc_code":
		return colSpocCode, true
	case "cert_no":
		return colCertNo, true
	case "cert_status":
		return colCertStatus, true
	case "track_id":
		return colTrackID, true
	case "record_status":
		return colRecordStatus, true
	case "deleted":
		return colDeleted, true
	case "created_at":
		return colCreatedAt, true
	case "updated_at":
		return colUpdatedAt, true
	}
	return 0, false
}

// DictionaryColumns names the columns with repeated values (regions,
// zones, codes, statuses, personal names), where dictionary encoding in
// Parquet pays. Ids, licence numbers, coordinates and timestamps are
// nearly unique per row, and a dictionary would only cost time there.
// Personal names repeat a lot (BIN/BINTI patronymics over a few thousand
// given names); should a day's names not, the Parquet writer falls back to
// plain encoding once a row group's dictionary passes its page limit.
func DictionaryColumns() []string {
	return []string{
		"entity_name", "name", "state_id", "state", "daerah_id", "daerah", "mukim_id", "mukim",
		"zone_id", "zone", "spoc_code", "cert_no", "cert_status", "record_status", "deleted",
	}
}

// CoordinateColumns names the GPS columns. Their low bytes are close to
// random, so zstd finds few matches at its default level; its best level
// makes them about 30% smaller, at a cost in CPU and memory that the
// other columns do not repay (see WithColumnZstdLevel in package sink).
func CoordinateColumns() []string {
	return []string{"gps_coordinate_lat", "gps_coordinate_long"}
}
