package spoc

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/fetch"
)

// TestTimestampRange: an instant outside years 1 to 9999 in UTC is
// invalid, whatever its text's own year: Parquet readers refuse them.
func TestTimestampRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // RFC 3339 in UTC; "" for bad_timestamp
	}{
		{"0000-01-01T00:00:00Z", ""},
		{"0001-01-01T00:30:00+01:00", ""}, // year 0 in UTC
		{"0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"},
		{"0001-01-01T00:30:00-01:00", "0001-01-01T01:30:00Z"},
		{"9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"},
		{"9999-12-31T23:59:59.9999999Z", "9999-12-31T23:59:59.999999Z"}, // truncated toward the past
		{"9999-12-31T23:30:00-01:00", ""},                               // year 10000 in UTC
		{"9999-12-31T23:30:00+01:00", "9999-12-31T22:30:00Z"},
		{"2025-06-03T12:46:41+08:00", "2025-06-03T04:46:41Z"},
	} {
		us, reason := parseTimestamp([]byte(tc.in))
		switch {
		case tc.want == "" && reason != ReasonBadTimestamp:
			t.Errorf("%s: %d (%q), want %s", tc.in, us, reason, ReasonBadTimestamp)
		case tc.want != "" && (reason != "" || time.UnixMicro(us).UTC().Format(time.RFC3339Nano) != tc.want):
			t.Errorf("%s: %s (%q), want %s", tc.in, time.UnixMicro(us).UTC().Format(time.RFC3339Nano), reason, tc.want)
		}
	}
	if minTimestamp != time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro() ||
		maxTimestamp != time.Date(9999, 12, 31, 23, 59, 59, 999_999_000, time.UTC).UnixMicro() {
		t.Error("the timestamp bounds are not years 1 and 9999")
	}
	rows, st, err := decodeAll(t, strings.NewReader(body(`{"entity_smallholder_id":1,"created_at":"0000-01-01T00:00:00Z"}`)))
	if err != nil || len(rows) != 1 || rows[0]["created_at"] != nil || st.Columns["created_at"].Invalid[ReasonBadTimestamp] != 1 {
		t.Errorf("decoded %v, %+v, %v: want a NULL counted as %s", rows, st.Columns["created_at"], err, ReasonBadTimestamp)
	}
}

// A repeated key keeps its last value, and the bytes of the ones before
// are given back, whether the key repeats alone or alternates with
// another; the arena holds about the record's live values.
func TestRepeatedKeysReleaseTheirBytes(t *testing.T) {
	big := strings.Repeat("x", 256<<10)
	for _, tc := range []struct {
		name   string
		fields func(i int) string
	}{
		{"one key repeated", func(i int) string { return fmt.Sprintf(`"entity_name":"%s%d"`, big, i) }},
		{"two keys alternating", func(i int) string {
			if i%2 == 0 {
				return fmt.Sprintf(`"entity_name":"%s%d"`, big, i)
			}
			return fmt.Sprintf(`"state":"%s%d"`, big, i)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fields []string
			for i := range 40 {
				fields = append(fields, tc.fields(i))
			}
			rec := `{"entity_smallholder_id":1,` + strings.Join(fields, ",") + `}`
			dec := NewDecoder(strings.NewReader(body(rec)), WithMaxRecordBytes(64<<20))
			defer dec.Release()
			maxArena := 0
			for dec.Next() {
			}
			if err := dec.Err(); err != nil {
				t.Fatal(err)
			}
			maxArena = max(cap(dec.row.arena), cap(dec.row.spare))
			// A small multiple of two live values of 256 KiB (the arena
			// compacts once half of it is dead, and append doubles),
			// not the 40 values written: 10 MiB.
			if maxArena > 8*(256<<10) {
				t.Errorf("the row's arena grew to %d KiB for 2 live values of 256 KiB", maxArena>>10)
			}
			if got := dec.Stats().RecordsWritten; got != 1 {
				t.Errorf("%d records written, want 1", got)
			}
		})
	}
	rows, _, err := decodeAll(t, strings.NewReader(body(`{"entity_smallholder_id":1,"entity_name":"a","state":"s","entity_name":"b","state":"t","entity_name":"c"}`)))
	if err != nil || rows[0]["entity_name"] != "c" || rows[0]["state"] != "t" {
		t.Errorf("decoded %v (%v): want the last value of each key", rows, err)
	}
}

