package spoc

import (
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/calee-data/mspo-spoc/internal/jsonscan"
)

// Reasons a value is counted as invalid (and stored as null). They are the
// keys of ColumnStats.Invalid and stay stable: dashboards and alerts use them.
const (
	ReasonEmpty        = "empty"          // "" or only spaces where a number, id, boolean or timestamp belongs
	ReasonNotANumber   = "not_a_number"   // text that is not a decimal number ("-", "N/A", "NaN")
	ReasonNotAnInteger = "not_an_integer" // a number with a fraction or exponent, or text, in an id column
	ReasonOutOfRange   = "out_of_range"   // a coordinate off the globe, or an id beyond int32
	ReasonBadTimestamp = "bad_timestamp"  // text that is not an RFC 3339 date-time
	ReasonBadBoolean   = "bad_boolean"    // anything but true/false in the deleted column
	ReasonWrongType    = "wrong_type"     // an object or array, or a JSON type the column cannot hold
)

// bytesToString views b as a string without copying. The result must not
// outlive b's next modification; it is only passed to strconv here.
func bytesToString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// isDecimal accepts what a person writes as a number in a string: an
// optional sign, digits with an optional fraction (".5" and "5." too), and
// an optional exponent. It rejects what strconv would otherwise take but a
// source never means: "NaN", "Inf", hex floats and digit separators.
func isDecimal(b []byte) bool {
	i := 0
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		i++
	}
	digits := 0
	for i < len(b) && jsonscan.IsDigit(b[i]) {
		i++
		digits++
	}
	if i < len(b) && b[i] == '.' {
		i++
		for i < len(b) && jsonscan.IsDigit(b[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	return jsonscan.ExponentToEnd(b, i)
}

// decimalPlaces is the number of decimal places of decimal text that
// parseFloat took: the digits after its point less its exponent ("1.50"
// 2, "15e-3" 3, "1.5e3" 0), as the text wrote them, trailing zeros
// included, at most 255.
func decimalPlaces(b []byte) uint8 {
	b = trimSpace(b)
	i, frac := 0, 0
	for i < len(b) && b[i] != '.' && b[i] != 'e' && b[i] != 'E' {
		i++
	}
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b) && jsonscan.IsDigit(b[i]); i++ {
			frac++
		}
	}
	exp := 0
	if i < len(b) { // an exponent: e or E, a sign, digits
		i++
		neg := i < len(b) && b[i] == '-'
		if i < len(b) && (b[i] == '-' || b[i] == '+') {
			i++
		}
		for ; i < len(b); i++ {
			exp = min(exp*10+int(b[i]-'0'), 1<<20)
		}
		if neg {
			exp = -exp
		}
	}
	return uint8(min(max(frac-exp, 0), math.MaxUint8))
}

// parseFloat converts decimal text; reason is "" on success.
func parseFloat(b []byte) (float64, string) {
	b = trimSpace(b)
	if len(b) == 0 {
		return 0, ReasonEmpty
	}
	if !isDecimal(b) {
		return 0, ReasonNotANumber
	}
	f, err := strconv.ParseFloat(bytesToString(b), 64)
	if err != nil {
		return 0, ReasonOutOfRange
	}
	return f, ""
}

// parseInt converts integer text that fits in bitSize bits; reason is ""
// on success.
func parseInt(b []byte, bitSize int) (int64, string) {
	b = trimSpace(b)
	if len(b) == 0 {
		return 0, ReasonEmpty
	}
	i := 0
	if b[0] == '+' || b[0] == '-' {
		i++
	}
	if i == len(b) {
		return 0, ReasonNotAnInteger
	}
	for _, c := range b[i:] {
		if !jsonscan.IsDigit(c) {
			return 0, ReasonNotAnInteger
		}
	}
	n, err := strconv.ParseInt(bytesToString(b), 10, bitSize)
	if err != nil {
		return 0, ReasonOutOfRange
	}
	return n, ""
}

// parseTimestamp converts an RFC 3339 date-time ("2025-06-03T04:46:41.581Z",
// "2025-06-03T12:46:41+08:00", with or without fractional seconds) to
// microseconds since the Unix epoch in UTC. Digits past the microsecond are
// truncated toward the past, so the stored instant never runs ahead of the
// source. It works on bytes: no string is built for a timestamp.
func parseTimestamp(b []byte) (int64, string) {
	b = trimSpace(b)
	if len(b) == 0 {
		return 0, ReasonEmpty
	}
	// YYYY-MM-DDTHH:MM:SS is 19 bytes; the zone needs at least one more.
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return 0, ReasonBadTimestamp
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || sec > 59 {
		return 0, ReasonBadTimestamp
	}
	rest := b[19:]
	var nanos int
	if rest[0] == '.' {
		i := 1
		scale := 100_000_000
		for i < len(rest) && jsonscan.IsDigit(rest[i]) {
			nanos += int(rest[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == 1 {
			return 0, ReasonBadTimestamp
		}
		rest = rest[i:]
	}
	var offset int // seconds east of UTC
	switch {
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, okh := digits(rest[1:3])
		om, okm := digits(rest[4:6])
		if !okh || !okm || oh > 23 || om > 59 {
			return 0, ReasonBadTimestamp
		}
		offset = oh*3600 + om*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return 0, ReasonBadTimestamp
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, time.UTC)
	us := t.Add(-time.Duration(offset) * time.Second).UnixMicro()
	if us < minTimestamp || us > maxTimestamp {
		// Parquet readers (BigQuery among them) refuse instants outside
		// years 1 to 9999: one such value would break every query.
		return 0, ReasonBadTimestamp
	}
	return us, ""
}

// The range of a stored timestamp, in microseconds since the epoch: the
// UTC instants 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z.
const (
	minTimestamp = -62135596800_000000
	maxTimestamp = 253402300799_999999
)

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !jsonscan.IsDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
