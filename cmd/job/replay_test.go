package main

import (
	"context"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/history/historytest"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// jobOutput is where a test's runs of the job publish (SPOC_OUTPUT): a
// local directory or a bucket of the GCS emulator.
type jobOutput struct {
	output string
	read   func(name string) []byte // an object, by its name below the output
	list   func() []string          // every object below the output
}

// url is how SPOC_URL names the object name of the output.
func (o jobOutput) url(name string) string { return o.output + "/" + name }

func localOutput(t *testing.T) jobOutput { return localOutputIn(t, t.TempDir()) }

func localOutputIn(t *testing.T, dir string) jobOutput {
	return jobOutput{
		output: dir,
		read: func(name string) []byte {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			return data
		},
		list: func() []string { return files(t, dir) },
	}
}

func gcsOutput(t *testing.T) jobOutput {
	startFakeGCS(t, "calee-test")
	client := gcsClient(t)
	return jobOutput{
		output: "gs://calee-test",
		read:   func(name string) []byte { return readObject(t, client, "calee-test", name) },
		list:   func() []string { return bucketObjects(t, client, "calee-test") },
	}
}

// outputs are the two stores the replay tests run on.
var outputs = []struct {
	name string
	open func(t *testing.T) jobOutput
}{{"local", localOutput}, {"gcs", gcsOutput}}

// publish runs the job for day under prefix, with env on top, and fails
// the test unless it publishes. The days of historytest.Days remove
// plots on purpose: the fall guard is off.
func (o jobOutput) publish(t *testing.T, prefix, day, url string, env map[string]string) string {
	t.Helper()
	full := map[string]string{
		"SPOC_OUTPUT": o.output, "SPOC_PREFIX": prefix, "SPOC_DATE": day, "SPOC_URL": url,
		"SPOC_MAX_DROP_PERCENT": "100", "OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none",
	}
	maps.Copy(full, env)
	code, logs := runJob(t, context.Background(), full)
	if code != exitOK {
		t.Fatalf("%s/%s: exit %d\n%s", prefix, day, code, logs)
	}
	return logs
}

// serveBody serves body as the upstream of one run.
func serveBody(t *testing.T, body []byte) string {
	up := spoctest.NewServer(spoctest.WithBody(body), spoctest.WithGzip())
	t.Cleanup(up.Close)
	return up.URL
}

// replay replays the archive of each day under prefix, in date order,
// as docs/history.md says: the day's archive as SPOC_URL, the day
// as SPOC_DATE, and no skip of an unchanged body.
func (o jobOutput) replay(t *testing.T, prefix string, dates []string) {
	t.Helper()
	for _, d := range dates {
		o.publish(t, prefix, d, o.url(prefix+"/"+d+"/"+snapshot.ArchiveName), map[string]string{"SPOC_SKIP_IF_UNCHANGED": "false"})
	}
}

// days reads the snapshot and the versions of each day under prefix,
// and fails the test unless each day's manifest describes its versions
// object (size and CRC32C).
func (o jobOutput) days(t *testing.T, prefix string, dates []string) []historytest.Day {
	t.Helper()
	var out []historytest.Day
	for _, d := range dates {
		dir := prefix + "/" + d + "/"
		m := readManifest(t, o.read(dir+snapshot.ManifestName))
		versions := o.read(dir + snapshot.VersionsName)
		if m.Versions == nil || m.Versions.Size != int64(len(versions)) || m.Versions.CRC32C != crc32.Checksum(versions, crc32.MakeTable(crc32.Castagnoli)) {
			t.Fatalf("%s: the manifest's versions %+v do not describe the object beside it (%d bytes)", dir, m.Versions, len(versions))
		}
		out = append(out, historytest.Day{Date: d, Snapshot: o.read(dir + snapshot.ParquetName), Versions: versions})
	}
	return out
}

// versionRows are each day's versions under prefix, as sorted rows.
func (o jobOutput) versionRows(t *testing.T, prefix string, dates []string) map[string][]string {
	t.Helper()
	rows := map[string][]string{}
	for _, d := range o.days(t, prefix, dates) {
		rows[d.Date] = historytest.History{}.Add(t, d.Date, d.Versions, len(spoc.SPOC.Columns))
	}
	return rows
}

// TestReplayBuildsTheHistoryOfDaysPublishedWithoutIt publishes four
// days (a skipped day among them, plots removed and coming back, values
// changed and changed back) with SPOC_DETECT_CHANGES=false, as days
// published before the versions were, keeping their raw archives; then
// replays each day's archive in date order with change detection on.
// The history it builds is the one daily runs with change detection
// wrote under another prefix: the same versions each day, and the list
// as of every day is that day's snapshot.
func TestReplayBuildsTheHistoryOfDaysPublishedWithoutIt(t *testing.T) {
	for _, out := range outputs {
		t.Run(out.name, func(t *testing.T) {
			o := out.open(t)
			days := historytest.Days(t, historytest.NewBody(t, spoc.SPOC, 300))
			dates := slices.Sorted(maps.Keys(days))
			for _, d := range dates {
				url := serveBody(t, days[d])
				o.publish(t, "control", d, url, nil)
				o.publish(t, "legacy", d, url, map[string]string{"SPOC_DETECT_CHANGES": "false"})
			}
			for _, name := range o.list() {
				if strings.HasPrefix(name, "legacy/") && (strings.Contains(name, "/history/") || strings.Contains(name, "versions")) {
					t.Fatalf("a day published without change detection holds %s", name)
				}
			}

			o.replay(t, "legacy", dates)

			historytest.CheckAsOf(t, o.days(t, "legacy", dates), len(spoc.SPOC.Columns))
			want, got := o.versionRows(t, "control", dates), o.versionRows(t, "legacy", dates)
			for _, d := range dates {
				if !slices.Equal(got[d], want[d]) {
					t.Errorf("%s: the replay wrote %d versions, the daily runs %d: not the same", d, len(got[d]), len(want[d]))
				}
			}
		})
	}
}

// TestRerunOfAnOlderDayAndTheReplayThatRepairsIt publishes four days
// with change detection, then reruns day 2 with another body. Day 2's
// versions are rewritten against day 1, but day 4's still describe the
// changes from the old day 2: the list as of day 4, and of day 5 after
// it, differs from the snapshot exactly for the plots the rerun changed
// that no later day changed again (they keep the new day 2's values, or
// stay removed, while the snapshots hold the old ones). A replay of the
// later days with the unchanged-body skip on does nothing; replaying
// each later day's archive in date order with SPOC_SKIP_IF_UNCHANGED=false
// rewrites their versions against the new day 2: the list as of every
// day is its snapshot again, and each day's versions are those of daily
// runs over the new day 2.
func TestRerunOfAnOlderDayAndTheReplayThatRepairsIt(t *testing.T) {
	for _, out := range outputs {
		t.Run(out.name, func(t *testing.T) {
			o := out.open(t)
			columns := len(spoc.SPOC.Columns)
			body := historytest.NewBody(t, spoc.SPOC, 300)
			days := historytest.Days(t, body)
			dates := slices.Sorted(maps.Keys(days))
			const day2 = "20261202"
			later := dates[2:]
			for _, d := range dates {
				o.publish(t, "daily", d, serveBody(t, days[d]), nil)
			}
			historytest.CheckAsOf(t, o.days(t, "daily", dates), columns)
			old2 := historytest.Snapshot(t, o.read("daily/"+day2+"/"+snapshot.ParquetName), columns)

			// Another day 2: other values changed, other plots removed.
			text := historytest.TextField(spoc.SPOC)
			var recs []map[string]any
			for i, r := range body.Records {
				c := maps.Clone(r)
				switch {
				case i%9 == 5:
					continue
				case i%4 == 0:
					c[text] = c[text].(string) + " v2b"
				}
				recs = append(recs, c)
			}
			rerun := body.With(t, recs)
			o.publish(t, "daily", day2, serveBody(t, rerun), nil)
			new2 := historytest.Snapshot(t, o.read("daily/"+day2+"/"+snapshot.ParquetName), columns)

			// What breaks: as of each later day D, the plots the rerun
			// changed (their row, or whether they are there) that every
			// day after day 2 up to D holds as the old day 2 did. No
			// later day has a version of them, so the list as of D keeps
			// the new day 2's row (or its removal), and the snapshot the
			// old one. A plot a later day changed is right from then on.
			h := historytest.History{}
			for _, d := range o.days(t, "daily", dates) {
				h.Add(t, d.Date, d.Versions, columns)
			}
			stale := map[string]bool{}
			for id := range old2 {
				stale[id] = !sameRow(old2, new2, id)
			}
			for id := range new2 {
				stale[id] = !sameRow(old2, new2, id)
			}
			broken := map[string]int{}
			for _, d := range dates {
				snap := historytest.Snapshot(t, o.read("daily/"+d+"/"+snapshot.ParquetName), columns)
				var want []string
				for id, s := range stale {
					if d > day2 {
						s = s && sameRow(old2, snap, id)
						stale[id] = s
					}
					if s && d > day2 {
						want = append(want, id)
					}
				}
				slices.Sort(want)
				got := historytest.Differing(snap, h.AsOf(d, nil))
				if !slices.Equal(got, want) {
					t.Errorf("after the rerun of day 2, as of %s %d plots differ from the snapshot, want %d: %v, want %v", d, len(got), len(want), got, want)
				}
				if d > day2 && len(want) == 0 {
					t.Errorf("as of %s nothing breaks: the rerun tests less than it should", d)
				}
				broken[d] = len(got)
			}
			t.Logf("after the rerun of day 2, the plots whose list as of the day is wrong: %v", broken)

			// The skip of an unchanged body keeps a plain replay from
			// repairing anything.
			before := o.read("daily/" + later[0] + "/" + snapshot.VersionsName)
			logs := o.publish(t, "daily", later[0], o.url("daily/"+later[0]+"/"+snapshot.ArchiveName), nil)
			if !strings.Contains(logs, "same body") || string(o.read("daily/"+later[0]+"/"+snapshot.VersionsName)) != string(before) {
				t.Errorf("a replay with the unchanged-body skip on rewrote %s:\n%s", later[0], logs)
			}

			o.replay(t, "daily", later)
			historytest.CheckAsOf(t, o.days(t, "daily", dates), columns)
			for _, d := range dates {
				if d == day2 {
					o.publish(t, "control", d, serveBody(t, rerun), nil)
				} else {
					o.publish(t, "control", d, serveBody(t, days[d]), nil)
				}
			}
			want, got := o.versionRows(t, "control", dates), o.versionRows(t, "daily", dates)
			for _, d := range dates {
				if !slices.Equal(got[d], want[d]) {
					t.Errorf("%s: after the repair %d versions, daily runs over the new day 2 wrote %d: not the same", d, len(got[d]), len(want[d]))
				}
			}
		})
	}
}

// sameRow says whether two snapshots (historytest.Snapshot) hold plot
// id alike: the same row, or neither.
func sameRow(a, b map[string]string, id string) bool {
	ra, oka := a[id]
	rb, okb := b[id]
	return oka == okb && ra == rb
}
