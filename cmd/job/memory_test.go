package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// memoryTarget is the peak RSS a run stays within at the defaults,
// whatever the size of its records (README, "What a run does").
const memoryTarget = 256 << 20

// TestJobMemoryOfLongRecords runs the job on a saved body of 1,050
// plots, 50 of which carry four values of 987,000 bytes (197 MB in
// all): every value and record within SPOC_MAX_STRING_BYTES and
// SPOC_MAX_RECORD_BYTES. The job publishes it within its memory target,
// measured as the peak RSS of the process, and, where cgroup v2 can be
// written, under a memory.max of 512 MiB, the deployment's memory.
func TestJobMemoryOfLongRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 197 MB body")
	}
	body := filepath.Join(t.TempDir(), "long.json")
	f, err := os.Create(body)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := spoctest.Generate(w, spoctest.GenOptions{Records: 1050, Seed: 31, Long: spoctest.LongValues{Every: 21, Bytes: 987_000}}); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}

	t.Run("peak RSS", func(t *testing.T) {
		out := t.TempDir()
		cmd := jobCommand(body, out)
		start := time.Now()
		logs := runChild(t, cmd)
		peak := int64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) << 10 // KiB on Linux
		t.Logf("peak RSS %d MiB, %s", peak>>20, time.Since(start).Round(time.Millisecond))
		checkPublished(t, out, logs)
		if peak > memoryTarget {
			t.Errorf("peak RSS %d MiB, want at most %d MiB", peak>>20, memoryTarget>>20)
		}
	})

	t.Run("under memory.max 512MiB", func(t *testing.T) {
		cg := memoryCgroup(t, 512<<20)
		out := t.TempDir()
		cmd := jobCommand(body, out)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.fd()}
		logs := runChild(t, cmd)
		checkPublished(t, out, logs)
		if kills := cg.oomKills(t); kills != 0 {
			t.Errorf("%d processes killed for memory under memory.max 512MiB", kills)
		}
		if peak, err := os.ReadFile(filepath.Join(cg.dir, "memory.peak")); err == nil {
			t.Logf("cgroup memory.peak %s", strings.TrimSpace(string(peak)))
		}
	})
}

// jobCommand is this test binary run as the job on the saved body, at
// the defaults but for telemetry and the day.
func jobCommand(body, out string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	for _, kv := range os.Environ() {
		// The job's own memory settings are under test.
		if !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "SPOC_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, runAsJob+"=1", "SPOC_LOG_FORMAT=json", "SPOC_URL="+body, "SPOC_OUTPUT="+out,
		"SPOC_DATE=20261206", "OTEL_METRICS_EXPORTER=none", "OTEL_TRACES_EXPORTER=none")
	return cmd
}

// runChild runs cmd and returns its stderr, failing the test if it could
// not be run or was killed by a signal.
func runChild(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatal(err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("the job was killed by %v:\n%s", ws.Signal(), stderr.String())
	}
	return stderr.String()
}

// checkPublished checks that the day was published with every plot.
func checkPublished(t *testing.T, out, logs string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, testPrefix, "20261206", snapshot.ManifestName))
	if err != nil {
		t.Fatalf("no manifest (%v):\n%s", err, logs)
	}
	if m := readManifest(t, data); m.Parquet.Rows != 1050 {
		t.Errorf("published %d rows, want 1050", m.Parquet.Rows)
	}
}

// cgroup is a cgroup v2 of a test's own, removed at its end.
type cgroup struct {
	dir string
	f   *os.File
}

func (c *cgroup) fd() int { return int(c.f.Fd()) }

// oomKills reads the processes of the cgroup killed for memory.
func (c *cgroup) oomKills(t *testing.T) int {
	data, err := os.ReadFile(filepath.Join(c.dir, "memory.events"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if n, ok := strings.CutPrefix(strings.TrimSpace(line), "oom_kill "); ok {
			kills, _ := strconv.Atoi(n)
			return kills
		}
	}
	return 0
}

// memoryCgroup makes a cgroup v2 with memory.max set to limit below the
// root, or skips the test where there is none this process may write.
func memoryCgroup(t *testing.T, limit int64) *cgroup {
	const root = "/sys/fs/cgroup"
	controllers, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil || !strings.Contains(string(controllers), "memory") {
		t.Skipf("no cgroup v2 with the memory controller at %s (%v): the memory limit of a deployment is not tested here", root, err)
	}
	if os.Geteuid() != 0 {
		t.Skip("cgroup v2 found, but only root may make a cgroup: the memory limit of a deployment is not tested here")
	}
	if err := os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+memory"), 0); err != nil {
		t.Skipf("cannot enable the memory controller below %s: %v", root, err)
	}
	dir := filepath.Join(root, fmt.Sprintf("mspo-spoc-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := os.WriteFile(filepath.Join(dir, "memory.max"), []byte(strconv.FormatInt(limit, 10)), 0); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0)
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &cgroup{dir: dir, f: f}
}
