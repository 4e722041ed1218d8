package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/history/historytest"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/sink/sinktest"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

var errInjected = errors.New("injected fault")

const rerunDir = "raw/spoc/20261126"

// publishDay publishes body as day on store, with every object a run
// writes, and fails the test if it cannot.
func publishDay(t *testing.T, store sink.Store, day time.Time, body []byte) {
	t.Helper()
	opts := rerunOptions(t, store, body)
	opts.Day = day
	if _, err := snapshot.Run(context.Background(), opts); err != nil {
		t.Fatalf("publish %s: %v", day.Format(snapshot.DateLayout), err)
	}
}

// rerunOptions are the settings of a rerun of a published day: every
// object, no skip of an unchanged body, a short lease so that a lock
// write that failed is retried within milliseconds.
func rerunOptions(t *testing.T, store sink.Store, body []byte) snapshot.Options {
	opts := options(t, serve(t, body), store)
	opts.Outputs.Archive, opts.Outputs.Changes, opts.Outputs.Geo, opts.Guards.SkipIfUnchanged = true, true, true, false
	opts.Lock.Lease = 1200 * time.Millisecond
	return opts
}

// dayContents is every object of the day's folder, hidden ones included,
// with a digest of its bytes; the lock is left out.
func dayContents(t *testing.T, store sink.Store, list func() []string) map[string]string {
	t.Helper()
	names := slices.DeleteFunc(list(), func(name string) bool { return path.Base(name) == snapshot.LockName })
	return sinktest.Contents(t, store, names)
}

// checkPublished fails the test unless the day's manifest describes the
// objects beside it: the same sizes and CRC32Cs, and a geolocation layer
// of the snapshot's plots, in its order.
func checkPublished(t *testing.T, store sink.Store, dir string) {
	t.Helper()
	m := readManifest(t, store, path.Join(dir, snapshot.ManifestName))
	infos := map[string]sink.ObjectInfo{snapshot.ParquetName: m.Parquet.ObjectInfo}
	if m.Archive != nil {
		infos[snapshot.ArchiveName] = *m.Archive
	}
	if m.Changes != nil {
		infos[snapshot.ChangesName] = m.Changes.ObjectInfo
	}
	if m.Digest != nil {
		infos[snapshot.DigestName] = *m.Digest
	}
	if m.Versions != nil {
		infos[snapshot.VersionsName] = m.Versions.ObjectInfo
	}
	if m.Geo != nil {
		infos[snapshot.GeoName] = m.Geo.ObjectInfo
		snap, layer := readAll(t, store, path.Join(dir, snapshot.ParquetName)), readAll(t, store, path.Join(dir, snapshot.GeoName))
		if got, want := columnText(t, layer, 0), columnText(t, snap, 0); !slices.Equal(got, want) || m.Geo.Rows != int64(len(want)) {
			t.Errorf("the geolocation layer has %d plots (%d in the manifest), the snapshot %d: not the same ids in the same order", len(got), m.Geo.Rows, len(want))
		}
	}
	for name, info := range infos {
		data := readAll(t, store, path.Join(dir, name))
		if crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)); info.Size != int64(len(data)) || info.CRC32C != crc {
			t.Errorf("the manifest says %s has %d bytes, CRC32C %08x; it has %d, %08x", name, info.Size, info.CRC32C, len(data), crc)
		}
	}
	if len(infos) != 6 {
		t.Errorf("the manifest names %d objects, want 6", len(infos))
	}
}

