// Package spoc turns the bodies of MSPO's public lists into tidy Arrow
// record batches: each list is a Dataset (SPOC, the certified independent
// oil-palm smallholders, OSH, the organised smallholders, and GM, those
// certified through a group manager), and a Decoder reads a body as the
// dataset it is given.
//
// The SPOC endpoint returns every plot (about 306,000) in one JSON body of
// 80 MB or more. This package never holds that body: package fetch
// returns a stream, and a Decoder turns it into batches of the dataset's
// schema while it is read, with a fixed buffer and one batch in memory.
//
// # Conversion rules
//
// The records are the elements of the dataset's records array
// (data.results for SPOC and GM, data.data for OSH, data itself for a
// reference list, whose array is directly under data); the array may stand
// anywhere in the top-level object, beside other keys of any shape, and
// record fields may come in any order. Unknown fields are skipped, and
// "geolocation" too (it repeats the two coordinates). Each field is
// converted as follows; a value that cannot be converted is stored as null
// and counted in Stats by column and reason (the Reason* constants), never
// fatal:
//
//   - Areas and coordinates accept a JSON number or a string holding a
//     decimal number, surrounding spaces trimmed ("2.4300", " 5.551060 ",
//     2.43). "" is invalid (ReasonEmpty); text that is not a number ("-",
//     "N/A", "NaN") is ReasonNotANumber; a latitude outside [-90, 90] or a
//     longitude outside [-180, 180] is ReasonOutOfRange.
//   - The ids stateId, daerahId, mukimId and zoneId (renamed state_id,
//     daerah_id, mukim_id, zone_id) accept integers and integer strings (3,
//     "3"); anything else is ReasonNotAnInteger, beyond int32 ReasonOutOfRange.
//   - created_at and updated_at accept RFC 3339 date-times with "Z" or an
//     offset, with or without fractional seconds, and are stored as the UTC
//     instant in microseconds (finer digits are truncated). Anything else,
//     and an instant outside 0001-01-01..9999-12-31 UTC, which Parquet
//     readers refuse, is ReasonBadTimestamp.
//   - deleted accepts true and false, and the strings "true" and "false".
//   - Strings are kept exactly, escapes decoded ("mpob_no" keeps its
//     leading zeros); a number or boolean sent for a string column is kept
//     as its JSON text. Invalid UTF-8 becomes U+FFFD, as in encoding/json.
//   - JSON null, and a missing field, is a null; it is counted in
//     ColumnStats.Nulls but is not invalid.
//   - An object or array where a scalar belongs is ReasonWrongType.
//
// A record without a usable key (entity_smallholder_id, an int64; a
// reference list's id, an int32: missing, null, not an integer or out of
// its range) is dropped and counted in Stats.DroppedByReason; so is an element
// of data.results that is not an object, and a record larger than
// WithMaxRecordBytes or with a declared value longer than
// WithMaxStringBytes (DropTooLarge). Deciding how many drops are too many
// is the caller's business (the job fails above 1%).
//
// A key repeated in a record keeps its last value, and the memory of the
// earlier ones is reused, so a record's memory is bounded by its live
// values whatever it repeats. cert_status values longer than a real status
// are counted together in Stats.RecordsByCertStatus, as "(too long)".
//
// # Errors
//
// Malformed or truncated JSON is a *SyntaxError. A body with no
// data.results array is ErrNoResults. The decoder's limits surface as
// ErrBodyTooLarge, ErrTooManyRecords and, for a key, ErrValueTooLong. An error of the underlying reader
// (a connection reset, a stalled download) is returned wrapped, so
// errors.Is and errors.As see through it. The decoder's errors know their
// failure kind (fetch.KindedError), so fetch.Classify tells those worth
// another attempt (a cut body) from those that are not.
package spoc
