package snapshot_test

import (
	"bytes"
	"context"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// TestRefusedOrFailedRunLeavesNoVersions runs a day that a publish
// guard refuses, and one whose body is cut with no attempt left (after
// the versions object was staged and written to), on both stores: as a
// first day, neither leaves a versions object, published or hidden; as
// a rerun of a published day, neither changes the day's versions.
func TestRefusedOrFailedRunLeavesNoVersions(t *testing.T) {
	body := generated(t, 300, 2)
	for _, backend := range []string{"local", "gcs"} {
		for _, how := range []string{"refused", "failed"} {
			t.Run(backend+"/"+how, func(t *testing.T) {
				store, list := storeFor(t, backend)
				run := func() error {
					opts := rerunOptions(t, store, body)
					if how == "refused" {
						opts.Guards.MinRecords = 1000
					} else {
						up := spoctest.NewServer(spoctest.WithBody(body), spoctest.CutFirst(1, int64(len(body)*3/4)))
						t.Cleanup(up.Close)
						opts.Source = up.URL
					}
					_, err := snapshot.Run(context.Background(), opts)
					return err
				}
				if err := run(); err == nil {
					t.Fatalf("the first day was not %s", how)
				}
				if got := slices.DeleteFunc(list(), func(name string) bool { return !strings.Contains(path.Base(name), "versions") }); len(got) != 0 {
					t.Errorf("a first day %s left %v", how, got)
				}

				publishDay(t, store, day.AddDate(0, 0, -1), generated(t, 300, 1))
				publishDay(t, store, day, generated(t, 300, 3))
				versions := path.Join(rerunDir, snapshot.VersionsName)
				old := readAll(t, store, versions)
				if err := run(); err == nil {
					t.Fatalf("the rerun was not %s", how)
				}
				if !bytes.Equal(readAll(t, store, versions), old) {
					t.Errorf("a rerun %s changed the day's versions", how)
				}
				if got := slices.DeleteFunc(list(), func(name string) bool { return !strings.Contains(path.Base(name), "versions") }); !slices.Equal(got, []string{versions}) {
					t.Errorf("a rerun %s left %v, want only %s", how, got, versions)
				}
			})
		}
	}
}

// TestRerunWithTheSameBodyWritesTheSameVersions reruns a day with its
// body: the versions object holds the same rows, and the same bytes
// (nothing in it depends on the run but its day).
func TestRerunWithTheSameBodyWritesTheSameVersions(t *testing.T) {
	for _, backend := range []string{"local", "gcs"} {
		t.Run(backend, func(t *testing.T) {
			store, _ := storeFor(t, backend)
			publishDay(t, store, day.AddDate(0, 0, -1), generated(t, 300, 1))
			publishDay(t, store, day, generated(t, 300, 2))
			versions := path.Join(rerunDir, snapshot.VersionsName)
			first, firstRows := readAll(t, store, versions), versionRows(t, store, day)
			publishDay(t, store, day, generated(t, 300, 2))
			if again := versionRows(t, store, day); !slices.Equal(again, firstRows) {
				t.Errorf("the rerun wrote %d versions, the first run %d: not the same", len(again), len(firstRows))
			}
			if !bytes.Equal(readAll(t, store, versions), first) {
				t.Errorf("the rerun's versions object has other bytes than the first run's")
			}
		})
	}
}