// rerunUnderFaults reruns the day on store with a fault at the nth write
// for every n until a run meets none, and checks what each run leaves
// (see TestRerunFailingAtAnyStepLeavesTheDay). After each run, failed or
// not, it publishes the next day and checks that the versions of the
// three days give each day's snapshot as of it. It returns what was hit.
func rerunUnderFaults(t *testing.T, base, store sink.Store, list func() []string, plan sinktest.NthWrite) []string {
	publishDay(t, base, day.AddDate(0, 0, -1), generated(t, 300, 1))
	publishDay(t, base, day, generated(t, 300, 2))
	parquet := path.Join(rerunDir, snapshot.ParquetName)
	versions := path.Join(rerunDir, snapshot.VersionsName)
	layer := path.Join(rerunDir, snapshot.GeoName)
	first := versionRows(t, base, day)
	var pending *nextDay
	return sinktest.EveryWrite(t, plan,
		func() map[string]string {
			c := dayContents(t, base, list)
			// The next day runs here, where no fault is armed: after the
			// contents a run left are taken, before the next run's.
			if pending != nil {
				pending.check(t, base)
				pending = nil
			}
			return c
		},
		func(n int) error {
			// Each rerun is a retry of one task: the lock a failed run
			// keeps (its journal unsettled) is taken over at once, not
			// after a lease. The lease is long enough that no renewal,
			// itself a write, lands among the run's writes and shifts
			// which step the nth write is.
			opts := rerunOptions(t, store, generated(t, 300, uint64(10+n)))
			opts.Lock.Lease = 6 * time.Second
			opts.Lock.Execution, opts.Lock.Task = "rerun", "0"
			old, oldLayer := readAll(t, base, versions), readAll(t, base, layer)
			_, err := snapshot.Run(context.Background(), opts)
			if err != nil && !bytes.Equal(readAll(t, base, versions), old) {
				t.Errorf("fault at write %d: the run failed (%v) and the day's versions object is not the one it was", n, err)
			}
			if err != nil && !bytes.Equal(readAll(t, base, layer), oldLayer) {
				t.Errorf("fault at write %d: the run failed (%v) and the day's geolocation layer is not the one it was", n, err)
			}
			pending = &nextDay{seed: uint64(100 + n), failed: err != nil}
			return err
		},
		func(before, after map[string]string) {
			checkPublished(t, base, rerunDir)
			if after[parquet] == before[parquet] {
				t.Errorf("the run succeeded but the day's Parquet is the old one")
			}
			if after[versions] == before[versions] {
				t.Errorf("the run succeeded but the day's versions object is the old one")
			}
			if after[layer] == before[layer] {
				t.Errorf("the run succeeded but the day's geolocation layer is the old one")
			}
		},
		func() {
			publishDay(t, base, day, generated(t, 300, 2))
			// The first run's body again: the same versions.
			if again := versionRows(t, base, day); !slices.Equal(again, first) {
				t.Errorf("a rerun of the day with its first body wrote %d versions, the first run %d: not the same", len(again), len(first))
			}
		})
}

// nextDay is the run of the day after the rerun day, after a rerun
// that failed or not.
type nextDay struct {
	seed   uint64
	failed bool
}

// check publishes the next day and checks that it compared with the
// rerun day, and that the versions of the day before, the rerun day and
// the next day give each one's snapshot as of it: a failed rerun left
// the old day's versions to chain from, a committed one its own.
func (nd *nextDay) check(t *testing.T, store sink.Store) {
	t.Helper()
	next := day.AddDate(0, 0, 1)
	opts := rerunOptions(t, store, generated(t, 300, nd.seed))
	opts.Day = next
	opts.Lock.Execution, opts.Lock.Task = "rerun", "0"
	m, err := snapshot.Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("the next day, after a rerun that failed (%v): %v", nd.failed, err)
	}
	if m.Previous == nil || m.Previous.Snapshot != day.Format(snapshot.DateLayout) {
		t.Errorf("the next day, after a rerun that failed (%v), compared with %+v, passed over %+v", nd.failed, m.Previous, m.PassedOver)
	}
	var days []historytest.Day
	for _, d := range []time.Time{day.AddDate(0, 0, -1), day, next} {
		dir := path.Join("raw/spoc", d.Format(snapshot.DateLayout))
		days = append(days, historytest.Day{
			Date:     d.Format(snapshot.DateLayout),
			Snapshot: readAll(t, store, path.Join(dir, snapshot.ParquetName)),
			Versions: readAll(t, store, path.Join(dir, snapshot.VersionsName)),
		})
	}
	for d, diff := range historytest.AsOfDiffs(t, days, len(spoc.SPOC.Columns)) {
		t.Errorf("after a rerun that failed (%v) and the next day, as of %s %d plots differ from the snapshot, as: %s", nd.failed, d, len(diff), diff[0])
	}
}

// columnText is the text of column k of every row of a Parquet file.
func columnText(t *testing.T, data []byte, k int) []string {
	t.Helper()
	tbl := parquettest.ReadTable(t, data)
	defer tbl.Release()
	var cells []string
	for _, chunk := range tbl.Column(k).Data().Chunks() {
		for i := range chunk.Len() {
			cells = append(cells, parquettest.CellText(chunk, i))
		}
	}
	return cells
}

