package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/snapshot"
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
			want := []string{dir + snapshot.ChangesName, dir + snapshot.DigestName, dir + snapshot.ArchiveName, dir + snapshot.ManifestName, dir + snapshot.ParquetName}
			if got := list(); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("after the rerun the day holds %v, want %v: no lock, no leftovers", got, want)
			}
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
