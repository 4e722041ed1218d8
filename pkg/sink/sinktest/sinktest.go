// Package sinktest is the conformance suite of sink.Store: the contract
// every backend keeps, run against a local directory and against Cloud
// Storage (on fake-gcs-server, in process, on loopback). A new backend
// passes Run before anything else relies on it. It also holds the
// harnesses the other packages' tests use for a store: Local, GCS, GCSOn
// and the Emulator (fake-gcs-server behind a handler that keeps GCS's
// copy preconditions and injects faults).
//
// Run's cases are named for the rule each checks (suite.go). Where the
// backends differ, the difference is stated in sink's package doc
// (# Errors) and beside the case that meets it, not left for a test to
// find: GCS checks preconditions on the server, Local just before its
// rename.
package sinktest

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
