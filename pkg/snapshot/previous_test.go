package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/sink/sinktest"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
)

// The days of the broken-day tests: day 0 and day 1 are published, day 1
// is then broken, and days 2 and 3 run after it.
const (
	day0Dir = "raw/spoc/20261124"
	day1Dir = "raw/spoc/20261125"
	day2Dir = "raw/spoc/20261126"
	day3Dir = "raw/spoc/20261127"
)

// manifestView is what the broken-day tests read of a manifest, by its
// JSON names: what the next day compared with, and what it passed over.
type manifestView struct {
	Previous *struct {
		Snapshot string `json:"snapshot"`
		Verified string `json:"verified"`
	} `json:"previous"`
	PassedOver []struct {
		Snapshot string `json:"snapshot"`
		Reason   string `json:"reason"`
	} `json:"passed_over"`
	Changes *struct {
		Previous string `json:"previous"`
		FirstRun bool   `json:"first_run"`
	} `json:"changes"`
}

func viewManifest(t *testing.T, store sink.Store, dir string) manifestView {
	t.Helper()
	var v manifestView
	if err := json.Unmarshal(readAll(t, store, path.Join(dir, snapshot.ManifestName)), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// dayRunner runs days on one store, each with every object and a log of
// its own.
type dayRunner struct {
	t     *testing.T
	store sink.Store
	tweak func(*snapshot.Options) // nil: none
}

// run publishes body as the day dayOffset days from day and returns its
// logs; a run that fails fails the test.
func (d dayRunner) run(dayOffset int, body []byte) string {
	d.t.Helper()
	var logs syncBuffer
	opts := rerunOptions(d.t, d.store, body)
	opts.Day = day.AddDate(0, 0, dayOffset)
	opts.Guards.MaxFallPercent = 50
	opts.Telemetry.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	if d.tweak != nil {
		d.tweak(&opts)
	}
	if _, err := snapshot.Run(context.Background(), opts); err != nil {
		d.t.Fatalf("day %s: %v\n%s", opts.Day.Format(snapshot.DateLayout), err, logs.String())
	}
	return logs.String()
}

// twoDays publishes body0 and body1 as days 0 and 1 on a new store of
// backend, and returns it and its runner.
func twoDays(t *testing.T, backend string, body0, body1 []byte) (sink.Store, dayRunner) {
	t.Helper()
	store, _ := storeFor(t, backend)
	days := dayRunner{t: t, store: store}
	days.run(-2, body0)
	days.run(-1, body1)
	return store, days
}

// checkCompared fails the test unless the manifest in dir says the run
// compared with want (with its change table from that day, when it has
// one) and passed over exactly the day passed with a reason holding
// reason ("" passed: none).
func checkCompared(t *testing.T, store sink.Store, dir, want, passed, reason string) {
	t.Helper()
	v := viewManifest(t, store, dir)
	if v.Previous == nil || v.Previous.Snapshot != want {
		t.Errorf("%s compared with %+v, want %s", dir, v.Previous, want)
	}
	if v.Changes != nil && v.Changes.Previous != want {
		t.Errorf("%s's change table is against %q, want %s", dir, v.Changes.Previous, want)
	}
	switch {
	case passed == "" && len(v.PassedOver) != 0:
		t.Errorf("%s passed over %+v, want none", dir, v.PassedOver)
	case passed != "" && (len(v.PassedOver) != 1 || v.PassedOver[0].Snapshot != passed || !strings.Contains(v.PassedOver[0].Reason, reason)):
		t.Errorf("%s passed over %+v, want %s because %q", dir, v.PassedOver, passed, reason)
	}
}

// An earlier day that is not whole does not hold up the days after it:
// the next day compares with the newest earlier whole day, logs which day
// it passed over and why, says both in its manifest, and its change table
// is against that whole day; the day after compares with the next day as
// usual. On both stores.
func TestBrokenDayIsPassedOver(t *testing.T) {
	body0, body1 := generated(t, 300, 1), generated(t, 300, 2)
	// Day 2 planted against day 0: its change table tells which day it
	// was compared with.
	body2, against0 := plantedDay2(t, body0, []int{3, 7}, []int{1, 2}, []int64{990001}, 5)
	flip := func(b []byte) []byte { b = bytes.Clone(b); b[len(b)/2] ^= 0x40; return b }
	for _, tc := range []struct {
		name string
		// spoil breaks day 1 from its published objects.
		spoil  func(t *testing.T, store sink.Store, parquet, manifest []byte)
		reason string
	}{
		{"garbage manifest", func(t *testing.T, store sink.Store, _, _ []byte) {
			putObject(t, store, day1Dir+"/"+snapshot.ManifestName, []byte("{\"snapshot\": \"2026112"))
		}, "its manifest does not read"},
		{"null manifest", func(t *testing.T, store sink.Store, _, _ []byte) {
			putObject(t, store, day1Dir+"/"+snapshot.ManifestName, []byte("null"))
		}, "its manifest does not read"},
		{"Parquet of the wrong size", func(t *testing.T, store sink.Store, parquet, _ []byte) {
			putObject(t, store, day1Dir+"/"+snapshot.ParquetName, parquet[:len(parquet)-876])
		}, "bytes, its manifest says"},
		{"same-size Parquet with flipped bytes", func(t *testing.T, store sink.Store, parquet, _ []byte) {
			putObject(t, store, day1Dir+"/"+snapshot.ParquetName, flip(parquet))
		}, "its Parquet file's CRC32C is"},
		{"missing Parquet", func(t *testing.T, store sink.Store, _, _ []byte) {
			if err := store.Delete(context.Background(), day1Dir+"/"+snapshot.ParquetName); err != nil {
				t.Fatal(err)
			}
		}, "its Parquet file is missing"},
	} {
		for _, backend := range []string{"local", "gcs"} {
			t.Run(backend+"/"+tc.name, func(t *testing.T) {
				store, days := twoDays(t, backend, body0, body1)
				tc.spoil(t, store, readAll(t, store, day1Dir+"/"+snapshot.ParquetName), readAll(t, store, day1Dir+"/"+snapshot.ManifestName))

				logs := days.run(0, body2)
				if !strings.Contains(logs, "not comparing with an earlier day") || !strings.Contains(logs, "snapshot=20261125") {
					t.Errorf("day 2's logs do not warn that day 1 was passed over:\n%s", logs)
				}
				checkCompared(t, store, day2Dir, "20261124", "20261125", tc.reason)
				if got := changeRows(t, readAll(t, store, day2Dir+"/"+snapshot.ChangesName)); !slices.Equal(got, against0) {
					t.Errorf("day 2's change table\n%s\nwant, against day 0,\n%s", strings.Join(got, "\n"), strings.Join(against0, "\n"))
				}
				if v := viewManifest(t, store, day2Dir); v.Previous != nil && v.Previous.Verified != snapshot.VerifiedCRC32C {
					t.Errorf("day 2 verified day 0 by %q, want %q", v.Previous.Verified, snapshot.VerifiedCRC32C)
				}

				days.run(1, generated(t, 300, 4))
				checkCompared(t, store, day3Dir, "20261126", "", "")
			})
		}
	}
}

// Without change detection a broken earlier day holds nothing up either,
// even a garbage manifest under SPOC_FORCE, and the run reads none of the
// previous day's data objects: only its manifest, for the guards. (A
// run reads its own staged snapshot back for the geolocation layer: a
// hidden .tmp- object of its own day, not an earlier day's.)
func TestBrokenDayWithoutChangeDetection(t *testing.T) {
	for _, backend := range []string{"local", "gcs"} {
		t.Run(backend, func(t *testing.T) {
			base, _ := storeFor(t, backend)
			store := sinktest.NewFaulty(base)
			var dataReads atomic.Int64
			store.Fail(func(op sinktest.Op) sinktest.StoreFault {
				if op.Kind == "read" && !strings.HasSuffix(op.Name, ".json") && !strings.HasSuffix(op.Name, ".lock") && !strings.Contains(op.Name, ".tmp-") {
					dataReads.Add(1)
					return sinktest.StoreFault{Err: fmt.Errorf("%w: %s read", errInjected, op.Name)}
				}
				return sinktest.StoreFault{}
			})
			days := dayRunner{t: t, store: store, tweak: func(o *snapshot.Options) {
				o.Outputs.Changes, o.Guards.Force = false, true
			}}
			days.run(-2, generated(t, 300, 1))
			days.run(-1, generated(t, 300, 2))
			putObject(t, base, day1Dir+"/"+snapshot.ManifestName, []byte("not a manifest"))
			days.run(0, generated(t, 300, 3))
			checkCompared(t, base, day2Dir, "20261124", "20261125", "its manifest does not read")
			if v := viewManifest(t, base, day2Dir); v.Previous != nil && v.Previous.Verified != snapshot.VerifiedManifest {
				t.Errorf("day 2 verified day 0 by %q, want %q", v.Previous.Verified, snapshot.VerifiedManifest)
			}
			// Day 2's Parquet is not what its manifest says: without
			// change detection nobody looks.
			putObject(t, base, day2Dir+"/"+snapshot.ParquetName, []byte("not parquet"))
			days.run(1, generated(t, 300, 4))
			checkCompared(t, base, day3Dir, "20261126", "", "")
			if n := dataReads.Load(); n != 0 {
				t.Errorf("the runs read %d data objects", n)
			}
		})
	}
}

// A run killed between the swap of the day's objects and its manifest
// leaves the journal in the day's lock, the new objects beside the old
// manifest. The next day settles that journal first, as a rerun of the
// day would (here after a lease without renewal: the stalled holder is a
// goroutine of this process), finds the day whole again and compares with
// it; the killed run, woken, touches nothing. A day whose publish is
// under way by a holder that renews its lock is left alone and passed
// over. On both stores.
func TestDayLeftMidPublish(t *testing.T) {
	body0, body1 := generated(t, 300, 1), generated(t, 300, 2)
	for _, backend := range []string{"local", "gcs"} {
		t.Run(backend+"/killed between swap and manifest", func(t *testing.T) {
			base, days := twoDays(t, backend, body0, body1)
			manifest1 := readAll(t, base, day1Dir+"/"+snapshot.ManifestName)

			// A rerun of day 1 stalls at its manifest and its writes fail
			// from then on: to every other run it is a dead holder.
			wakeA := runStalled(t, base, func(op sinktest.Op) bool {
				return op.Writes() && path.Base(op.Name) == snapshot.ManifestName
			}, func(a sink.Store) snapshot.Options {
				optsA := rerunOptions(t, a, generated(t, 300, 9))
				optsA.Day = day.AddDate(0, 0, -1)
				return optsA
			})
			m1, err := snapshot.ParseManifest(manifest1)
			if err != nil {
				t.Fatal(err)
			}
			if parquet := readAll(t, base, day1Dir+"/"+snapshot.ParquetName); crc32.Checksum(parquet, crc32.MakeTable(crc32.Castagnoli)) == m1.Parquet.CRC32C ||
				!bytes.Equal(readAll(t, base, day1Dir+"/"+snapshot.ManifestName), manifest1) {
				t.Fatal("the stalled rerun did not leave its Parquet file beside day 1's manifest")
			}

			logs := days.run(0, generated(t, 300, 3))
			if !strings.Contains(logs, "settled the publish the earlier holder") || !strings.Contains(logs, "committed=false") {
				t.Errorf("day 2's logs do not say it settled day 1's publish:\n%s", logs)
			}
			checkCompared(t, base, day2Dir, "20261125", "", "")
			if !bytes.Equal(readAll(t, base, day1Dir+"/"+snapshot.ManifestName), manifest1) {
				t.Error("day 1's manifest changed")
			}
			checkPublished(t, base, day1Dir)
			names, err := base.List(context.Background(), day1Dir+"/")
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				if strings.HasPrefix(path.Base(n), ".") {
					t.Errorf("day 1 still holds %s", n)
				}
			}
			days.run(1, generated(t, 300, 4))
			checkCompared(t, base, day3Dir, "20261126", "", "")

			if err := wakeA(); !errors.Is(err, snapshot.ErrLockLost) {
				t.Errorf("the stalled rerun of day 1: %v, want ErrLockLost", err)
			}
			if !bytes.Equal(readAll(t, base, day1Dir+"/"+snapshot.ManifestName), manifest1) {
				t.Error("the stalled rerun changed day 1's manifest after it lost its lock")
			}
			checkPublished(t, base, day1Dir)
		})
		t.Run(backend+"/publish under way", func(t *testing.T) {
			base, days := twoDays(t, backend, body0, body1)
			host, boot := thisHost(t)
			now := time.Now().UTC()
			held := lockHeld{Holder: "other/1", Host: host, BootID: boot, PID: 1, Nonce: "n", Started: now, Renewed: now, Expires: now.Add(time.Minute),
				Publish: json.RawMessage(`{"run":"r1","manifest":"` + day1Dir + "/" + snapshot.ManifestName + `","manifest_previous":1,"objects":[]}`)}
			data, _ := json.Marshal(held)
			lock := day1Dir + "/" + snapshot.LockName
			putObject(t, base, lock, data)
			stop := renewLock(t, base, lock, held)
			days.run(0, generated(t, 300, 3))
			stop()
			checkCompared(t, base, day2Dir, "20261124", "20261125", "its lock holds a publish under way, not taken over")
			if _, err := base.Stat(context.Background(), lock); err != nil {
				t.Errorf("the live holder's lock: %v", err)
			}
		})
	}
}
