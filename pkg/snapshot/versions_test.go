package snapshot_test

import (
	"context"
	"log/slog"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/history/historytest"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// TestVersionsGiveEverySnapshotAsOfItsDay publishes days of every
// dataset, on both stores, with plots removed and coming back, values
// changed and changed back, and a skipped day, and checks that for every
// day D the newest version of each plot with valid_from <= D, without
// the removed ones, is day D's snapshot row for row (the first row of an
// id standing for it, as in the change table).
func TestVersionsGiveEverySnapshotAsOfItsDay(t *testing.T) {
	for _, ds := range slices.SortedFunc(maps.Values(spoc.Datasets()), func(a, b *spoc.Dataset) int { return strings.Compare(a.Name, b.Name) }) {
		for _, st := range []struct {
			name  string
			store func(t *testing.T) sink.Store
		}{
			{"local", func(t *testing.T) sink.Store { s, _ := sink.NewLocal(t.TempDir()); return s }},
			{"gcs", func(t *testing.T) sink.Store { return fakeGCS(t) }},
		} {
			t.Run(ds.Name+"/"+st.name, func(t *testing.T) {
				store := st.store(t)
				days := historytest.Days(t, historytest.NewBody(t, ds, 300))
				dates := slices.Sorted(maps.Keys(days))
				columns := len(ds.Columns)
				for _, d := range dates {
					opts := options(t, serve(t, days[d]), store)
					opts.Dataset, opts.Prefix = ds, ds.Prefix
					opts.Day, _ = time.Parse(snapshot.DateLayout, d)
					opts.Outputs.Changes = true
					opts.Guards.MaxFallPercent = 100 // day 2 and day 5 remove plots on purpose
					opts.Decoder = []spoc.DecoderOption{spoc.WithBatchSize(64)}
					opts.Layouts = snapshot.NewLayouts(ds, "test", snapshot.Layout{RowGroupRows: 100}, snapshot.Layout{})
					m, err := snapshot.Run(context.Background(), opts)
					if err != nil {
						t.Fatalf("%s: %v", d, err)
					}
					if m.Versions == nil || m.Versions.URL == "" {
						t.Fatalf("%s: the manifest names no versions object", d)
					}
				}
				names := snapshot.NamesOf(ds)
				h := historytest.History{}
				for _, d := range dates {
					h.Add(t, d, readAll(t, store, path.Join(ds.Prefix, d, names.Versions)), columns)
				}
				for id, vs := range h {
					if vs[0].From == dates[0] && vs[0].Change != changes.Added {
						t.Errorf("%s, the first day: plot %s has a version %s, not added", dates[0], id, vs[0].Change)
					}
				}
				kinds := map[string]bool{}
				for _, d := range dates {
					got := h.AsOf(d, kinds)
					want := historytest.Snapshot(t, readAll(t, store, path.Join(ds.Prefix, d, names.Parquet)), columns)
					for _, line := range historytest.Diff(want, got) {
						t.Errorf("as of %s, %s", d, line)
					}
				}
				for _, k := range []string{changes.Added, changes.Changed, changes.Removed} {
					if !kinds[k] {
						t.Errorf("no day began a version %s: the days test less than they should", k)
					}
				}
			})
		}
	}
}

// TestBackfillBeforeLaterDaysWarns: publishing a day dated before days
// already published (a backfill, or a rerun of an older day) leaves the
// later days' versions written against the day before it; the run says
// so, naming the first later day, and a run of the newest day does not.
func TestBackfillBeforeLaterDaysWarns(t *testing.T) {
	store, _ := sink.NewLocal(t.TempDir())
	d := func(s string) time.Time { v, _ := time.Parse(snapshot.DateLayout, s); return v }
	publishDay(t, store, d("20261202"), generated(t, 300, 1))
	publishDay(t, store, d("20261204"), generated(t, 300, 2))
	for _, tc := range []struct {
		day, firstLater string // "": no later day
	}{{"20261201", "20261202"}, {"20261203", "20261204"}, {"20261205", ""}} {
		opts := rerunOptions(t, store, generated(t, 300, 3))
		opts.Day = d(tc.day)
		var logs syncBuffer
		opts.Telemetry.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		if _, err := snapshot.Run(context.Background(), opts); err != nil {
			t.Fatalf("%s: %v", tc.day, err)
		}
		warned := strings.Contains(logs.String(), `level=WARN msg="later days are published`)
		if warned != (tc.firstLater != "") || warned && !strings.Contains(logs.String(), "first_later_day="+tc.firstLater) {
			t.Errorf("%s: want a warning naming %q:\n%s", tc.day, tc.firstLater, logs.String())
		}
	}
}
