package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	pathpkg "path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/history/historytest"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/sink/sinktest"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// TestJobKilledMidBodyThenRerun kills the job with SIGKILL while the body
// streams in (out of memory, a lost node, a task past its timeout: no
// deferred cleanup runs), then reruns it at once, as Cloud Run's task
// retry or an operator would. The rerun takes over the dead run's lock
// (locally because its process is gone, on GCS because it is a retry of
// the same CLOUD_RUN_EXECUTION), removes what the killed run left, and
// publishes; another execution that waits less than the lease is still
// kept out.
func TestJobKilledMidBodyThenRerun(t *testing.T) {
	const day = "20261202"
	for _, backend := range []string{"local", "gcs"} {
		t.Run(backend, func(t *testing.T) {
			output, execution := t.TempDir(), ""
			var list func() []string
			if backend == "gcs" {
				startFakeGCS(t, "calee-test")
				output, execution = "gs://calee-test", "mspo-spoc-exec-1"
				client := gcsClient(t)
				list = func() []string { return bucketObjects(t, client, "calee-test") }
			} else {
				dir := output
				list = func() []string { return files(t, dir) }
			}
			env := map[string]string{"SPOC_OUTPUT": output, "SPOC_DATE": day, "OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none"}
			if execution != "" {
				env["CLOUD_RUN_EXECUTION"] = execution
			}

			slow := spoctest.NewServer(spoctest.WithRecords(20_000), spoctest.WithThrottle(400_000))
			defer slow.Close()
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), runAsJob+"=1", "SPOC_LOG_FORMAT=json", "SPOC_URL="+slow.URL)
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Kill it once the body is streaming and objects are open.
			for deadline := time.Now().Add(30 * time.Second); slow.Requests() == 0; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("the job never fetched:\n%s", stderr.String())
				}
			}
			time.Sleep(1500 * time.Millisecond)
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			cmd.Wait()
			lock := testPrefix + "/" + day + "/" + snapshot.LockName
			left := list()
			if !slices.Contains(left, lock) {
				t.Fatalf("the killed run left %v, no lock: the test kills too late\n%s", left, stderr.String())
			}
			if backend == "local" && !containsPart(left, ".tmp-") {
				t.Fatalf("the killed run left %v, no partial file: the test kills too late", left)
			}
			if versions := testPrefix + "/" + day + "/" + snapshot.VersionsName; slices.Contains(left, versions) {
				t.Errorf("the killed run published %s", versions)
			}

			up := spoctest.NewServer(spoctest.WithRecords(20_000))
			defer up.Close()
			env["SPOC_URL"] = up.URL
			if backend == "gcs" {
				other := map[string]string{}
				for k, v := range env {
					other[k] = v
				}
				other["CLOUD_RUN_EXECUTION"] = "mspo-spoc-exec-2"
				// Watch the lock for a second, less than its lease: the
				// killed run's lock is not renewed, so a full wait would
				// take it over after two minutes.
				other["SPOC_LOCK_WAIT"] = "1s"
				code, logs := runJob(t, context.Background(), other)
				if code != exitFailed || !strings.Contains(logs, "another run is publishing this day") || up.Requests() != 0 {
					t.Fatalf("another execution within the lease: exit %d, %d requests\n%s", code, up.Requests(), logs)
				}
			}
			code, logs := runJob(t, context.Background(), env)
			if code != exitOK {
				t.Fatalf("rerun after SIGKILL: exit %d\n%s", code, logs)
			}
			if !strings.Contains(logs, "taking over the day's lock") {
				t.Errorf("the rerun does not say it took over the lock:\n%s", logs)
			}
			dir := testPrefix + "/" + day + "/"
			want := []string{dir + snapshot.ChangesName, dir + snapshot.GeoName, dir + snapshot.VersionsName, dir + snapshot.DigestName, dir + snapshot.ArchiveName, dir + snapshot.ManifestName, dir + snapshot.ParquetName}
			if got := list(); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("after the rerun the day holds %v, want %v: no lock, no leftovers", got, want)
			}
			o := localOutputIn(t, output)
			if backend == "gcs" {
				client := gcsClient(t)
				o.read = func(name string) []byte { return readObject(t, client, "calee-test", name) }
			}
			historytest.CheckAsOf(t, o.days(t, testPrefix, []string{day}), len(spoc.SPOC.Columns))
		})
	}
}

func containsPart(names []string, part string) bool {
	for _, n := range names {
		if strings.Contains(filepath.Base(n), part) {
			return true
		}
	}
	return false
}

