package main

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// TestJobAfterABrokenDay: a published day that cannot serve as the
// previous snapshot (its manifest garbage, its Parquet file cut, grown,
// flipped or gone) blocks none of the days after it. The next day's job
// passes over it for the newest whole day before it, says so in its
// manifest, and publishes; so does the day after that.
func TestJobAfterABrokenDay(t *testing.T) {
	var body bytes.Buffer
	if _, err := spoctest.Generate(&body, spoctest.GenOptions{Records: 2000, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(saved, body.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	const first, broken, next, after = "20261123", "20261124", "20261125", "20261126"
	for _, tc := range []struct {
		name  string
		brk   func(t *testing.T, dir string)
		env   []string
		after string // the previous snapshot of the next day
	}{
		{"garbage manifest", breakFile(snapshot.ManifestName, func(b []byte) []byte { return []byte("{not json") }), nil, first},
		{"garbage manifest, without change detection, forced", breakFile(snapshot.ManifestName, func(b []byte) []byte { return []byte("null") }),
			[]string{"SPOC_DETECT_CHANGES=false", "SPOC_FORCE=true"}, first},
		{"Parquet file grown", breakFile(snapshot.ParquetName, func(b []byte) []byte { return append(b, 0) }), nil, first},
		{"Parquet file cut", breakFile(snapshot.ParquetName, func(b []byte) []byte { return b[:len(b)-100] }), nil, first},
		{"Parquet bytes flipped", breakFile(snapshot.ParquetName, func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }), nil, first},
		{"Parquet file gone", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, snapshot.ParquetName)); err != nil {
				t.Fatal(err)
			}
		}, nil, first},
		// A FIFO would block the run that opens it for a writer that
		// never comes: it is no object, and the day's manifest none.
		{"manifest is a FIFO", fifo(snapshot.ManifestName), nil, first},
		{"lock is a FIFO", fifo(snapshot.LockName), nil, broken},
		// Without change detection the Parquet file is never read: the
		// day is whole as far as its manifest goes.
		{"Parquet bytes flipped, without change detection", breakFile(snapshot.ParquetName, func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }),
			[]string{"SPOC_DETECT_CHANGES=false"}, broken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			publish := func(day string, env ...string) snapshot.Manifest {
				t.Helper()
				env = append([]string{"SPOC_URL=" + saved, "SPOC_OUTPUT=" + out, "SPOC_DATE=" + day,
					"OTEL_METRICS_EXPORTER=none", "OTEL_TRACES_EXPORTER=none"}, env...)
				code, logs := execJob(t, append(env, "SPOC_DEADLINE=60s")...)
				if code != exitOK {
					t.Fatalf("day %s: exit %d, want %d:\n%s", day, code, exitOK, logs)
				}
				data, err := os.ReadFile(filepath.Join(out, testPrefix, day, snapshot.ManifestName))
				if err != nil {
					t.Fatal(err)
				}
				return readManifest(t, data)
			}
			publish(first)
			publish(broken)
			tc.brk(t, filepath.Join(out, testPrefix, broken))

			m := publish(next, tc.env...)
			if m.Previous == nil || m.Previous.Snapshot != tc.after {
				t.Fatalf("day %s compared with %+v, want %s", next, m.Previous, tc.after)
			}
			passed := tc.after != broken
			if got := len(m.PassedOver) == 1 && m.PassedOver[0].Snapshot == broken && m.PassedOver[0].Reason != ""; got != passed {
				t.Errorf("day %s passed over %+v; want %s passed over with a reason: %v", next, m.PassedOver, broken, passed)
			}
			if m := publish(after, tc.env...); m.Previous == nil || m.Previous.Snapshot != next || len(m.PassedOver) != 0 {
				t.Errorf("day %s compared with %+v, passing over %+v; want %s and none passed over", after, m.Previous, m.PassedOver, next)
			}
		})
	}
}

// fifo puts a FIFO at the day's object name.
func fifo(name string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		path := filepath.Join(dir, name)
		os.Remove(path)
		if err := syscall.Mkfifo(path, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// breakFile rewrites the day's object name with change.
func breakFile(name string, change func([]byte) []byte) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, change(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
