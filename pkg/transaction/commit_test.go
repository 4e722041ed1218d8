package transaction

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/sink/sinktest"
)

const manifestName = "table.manifest.json"

// dayObjects are the objects a day's commit stages, as a day of the
// job's does: two in folders of their own, as its versions and change
// table are.
var dayObjects = []string{
	"table.parquet",
	"body.json.gz",
	"history/table.versions.parquet",
	"changes/table.changes.parquet",
	"table.digest",
}

// derivedObject is staged after the others, from the first one read back
// while it is still staged (Tx.Open), as the job's geolocation layer is
// made from its snapshot.
const derivedObject = "geo/table.geo.parquet"

// published are the objects a day's commit publishes.
var published = append(slices.Clone(dayObjects), derivedObject)

var errInjected = errors.New("injected fault")

// testManifest is what the tests' manifest records: the run's body and
// what stood at each final name when it was written.
type testManifest struct {
	Body    string                     `json:"body"`
	Objects map[string]sink.ObjectInfo `json:"objects"`
}

// content is what the day's object name holds after a commit of body.
func content(name, body string) string {
	return strings.Repeat(name+" of "+body+"\n", 1000)
}

// commitDay commits a day of body: it opens the day, stages every
// object with its content and commits them with the manifest. A lease
// of seconds is not renewed during a commit, so that the nth write of
// every commit is the same step; a lock a failed commit could not
// release is taken over at once, as an earlier attempt's of the same
// execution's task.
func commitDay(store sink.Store, body string) error {
	ctx, day, err := Open(context.Background(), store, testDir, testLockName, Options{Lease: 6 * time.Second, Execution: "test", Task: "0"})
	if err != nil {
		return err
	}
	defer day.Close(ctx)
	tx := day.Begin()
	defer tx.Abort()
	for _, name := range dayObjects {
		obj, err := tx.Stage(ctx, name, "application/octet-stream")
		if err != nil {
			return err
		}
		if _, err := obj.Write([]byte(content(name, body))); err != nil {
			return err
		}
	}
	r, err := tx.Open(ctx, dayObjects[0])
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	r.Close()
	if err != nil {
		return err
	}
	if string(data) != content(dayObjects[0], body) {
		return fmt.Errorf("%s read back while staged does not hold %s's content", dayObjects[0], body)
	}
	obj, err := tx.Stage(ctx, derivedObject, "application/octet-stream")
	if err != nil {
		return err
	}
	if _, err := obj.Write([]byte(content(derivedObject, body))); err != nil {
		return err
	}
	return tx.Commit(ctx, manifestName, func(at map[string]sink.ObjectInfo) ([]byte, error) {
		return json.Marshal(testManifest{Body: body, Objects: at})
	})
}

// mustCommit commits a day of body on store, or fails the test.
func mustCommit(t *testing.T, store sink.Store, body string) {
	t.Helper()
	if err := commitDay(store, body); err != nil {
		t.Fatalf("commit %s: %v", body, err)
	}
}

// checkCommitted fails the test unless the day's manifest describes the
// objects beside it (the same sizes and CRC32Cs) and they hold body.
func checkCommitted(t *testing.T, store sink.Store, body string) {
	t.Helper()
	var m testManifest
	if err := json.Unmarshal(sinktest.ReadAll(t, store, path.Join(testDir, manifestName)), &m); err != nil {
		t.Fatal(err)
	}
	if m.Body != body {
		t.Errorf("the manifest is of %q, want %q", m.Body, body)
	}
	for _, name := range published {
		info, ok := m.Objects[name]
		data := sinktest.ReadAll(t, store, path.Join(testDir, name))
		switch crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)); {
		case !ok:
			t.Errorf("the manifest does not name %s", name)
		case info.Size != int64(len(data)) || info.CRC32C != crc:
			t.Errorf("the manifest says %s has %d bytes, CRC32C %08x; it has %d, %08x", name, info.Size, info.CRC32C, len(data), crc)
		case string(data) != content(name, body):
			t.Errorf("%s does not hold %s's content", name, body)
		}
	}
	if len(m.Objects) != len(published) {
		t.Errorf("the manifest names %d objects, want %d", len(m.Objects), len(published))
	}
}

// backend is a store to test on, a lister of the day's folder (hidden
// objects and, locally, partial files included), and the store with
// the faults of a plan.
type backend struct {
	name  string
	store func(t *testing.T) (base, faulty sink.Store, list func() []string, plan func(applied bool) sinktest.NthWrite)
	steps []string // the steps each must fault (KIND BASENAME prefixes)
}

// wrapped is a store behind sinktest.Faulty, whose every operation
// that writes is faulted in turn.
func wrapped(newStore func(t *testing.T) (sink.Store, func() []string)) func(t *testing.T) (sink.Store, sink.Store, func() []string, func(bool) sinktest.NthWrite) {
	return func(t *testing.T) (sink.Store, sink.Store, func() []string, func(bool) sinktest.NthWrite) {
		base, list := newStore(t)
		f := sinktest.NewFaulty(base)
		return base, f, list, func(applied bool) sinktest.NthWrite { return sinktest.FailNthWrite(f, applied, errInjected) }
	}
}