// TestJobKilledBetweenSwapAndManifestThenNextDay kills a rerun of a day
// with SIGKILL while its manifest write hangs on GCS: its new objects
// stand beside the day's old manifest, its journal in the day's lock. The
// next day's run settles that journal first (the holder's process is
// gone), compares with the day restored whole, and publishes; so does
// the day after.
func TestJobKilledBetweenSwapAndManifestThenNextDay(t *testing.T) {
	const day1, day2, day3 = "20261201", "20261202", "20261203"
	emulator := sinktest.NewEmulator(t, "calee-test")
	t.Setenv("STORAGE_EMULATOR_HOST", emulator.Host())
	client := gcsClient(t)
	store := sink.NewGCS(client, "calee-test", testPrefix)
	env := func(day string, seed uint64) map[string]string {
		up := spoctest.NewServer(spoctest.WithRecords(2_000), spoctest.WithSeed(seed))
		t.Cleanup(up.Close)
		return map[string]string{"SPOC_OUTPUT": "gs://calee-test", "SPOC_DATE": day, "SPOC_URL": up.URL,
			"OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none"}
	}
	if code, logs := runJob(t, context.Background(), env(day1, 1)); code != exitOK {
		t.Fatalf("day 1: exit %d\n%s", code, logs)
	}
	manifest1 := readObject(t, client, "calee-test", testPrefix+"/"+day1+"/"+snapshot.ManifestName)

	// The rerun of day 1, as its own process; its manifest write hangs
	// until the process is killed.
	stalled, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	emulator.Fail(func(r sinktest.Request) sinktest.Fault {
		if r.Write && pathpkg.Base(r.Object) == snapshot.ManifestName && strings.Contains(r.Object, day1) {
			once.Do(func() { close(stalled) })
			<-release
			return sinktest.Fault{Status: http.StatusServiceUnavailable}
		}
		return sinktest.Fault{}
	})
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), runAsJob+"=1", "SPOC_LOG_FORMAT=json")
	for k, v := range env(day1, 2) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-stalled:
	case err := <-exited:
		close(release)
		t.Fatalf("the rerun of day 1 ended before its manifest: %v\n%s", err, stderr.String())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-exited
	close(release)
	emulator.Fail(nil)

	m1, err := snapshot.ParseManifest(manifest1)
	if err != nil {
		t.Fatal(err)
	}
	dir1 := testPrefix + "/" + day1 + "/"
	if info, err := store.Stat(context.Background(), day1+"/"+snapshot.ParquetName); err != nil || info.CRC32C == m1.Parquet.CRC32C ||
		!bytes.Equal(readObject(t, client, "calee-test", dir1+snapshot.ManifestName), manifest1) {
		t.Fatalf("the killed rerun did not leave its Parquet file beside day 1's manifest (%+v, %v)\n%s", info, err, stderr.String())
	}
	if !slices.Contains(bucketObjects(t, client, "calee-test"), dir1+snapshot.LockName) {
		t.Fatal("the killed rerun left no lock")
	}
	if info, err := store.Stat(context.Background(), day1+"/"+snapshot.VersionsName); err != nil || m1.Versions == nil || info.CRC32C == m1.Versions.CRC32C {
		t.Fatalf("the killed rerun did not leave its versions beside day 1's manifest (%+v, %v)", info, err)
	}

	code, logs := runJob(t, context.Background(), env(day2, 3))
	if code != exitOK {
		t.Fatalf("day 2 after day 1's killed rerun: exit %d\n%s", code, logs)
	}
	if !strings.Contains(logs, "settled the publish the earlier holder") {
		t.Errorf("day 2 does not say it settled day 1's publish:\n%s", logs)
	}
	for _, c := range []struct{ day, previous string }{{day2, day1}, {day3, day2}} {
		if c.day == day3 {
			if code, logs := runJob(t, context.Background(), env(day3, 4)); code != exitOK {
				t.Fatalf("day 3: exit %d\n%s", code, logs)
			}
		}
		m, err := snapshot.ParseManifest(readObject(t, client, "calee-test", testPrefix+"/"+c.day+"/"+snapshot.ManifestName))
		if err != nil {
			t.Fatal(err)
		}
		if m.Previous == nil || m.Previous.Snapshot != c.previous || len(m.PassedOver) != 0 || m.Changes == nil || m.Changes.Previous != c.previous {
			t.Errorf("day %s compared with %+v (changes %+v), passed over %+v; want %s", c.day, m.Previous, m.Changes, m.PassedOver, c.previous)
		}
	}
	want := []string{dir1 + snapshot.ChangesName, dir1 + snapshot.GeoName, dir1 + snapshot.VersionsName, dir1 + snapshot.DigestName, dir1 + snapshot.ArchiveName, dir1 + snapshot.ManifestName, dir1 + snapshot.ParquetName}
	var got []string
	for _, name := range bucketObjects(t, client, "calee-test") {
		if strings.HasPrefix(name, dir1) {
			got = append(got, name)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("day 1 holds %v, want %v: restored, no lock, no leftovers", got, want)
	}
	if info, err := store.Stat(context.Background(), day1+"/"+snapshot.ParquetName); err != nil || info.CRC32C != m1.Parquet.CRC32C || info.Size != m1.Parquet.Size {
		t.Errorf("day 1's Parquet file %+v (%v) is not its manifest's %+v", info, err, m1.Parquet.ObjectInfo)
	}
	// Day 1's versions are restored with it, and the next days' chain
	// from them.
	o := jobOutput{read: func(name string) []byte { return readObject(t, client, "calee-test", name) }}
	historytest.CheckAsOf(t, o.days(t, testPrefix, []string{day1, day2, day3}), len(spoc.SPOC.Columns))
}