// A record past the record byte cap is dropped and counted, the records
// around it kept.
func TestRecordTooLargeIsDropped(t *testing.T) {
	big := `{"entity_smallholder_id":2,"entity_name":"` + strings.Repeat("n", 3000) + `","unknown":"` + strings.Repeat("u", 3000) + `"}`
	rows, st, err := decodeAll(t, strings.NewReader(body(`{"entity_smallholder_id":1}`, big, `{"entity_smallholder_id":3}`)), WithMaxRecordBytes(4096))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0]["entity_smallholder_id"] != int64(1) || rows[1]["entity_smallholder_id"] != int64(3) || st.DroppedByReason[DropTooLarge] != 1 {
		t.Errorf("rows %v, dropped %v: want records 1 and 3, one dropped as %s", rows, st.DroppedByReason, DropTooLarge)
	}
	// Within the cap in the body, past it once decoded: invalid UTF-8
	// takes three bytes a byte as U+FFFD.
	grown := `{"entity_smallholder_id":2,"name":"` + strings.Repeat("\xff", 40) + `"}`
	rows, st, err = decodeAll(t, strings.NewReader(body(`{"entity_smallholder_id":1}`, grown, `{"entity_smallholder_id":3}`)), WithMaxRecordBytes(100))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || st.DroppedByReason[DropTooLarge] != 1 {
		t.Errorf("rows %v, dropped %v: want records 1 and 3, the one whose text grew past the cap dropped as %s", rows, st.DroppedByReason, DropTooLarge)
	}
}

// A status longer than a real one is counted under one bucket.
func TestLongStatusValuesShareABucket(t *testing.T) {
	var recs []string
	for i := range 5 {
		recs = append(recs, fmt.Sprintf(`{"entity_smallholder_id":%d,"cert_status":"%s%d"}`, i, strings.Repeat("S", 5000), i))
	}
	recs = append(recs, `{"entity_smallholder_id":9,"cert_status":"ACTIVE"}`)
	_, st, err := decodeAll(t, strings.NewReader(body(recs...)))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.RecordsByCertStatus) != 2 || st.RecordsByCertStatus[LongStatus] != 5 || st.RecordsByCertStatus["ACTIVE"] != 1 {
		t.Errorf("statuses %v, want ACTIVE and 5 under %s", st.RecordsByCertStatus, LongStatus)
	}
}

// A body with more elements in its records array than the record cap
// fails with ErrTooManyRecords, a too_large failure, as soon as the
// element past the cap starts: nothing after it is read, so the state
// kept per record (the duplicate counts, the digests) stays within the
// cap's worth. Dropped elements count, since each costs a read.
func TestRecordCount(t *testing.T) {
	three := `{"data":{"results":[{"entity_smallholder_id":1},7,{"entity_smallholder_id":3}]}}`
	for _, tt := range []struct {
		name    string
		body    io.Reader
		max     int64
		wantErr error
		read    int64
	}{
		{"at the cap", strings.NewReader(three), 3, nil, 3},
		{"under the cap", strings.NewReader(three), 4, nil, 3},
		{"one past the cap", strings.NewReader(three), 2, ErrTooManyRecords, 3},
		{"far past the cap", strings.NewReader(three), 1, ErrTooManyRecords, 2},
		// What follows the first element past the cap is never read.
		{"stops at the element past the cap", io.MultiReader(strings.NewReader(`{"data":{"results":[{"entity_smallholder_id":1},{"entity_smallholder_id":2},{`), iotest.ErrReader(errors.New("read past the cap"))), 2, ErrTooManyRecords, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dec := NewDecoder(tt.body, WithMaxRecords(tt.max), WithBatchSize(1))
			defer dec.Release()
			for dec.Next() {
			}
			err := dec.Err()
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if kind := fetch.FailureKind(err); kind != fetch.FailureTooLarge {
					t.Errorf("failure kind %q, want %q", kind, fetch.FailureTooLarge)
				}
				if !strings.Contains(err.Error(), strconv.FormatInt(tt.max, 10)) {
					t.Errorf("error %q does not give the cap %d", err, tt.max)
				}
			}
			if got := dec.Stats().RecordsRead; got != tt.read {
				t.Errorf("read %d records, want %d", got, tt.read)
			}
		})
	}
}