func localStore(t *testing.T) (sink.Store, func() []string) {
	dir := t.TempDir()
	store, err := sink.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return store, func() []string {
		var names []string
		for _, f := range sinktest.Files(t, path.Join(dir, testDir)) {
			names = append(names, path.Join(testDir, f))
		}
		return names
	}
}

func gcsStore(t *testing.T) (sink.Store, func() []string) {
	e := sinktest.NewEmulator(t, "spoc-test")
	store := sinktest.GCSOn(t, e, "spoc-test", "root").Store
	return store, listing(t, store)
}

func listing(t *testing.T, store sink.Store) func() []string {
	return func() []string {
		names, err := store.List(context.Background(), testDir+"/")
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
}

// wrapperSteps are the operations through the wrapper that every
// commit's fault test must have failed: the staging of the first and
// last object and of the one made from the first read back, each backup, each swap, the manifest and the lock.
func wrapperSteps() []string {
	first, last := path.Base(dayObjects[0]), path.Base(dayObjects[len(dayObjects)-1])
	steps := []string{"new-object ." + first + ".tmp-", "new-object ." + last + ".tmp-", "new-object ." + path.Base(derivedObject) + ".tmp-"}
	for _, name := range dayObjects {
		steps = append(steps, "copy ."+path.Base(name)+".backup-", "copy "+path.Base(name))
	}
	return append(steps, "replace "+manifestName, "replace "+testLockName)
}

// requestSteps are the emulator's write requests that every commit's
// fault test must have failed: the uploads of the first and last object
// and of the one made from the first read back,
// a backup, each swap but for the folder's own object, the manifest, the
// lock and the deletes of the hidden objects.
func requestSteps() []string {
	first, last := path.Base(dayObjects[0]), path.Base(dayObjects[len(dayObjects)-1])
	steps := []string{"post ." + first + ".tmp-", "post ." + last + ".tmp-", "post ." + path.Base(derivedObject) + ".tmp-", "copy ." + first + ".backup-"}
	for _, name := range dayObjects {
		if path.Dir(name) == "." {
			steps = append(steps, "copy "+name)
		}
	}
	return append(steps, "post "+manifestName, "post "+testLockName, "delete .")
}

// TestCommitFailingAtAnyWriteLeavesTheDay commits a day that holds an
// earlier commit again, with new content, and fails the nth operation
// that writes to the store (the lock's included), for every n until a
// commit meets no fault: on a local store and on the GCS emulator
// through sinktest.Faulty, and on the emulator with the faults in its
// handler (upload sessions and their chunks, copies, deletes, the
// client library's own retries included). Each fault is met once
// refused and once carried out with its reply lost. Every commit that
// fails leaves the day exactly as it was, hidden objects included;
// every one that succeeds (a fault after the commit point) leaves the
// whole new day, which its manifest describes, and the next commit of
// the day leaves no hidden object behind.
func TestCommitFailingAtAnyWriteLeavesTheDay(t *testing.T) {
	emulated := func(t *testing.T) (sink.Store, sink.Store, func() []string, func(bool) sinktest.NthWrite) {
		e := sinktest.NewEmulator(t, "spoc-test")
		store := sinktest.GCSOn(t, e, "spoc-test", "root").Store
		return store, store, listing(t, store), func(applied bool) sinktest.NthWrite { return sinktest.FailNthRequest(e, applied) }
	}
	for _, b := range []backend{
		{name: "local", store: wrapped(localStore), steps: wrapperSteps()},
		{name: "gcs", store: wrapped(gcsStore), steps: wrapperSteps()},
		{name: "gcs-requests", store: emulated, steps: requestSteps()},
	} {
		for _, applied := range []bool{false, true} {
			name := b.name + "/refused"
			if applied {
				name = b.name + "/applied-reply-lost"
			}
			t.Run(name, func(t *testing.T) {
				base, store, list, plan := b.store(t)
				hits := commitUnderFaults(t, base, store, list, plan(applied))
				for _, step := range b.steps {
					if !slices.ContainsFunc(hits, func(k string) bool { return strings.HasPrefix(k, step) }) {
						t.Errorf("no fault was injected at %q", step)
					}
				}
			})
		}
	}
}

// commitUnderFaults commits the day on store with a fault at the nth
// write for every n until a commit meets none, checks what each leaves,
// and returns what was hit.
func commitUnderFaults(t *testing.T, base, store sink.Store, list func() []string, plan sinktest.NthWrite) []string {
	mustCommit(t, base, "the old day")
	body := ""
	return sinktest.EveryWrite(t, plan,
		func() map[string]string {
			names := slices.DeleteFunc(list(), func(name string) bool { return path.Base(name) == testLockName })
			return sinktest.Contents(t, base, names)
		},
		func(n int) error {
			body = fmt.Sprint("run ", n)
			return commitDay(store, body)
		},
		func(_, _ map[string]string) { checkCommitted(t, base, body) },
		func() { mustCommit(t, base, "the old day") })
}
