// Package sinktest is the conformance suite of sink.Store: the contract
// every backend keeps, run against a local directory and against Cloud
// Storage (on fake-gcs-server, in process, on loopback). A new backend
// passes Run before anything else relies on it. It also holds the
// harnesses the other packages' tests use for a store: Local, GCS, GCSOn
// and the Emulator (fake-gcs-server behind a handler that keeps GCS's
// copy preconditions and injects faults).
//
// Where the backends differ, the difference is stated in sink's package
// doc (# Errors), not left for a test to find: GCS checks preconditions
// on the server, Local just before its rename.
package sinktest

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// Harness is one store under test with the means to look at it from
// outside: what an object holds, and every name present (temporary files
// and uncommitted objects' leftovers included), so that a test can assert
// that nothing was left behind.
type Harness struct {
	Store sink.Store
	Read  func(t *testing.T, name string) ([]byte, bool)
	List  func(t *testing.T) []string
}

// Local is a Harness on a new local directory.
func Local(t *testing.T) Harness {
	t.Helper()
	root := filepath.Join(t.TempDir(), "out")
	store, err := sink.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	return Harness{
		Store: store,
		Read: func(t *testing.T, name string) ([]byte, bool) {
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
			if errors.Is(err, fs.ErrNotExist) {
				return nil, false
			}
			if err != nil {
				t.Fatal(err)
			}
			return b, true
		},
		List: func(t *testing.T) []string { return Files(t, root) },
	}
}

// Files lists every file below dir, hidden temporary ones included, as
// sorted slash paths relative to dir.
func Files(t testing.TB, dir string) []string {
	t.Helper()
	var names []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(names)
	return names
}

// retryDeadline is how long the stores of the emulator retry one write:
// long enough for the client's few quick retries, short enough that a
// fault a test keeps up ends the write at once.
const retryDeadline = 500 * time.Millisecond

// GCSStore is a GCS store below root in a bucket of a new emulator.
func GCSStore(t testing.TB, root string) *sink.GCS {
	t.Helper()
	g := sink.NewGCS(NewEmulator(t, "spoc-test").Client(t), "spoc-test", root)
	g.RetryDeadline = retryDeadline
	return g
}

// GCS is a Harness on a GCS store below a root prefix, on a new emulator.
func GCS(t *testing.T) Harness {
	t.Helper()
	return GCSOn(t, NewEmulator(t, "spoc-test"), "spoc-test", "some/root")
}

