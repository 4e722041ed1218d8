package snapshot

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// bodyStats are the statistics of a body of n records of ds, each with
// every declared field and a value in it, but for the fields in absent
// (in no record) and null (in every record, null); undeclared are the
// fields the dataset does not declare, each met in every record.
func bodyStats(ds *spoc.Dataset, n int64, absent, null, undeclared []string) spoc.Stats {
	s := spoc.Stats{RecordsRead: n, RecordsWritten: n, Columns: map[string]spoc.ColumnStats{}}
	for _, c := range ds.Columns {
		cs := spoc.ColumnStats{Present: n, NonNullShare: 1}
		switch {
		case slices.Contains(absent, c.JSON):
			cs = spoc.ColumnStats{Nulls: n}
			s.MissingFields = append(s.MissingFields, c.JSON)
		case slices.Contains(null, c.JSON):
			cs = spoc.ColumnStats{Nulls: n, Present: n}
		}
		s.Columns[c.Name] = cs
	}
	for _, f := range undeclared {
		s.UndeclaredFields = append(s.UndeclaredFields, spoc.FieldSeen{Name: f, Count: n, Types: []string{"string"}})
	}
	return s
}

// The guard on columns, alone: against a previous snapshot it refuses a
// column that collapsed to nulls; on a first day, with nothing to compare
// with, a declared field that no record holds (another list's body at
// the URL, a renamed field), never one that is there with nulls. Force
// publishes what it refuses; a zero CollapseBelowPercent turns it off.
func TestCheckColumns(t *testing.T) {
	on := Guards{CollapseWasPercent: 90, CollapseBelowPercent: 10}
	yesterday := &Manifest{Snapshot: "20261125", Stats: bodyStats(spoc.SPOC, 400, nil, nil, nil)}
	tests := []struct {
		name     string
		guards   Guards
		ds       *spoc.Dataset
		stats    spoc.Stats
		previous *Manifest
		// wantColumns are the columns refused (nil: none), each with
		// the field that likely replaced it ("": none).
		wantColumns map[string]string
		wantForced  bool
		wantSays    []string // in the error
	}{
		{name: "a whole body publishes", guards: on, ds: spoc.SPOC, stats: bodyStats(spoc.SPOC, 400, nil, nil, nil)},
		{name: "a column collapsed against yesterday is refused", guards: on, ds: spoc.SPOC, previous: yesterday,
			stats:       bodyStats(spoc.SPOC, 400, []string{"cert_status"}, nil, []string{"certStatus"}),
			wantColumns: map[string]string{"cert_status": "certStatus"},
			wantSays:    []string{"a column collapsed to nulls against the previous snapshot: ", `cert_status (field "cert_status") had a value in 100.0% of the rows of 20261125`, `likely renamed "cert_status" -> "certStatus"`}},
		{name: "first day: a field no record holds is refused", guards: on, ds: spoc.SPOC,
			stats:       bodyStats(spoc.SPOC, 400, []string{"cert_status"}, nil, []string{"certStatus"}),
			wantColumns: map[string]string{"cert_status": "certStatus"},
			wantSays:    []string{`cert_status (field "cert_status") is in none of the 400 records written`, `likely renamed "cert_status" -> "certStatus"`, "no previous snapshot", "Options.Guards.Force"}},
		{name: "first day: a GM body at SPOC's URL is refused, naming spoc_code and gm_code", guards: on, ds: spoc.SPOC,
			stats:       bodyStats(spoc.SPOC, 2300, []string{"spoc_code"}, nil, []string{"gm_code"}),
			wantColumns: map[string]string{"spoc_code": "gm_code"},
			wantSays:    []string{`spoc_code (field "spoc_code") is in none of the 2300 records written`, `likely renamed "spoc_code" -> "gm_code"`}},
		{name: "first day: of fields met as often, the one named like the column is named", guards: on, ds: spoc.GM,
			stats:       bodyStats(spoc.GM, 300, []string{"gm_code"}, nil, []string{"geolocation", "spoc_code"}),
			wantColumns: map[string]string{"gm_code": "spoc_code"}},
		{name: "first day: a field no record holds, with no field in its place", guards: on, ds: spoc.SPOC,
			stats:       bodyStats(spoc.SPOC, 400, []string{"mukimId", "mukim"}, nil, nil),
			wantColumns: map[string]string{"mukim_id": "", "mukim": ""},
			wantSays:    []string{`mukim_id (field "mukimId")`, `mukim (field "mukim")`}},
		{name: "first day: forced, the field no record holds publishes", guards: Guards{CollapseWasPercent: 90, CollapseBelowPercent: 10, Force: true}, ds: spoc.SPOC,
			stats:      bodyStats(spoc.SPOC, 2300, []string{"spoc_code"}, nil, []string{"gm_code"}),
			wantForced: true},
		{name: "first day: the guard turned off publishes a field no record holds", guards: Guards{CollapseWasPercent: 90}, ds: spoc.SPOC,
			stats: bodyStats(spoc.SPOC, 2300, []string{"spoc_code"}, nil, []string{"gm_code"})},
		{name: "first day: a field in every record, null in each, publishes", guards: on, ds: spoc.SPOC,
			stats: bodyStats(spoc.SPOC, 400, nil, []string{"mukimId", "mukim", "daerahId", "daerah"}, nil)},
		{name: "first day: a field in a single record publishes", guards: on, ds: spoc.SPOC,
			stats: func() spoc.Stats {
				s := bodyStats(spoc.SPOC, 400, nil, nil, nil)
				s.Columns["lot_no"] = spoc.ColumnStats{Nulls: 399, Present: 1}
				return s
			}()},
		{name: "first day: a field in every record with no usable value is refused", guards: on, ds: spoc.States,
			stats: func() spoc.Stats {
				s := bodyStats(spoc.States, 16, nil, nil, []string{"stateName"})
				s.Columns["state"] = spoc.ColumnStats{Nulls: 16, Present: 16, Invalid: map[string]int64{spoc.ReasonWrongType: 16}}
				return s
			}(),
			wantColumns: map[string]string{"state": "stateName"},
			wantSays: []string{`state (field "state") has no usable value in the 16 records written: 16 invalid (wrong_type 16)`,
				`likely renamed "state" -> "stateName"`, "no previous snapshot", "unusable"}},
		{name: "first day: one unusable value in a column otherwise null is refused", guards: on, ds: spoc.SPOC,
			stats: func() spoc.Stats {
				s := bodyStats(spoc.SPOC, 400, nil, nil, nil)
				s.Columns["created_at"] = spoc.ColumnStats{Nulls: 400, Present: 400, Invalid: map[string]int64{spoc.ReasonBadTimestamp: 1}}
				return s
			}(),
			wantColumns: map[string]string{"created_at": ""},
			wantSays:    []string{`created_at (field "created_at") has no usable value in the 400 records written: 1 invalid (bad_timestamp 1)`}},
		{name: "first day: a field with values and unusable ones publishes", guards: on, ds: spoc.SPOC,
			stats: func() spoc.Stats {
				s := bodyStats(spoc.SPOC, 400, nil, nil, nil)
				s.Columns["created_at"] = spoc.ColumnStats{Nulls: 399, Present: 400, Invalid: map[string]int64{spoc.ReasonBadTimestamp: 399}}
				return s
			}()},
		{name: "first day: empty strings in every record publish, as the nulls they stand for", guards: on, ds: spoc.SPOC,
			stats: func() spoc.Stats {
				s := bodyStats(spoc.SPOC, 400, nil, nil, nil)
				s.Columns["daerah_id"] = spoc.ColumnStats{Nulls: 400, Present: 400, Invalid: map[string]int64{spoc.ReasonEmpty: 400}}
				return s
			}()},
		{name: "first day: a body with no rows is left to the record guards", guards: on, ds: spoc.SPOC,
			stats: spoc.Stats{RecordsRead: 0, Columns: bodyStats(spoc.SPOC, 0, nil, nil, nil).Columns}},
		{name: "first day: a reference list publishes", guards: on, ds: spoc.States, stats: bodyStats(spoc.States, 16, nil, nil, nil)},
		{name: "first day: a reference list whose name field is gone is refused", guards: on, ds: spoc.Zones,
			stats:       bodyStats(spoc.Zones, 11, []string{"zone"}, nil, []string{"zoneName"}),
			wantColumns: map[string]string{"zone": "zoneName"}},
		{name: "a field gone from a half-empty column against yesterday publishes", guards: on, ds: spoc.SPOC,
			previous: &Manifest{Snapshot: "20261125", Stats: func() spoc.Stats {
				s := bodyStats(spoc.SPOC, 400, nil, nil, nil)
				s.Columns["lot_no"] = spoc.ColumnStats{Nulls: 200, Present: 400}
				return s
			}()},
			stats: bodyStats(spoc.SPOC, 400, []string{"lot_no"}, nil, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forced, err := checkColumns(tt.guards, tt.ds, tt.stats, tt.previous)
			if forced != tt.wantForced {
				t.Errorf("forced %v, want %v", forced, tt.wantForced)
			}
			if tt.wantColumns == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var collapsed *CollapsedError
			if !errors.Is(err, ErrColumnCollapsed) || !errors.As(err, &collapsed) {
				t.Fatalf("%v, want a *CollapsedError", err)
			}
			got := map[string]string{}
			for _, c := range collapsed.Columns {
				got[c.Column] = c.LikelyRename
			}
			if !maps.Equal(got, tt.wantColumns) {
				t.Errorf("refused %v, want %v", got, tt.wantColumns)
			}
			for _, want := range tt.wantSays {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
		})
	}
}
