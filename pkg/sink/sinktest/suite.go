package sinktest

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// Run runs the conformance suite against stores made by newHarness, a
// new, empty one for each case. Each case is named for the rule it
// checks; after each one (its deferred Aborts run) the store holds no
// temporary leftovers.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			c.run(t, h)
			NoTemporaries(t, h, c.name)
		})
	}
}

// cases is the store contract, one function per rule.
var cases = []struct {
	name string
	run  func(t *testing.T, h Harness)
}{
	{"CommitPublishesTheExactBytes", testCommitPublishesTheExactBytes},
	{"NothingIsVisibleBeforeCommit", testNothingIsVisibleBeforeCommit},
	{"AbortLeavesNothing", testAbortLeavesNothing},
	{"CancelledWritePublishesNothing", testCancelledWritePublishesNothing},
	{"RerunReplacesTheObject", testRerunReplacesTheObject},
	{"AbortedRerunKeepsThePreviousObject", testAbortedRerunKeepsThePreviousObject},
	{"SecondCommitFailsAndAbortAfterCommitKeepsTheObject", testSecondCommitFailsAndAbortAfterCommitKeepsTheObject},
	{"DeleteRemovesAndAMissingObjectIsNoError", testDeleteRemovesAndAMissingObjectIsNoError},
	{"ReadBackGivesTheBytesAndAMissingObjectIsNotExist", testReadBackGivesTheBytesAndAMissingObjectIsNotExist},
	{"ReadAtReadsAnyRangeWithEOFPastTheEnd", testReadAtReadsAnyRangeWithEOFPastTheEnd},
	{"ListShowsCommittedObjectsUnderThePrefix", testListShowsCommittedObjectsUnderThePrefix},
	{"CreateOnlyIfAbsent", testCreateOnlyIfAbsent},
	{"ReplaceAndDeleteOnlyTheGenerationSeen", testReplaceAndDeleteOnlyTheGenerationSeen},
	{"CopyReplacesOnlyTheGenerationExpected", testCopyReplacesOnlyTheGenerationExpected},
	{"CopyOfAMissingObjectOrGenerationIsNotExist", testCopyOfAMissingObjectOrGenerationIsNotExist},
	{"CommitGivesTheGenerationStatAndReplaceSee", testCommitGivesTheGenerationStatAndReplaceSee},
	{"LateCommitConflictsWithOneThatCameFirst", testLateCommitConflictsWithOneThatCameFirst},
	{"ReaderKnowsTheSize", testReaderKnowsTheSize},
}

// big is 2 MiB: several writes, more than one chunk for some clients.
var big = sync.OnceValue(func() []byte { return bytes.Repeat([]byte("0123456789abcdef"), 1<<17) })

// NoTemporaries fails the test if h holds a temporary leftover (Local's
// hidden ".NAME.tmp-*" files; a GCS upload is never listed before it is
// finalised, so there this checks that nothing was finalised by mistake
// under such a name) after what it names.
func NoTemporaries(t *testing.T, h Harness, after string) {
	t.Helper()
	for _, name := range h.List(t) {
		if strings.Contains(name, ".tmp-") {
			t.Errorf("%s left %s", after, name)
		}
	}
}

// writeBig commits big() at d/x, for the cases that read it back.
func writeBig(t *testing.T, b Harness) []byte {
	t.Helper()
	if _, err := Write(t, b.Store, context.Background(), "d/x", big()); err != nil {
		t.Fatal(err)
	}
	return big()
}

func testCommitPublishesTheExactBytes(t *testing.T, b Harness) {
	big := big()
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
}

func testNothingIsVisibleBeforeCommit(t *testing.T, b Harness) {
	obj, err := b.Store.NewObject(context.Background(), "d/x.parquet", sink.ParquetContentType)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Abort()
	obj.Write(big())
	if _, ok := b.Read(t, "d/x.parquet"); ok {
		t.Fatal("object visible before Commit")
	}
}

