package snapshot_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/sink/sinktest"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// generated returns a generated body of n records.
func generated(t testing.TB, n int, seed uint64) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := spoctest.Generate(&b, spoctest.GenOptions{Records: n, Seed: seed}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// serve starts a fake upstream serving body gzip-compressed on the wire.
func serve(t testing.TB, body []byte) string {
	up := spoctest.NewServer(spoctest.WithBody(body), spoctest.WithGzip())
	t.Cleanup(up.Close)
	return up.URL
}

// files lists every file below dir, hidden temporary files included.
func files(t testing.TB, dir string) []string { return sinktest.Files(t, dir) }

func gunzipFile(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// archivedRun publishes the day from source into a new local output with
// the raw archive on, and returns the manifest and the day's folder.
func archivedRun(t *testing.T, source string) (*snapshot.Manifest, string) {
	t.Helper()
	out := t.TempDir()
	store, _ := sink.NewLocal(out)
	opts := options(t, source, store)
	opts.Outputs.Archive = true
	m, err := snapshot.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return m, filepath.Join(out, "raw/spoc", opts.Day.Format(snapshot.DateLayout))
}

func TestRawArchiveHoldsTheBodyAndReplaysToTheSameTable(t *testing.T) {
	body := generated(t, 700, 1)
	m, dir := archivedRun(t, serve(t, body))
	if got, want := files(t, dir), []string{snapshot.ArchiveName, snapshot.ManifestName, snapshot.ParquetName}; !slices.Equal(got, want) {
		t.Fatalf("day folder holds %v, want %v", got, want)
	}
	archive := filepath.Join(dir, snapshot.ArchiveName)
	if !bytes.Equal(gunzipFile(t, archive), body) {
		t.Fatal("the archive is not the body served (after transfer decoding)")
	}
	if m.Source.SHA256 != sha256Hex(body) {
		t.Errorf("manifest SHA-256 %s, body's %s", m.Source.SHA256, sha256Hex(body))
	}
	if fi, _ := os.Stat(archive); m.Archive == nil || m.Archive.URL != archive || m.Archive.Size != fi.Size() {
		t.Errorf("manifest archive %+v, file %s of %d bytes", m.Archive, archive, fi.Size())
	}

	// A replay of the archive into another output, under the same day,
	// gives the same table value for value. (The bytes differ: the footer
	// records the fetch time.)
	rm, replayDir := archivedRun(t, archive)
	original, _ := os.ReadFile(filepath.Join(dir, snapshot.ParquetName))
	replayed, _ := os.ReadFile(filepath.Join(replayDir, snapshot.ParquetName))
	if dumpParquet(t, original) != dumpParquet(t, replayed) {
		t.Error("the replayed table differs from the original")
	}
	if rm.Source.SHA256 != m.Source.SHA256 || !reflect.DeepEqual(rm.Stats, m.Stats) {
		t.Errorf("replay: SHA-256 %s, stats %+v; original %s, %+v", rm.Source.SHA256, rm.Stats, m.Source.SHA256, m.Stats)
	}
}

func TestPublishGuards(t *testing.T) {
	tests := []struct {
		name      string
		records   int // day 2; day 1 has 200
		force     bool
		wantErr   error
		wantFiles []string
	}{
		{"a small fall publishes", 185, false, nil, []string{snapshot.ArchiveName, snapshot.ManifestName, snapshot.ParquetName}},
		{"half the records is refused", 100, false, snapshot.ErrRecordsFell, []string{"rejected/" + snapshot.ArchiveName}},
		{"forced, half the records publishes", 100, true, nil, []string{snapshot.ArchiveName, snapshot.ManifestName, snapshot.ParquetName}},
		{"below the minimum is refused", 20, true, snapshot.ErrTooFewRecords, []string{"rejected/" + snapshot.ArchiveName}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			store, _ := sink.NewLocal(out)
			day1 := options(t, serve(t, generated(t, 200, 1)), store)
			day1.Day = day.AddDate(0, 0, -1)
			if _, err := snapshot.Run(context.Background(), day1); err != nil {
				t.Fatal(err)
			}

			body := generated(t, tt.records, 2)
			day2 := options(t, serve(t, body), store)
			day2.Outputs.Archive, day2.Guards.MaxFallPercent, day2.Guards.Force, day2.Guards.MinRecords = true, 10, tt.force, 50
			m, err := snapshot.Run(context.Background(), day2)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("day 2: %v, want %v", err, tt.wantErr)
			}
			dir := filepath.Join(out, "raw/spoc/20261126")
			if got := files(t, dir); !slices.Equal(got, tt.wantFiles) {
				t.Errorf("day 2 folder holds %v, want %v", got, tt.wantFiles)
			}
			if err != nil {
				if !strings.Contains(err.Error(), filepath.Join(dir, "rejected", snapshot.ArchiveName)) {
					t.Errorf("the error does not say where the raw body is: %v", err)
				}
				if !bytes.Equal(gunzipFile(t, filepath.Join(dir, "rejected", snapshot.ArchiveName)), body) {
					t.Error("the rejected archive is not the body")
				}
				return
			}
			if m.Previous == nil || m.Previous.Snapshot != "20261125" || m.Previous.Records != 200 {
				t.Errorf("manifest previous %+v, want 20261125 with 200 records", m.Previous)
			}
			if m.Forced != (tt.records < 180) {
				t.Errorf("manifest forced = %v", m.Forced)
			}
		})
	}
}

