package sink

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

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/iterator"
)

// backend is one Store under test with the means to look at it from
// outside: what each object holds, and every name present (temporary files
// included), so a test can assert that nothing was left behind.
type backend struct {
	store Store
	read  func(t *testing.T, name string) ([]byte, bool)
	list  func(t *testing.T) []string
}

func localBackend(t *testing.T) backend {
	dir := t.TempDir()
	store, err := NewLocal(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "out")
	return backend{
		store: store,
		read: func(t *testing.T, name string) ([]byte, bool) {
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
			if errors.Is(err, fs.ErrNotExist) {
				return nil, false
			}
			if err != nil {
				t.Fatal(err)
			}
			return b, true
		},
		list: func(t *testing.T) []string {
			var names []string
			filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(root, p)
					names = append(names, filepath.ToSlash(rel))
				}
				return nil
			})
			sort.Strings(names)
			return names
		},
	}
}

// newFakeGCS starts an in-process GCS emulator on loopback with one bucket.
func newFakeGCS(t testing.TB, bucket string) *fakestorage.Server {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Writer: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	return srv
}

func gcsBackend(t *testing.T) backend {
	srv := newFakeGCS(t, "spoc-test")
	client := srv.Client()
	const root = "some/root"
	return backend{
		store: NewGCS(client, "spoc-test", root),
		read: func(t *testing.T, name string) ([]byte, bool) {
			r, err := client.Bucket("spoc-test").Object(root + "/" + name).NewReader(context.Background())
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
		list: func(t *testing.T) []string {
			var names []string
			it := client.Bucket("spoc-test").Objects(context.Background(), nil)
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

var backends = []struct {
	name string
	make func(t *testing.T) backend
}{
	{"local", localBackend},
	{"gcs", gcsBackend},
}

func writeObject(t *testing.T, s Store, ctx context.Context, name string, data []byte) (ObjectInfo, error) {
	t.Helper()
	obj, err := s.NewObject(ctx, name, "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Abort()
	if _, err := obj.Write(data); err != nil {
		return ObjectInfo{}, err
	}
	return obj.Commit()
}

// TestStores runs the same contract against every backend.
func TestStores(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB: several writes, more than one chunk for some clients
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Run("commit publishes the exact bytes", func(t *testing.T) {
				b := be.make(t)
				info, err := writeObject(t, b.store, context.Background(), "20261126/a.parquet", big)
				if err != nil {
					t.Fatal(err)
				}
				got, ok := b.read(t, "20261126/a.parquet")
				if !ok || !bytes.Equal(got, big) {
					t.Fatalf("object holds %d bytes (present %v), want %d", len(got), ok, len(big))
				}
				if info.Size != int64(len(big)) || info.CRC32C != crc32.Checksum(big, castagnoli) {
					t.Errorf("info %+v, want size %d and crc %08x", info, len(big), crc32.Checksum(big, castagnoli))
				}
				if info.URL != b.store.URL("20261126/a.parquet") {
					t.Errorf("info URL %s, store URL %s", info.URL, b.store.URL("20261126/a.parquet"))
				}
				if names := b.list(t); len(names) != 1 {
					t.Errorf("objects %v, want only the committed one", names)
				}
			})
			t.Run("nothing is visible before commit", func(t *testing.T) {
				b := be.make(t)
				obj, err := b.store.NewObject(context.Background(), "d/x.parquet", ParquetContentType)
				if err != nil {
					t.Fatal(err)
				}
				defer obj.Abort()
				obj.Write(big)
				if _, ok := b.read(t, "d/x.parquet"); ok {
					t.Fatal("object visible before Commit")
				}
			})
			t.Run("abort leaves nothing", func(t *testing.T) {
				b := be.make(t)
				obj, err := b.store.NewObject(context.Background(), "d/x.parquet", ParquetContentType)
				if err != nil {
					t.Fatal(err)
				}
				obj.Write(big)
				if err := obj.Abort(); err != nil {
					t.Fatal(err)
				}
				if names := b.list(t); len(names) != 0 {
					t.Fatalf("objects after abort: %v", names)
				}
				if _, err := obj.Write([]byte("x")); !errors.Is(err, ErrAborted) {
					t.Errorf("write after abort: %v, want ErrAborted", err)
				}
				if _, err := obj.Commit(); !errors.Is(err, ErrAborted) {
					t.Errorf("commit after abort: %v, want ErrAborted", err)
				}
			})
			t.Run("a cancelled write publishes nothing", func(t *testing.T) {
				b := be.make(t)
				ctx, cancel := context.WithCancel(context.Background())
				obj, err := b.store.NewObject(ctx, "d/x.parquet", ParquetContentType)
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
				if names := b.list(t); len(names) != 0 {
					t.Fatalf("objects after a cancelled write: %v", names)
				}
			})
			t.Run("a rerun replaces the object", func(t *testing.T) {
				b := be.make(t)
				if _, err := writeObject(t, b.store, context.Background(), "d/x", []byte("old")); err != nil {
					t.Fatal(err)
				}
				if _, err := writeObject(t, b.store, context.Background(), "d/x", []byte("new")); err != nil {
					t.Fatal(err)
				}
				if got, _ := b.read(t, "d/x"); string(got) != "new" {
					t.Fatalf("object holds %q, want %q", got, "new")
				}
			})
			t.Run("an aborted rerun keeps the previous object", func(t *testing.T) {
				b := be.make(t)
				if _, err := writeObject(t, b.store, context.Background(), "d/x", []byte("old")); err != nil {
					t.Fatal(err)
				}
				obj, err := b.store.NewObject(context.Background(), "d/x", "text/plain")
				if err != nil {
					t.Fatal(err)
				}
				obj.Write(big)
				obj.Abort()
				if got, _ := b.read(t, "d/x"); string(got) != "old" {
					t.Fatalf("object holds %d bytes, want the previous %q", len(got), "old")
				}
				if names := b.list(t); len(names) != 1 {
					t.Errorf("objects %v, want only the previous one", names)
				}
			})
			t.Run("commit twice fails", func(t *testing.T) {
				b := be.make(t)
				obj, _ := b.store.NewObject(context.Background(), "d/x", "text/plain")
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
				if got, _ := b.read(t, "d/x"); string(got) != "a" {
					t.Errorf("abort after commit changed the object: %q", got)
				}
			})
			t.Run("delete", func(t *testing.T) {
				b := be.make(t)
				writeObject(t, b.store, context.Background(), "d/x", []byte("a"))
				if err := b.store.Delete(context.Background(), "d/x"); err != nil {
					t.Fatal(err)
				}
				if _, ok := b.read(t, "d/x"); ok {
					t.Error("object still there after Delete")
				}
				if err := b.store.Delete(context.Background(), "d/x"); err != nil {
					t.Errorf("deleting a missing object: %v", err)
				}
			})
			t.Run("read back", func(t *testing.T) {
				b := be.make(t)
				writeObject(t, b.store, context.Background(), "d/x", big)
				r, err := b.store.NewReader(context.Background(), "d/x")
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err != nil || !bytes.Equal(got, big) {
					t.Errorf("read %d bytes (%v), want %d", len(got), err, len(big))
				}
				if _, err := b.store.NewReader(context.Background(), "d/missing"); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("reading a missing object: %v, want fs.ErrNotExist", err)
				}
			})
			t.Run("read at offsets", func(t *testing.T) {
				b := be.make(t)
				writeObject(t, b.store, context.Background(), "d/x", big)
				r, err := b.store.NewReaderAt(context.Background(), "d/x")
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
				if _, err := b.store.NewReaderAt(context.Background(), "d/missing"); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("opening a missing object: %v, want fs.ErrNotExist", err)
				}
			})
			t.Run("list shows committed objects under the prefix", func(t *testing.T) {
				b := be.make(t)
				for _, name := range []string{"p/20261125/a", "p/20261126/a", "p/20261126/b", "q/20261126/a", "p2/x"} {
					writeObject(t, b.store, context.Background(), name, []byte(name))
				}
				pending, err := b.store.NewObject(context.Background(), "p/20261126/c", "text/plain")
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
					got, err := b.store.List(context.Background(), prefix)
					if err != nil || !slices.Equal(got, want) {
						t.Errorf("List(%q) = %q, %v; want %q", prefix, got, err, want)
					}
				}
			})
			t.Run("create only if absent", func(t *testing.T) {
				b := be.make(t)
				if _, err := b.store.Create(context.Background(), "d/lock", "text/plain", []byte("first")); err != nil {
					t.Fatal(err)
				}
				if _, err := b.store.Create(context.Background(), "d/lock", "text/plain", []byte("second")); !errors.Is(err, ErrConflict) {
					t.Errorf("second create: %v, want ErrConflict", err)
				}
				if got, _ := b.read(t, "d/lock"); string(got) != "first" {
					t.Errorf("object holds %q, want the first create's", got)
				}
				if names := b.list(t); !slices.Equal(names, []string{"d/lock"}) {
					t.Errorf("objects %v, want only d/lock", names)
				}
			})
			t.Run("replace and delete only the generation seen", func(t *testing.T) {
				b := be.make(t)
				ctx := context.Background()
				first, err := b.store.Create(ctx, "d/lease", "text/plain", []byte("v1"))
				if err != nil || first.Generation == 0 {
					t.Fatalf("create: %+v, %v; want a generation", first, err)
				}
				second, err := b.store.Replace(ctx, "d/lease", "text/plain", []byte("v2"), first.Generation)
				if err != nil || second.Generation == first.Generation {
					t.Fatalf("replace at the generation created: %+v, %v; want a new generation", second, err)
				}
				if _, err := b.store.Replace(ctx, "d/lease", "text/plain", []byte("stale"), first.Generation); !errors.Is(err, ErrConflict) {
					t.Errorf("replace at an old generation: %v, want ErrConflict", err)
				}
				r, err := b.store.NewReaderAt(ctx, "d/lease")
				if err != nil {
					t.Fatal(err)
				}
				if g := r.Generation(); g != second.Generation {
					t.Errorf("reader's generation %d, want the replace's %d", g, second.Generation)
				}
				r.Close()
				if err := b.store.DeleteGeneration(ctx, "d/lease", first.Generation); err != nil {
					t.Errorf("delete at an old generation: %v", err)
				}
				if got, _ := b.read(t, "d/lease"); string(got) != "v2" {
					t.Errorf("after a delete at an old generation the object holds %q, want v2", got)
				}
				if err := b.store.DeleteGeneration(ctx, "d/lease", second.Generation); err != nil {
					t.Fatal(err)
				}
				if names := b.list(t); len(names) != 0 {
					t.Errorf("objects %v after deleting the live generation", names)
				}
				if _, err := b.store.Replace(ctx, "d/lease", "text/plain", []byte("v3"), second.Generation); !errors.Is(err, ErrConflict) {
					t.Errorf("replace of a deleted object: %v, want ErrConflict", err)
				}
				if names := b.list(t); len(names) != 0 {
					t.Errorf("objects %v after a refused replace", names)
				}
			})
			t.Run("rename replaces the target", func(t *testing.T) {
				b := be.make(t)
				writeObject(t, b.store, context.Background(), "d/staged", []byte("new"))
				writeObject(t, b.store, context.Background(), "e/final", []byte("old"))
				if err := b.store.Rename(context.Background(), "d/staged", "e/final"); err != nil {
					t.Fatal(err)
				}
				if got, _ := b.read(t, "e/final"); string(got) != "new" {
					t.Errorf("target holds %q after rename", got)
				}
				if names := b.list(t); !slices.Equal(names, []string{"e/final"}) {
					t.Errorf("objects %v after rename, want only e/final", names)
				}
				if err := b.store.Rename(context.Background(), "d/staged", "e/final"); err == nil {
					t.Error("renaming a missing object succeeded")
				}
			})
		})
	}
}

