package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// runDataset runs the job on the dataset named by SPOC_DATASET (how is
// "env") or -dataset ("flag"), from url into a new directory, which it
// returns once the job has exited 0.
func runDataset(t *testing.T, how, dataset, url string) string {
	t.Helper()
	out := t.TempDir()
	env := map[string]string{"SPOC_URL": url, "SPOC_OUTPUT": out, "OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none"}
	var args []string
	if how == "env" {
		env["SPOC_DATASET"] = dataset
	} else {
		args = []string{"-dataset", dataset}
	}
	if code, logs := runJob(t, context.Background(), env, args...); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, logs)
	}
	return out
}

// SPOC_DATASET=osh (or -dataset osh) publishes the organised
// smallholders under their own prefix and names, with their schema; an
// unknown dataset is a configuration error naming the known ones.
func TestOSHDataset(t *testing.T) {
	var recs []string
	for id := 1; id <= 40; id++ {
		recs = append(recs, fmt.Sprintf(`{"entity_smallholder_id":%d,"entity_code":"ORS%05d","entity_name":"FELDA","mpob_no":null,"planted_area":"4.0000","certified_area":"3.5000","gps_coordinate_lat":"3.12345","gps_coordinate_long":"101.12345","name":"A","stateId":6,"state":"PAHANG","daerahId":null,"daerah":null,"lot_no":"L","cert_status":"ACTIVE","cert_no":"MYMS1","created_at":"2024-01-02T03:04:05.000Z","updated_at":"2024-01-02T03:04:05.000Z","track_id":"MTS1"}`, id, id))
	}
	up := spoctest.NewServer(spoctest.WithBody([]byte(`{"status":true,"data":{"page":1,"page_size":10,"data":[` + strings.Join(recs, ",") + `]}}`)))
	defer up.Close()
	for _, how := range []string{"env", "flag"} {
		t.Run(how, func(t *testing.T) {
			out := runDataset(t, how, "osh", up.URL)
			dir := filepath.Join(out, spoc.OSH.Prefix, today())
			n := snapshot.NamesOf(spoc.OSH)
			if got, want := files(t, dir), []string{n.Changes, n.Geo, n.Versions, n.Digest, n.Archive, n.Manifest, n.Parquet}; !slices.Equal(got, want) {
				t.Fatalf("the day holds %v, want %v", got, want)
			}
			m := readManifest(t, mustRead(t, filepath.Join(dir, n.Manifest)))
			if m.Stats.RecordsWritten != 40 {
				t.Errorf("%d records written, want 40", m.Stats.RecordsWritten)
			}
		})
	}
	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_DATASET": "spoc-list", "SPOC_OUTPUT": t.TempDir()})
	if code != exitConfig || !strings.Contains(logs, "the known ones are gm, osh, spoc") {
		t.Errorf("an unknown dataset: exit %d, want %d naming the known ones:\n%s", code, exitConfig, logs)
	}
}

// SPOC_DATASET=gm (or -dataset gm) publishes a generated day of the group
// managers' list, with SPOC's quirks and GM's, under its own prefix and
// names: every record with an id, its gm_code column, and the manifest's
// statistics those the generator planted.
func TestGMDataset(t *testing.T) {
	up := spoctest.NewServer(spoctest.WithDataset(spoc.GM), spoctest.WithRecords(2300), spoctest.WithDropEvery(400))
	defer up.Close()
	for _, how := range []string{"env", "flag"} {
		t.Run(how, func(t *testing.T) {
			out := runDataset(t, how, "gm", up.URL)
			dir := filepath.Join(out, "raw/mspo/api/groupmanager/list-public", today())
			n := snapshot.NamesOf(spoc.GM)
			if got, want := files(t, dir), []string{"changes/groupmanager-list-public.changes.parquet", "geo/groupmanager-list-public.geo.parquet", "groupmanager-list-public.digest",
				"groupmanager-list-public.json.gz", "groupmanager-list-public.manifest.json", "groupmanager-list-public.parquet", "history/groupmanager-list-public.versions.parquet"}; !slices.Equal(got, want) {
				t.Fatalf("the day holds %v, want %v", got, want)
			}
			m := readManifest(t, mustRead(t, filepath.Join(dir, n.Manifest)))
			if m.Stats.RecordsWritten != 2300-2300/400 || m.Stats.RecordsDropped != 2300/400 || len(m.Stats.UndeclaredFields) != 0 || m.Stats.DeletedRecords == 0 {
				t.Errorf("stats %+v: want %d written, %d dropped, some deleted, no undeclared field", m.Stats, 2300-2300/400, 2300/400)
			}
			if _, ok := m.Stats.Columns["gm_code"]; !ok {
				t.Errorf("the manifest has no gm_code column: %v", m.Stats.Columns)
			}
		})
	}
}