// GCSOn is a Harness on a GCS store below root in bucket of e, which
// the test may set faults on.
func GCSOn(t *testing.T, e *Emulator, bucket, root string) Harness {
	t.Helper()
	client := e.Client(t)
	// Read and List go through e too: a test that set a fault rule
	// clears it (e.Fail(nil)) before it looks.
	g := sink.NewGCS(client, bucket, root)
	g.RetryDeadline = retryDeadline
	return Harness{
		Store: g,
		Read: func(t *testing.T, name string) ([]byte, bool) {
			// The client itself, not the Store under test.
			r, err := client.Bucket(bucket).Object(root + "/" + name).NewReader(context.Background())
			if errors.Is(err, storage.ErrObjectNotExist) {
				return nil, false
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			b, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			return b, true
		},
		List: func(t *testing.T) []string {
			var names []string
			it := client.Bucket(bucket).Objects(context.Background(), &storage.Query{Prefix: root + "/"})
			for {
				attrs, err := it.Next()
				if err == iterator.Done {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, strings.TrimPrefix(attrs.Name, root+"/"))
			}
			sort.Strings(names)
			return names
		},
	}
}

// ReadAll reads the committed object at name, failing the test if it
// cannot.
func ReadAll(t testing.TB, s sink.Store, name string) []byte {
	t.Helper()
	r, err := s.NewReader(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Write writes data as a new object at name and commits it.
func Write(t *testing.T, s sink.Store, ctx context.Context, name string, data []byte) (sink.ObjectInfo, error) {
	t.Helper()
	obj, err := s.NewObject(ctx, name, "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Abort()
	if _, err := obj.Write(data); err != nil {
		return sink.ObjectInfo{}, err
	}
	return obj.Commit()
}

// Run runs the conformance suite against stores made by newHarness, a
// new, empty one for each case.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB: several writes, more than one chunk for some clients
	t.Run("commit publishes the exact bytes", func(t *testing.T) {
		b := newHarness(t)
		info, err := Write(t, b.Store, context.Background(), "20261126/a.parquet", big)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := b.Read(t, "20261126/a.parquet")
		if !ok || !bytes.Equal(got, big) {
			t.Fatalf("object holds %d bytes (present %v), want %d", len(got), ok, len(big))
		}
		if info.Size != int64(len(big)) || info.CRC32C != crc32.Checksum(big, crc32.MakeTable(crc32.Castagnoli)) {
			t.Errorf("info %+v, want size %d and crc %08x", info, len(big), crc32.Checksum(big, crc32.MakeTable(crc32.Castagnoli)))
		}
		if info.URL != b.Store.URL("20261126/a.parquet") {
			t.Errorf("info URL %s, store URL %s", info.URL, b.Store.URL("20261126/a.parquet"))
		}
		if names := b.List(t); len(names) != 1 {
			t.Errorf("objects %v, want only the committed one", names)
		}
	})
	t.Run("nothing is visible before commit", func(t *testing.T) {
		b := newHarness(t)
		obj, err := b.Store.NewObject(context.Background(), "d/x.parquet", sink.ParquetContentType)
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Abort()
		obj.Write(big)
		if _, ok := b.Read(t, "d/x.parquet"); ok {
			t.Fatal("object visible before Commit")
		}
	})
	t.Run("abort leaves nothing", func(t *testing.T) {
		b := newHarness(t)
		obj, err := b.Store.NewObject(context.Background(), "d/x.parquet", sink.ParquetContentType)
		if err != nil {
			t.Fatal(err)
		}
		obj.Write(big)
		if err := obj.Abort(); err != nil {
			t.Fatal(err)
		}
		if names := b.List(t); len(names) != 0 {
			t.Fatalf("objects after abort: %v", names)
		}
		if _, err := obj.Write([]byte("x")); !errors.Is(err, sink.ErrAborted) {
			t.Errorf("write after abort: %v, want sink.ErrAborted", err)
		}
		if _, err := obj.Commit(); !errors.Is(err, sink.ErrAborted) {
			t.Errorf("commit after abort: %v, want sink.ErrAborted", err)
		}
	})
	t.Run("a cancelled write publishes nothing", func(t *testing.T) {
		b := newHarness(t)
		ctx, cancel := context.WithCancel(context.Background())
		obj, err := b.Store.NewObject(ctx, "d/x.parquet", sink.ParquetContentType)
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Abort()
		obj.Write(big[:1<<20])
		cancel()
		obj.Write(big[1<<20:])
		if _, err := obj.Commit(); err == nil {
			t.Fatal("commit succeeded after cancel")
		}
		if names := b.List(t); len(names) != 0 {
			t.Fatalf("objects after a cancelled write: %v", names)
		}
	})
	t.Run("a rerun replaces the object", func(t *testing.T) {
		b := newHarness(t)
		if _, err := Write(t, b.Store, context.Background(), "d/x", []byte("old")); err != nil {
			t.Fatal(err)
		}
		if _, err := Write(t, b.Store, context.Background(), "d/x", []byte("new")); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.Read(t, "d/x"); string(got) != "new" {
			t.Fatalf("object holds %q, want %q", got, "new")
		}
	})
	t.Run("an aborted rerun keeps the previous object", func(t *testing.T) {
		b := newHarness(t)
		if _, err := Write(t, b.Store, context.Background(), "d/x", []byte("old")); err != nil {
			t.Fatal(err)
		}
		obj, err := b.Store.NewObject(context.Background(), "d/x", "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		obj.Write(big)
		obj.Abort()
		if got, _ := b.Read(t, "d/x"); string(got) != "old" {
			t.Fatalf("object holds %d bytes, want the previous %q", len(got), "old")
		}
		if names := b.List(t); len(names) != 1 {
			t.Errorf("objects %v, want only the previous one", names)
		}
	})
	t.Run("commit twice fails", func(t *testing.T) {
		b := newHarness(t)
		obj, _ := b.Store.NewObject(context.Background(), "d/x", "text/plain")
		obj.Write([]byte("a"))
		if _, err := obj.Commit(); err != nil {
			t.Fatal(err)
		}
		if _, err := obj.Commit(); err == nil {
			t.Error("second commit succeeded")
		}
		if err := obj.Abort(); err != nil {
			t.Errorf("abort after commit: %v", err)
		}
		if got, _ := b.Read(t, "d/x"); string(got) != "a" {
			t.Errorf("abort after commit changed the object: %q", got)
		}
	})
	t.Run("delete", func(t *testing.T) {
		b := newHarness(t)
		Write(t, b.Store, context.Background(), "d/x", []byte("a"))
		if err := b.Store.Delete(context.Background(), "d/x"); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.Read(t, "d/x"); ok {
			t.Error("object still there after Delete")
		}
		if err := b.Store.Delete(context.Background(), "d/x"); err != nil {
			t.Errorf("deleting a missing object: %v", err)
		}
	})
	t.Run("read back", func(t *testing.T) {
		b := newHarness(t)
		Write(t, b.Store, context.Background(), "d/x", big)
		r, err := b.Store.NewReader(context.Background(), "d/x")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, big) {
			t.Errorf("read %d bytes (%v), want %d", len(got), err, len(big))
		}
		if _, err := b.Store.NewReader(context.Background(), "d/missing"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("reading a missing object: %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("read at offsets", func(t *testing.T) {
		b := newHarness(t)
		Write(t, b.Store, context.Background(), "d/x", big)
		r, err := b.Store.NewReaderAt(context.Background(), "d/x")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Size() != int64(len(big)) {
			t.Errorf("Size = %d, want %d", r.Size(), len(big))
		}
		if end, err := r.Seek(0, io.SeekEnd); end != int64(len(big)) || err != nil {
			t.Errorf("Seek(0, io.SeekEnd) = %d, %v; want %d", end, err, len(big))
		}
		for _, tc := range []struct {
			off, n int64
			eof    bool
		}{{0, 10, false}, {12345, 1000, false}, {int64(len(big)) - 8, 8, false}, {int64(len(big)) - 3, 8, true}, {int64(len(big)), 1, true}} {
			p := make([]byte, tc.n)
			n, err := r.ReadAt(p, tc.off)
			want := big[min(tc.off, int64(len(big))):min(tc.off+tc.n, int64(len(big)))]
			if !bytes.Equal(p[:n], want) || (err == io.EOF) != tc.eof || (err != nil && err != io.EOF) {
				t.Errorf("ReadAt(%d bytes, %d) = %d, %v; want %d bytes, EOF %v", tc.n, tc.off, n, err, len(want), tc.eof)
			}
		}
		if _, err := b.Store.NewReaderAt(context.Background(), "d/missing"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("opening a missing object: %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("list shows committed objects under the prefix", func(t *testing.T) {
		b := newHarness(t)
		for _, name := range []string{"p/20261125/a", "p/20261126/a", "p/20261126/b", "q/20261126/a", "p2/x"} {
			Write(t, b.Store, context.Background(), name, []byte(name))
		}
		pending, err := b.Store.NewObject(context.Background(), "p/20261126/c", "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		defer pending.Abort()
		pending.Write([]byte("not yet"))
		for prefix, want := range map[string][]string{
			"p/":          {"p/20261125/a", "p/20261126/a", "p/20261126/b"},
			"p/2026112":   {"p/20261125/a", "p/20261126/a", "p/20261126/b"},
			"p/20261126/": {"p/20261126/a", "p/20261126/b"},
			"none/":       nil,
		} {
			got, err := b.Store.List(context.Background(), prefix)
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("List(%q) = %q, %v; want %q", prefix, got, err, want)
			}
		}
	})
	t.Run("create only if absent", func(t *testing.T) {
		b := newHarness(t)
		if _, err := b.Store.Create(context.Background(), "d/lock", "text/plain", []byte("first")); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Store.Create(context.Background(), "d/lock", "text/plain", []byte("second")); !errors.Is(err, sink.ErrConflict) {
			t.Errorf("second create: %v, want sink.ErrConflict", err)
		}
		if got, _ := b.Read(t, "d/lock"); string(got) != "first" {
			t.Errorf("object holds %q, want the first create's", got)
		}
		if names := b.List(t); !slices.Equal(names, []string{"d/lock"}) {
			t.Errorf("objects %v, want only d/lock", names)
		}
	})
	t.Run("replace and delete only the generation seen", func(t *testing.T) {
		b := newHarness(t)
		ctx := context.Background()
		first, err := b.Store.Create(ctx, "d/lease", "text/plain", []byte("v1"))
		if err != nil || first.Generation == 0 {
			t.Fatalf("create: %+v, %v; want a generation", first, err)
		}
		second, err := b.Store.Replace(ctx, "d/lease", "text/plain", []byte("v2"), first.Generation)
		if err != nil || second.Generation == first.Generation {
			t.Fatalf("replace at the generation created: %+v, %v; want a new generation", second, err)
		}
		if _, err := b.Store.Replace(ctx, "d/lease", "text/plain", []byte("stale"), first.Generation); !errors.Is(err, sink.ErrConflict) {
			t.Errorf("replace at an old generation: %v, want sink.ErrConflict", err)
		}
		r, err := b.Store.NewReaderAt(ctx, "d/lease")
		if err != nil {
			t.Fatal(err)
		}
		if g := r.Generation(); g != second.Generation {
			t.Errorf("reader's generation %d, want the replace's %d", g, second.Generation)
		}
		r.Close()
		if err := b.Store.DeleteGeneration(ctx, "d/lease", first.Generation); err != nil {
			t.Errorf("delete at an old generation: %v", err)
		}
		if got, _ := b.Read(t, "d/lease"); string(got) != "v2" {
			t.Errorf("after a delete at an old generation the object holds %q, want v2", got)
		}
		if err := b.Store.DeleteGeneration(ctx, "d/lease", second.Generation); err != nil {
			t.Fatal(err)
		}
		if names := b.List(t); len(names) != 0 {
			t.Errorf("objects %v after deleting the live generation", names)
		}
		if _, err := b.Store.Replace(ctx, "d/lease", "text/plain", []byte("v3"), second.Generation); !errors.Is(err, sink.ErrConflict) {
			t.Errorf("replace of a deleted object: %v, want sink.ErrConflict", err)
		}
		if names := b.List(t); len(names) != 0 {
			t.Errorf("objects %v after a refused replace", names)
		}
	})
	t.Run("copy replaces only the generation expected", func(t *testing.T) {
		b := newHarness(t)
		ctx := context.Background()
		staged, err := Write(t, b.Store, ctx, "d/.staged", []byte("new"))
		if err != nil {
			t.Fatal(err)
		}
		old, err := Write(t, b.Store, ctx, "e/final", []byte("old"))
		if err != nil || old.Generation == 0 {
			t.Fatalf("commit: %+v, %v; want a generation", old, err)
		}
		if _, err := b.Store.Copy(ctx, "d/.staged", staged.Generation, "e/final", 0); !errors.Is(err, sink.ErrConflict) {
			t.Errorf("copy over an object expected absent: %v, want ErrConflict", err)
		}
		if _, err := b.Store.Copy(ctx, "d/.staged", staged.Generation, "e/final", old.Generation+2); !errors.Is(err, sink.ErrConflict) {
			t.Errorf("copy over another generation: %v, want ErrConflict", err)
		}
		if got, _ := b.Read(t, "e/final"); string(got) != "old" {
			t.Fatalf("a refused copy changed the target: %q", got)
		}
		info, err := b.Store.Copy(ctx, "d/.staged", staged.Generation, "e/final", old.Generation)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := b.Read(t, "e/final"); string(got) != "new" {
			t.Errorf("target holds %q after the copy", got)
		}
		if info.Size != 3 || info.CRC32C != staged.CRC32C || info.URL != b.Store.URL("e/final") {
			t.Errorf("copy's info %+v, want the size and CRC32C of %+v at e/final", info, staged)
		}
		st, err := b.Store.Stat(ctx, "e/final")
		if err != nil || st.Generation != info.Generation || st.Size != 3 {
			t.Errorf("stat after the copy: %+v, %v; want generation %d and 3 bytes", st, err, info.Generation)
		}
		if _, err := b.Store.Copy(ctx, "d/.staged", staged.Generation, "e/copy2", 0); err != nil {
			t.Errorf("copy to a new name: %v", err)
		}
		if names := b.List(t); !slices.Equal(names, []string{"d/.staged", "e/copy2", "e/final"}) {
			t.Errorf("objects %v, want the source and the two copies", names)
		}
	})
	t.Run("copy of a missing object or generation", func(t *testing.T) {
		b := newHarness(t)
		ctx := context.Background()
		kept, _ := Write(t, b.Store, ctx, "e/final", []byte("kept"))
		if _, err := b.Store.Copy(ctx, "d/missing", 7, "e/final", kept.Generation); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("copy of a missing object: %v, want fs.ErrNotExist", err)
		}
		first, _ := Write(t, b.Store, ctx, "d/src", []byte("first"))
		if _, err := Write(t, b.Store, ctx, "d/src", []byte("second")); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Store.Copy(ctx, "d/src", first.Generation, "e/final", kept.Generation); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("copy of a replaced generation: %v, want fs.ErrNotExist", err)
		}
		if got, _ := b.Read(t, "e/final"); string(got) != "kept" {
			t.Errorf("the target holds %q after a failed copy", got)
		}
		if _, err := b.Store.Stat(ctx, "d/missing"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stat of a missing object: %v, want fs.ErrNotExist", err)
		}
		for _, name := range b.List(t) {
			if strings.Contains(name, ".tmp-") {
				t.Errorf("a failed copy left %s", name)
			}
		}
	})
	t.Run("commit gives the generation that Stat, Replace and DeleteGeneration see", func(t *testing.T) {
		b := newHarness(t)
		ctx := context.Background()
		info, err := Write(t, b.Store, ctx, "d/x", []byte("v1"))
		if err != nil || info.Generation == 0 {
			t.Fatalf("commit: %+v, %v; want a generation", info, err)
		}
		if st, err := b.Store.Stat(ctx, "d/x"); err != nil || st.Generation != info.Generation {
			t.Errorf("stat: %+v, %v; want generation %d", st, err, info.Generation)
		}
		if _, err := b.Store.Replace(ctx, "d/x", "text/plain", []byte("v2"), info.Generation); err != nil {
			t.Errorf("replace at the committed generation: %v", err)
		}
	})
	t.Run("a late commit conflicts with one that came first", func(t *testing.T) {
		b := newHarness(t)
		for _, existing := range []bool{false, true} {
			name := "d/new"
			if existing {
				name = "d/old"
				Write(t, b.Store, context.Background(), name, []byte("before"))
			}
			first, err := b.Store.NewObject(context.Background(), name, "text/plain")
			if err != nil {
				t.Fatal(err)
			}
			first.Write([]byte("first"))
			if _, err := Write(t, b.Store, context.Background(), name, []byte("second")); err != nil {
				t.Fatal(err)
			}
			if _, err := first.Commit(); !errors.Is(err, sink.ErrConflict) {
				t.Errorf("late commit (an object there before: %v): %v, want ErrConflict", existing, err)
			}
			if got, _ := b.Read(t, name); string(got) != "second" {
				t.Errorf("object holds %q, want the winner's %q", got, "second")
			}
		}
		for _, name := range b.List(t) {
			if strings.Contains(name, ".tmp-") {
				t.Errorf("a conflicting commit left %s", name)
			}
		}
	})
	t.Run("a reader knows the size", func(t *testing.T) {
		b := newHarness(t)
		Write(t, b.Store, context.Background(), "d/x", big)
		r, err := b.Store.NewReader(context.Background(), "d/x")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Size() != int64(len(big)) {
			t.Errorf("Size = %d, want %d", r.Size(), len(big))
		}
	})
}
