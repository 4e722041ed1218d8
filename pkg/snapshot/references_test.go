package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// Each reference list publishes through the same run as the others, with
// its record floor as the minimum: day 2, compared through day 1's
// digest, has a change table keyed by the list's int32 id (a name
// changed, the ids gone removed), and a day below the floor is refused
// and publishes nothing.
func TestReferenceListsDayByDay(t *testing.T) {
	refs, _ := spoc.InGroup(spoc.References)
	for _, ds := range refs {
		t.Run(ds.Name, func(t *testing.T) {
			out := t.TempDir()
			store, _ := sink.NewLocal(out)
			names := snapshot.NamesOf(ds)
			listed := 0 // the records of the whole list
			body := func(records, removeEvery int) []byte {
				var b bytes.Buffer
				p, err := spoctest.Generate(&b, spoctest.GenOptions{Dataset: ds, Records: records, NextDay: spoctest.Changes{RemoveEvery: removeEvery}})
				if err != nil {
					t.Fatal(err)
				}
				listed = max(listed, p.Records)
				return b.Bytes()
			}
			run := func(d int, body []byte) (*snapshot.Manifest, string, error) {
				opts := options(t, serve(t, body), store)
				opts.Dataset, opts.Prefix = ds, ds.Prefix
				opts.Day = day.AddDate(0, 0, d)
				opts.Outputs.Archive, opts.Outputs.Changes = true, true
				opts.Guards.MinRecords = ds.Floor
				// Two of 16 states gone is 12.5% fewer, past the job's
				// default of 10%: this test is about the change table.
				opts.Guards.MaxFallPercent = 20
				m, err := snapshot.Run(context.Background(), opts)
				return m, filepath.Join(out, ds.Prefix, opts.Day.Format(snapshot.DateLayout)), err
			}
			day1 := body(100, 0)
			if _, _, err := run(0, day1); err != nil {
				t.Fatalf("day 1: %v", err)
			}
			// Day 2: every 8th id gone, and id 1 renamed.
			name := ds.Columns[1].JSON
			first := fmt.Sprintf(`":1,"%s":"`, name)
			day2 := bytes.Replace(body(100, 8), []byte(first), []byte(first+"New "), 1)
			m, dir, err := run(1, day2)
			if err != nil {
				t.Fatalf("day 2: %v", err)
			}
			if m.Changes == nil || m.Changes.BaselineFrom != snapshot.BaselineFromDigest {
				t.Errorf("day 2 changes %+v, want them compared with day 1's digest", m.Changes)
			}
			data, err := os.ReadFile(filepath.Join(dir, names.Changes))
			if err != nil {
				t.Fatal(err)
			}
			tbl := parquettest.ReadTable(t, data)
			same := func(a, b *arrow.Schema) bool {
				return slices.EqualFunc(a.Fields(), b.Fields(), func(f, g arrow.Field) bool {
					return f.Name == g.Name && arrow.TypeEqual(f.Type, g.Type) && f.Nullable == g.Nullable
				})
			}
			if s := tbl.Schema(); !same(s, changes.Schema(ds)) || s.Field(0).Type.ID() != arrow.INT32 {
				t.Errorf("change table schema\n%s\nwant\n%s", s, changes.Schema(ds))
			}
			want := []string{"1 changed [" + ds.Columns[1].Name + "]"}
			for id := 8; id <= listed; id += 8 {
				want = append(want, fmt.Sprintf("%d removed -", id))
			}
			if got := referenceRows(tbl); !slices.Equal(got, want) {
				t.Errorf("change table %q, want %q", got, want)
			}

			// Day 3: one record below the floor.
			_, dir, err = run(2, body(int(ds.Floor)-1, 0))
			if !errors.Is(err, snapshot.ErrTooFewRecords) {
				t.Fatalf("day 3, below the floor of %d: %v, want ErrTooFewRecords", ds.Floor, err)
			}
			if got := files(t, dir); slices.ContainsFunc(got, func(f string) bool { return !strings.HasPrefix(f, "rejected/") }) {
				t.Errorf("the refused day holds %v", got)
			}
		})
	}
}

// referenceRows renders a reference list's change table as "id change
// [columns]", "-" for a null.
func referenceRows(tbl arrow.Table) []string {
	tr := array.NewTableReader(tbl, 1<<10)
	defer tr.Release()
	var rows []string
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := range int(rec.NumRows()) {
			cols := "-"
			if !rec.Column(2).IsNull(i) {
				cols = strings.NewReplacer(`"`, "", " ", ",").Replace(rec.Column(2).ValueStr(i))
			}
			rows = append(rows, fmt.Sprintf("%s %s %s", rec.Column(0).ValueStr(i), rec.Column(1).ValueStr(i), cols))
		}
	}
	return rows
}

// A body none of whose records holds the key field (another list's body
// at the URL, or the key renamed) has no row to publish; the run is
// refused under the record guard that applies, and the error says that
// the key field is in no record and names the field likely in its place,
// not only that the body has too few records.
func TestNoRecordHoldsTheKey(t *testing.T) {
	states, zones := referenceBody(t, spoc.States), referenceBody(t, spoc.Zones)
	n := bytes.Count(states, []byte(`"stateId":`))
	tests := []struct {
		name       string
		body       []byte
		records    int
		minRecords int64
		want       error
		says       []string
	}{
		{name: "zones at the states URL", body: zones, records: bytes.Count(zones, []byte(`"zoneId":`)), minRecords: 1, want: snapshot.ErrTooFewRecords,
			says: []string{"too few records: ", `key field "stateId"`, `likely renamed "stateId" -> "zoneId"`}},
		{name: "the key renamed", records: n, body: renamed(states, "stateId", "StateId"), minRecords: 1, want: snapshot.ErrTooFewRecords,
			says: []string{fmt.Sprintf(`none of the %d records holds the key field "stateId"`, n), fmt.Sprintf(`the undeclared field "StateId" appeared %d times: likely renamed "stateId" -> "StateId"`, n)}},
		{name: "no minimum: too many dropped", records: n, body: renamed(states, "stateId", "StateId"), want: snapshot.ErrTooManyDropped,
			says: []string{"too many records dropped: ", `key field "stateId"`, `likely renamed "stateId" -> "StateId"`}},
		{name: "a null key in every record", records: n, body: fieldValue("stateId").ReplaceAll(states, []byte(`"stateId":null`)), minRecords: 1, want: snapshot.ErrTooFewRecords,
			says: []string{fmt.Sprintf(`none of the %d records has a usable key (field "stateId"): null_id %d`, n, n)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			store, _ := sink.NewLocal(out)
			opts := options(t, serve(t, tt.body), store)
			opts.Dataset, opts.Prefix = spoc.States, spoc.States.Prefix
			opts.Guards.MinRecords = tt.minRecords
			opts.Outputs.Archive = true
			_, err := snapshot.Run(context.Background(), opts)
			var noKey *snapshot.NoKeyError
			if !errors.Is(err, tt.want) || !errors.As(err, &noKey) {
				t.Fatalf("%v, want %v, a *NoKeyError", err, tt.want)
			}
			if noKey.Field != "stateId" || noKey.Records != int64(tt.records) {
				t.Errorf("%+v, want field stateId, %d records", noKey, tt.records)
			}
			for _, want := range append(tt.says, "rejected/") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
			if strings.Contains(err.Error(), "the minimum is") {
				t.Errorf("the error blames the minimum: %v", err)
			}
		})
	}
}
