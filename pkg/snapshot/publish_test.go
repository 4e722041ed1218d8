package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"net/http"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/sink/sinktest"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
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
	opts.Outputs.Archive, opts.Outputs.Changes, opts.Guards.SkipIfUnchanged = true, true, false
	opts.Lock.Lease = 1200 * time.Millisecond
	return opts
}

// dayContents is every object of the day's folder, hidden ones included,
// with a digest of its bytes; the lock is left out.
func dayContents(t *testing.T, store sink.Store, list func() []string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, name := range list() {
		if path.Base(name) == snapshot.LockName {
			continue
		}
		got[name] = sha256Hex(readAll(t, store, name))
	}
	return got
}

// checkPublished fails the test unless the day's manifest describes the
// objects beside it: the same sizes and CRC32Cs.
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
	for name, info := range infos {
		data := readAll(t, store, path.Join(dir, name))
		if crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)); info.Size != int64(len(data)) || info.CRC32C != crc {
			t.Errorf("the manifest says %s has %d bytes, CRC32C %08x; it has %d, %08x", name, info.Size, info.CRC32C, len(data), crc)
		}
	}
	if len(infos) != 4 {
		t.Errorf("the manifest names %d objects, want 4", len(infos))
	}
}

func hiddenObjects(contents map[string]string) []string {
	var hidden []string
	for name := range contents {
		if strings.HasPrefix(path.Base(name), ".") {
			hidden = append(hidden, name)
		}
	}
	return hidden
}

func diffContents(before, after map[string]string) string {
	var d []string
	for _, name := range slices.Sorted(maps.Keys(before)) {
		switch a, ok := after[name]; {
		case !ok:
			d = append(d, "-"+name)
		case a != before[name]:
			d = append(d, "~"+name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(after)) {
		if _, ok := before[name]; !ok {
			d = append(d, "+"+name)
		}
	}
	return strings.Join(d, " ")
}

// faultPlan fails the nth write of a run: arm sets it, disarm clears
// it and says whether the run reached it, and what it hit.
type faultPlan struct {
	arm    func(n int)
	disarm func() (reached bool, hit string)
}

// wrapperFaults fails the nth write through a Faulty store: refused
// before it, or (applied) carried out with its reply lost.
func wrapperFaults(store *sinktest.Faulty, applied bool) faultPlan {
	fault := errInjected
	if applied {
		fault = fmt.Errorf("%w (%w)", sink.ErrUnavailable, errInjected)
	}
	var writes, at int
	var hit sinktest.Op
	return faultPlan{
		arm: func(n int) {
			writes, at, hit = 0, n, sinktest.Op{}
			store.Fail(func(op sinktest.Op) sinktest.StoreFault {
				if !op.Writes() {
					return sinktest.StoreFault{}
				}
				if writes++; writes == at {
					hit = op
					return sinktest.StoreFault{Err: fault, Applied: applied}
				}
				return sinktest.StoreFault{}
			})
		},
		disarm: func() (bool, string) {
			store.Fail(nil)
			return writes >= at, hit.Kind + " " + path.Base(hit.Name)
		},
	}
}

// emulatorFaults fails the nth write request the emulator receives:
// refused with a 403 (which the client does not retry), or carried out
// and answered 503 (which it retries, meeting its own write).
func emulatorFaults(e *sinktest.Emulator, applied bool) faultPlan {
	var writes, at int
	var hit sinktest.Request
	return faultPlan{
		arm: func(n int) {
			writes, at, hit = 0, n, sinktest.Request{}
			e.Fail(func(r sinktest.Request) sinktest.Fault {
				if !r.Write {
					return sinktest.Fault{}
				}
				if writes++; writes != at {
					return sinktest.Fault{}
				}
				hit = r
				if applied {
					return sinktest.Fault{Status: http.StatusServiceUnavailable, Applied: true}
				}
				return sinktest.Fault{Status: http.StatusForbidden}
			})
		},
		disarm: func() (bool, string) {
			e.Fail(nil)
			kind := strings.ToLower(hit.Method)
			if hit.Copy {
				kind = "copy"
			}
			return writes >= at, kind + " " + path.Base(hit.Object)
		},
	}
}

// rerunUnderFaults reruns the day on store with a fault at the nth write
// for every n until a run meets none, and checks what each run leaves
// (see TestRerunFailingAtAnyStepLeavesTheDay). It returns what was hit.
func rerunUnderFaults(t *testing.T, base, store sink.Store, list func() []string, plan faultPlan) []string {
	publishDay(t, base, day.AddDate(0, 0, -1), generated(t, 300, 1))
	publishDay(t, base, day, generated(t, 300, 2))
	var hits []string
	failed, committed := 0, 0
	for n := 1; ; n++ {
		before := dayContents(t, base, list)
		plan.arm(n)
		_, err := snapshot.Run(context.Background(), rerunOptions(t, store, generated(t, 300, uint64(10+n))))
		reached, hit := plan.disarm()
		after := dayContents(t, base, list)
		if !reached {
			if err != nil {
				t.Fatalf("run without a fault: %v", err)
			}
			checkPublished(t, base, rerunDir)
			break
		}
		hits = append(hits, hit)
		if err != nil {
			failed++
			if d := diffContents(before, after); d != "" {
				t.Errorf("fault at write %d (%s): run failed (%v) and changed the day: %s", n, hit, err, d)
			}
			continue
		}
		committed++
		checkPublished(t, base, rerunDir)
		if after[path.Join(rerunDir, snapshot.ParquetName)] == before[path.Join(rerunDir, snapshot.ParquetName)] {
			t.Errorf("fault at write %d (%s): the run succeeded but the day's Parquet is the old one", n, hit)
		}
		// A fault after the commit may leave a hidden backup or staged
		// object, which the next run removes: let it, so that each fault
		// starts from a tidy day.
		publishDay(t, base, day, generated(t, 300, 2))
		if d := hiddenObjects(dayContents(t, base, list)); d != nil {
			t.Errorf("a clean rerun left hidden objects: %v", d)
		}
	}
	t.Logf("%d faults: %d runs failed leaving the day as it was, %d committed; faulted: %s", len(hits), failed, committed, strings.Join(hits, ", "))
	return hits
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
// leaves the day exactly as it was, hidden objects included; every run
// that succeeds (a fault after the commit point) leaves a complete new
// day that its manifest describes.
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
				hits := rerunUnderFaults(t, base, store, list, wrapperFaults(store, applied))
				// Every step of the protocol was faulted: the staged
				// objects, the backups, the swap and the manifest.
				checkStepsFaulted(t, hits, []string{
					"new-object .spoc-list-public.parquet.tmp-",
					"new-object .spoc-list-public.digest.tmp-",
					"copy .spoc-list-public.parquet.backup-", "copy .spoc-list-public.json.gz.backup-", "copy .spoc-list-public.changes.parquet.backup-", "copy .spoc-list-public.digest.backup-",
					"copy spoc-list-public.parquet", "copy spoc-list-public.json.gz", "copy spoc-list-public.changes.parquet", "copy spoc-list-public.digest",
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
			hits := rerunUnderFaults(t, h.Store, h.Store, list, emulatorFaults(e, applied))
			checkStepsFaulted(t, hits, []string{
				"post .spoc-list-public.parquet.tmp-", "copy .spoc-list-public.", "copy spoc-list-public.parquet", "copy spoc-list-public.json.gz", "copy spoc-list-public.digest",
				"post .spoc-list-public.digest.tmp-", "post spoc-list-public.manifest.json", "post .spoc-list-public.lock", "delete .spoc-list-public.",
			})
		})
	}
}