func TestFirstRunHasNoPrevious(t *testing.T) {
	store, _ := sink.NewLocal(t.TempDir())
	opts := options(t, serve(t, generated(t, 50, 1)), store)
	opts.Guards.MaxFallPercent = 10
	m, err := snapshot.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if m.Previous != nil {
		t.Errorf("first run's manifest names a previous snapshot: %+v", m.Previous)
	}
	// A later day finds it; an earlier day (a backfill) does not.
	later := options(t, serve(t, generated(t, 50, 2)), store)
	later.Day = day.AddDate(0, 0, 3)
	if m, err := snapshot.Run(context.Background(), later); err != nil || m.Previous == nil || m.Previous.Snapshot != "20261126" {
		t.Errorf("three days later: previous %+v, %v", m, err)
	}
	earlier := options(t, serve(t, generated(t, 50, 3)), store)
	earlier.Day = day.AddDate(0, 0, -30)
	if m, err := snapshot.Run(context.Background(), earlier); err != nil || m.Previous != nil {
		t.Errorf("a backfill before every snapshot: previous %+v, %v", m, err)
	}
}

func TestRerunWithTheSameBodyIsSkipped(t *testing.T) {
	body := generated(t, 300, 1)
	out := t.TempDir()
	store, _ := sink.NewLocal(out)
	opts := options(t, serve(t, body), store)
	opts.Outputs.Archive, opts.Guards.SkipIfUnchanged = true, true
	first, err := snapshot.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(out, "raw/spoc/20261126")
	manifest, _ := os.ReadFile(filepath.Join(dir, snapshot.ManifestName))
	before := files(t, dir)

	if _, err := snapshot.Run(context.Background(), opts); !errors.Is(err, snapshot.ErrUnchanged) {
		t.Fatalf("rerun with the same body: %v, want ErrUnchanged", err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, snapshot.ManifestName)); !bytes.Equal(again, manifest) {
		t.Error("the skipped rerun rewrote the manifest")
	}
	if got := files(t, dir); !slices.Equal(got, before) {
		t.Errorf("after the skipped rerun the folder holds %v, before %v", got, before)
	}

	// A changed body, or the skip turned off, publishes again.
	changed := options(t, serve(t, generated(t, 300, 2)), store)
	changed.Guards.SkipIfUnchanged = true
	if m, err := snapshot.Run(context.Background(), changed); err != nil || m.Source.SHA256 == first.Source.SHA256 {
		t.Fatalf("rerun with a changed body: %v", err)
	}
	opts.Guards.SkipIfUnchanged = false
	if _, err := snapshot.Run(context.Background(), opts); err != nil {
		t.Fatalf("rerun without the skip: %v", err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, snapshot.ManifestName))
	if m, err := snapshot.ParseManifest(data); err != nil || m.Source.SHA256 != first.Source.SHA256 {
		t.Errorf("manifest after the forced rerun: %v, %+v", err, m)
	}

	// A manifest that does not read is no reason to skip, nor to refuse
	// the rerun that replaces it.
	if err := os.WriteFile(filepath.Join(dir, snapshot.ManifestName), []byte("{\"snapshot\""), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.Guards.SkipIfUnchanged = true
	if m, err := snapshot.Run(context.Background(), opts); err != nil || m.Source.SHA256 != first.Source.SHA256 {
		t.Fatalf("rerun over a manifest that does not read: %v", err)
	}
	if m := readManifest(t, store, "raw/spoc/20261126/"+snapshot.ManifestName); m.Source.SHA256 != first.Source.SHA256 {
		t.Errorf("the manifest is not the rerun's: %+v", m.Source)
	}
}

// Two runs of one day at the same time, with different bodies, on both
// stores: whatever the interleaving, the day ends with one complete
// snapshot whose manifest describes the objects beside it.
func TestConcurrentRunsLeaveOneConsistentSnapshot(t *testing.T) {
	for _, backend := range []string{"local", "gcs"} {
		t.Run(backend, func(t *testing.T) {
			var store sink.Store
			if backend == "local" {
				store, _ = sink.NewLocal(t.TempDir())
			} else {
				store = fakeGCS(t)
			}
			bodies := [][]byte{generated(t, 400, 1), generated(t, 400, 2)}
			errs := make([]error, len(bodies))
			var wg sync.WaitGroup
			for i, body := range bodies {
				opts := options(t, serve(t, body), store)
				opts.Outputs.Archive = true
				wg.Go(func() { _, errs[i] = snapshot.Run(context.Background(), opts) })
			}
			wg.Wait()
			published := 0
			for i, err := range errs {
				switch {
				case err == nil:
					published++
				case !errors.Is(err, snapshot.ErrBusy):
					t.Errorf("run %d: %v, want success or ErrBusy", i, err)
				}
			}
			if published == 0 {
				t.Fatal("neither run published")
			}

			dir := "raw/spoc/20261126/"
			m := readManifest(t, store, dir+snapshot.ManifestName)
			parquet, archive := readAll(t, store, dir+snapshot.ParquetName), readAll(t, store, dir+snapshot.ArchiveName)
			if crc := crc32.Checksum(parquet, crc32.MakeTable(crc32.Castagnoli)); m.Parquet.CRC32C != crc || m.Parquet.Size != int64(len(parquet)) {
				t.Errorf("manifest's Parquet %+v, object's CRC32C %08x and size %d", m.Parquet.ObjectInfo, crc, len(parquet))
			}
			zr, err := gzip.NewReader(bytes.NewReader(archive))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(zr)
			if m.Source.SHA256 != sha256Hex(raw) || (!bytes.Equal(raw, bodies[0]) && !bytes.Equal(raw, bodies[1])) {
				t.Error("the archive is not the body the manifest describes")
			}
			if names, _ := store.List(context.Background(), dir); len(names) != 3 {
				t.Errorf("day folder holds %v, want the three objects of one snapshot", names)
			}
		})
	}
}

func readAll(t *testing.T, store sink.Store, name string) []byte {
	return sinktest.ReadAll(t, store, name)
}

func readManifest(t *testing.T, store sink.Store, name string) snapshot.Manifest {
	t.Helper()
	m, err := snapshot.ReadManifest(context.Background(), store, name)
	if err != nil || m == nil {
		t.Fatalf("manifest %s: %v (present: %v)", name, err, m != nil)
	}
	return *m
}

// A body that arrives gzip-compressed is archived as it arrived: the
// archive is the bytes received (no compression of the job's own), its
// SHA-256 still the decoded body's; a replay of that archive archives it
// byte for byte again and gives the same table, value for value. A body
// sent plain is compressed into the archive.
func TestGzipBodyIsArchivedAsReceived(t *testing.T) {
	body := generated(t, 900, 3)
	m, dir := archivedRun(t, serve(t, body))
	archive := filepath.Join(dir, snapshot.ArchiveName)
	received, _ := os.ReadFile(archive)
	if int64(len(received)) != m.Source.WireBytes || m.Archive.Size != m.Source.WireBytes {
		t.Errorf("archive of %d bytes (manifest %d), %d received: not the received stream", len(received), m.Archive.Size, m.Source.WireBytes)
	}
	if !bytes.Equal(gunzipFile(t, archive), body) || m.Source.SHA256 != sha256Hex(body) {
		t.Error("the archive is not a gzip of the body, or the SHA-256 is not the body's")
	}

	rm, replayDir := archivedRun(t, archive)
	again, _ := os.ReadFile(filepath.Join(replayDir, snapshot.ArchiveName))
	if !bytes.Equal(again, received) || rm.Source.SHA256 != m.Source.SHA256 {
		t.Errorf("the replay's archive (%d bytes) is not the archive replayed (%d bytes)", len(again), len(received))
	}
	original, _ := os.ReadFile(filepath.Join(dir, snapshot.ParquetName))
	replayed, _ := os.ReadFile(filepath.Join(replayDir, snapshot.ParquetName))
	if dumpParquet(t, original) != dumpParquet(t, replayed) {
		t.Error("the replayed table differs from the original")
	}

	// Sent plain: compressed here.
	up := spoctest.NewServer(spoctest.WithBody(body))
	t.Cleanup(up.Close)
	pm, plainDir := archivedRun(t, up.URL)
	plainArchive := filepath.Join(plainDir, snapshot.ArchiveName)
	if !bytes.Equal(gunzipFile(t, plainArchive), body) || pm.Source.WireBytes != int64(len(body)) || pm.Archive.Size >= int64(len(body))/2 {
		t.Errorf("plain body: archive of %d bytes for %d received; want a gzip of the body", pm.Archive.Size, pm.Source.WireBytes)
	}
}
