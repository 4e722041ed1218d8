package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/crc32"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
)

// putObject writes data at name in store, over whatever is there.
func putObject(t *testing.T, store sink.Store, name string, data []byte) sink.ObjectInfo {
	t.Helper()
	obj, err := store.NewObject(context.Background(), name, "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.Write(data); err != nil {
		t.Fatal(err)
	}
	info, err := obj.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// editManifest rewrites the manifest at name with edit applied.
func editManifest(t *testing.T, store sink.Store, name string, edit func(m *snapshot.Manifest)) {
	t.Helper()
	m := readManifest(t, store, name)
	edit(&m)
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	putObject(t, store, name, data)
}

// The day-2 run reads day 1's digest instead of its Parquet file, and
// gives the same change table when it cannot: a digest that is missing,
// corrupt, cut short, of another day (with a manifest that vouches for
// its bytes), or that the manifest does not record falls back to the
// Parquet file with a log line that says why, on both stores; the
// manifest says which was read, and the day's own digest is written
// either way.
func TestChangesFallBackFromAnUnusableDigest(t *testing.T) {
	const (
		dayBefore = "raw/spoc/20261124/"
		day1Dir   = "raw/spoc/20261125/"
		day2Dir   = "raw/spoc/20261126/"
	)
	body1 := generated(t, 300, 1)
	body2, want := plantedDay2(t, body1, []int{3, 7}, []int{1, 2}, []int64{990001}, 5)
	// The last byte is of the last row's hash: only the checksum tells.
	flip := func(b []byte) []byte { b = bytes.Clone(b); b[len(b)-1] ^= 1; return b }

	for _, backend := range []string{"local", "gcs"} {
		t.Run(backend, func(t *testing.T) {
			store, _ := storeFor(t, backend)
			run := func(dayOffset int, body []byte) (*snapshot.Manifest, string) {
				t.Helper()
				var logs bytes.Buffer
				opts := options(t, serve(t, body), store)
				opts.Day = day.AddDate(0, 0, dayOffset)
				opts.Outputs.Changes, opts.Guards.SkipIfUnchanged, opts.Guards.MaxFallPercent = true, false, 50
				opts.Telemetry.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				m, err := snapshot.Run(context.Background(), opts)
				if err != nil {
					t.Fatalf("day %s: %v\n%s", opts.Day.Format(snapshot.DateLayout), err, logs.String())
				}
				return m, logs.String()
			}
			run(-2, generated(t, 300, 3))
			m1, _ := run(-1, body1)
			if m1.Digest == nil || m1.Changes.BaselineFrom != snapshot.BaselineFromDigest {
				t.Fatalf("day 1: digest %+v, baseline from %q; want a digest, read from day 0's", m1.Digest, m1.Changes.BaselineFrom)
			}
			digest := readAll(t, store, day1Dir+snapshot.DigestName)
			manifest := readAll(t, store, day1Dir+snapshot.ManifestName)
			if int64(len(digest)) != m1.Digest.Size || crc32.Checksum(digest, crc32.MakeTable(crc32.Castagnoli)) != m1.Digest.CRC32C {
				t.Fatalf("day 1's manifest does not describe its digest")
			}
			// Each case breaks day 1's digest from the intact one.
			cases := []struct {
				name  string
				spoil func()
				log   string // what the fallback's log line says
			}{
				{"intact", func() {}, ""},
				{"missing", func() {
					if err := store.Delete(context.Background(), day1Dir+snapshot.DigestName); err != nil {
						t.Fatal(err)
					}
				}, "cannot be used"},
				{"corrupt", func() { putObject(t, store, day1Dir+snapshot.DigestName, flip(digest)) }, "its CRC32C is"},
				{"cut short", func() { putObject(t, store, day1Dir+snapshot.DigestName, digest[:len(digest)-20]) }, "bytes, its manifest says"},
				{"another day's, vouched for", func() {
					other := readAll(t, store, dayBefore+snapshot.DigestName)
					info := putObject(t, store, day1Dir+snapshot.DigestName, other)
					editManifest(t, store, day1Dir+snapshot.ManifestName, func(m *snapshot.Manifest) {
						m.Digest.Size, m.Digest.CRC32C = info.Size, info.CRC32C
					})
				}, `digest of snapshot \"20261124\"`},
				{"not in the manifest", func() {
					editManifest(t, store, day1Dir+snapshot.ManifestName, func(m *snapshot.Manifest) { m.Digest = nil })
				}, "has no digest"},
			}
			for _, tc := range cases {
				putObject(t, store, day1Dir+snapshot.DigestName, digest)
				putObject(t, store, day1Dir+snapshot.ManifestName, manifest)
				tc.spoil()
				m2, logs := run(0, body2)
				wantFrom := snapshot.BaselineFromParquet
				if tc.log == "" {
					wantFrom = snapshot.BaselineFromDigest
				}
				if m2.Changes.BaselineFrom != wantFrom {
					t.Errorf("%s: baseline from %q, want %q", tc.name, m2.Changes.BaselineFrom, wantFrom)
				}
				if got := changeRows(t, readAll(t, store, day2Dir+snapshot.ChangesName)); !slices.Equal(got, want) {
					t.Errorf("%s: change table\n%s\nwant\n%s", tc.name, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				if tc.log != "" && (!strings.Contains(logs, "reading its Parquet file") || !strings.Contains(logs, tc.log)) {
					t.Errorf("%s: the logs do not say the Parquet file was read, and %q:\n%s", tc.name, tc.log, logs)
				}
				if tc.log == "" && strings.Contains(logs, "reading its Parquet file") {
					t.Errorf("%s: the Parquet file was read for the baseline:\n%s", tc.name, logs)
				}
				if m2.Digest == nil || int64(len(readAll(t, store, day2Dir+snapshot.DigestName))) != m2.Digest.Size {
					t.Errorf("%s: day 2's digest %+v is not the one its manifest records", tc.name, m2.Digest)
				}
			}
		})
	}
}
