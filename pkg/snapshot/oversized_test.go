package snapshot_test

import (
	"bytes"
	"context"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/sink/sinktest"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
)

// oversized is the size of the manifests and locks planted by
// TestOversizedManifestAndLock: well over any cap a real one needs.
const oversized = 4 << 20

// readCounter is a store that counts the bytes read of each object. It
// wraps a Faulty store with no fault, which passes the local store's
// removal of partial files through.
type readCounter struct {
	*sinktest.Faulty
	mu   sync.Mutex
	read map[string]int64
}

func newReadCounter(store sink.Store) *readCounter {
	return &readCounter{Faulty: sinktest.NewFaulty(store), read: map[string]int64{}}
}

func (c *readCounter) add(name string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read[name] += int64(n)
}

// bytesRead is how many bytes of the object at name were read.
func (c *readCounter) bytesRead(name string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read[name]
}

func (c *readCounter) NewReader(ctx context.Context, name string) (sink.Reader, error) {
	r, err := c.Faulty.NewReader(ctx, name)
	if err != nil {
		return nil, err
	}
	return countedReader{r, func(n int) { c.add(name, n) }}, nil
}

func (c *readCounter) NewReaderAt(ctx context.Context, name string) (sink.ReaderAt, error) {
	r, err := c.Faulty.NewReaderAt(ctx, name)
	if err != nil {
		return nil, err
	}
	return countedReaderAt{r, func(n int) { c.add(name, n) }}, nil
}

type countedReader struct {
	sink.Reader
	count func(int)
}

func (r countedReader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	r.count(n)
	return n, err
}

type countedReaderAt struct {
	sink.ReaderAt
	count func(int)
}

func (r countedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.ReaderAt.ReadAt(p, off)
	r.count(n)
	return n, err
}

// putPadded writes data followed by spaces up to size bytes at name, a
// chunk at a time: still the same JSON, only far too big.
func putPadded(t *testing.T, store sink.Store, name string, data []byte, size int) {
	t.Helper()
	obj, err := store.NewObject(context.Background(), name, "application/json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.Write(data); err != nil {
		t.Fatal(err)
	}
	spaces := bytes.Repeat([]byte(" "), 64<<10)
	for left := size - len(data); left > 0; left -= len(spaces) {
		if _, err := obj.Write(spaces[:min(left, len(spaces))]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := obj.Commit(); err != nil {
		t.Fatal(err)
	}
}

// A manifest or a lock far bigger than any this job writes is not read
// at all, even when it holds valid JSON: such a manifest is not a
// manifest (an earlier day's is passed over, the day's own is published
// over by a rerun that would otherwise find the day unchanged), such a
// lock is one that does not read (an earlier day's is looked past with a
// warning, the day's own taken over at once). On both stores.
func TestOversizedManifestAndLock(t *testing.T) {
	body0, body1, body2 := generated(t, 300, 1), generated(t, 300, 2), generated(t, 300, 3)
	manifest1, lock1 := day1Dir+"/"+snapshot.ManifestName, day1Dir+"/"+snapshot.LockName
	const (
		manifestTooBig = "its manifest does not read: it holds 4194304 bytes, more than a manifest may"
		lockTooBig     = "it holds 4194304 bytes, more than a lock may"
	)
	for _, tc := range []struct {
		name   string
		object string // planted at oversized, after days 0 and 1 ran
		// next runs the day that meets it, on days, and says what its
		// logs lack ("": nothing).
		next func(t *testing.T, days dayRunner, base sink.Store) string
	}{
		{"earlier day's manifest", manifest1, func(t *testing.T, days dayRunner, base sink.Store) string {
			days.run(0, body2)
			checkCompared(t, base, day2Dir, "20261124", "20261125", manifestTooBig)
			return ""
		}},
		{"day's own manifest", manifest1, func(t *testing.T, days dayRunner, base sink.Store) string {
			// The same body again: read, the manifest would make the
			// rerun find the day unchanged and publish nothing.
			days.tweak = func(o *snapshot.Options) { o.Guards.SkipIfUnchanged = true }
			logs := days.run(-1, body1)
			checkPublished(t, base, day1Dir)
			return checkLogged(logs, "the day's manifest does not read: publishing over it", manifestTooBig)
		}},
		{"earlier day's lock", lock1, func(t *testing.T, days dayRunner, base sink.Store) string {
			logs := days.run(0, body2)
			checkCompared(t, base, day2Dir, "20261125", "", "")
			return checkLogged(logs, "an earlier day's lock does not read", lockTooBig)
		}},
		{"day's own lock", lock1, func(t *testing.T, days dayRunner, base sink.Store) string {
			logs := days.run(-1, body1)
			checkPublished(t, base, day1Dir)
			return checkLogged(logs, "taking over the day's lock: it is not a lock this job wrote", lockTooBig)
		}},
	} {
		for _, backend := range []string{"local", "gcs"} {
			t.Run(backend+"/"+tc.name, func(t *testing.T) {
				base, days := twoDays(t, backend, body0, body1)
				// A lock whose holder never ends: a decoder reads on to
				// the end of the object, looking for the string's end.
				content := []byte(`{"holder":"`)
				if tc.object == manifest1 {
					content = readAll(t, base, manifest1) // whole and valid, but for its size
				}
				putPadded(t, base, tc.object, content, oversized)
				counter := newReadCounter(base)
				days.store = counter
				if lacks := tc.next(t, days, base); lacks != "" {
					t.Error(lacks)
				}
				if n := counter.bytesRead(tc.object); n != 0 {
					t.Errorf("the run read %d bytes of %s, %d bytes long: want none", n, path.Base(tc.object), oversized)
				}
			})
		}
	}
}

// checkLogged says which of want logs lacks, or "" when it has them all.
func checkLogged(logs string, want ...string) string {
	for _, w := range want {
		if !strings.Contains(logs, w) {
			return "the logs do not say " + w + ":\n" + logs
		}
	}
	return ""
}
