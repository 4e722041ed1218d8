package main

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// SPOC_DATASET=references publishes every declared reference list from
// the API at SPOC_API_BASE in one run, each with its Parquet (its int32
// key first), manifest and change table. The next day a zone gone is a
// removed row of the zones' change table, keyed by its zone_id; a states
// list whose state field is renamed is refused by the schema contract
// (exit 1, nothing of it published) while the zones publish.
func TestReferencesPublishEveryList(t *testing.T) {
	refs, _ := spoc.InGroup(spoc.References)
	if len(refs) == 0 {
		t.Fatal("the references group holds no list")
	}
	out := t.TempDir()
	day := func(date string, lists map[*spoc.Dataset][]spoctest.Option) (int, string, map[*spoc.Dataset]*spoctest.Handler) {
		for _, ds := range refs {
			if _, ok := lists[ds]; !ok {
				lists[ds] = nil
			}
		}
		api, handlers := fakeAPI(t, lists)
		code, logs := runJob(t, context.Background(), map[string]string{"SPOC_DATASET": spoc.References, "SPOC_API_BASE": api.URL, "SPOC_OUTPUT": out, "SPOC_DATE": date})
		return code, logs, handlers
	}

	code, logs, handlers := day("20261201", map[*spoc.Dataset][]spoctest.Option{})
	if code != exitOK {
		t.Fatalf("day 1: exit %d\n%s", code, logs)
	}
	for _, ds := range refs {
		dir := filepath.Join(out, ds.Prefix, "20261201")
		n := snapshot.NamesOf(ds)
		if got, want := files(t, dir), []string{n.Changes, n.Versions, n.Digest, n.Archive, n.Manifest, n.Parquet}; !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", ds.Name, got, want)
		}
		m := readManifest(t, mustRead(t, filepath.Join(dir, n.Manifest)))
		planted := handlers[ds].Planted()
		if m.Stats.RecordsWritten != int64(planted.Records) || planted.Records < int(ds.Floor) || m.Changes == nil || !m.Changes.FirstRun {
			t.Errorf("%s: %d records (planted %d, floor %d), changes %+v", ds.Name, m.Stats.RecordsWritten, planted.Records, ds.Floor, m.Changes)
		}
		tbl := parquettest.ReadTable(t, mustRead(t, filepath.Join(dir, n.Parquet)))
		if !sameFields(tbl.Schema(), ds.Schema()) || tbl.NumRows() != int64(planted.Records) {
			t.Errorf("%s: Parquet of %d rows, schema\n%s\nwant %d rows of\n%s", ds.Name, tbl.NumRows(), tbl.Schema(), planted.Records, ds.Schema())
		}
		if s := parquettest.Schema(t, mustRead(t, filepath.Join(dir, n.Changes))); !sameFields(s, changes.Schema(ds)) {
			t.Errorf("%s: change table\n%s\nwant\n%s", ds.Name, s, changes.Schema(ds))
		}
	}

	// Day 2: the zones lose their 11th, the states' field is renamed.
	var states, zones bytes.Buffer
	if _, err := spoctest.Generate(&states, spoctest.GenOptions{Dataset: spoc.States, Records: 16}); err != nil {
		t.Fatal(err)
	}
	if _, err := spoctest.Generate(&zones, spoctest.GenOptions{Dataset: spoc.Zones, Records: 11, NextDay: spoctest.Changes{RemoveEvery: 11}}); err != nil {
		t.Fatal(err)
	}
	renamed := bytes.ReplaceAll(states.Bytes(), []byte(`"state":`), []byte(`"stateName":`))
	code, logs, _ = day("20261202", map[*spoc.Dataset][]spoctest.Option{
		spoc.States: {spoctest.WithBody(renamed)},
		spoc.Zones:  {spoctest.WithBody(zones.Bytes())},
	})
	if code != exitFailed || !strings.Contains(logs, `likely renamed \"state\" -> \"stateName\"`) {
		t.Fatalf("day 2: exit %d, want %d and the states' renamed field\n%s", code, exitFailed, logs)
	}
	if got, want := files(t, filepath.Join(out, spoc.States.Prefix, "20261202")), []string{"rejected/" + snapshot.NamesOf(spoc.States).Archive}; !slices.Equal(got, want) {
		t.Errorf("the states' refused day holds %v, want %v", got, want)
	}
	n := snapshot.NamesOf(spoc.Zones)
	dir := filepath.Join(out, spoc.Zones.Prefix, "20261202")
	m := readManifest(t, mustRead(t, filepath.Join(dir, n.Manifest)))
	if c := m.Changes; c == nil || c.Previous != "20261201" || c.Removed != 1 || c.Added+c.Changed != 0 || c.Unchanged != 10 {
		t.Errorf("the zones' changes %+v, want zone 11 removed, 10 unchanged", m.Changes)
	}
	tbl := parquettest.ReadTable(t, mustRead(t, filepath.Join(dir, n.Changes)))
	if tbl.NumRows() != 1 {
		t.Fatalf("the zones' change table has %d rows, want 1", tbl.NumRows())
	}
	ids := tbl.Column(0).Data().Chunk(0).(*array.Int32)
	kinds := tbl.Column(1).Data().Chunk(0).(*array.String)
	if ids.Value(0) != 11 || kinds.Value(0) != "removed" {
		t.Errorf("the zones' change: %d %s, want 11 removed", ids.Value(0), kinds.Value(0))
	}
}

// SPOC_MIN_RECORDS gives each list of a run its own floor: held to 14,
// a states list that lost three of its 16 fails with too few records and
// publishes nothing (its body kept under rejected/), while the zones,
// held to 1, publish; the job exits 1.
func TestEachListHasItsOwnFloor(t *testing.T) {
	api, _ := fakeAPI(t, map[*spoc.Dataset][]spoctest.Option{spoc.States: {spoctest.WithRecords(13)}, spoc.Zones: nil})
	out := t.TempDir()
	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_DATASET": spoc.References, "SPOC_API_BASE": api.URL, "SPOC_OUTPUT": out, "SPOC_MIN_RECORDS": "states=14,zones=1"})
	if code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s", code, exitFailed, logs)
	}
	var statesFailed bool
	for _, l := range logLines(t, logs) {
		if l["dataset"] == spoc.States.Name && l["severity"] == "ERROR" {
			err, _ := l["error"].(string)
			statesFailed = strings.Contains(err, "too few records") && strings.Contains(err, "the minimum is 14")
		}
	}
	if !statesFailed {
		t.Errorf("no error line of states' too few records under its floor of 14\n%s", logs)
	}
	if got, want := files(t, filepath.Join(out, spoc.States.Prefix)), []string{today() + "/rejected/" + snapshot.NamesOf(spoc.States).Archive}; !slices.Equal(got, want) {
		t.Errorf("states left %v, want only %v", got, want)
	}
	n := snapshot.NamesOf(spoc.Zones)
	m := readManifest(t, mustRead(t, filepath.Join(out, spoc.Zones.Prefix, today(), n.Manifest)))
	if m.Stats.RecordsWritten != 11 {
		t.Errorf("the zones published %d records, want 11", m.Stats.RecordsWritten)
	}
}