// versionRows are the rows of day's versions object, sorted.
func versionRows(t *testing.T, store sink.Store, d time.Time) []string {
	t.Helper()
	data := readAll(t, store, path.Join("raw/spoc", d.Format(snapshot.DateLayout), snapshot.VersionsName))
	return historytest.History{}.Add(t, d.Format(snapshot.DateLayout), data, len(spoc.SPOC.Columns))
}

func checkStepsFaulted(t *testing.T, hits []string, steps []string) {
	t.Helper()
	for _, step := range steps {
		if !slices.ContainsFunc(hits, func(k string) bool { return strings.HasPrefix(k, step) }) {
			t.Errorf("no fault was injected at %q", step)
		}
	}
}

// TestRerunFailingAtAnyStepLeavesTheDay reruns a published day with a
// new body and fails the nth operation that writes to the store (the
// lock's included), for every n until a run meets no fault, on both
// stores through a fault-injecting wrapper: once refused before the
// operation, once carried out with its reply lost. Every run that fails
// leaves the day exactly as it was, hidden objects included, its
// versions object among them; every run that succeeds (a fault after
// the commit point) leaves a complete new day that its manifest
// describes, with new versions. Each rerun is followed by a run of the
// next day, whose versions must chain from the rerun day's: the list as
// of each of the three days, rebuilt from the versions, is its snapshot.
// A rerun with the day's first body writes the first run's versions.
func TestRerunFailingAtAnyStepLeavesTheDay(t *testing.T) {
	for _, backend := range []string{"local", "gcs"} {
		for _, applied := range []bool{false, true} {
			name := backend + "/refused"
			if applied {
				name = backend + "/applied-reply-lost"
			}
			t.Run(name, func(t *testing.T) {
				base, list := storeFor(t, backend)
				store := sinktest.NewFaulty(base)
				hits := rerunUnderFaults(t, base, store, list, sinktest.FailNthWrite(store, applied, errInjected))
				// Every step of the protocol was faulted: the staged
				// objects, the backups, the swap and the manifest; the
				// versions object's among them.
				checkStepsFaulted(t, hits, []string{
					"new-object .spoc-list-public.parquet.tmp-",
					"new-object .spoc-list-public.digest.tmp-", "new-object .spoc-list-public.versions.parquet.tmp-", "new-object .spoc-list-public.geo.parquet.tmp-", "copy .spoc-list-public.geo.parquet.backup-", "copy spoc-list-public.geo.parquet",
					"copy .spoc-list-public.parquet.backup-", "copy .spoc-list-public.json.gz.backup-", "copy .spoc-list-public.changes.parquet.backup-", "copy .spoc-list-public.digest.backup-", "copy .spoc-list-public.versions.parquet.backup-",
					"copy spoc-list-public.parquet", "copy spoc-list-public.json.gz", "copy spoc-list-public.changes.parquet", "copy spoc-list-public.digest", "copy spoc-list-public.versions.parquet",
					"replace spoc-list-public.manifest.json", "replace .spoc-list-public.lock",
				})
			})
		}
	}
}

// The same on GCS with the faults in the emulator's handler: every
// request that writes (upload sessions and their chunks, copies,
// deletes) is failed in turn, the client library's own retries
// included.
func TestRerunFailingAtAnyRequestLeavesTheDayOnGCS(t *testing.T) {
	for _, applied := range []bool{false, true} {
		name := "refused-403"
		if applied {
			name = "applied-503"
		}
		t.Run(name, func(t *testing.T) {
			e := sinktest.NewEmulator(t, "spoc-test")
			h := sinktest.GCSOn(t, e, "spoc-test", "root")
			list := func() []string {
				names, err := h.Store.List(context.Background(), rerunDir+"/")
				if err != nil {
					t.Fatal(err)
				}
				return names
			}
			hits := rerunUnderFaults(t, h.Store, h.Store, list, sinktest.FailNthRequest(e, applied))
			checkStepsFaulted(t, hits, []string{
				"post .spoc-list-public.parquet.tmp-", "copy .spoc-list-public.", "copy spoc-list-public.parquet", "copy spoc-list-public.json.gz", "copy spoc-list-public.digest",
				"post .spoc-list-public.digest.tmp-", "post spoc-list-public.manifest.json", "post .spoc-list-public.lock", "delete .spoc-list-public.",
				"post .spoc-list-public.versions.parquet.tmp-", "copy spoc-list-public.versions.parquet", "delete .spoc-list-public.versions.parquet.",
				"post .spoc-list-public.geo.parquet.tmp-", "copy spoc-list-public.geo.parquet", "delete .spoc-list-public.geo.parquet.",
			})
		})
	}
}