func testAbortLeavesNothing(t *testing.T, b Harness) {
	obj, err := b.Store.NewObject(context.Background(), "d/x.parquet", sink.ParquetContentType)
	if err != nil {
		t.Fatal(err)
	}
	obj.Write(big())
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
}

// Local refuses the writes after the cancel and its commit; GCS cancels
// the resumable upload, which it then never finalises. Either way the
// commit fails and nothing is listed.
func testCancelledWritePublishesNothing(t *testing.T, b Harness) {
	big := big()
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
}

func testRerunReplacesTheObject(t *testing.T, b Harness) {
	if _, err := Write(t, b.Store, context.Background(), "d/x", []byte("old")); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(t, b.Store, context.Background(), "d/x", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Read(t, "d/x"); string(got) != "new" {
		t.Fatalf("object holds %q, want %q", got, "new")
	}
}

func testAbortedRerunKeepsThePreviousObject(t *testing.T, b Harness) {
	if _, err := Write(t, b.Store, context.Background(), "d/x", []byte("old")); err != nil {
		t.Fatal(err)
	}
	obj, err := b.Store.NewObject(context.Background(), "d/x", "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	obj.Write(big())
	obj.Abort()
	if got, _ := b.Read(t, "d/x"); string(got) != "old" {
		t.Fatalf("object holds %d bytes, want the previous %q", len(got), "old")
	}
	if names := b.List(t); len(names) != 1 {
		t.Errorf("objects %v, want only the previous one", names)
	}
}

func testSecondCommitFailsAndAbortAfterCommitKeepsTheObject(t *testing.T, b Harness) {
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
}

func testDeleteRemovesAndAMissingObjectIsNoError(t *testing.T, b Harness) {
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
}

func testReadBackGivesTheBytesAndAMissingObjectIsNotExist(t *testing.T, b Harness) {
	big := writeBig(t, b)
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
}

func testReadAtReadsAnyRangeWithEOFPastTheEnd(t *testing.T, b Harness) {
	big := writeBig(t, b)
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
}

// Local's List skips its temporary files; GCS lists only finalised
// objects. The pending object is listed by neither.
func testListShowsCommittedObjectsUnderThePrefix(t *testing.T, b Harness) {
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
}

// GCS refuses the second create on the server (a DoesNotExist
// precondition); Local with an exclusive link of its temporary file.
func testCreateOnlyIfAbsent(t *testing.T, b Harness) {
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
}

// GCS generations are the server's, increasing; Local's stand in for
// them (a hash of the file's inode, modification time and size): this
// case relies only on each write making a new one.
func testReplaceAndDeleteOnlyTheGenerationSeen(t *testing.T, b Harness) {
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
}

// GCS copies on the server and gives the copy a generation of its own;
// Local hard-links the source beside the target, checks the target and
// then renames, so there the copy keeps the source's generation, its
// CRC32C is read from the file, and a refused copy removes its link.
// A Local generation is odd, so old.Generation+2 is one no object has,
// as it is on GCS.
func testCopyReplacesOnlyTheGenerationExpected(t *testing.T, b Harness) {
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
}

// Both answer fs.ErrNotExist: GCS for the source generation it cannot
// find, Local when the file's generation is not the one asked for,
// which it checks before it links anything beside the target.
func testCopyOfAMissingObjectOrGenerationIsNotExist(t *testing.T, b Harness) {
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
	NoTemporaries(t, b, "a failed copy")
}

func testCommitGivesTheGenerationStatAndReplaceSee(t *testing.T, b Harness) {
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
}

// GCS checks the upload's precondition (the generation seen when the
// object was started, or absent) on the server as it finalises; Local
// checks it just before its rename, which is enough to tell these two
// commits apart (see sink's package doc, # Errors).
func testLateCommitConflictsWithOneThatCameFirst(t *testing.T, b Harness) {
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
	NoTemporaries(t, b, "a conflicting commit")
}

func testReaderKnowsTheSize(t *testing.T, b Harness) {
	big := writeBig(t, b)
	r, err := b.Store.NewReader(context.Background(), "d/x")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != int64(len(big)) {
		t.Errorf("Size = %d, want %d", r.Size(), len(big))
	}
}
