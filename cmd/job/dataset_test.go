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
			out := t.TempDir()
			env := map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out, "OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none"}
			var args []string
			if how == "env" {
				env["SPOC_DATASET"] = "osh"
			} else {
				args = []string{"-dataset", "osh"}
			}
			code, logs := runJob(t, context.Background(), env, args...)
			if code != exitOK {
				t.Fatalf("exit %d:\n%s", code, logs)
			}
			dir := filepath.Join(out, spoc.OSH.Prefix, today())
			n := snapshot.NamesOf(spoc.OSH)
			if got, want := files(t, dir), []string{n.Changes, n.Digest, n.Archive, n.Manifest, n.Parquet}; !slices.Equal(got, want) {
				t.Fatalf("the day holds %v, want %v", got, want)
			}
			m := readManifest(t, mustRead(t, filepath.Join(dir, n.Manifest)))
			if m.Stats.RecordsWritten != 40 {
				t.Errorf("%d records written, want 40", m.Stats.RecordsWritten)
			}
		})
	}
	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_DATASET": "spoc-list", "SPOC_OUTPUT": t.TempDir()})
	if code != exitConfig || !strings.Contains(logs, "the known ones are osh, spoc") {
		t.Errorf("an unknown dataset: exit %d, want %d naming the known ones:\n%s", code, exitConfig, logs)
	}
}