// Two writers racing on one name: the first to commit wins, the other
// gets ErrConflict and publishes nothing. GCS enforces this with
// generation preconditions.
func TestGCSConcurrentWritersConflict(t *testing.T) {
	b := gcsBackend(t)
	first, err := b.store.NewObject(context.Background(), "d/x", "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Abort()
	first.Write([]byte("first"))
	if _, err := writeObject(t, b.store, context.Background(), "d/x", []byte("second")); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Commit(); !errors.Is(err, ErrConflict) {
		t.Fatalf("late commit: %v, want ErrConflict", err)
	}
	if got, _ := b.read(t, "d/x"); string(got) != "second" {
		t.Errorf("object holds %q, want the winner's %q", got, "second")
	}
}

// A killed writer runs no Abort: RemoveTemporary takes away its
// temporary files below a folder, and nothing else.
func TestLocalRemoveTemporary(t *testing.T) {
	b := localBackend(t)
	local := b.store.(*Local)
	ctx := context.Background()
	writeObject(t, local, ctx, "p/d/kept", []byte("committed"))
	writeObject(t, local, ctx, "p/other/kept", []byte("committed"))
	for _, name := range []string{"p/d/x", "p/d/sub/y", "p/other/z"} {
		obj, err := local.NewObject(ctx, name, "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		obj.Write([]byte("partial"))
		// not aborted: as if the process had been killed
	}
	removed, err := local.RemoveTemporary(ctx, "p/d")
	if err != nil || len(removed) != 2 {
		t.Fatalf("RemoveTemporary = %v, %v; want the two partial files below p/d", removed, err)
	}
	var left []string
	for _, name := range b.list(t) {
		if strings.Contains(name, ".tmp-") {
			left = append(left, name)
		}
	}
	if len(left) != 1 || !strings.HasPrefix(left[0], "p/other/") {
		t.Errorf("temporary files left: %v, want only p/other's", left)
	}
	if got, ok := b.read(t, "p/d/kept"); !ok || string(got) != "committed" {
		t.Error("a committed file was removed")
	}
}

func TestLocalRejectsNamesOutsideTheDirectory(t *testing.T) {
	store, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../x", "a/../../x", ""} {
		if _, err := store.NewObject(context.Background(), name, ""); err == nil {
			t.Errorf("NewObject(%q) succeeded", name)
		}
	}
}

func TestLocalTemporaryFilesAreHidden(t *testing.T) {
	dir := t.TempDir()
	store, _ := NewLocal(dir)
	obj, err := store.NewObject(context.Background(), "20261126/spoc-list-public.parquet", ParquetContentType)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Abort()
	entries, _ := os.ReadDir(filepath.Join(dir, "20261126"))
	if len(entries) != 1 || !isTemporary(entries[0].Name()) || strings.HasSuffix(entries[0].Name(), ".parquet") {
		t.Fatalf("pending file %v: want one hidden temporary name that no *.parquet glob matches", entries)
	}
}

func TestParseGCSURL(t *testing.T) {
	tests := []struct {
		in, bucket, root string
		ok               bool
	}{
		{"gs://calee_data", "calee_data", "", true},
		{"gs://calee_data/", "calee_data", "", true},
		{"gs://my-bucket/a/b/", "my-bucket", "a/b", true},
		{"gs://", "", "", false},
		{"gs://Upper", "", "", false},
		{"gs://a", "", "", false},
		{"s3://bucket", "", "", false},
	}
	for _, tt := range tests {
		bucket, root, err := ParseGCSURL(tt.in)
		if (err == nil) != tt.ok || bucket != tt.bucket || root != tt.root {
			t.Errorf("ParseGCSURL(%q) = %q, %q, %v; want %q, %q, ok=%v", tt.in, bucket, root, err, tt.bucket, tt.root, tt.ok)
		}
	}
}
