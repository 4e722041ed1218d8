package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
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
// whatever the size of its records (docs/architecture.md, "Memory").
const memoryTarget = 256 << 20

// TestJobMemoryOfLongRecords runs the job on saved bodies of 1,050
// plots, 50 of which carry four values of a million bytes or so (about
// 200 MB in all): every value and record within SPOC_MAX_STRING_BYTES
// and SPOC_MAX_RECORD_BYTES. In one the long values are always in the
// same four columns; in the other they move from column to column, so
// that every column's pages and statistics hold long values in turn. In
// a third, each long record has one long value, a cert_status of its
// own, which the change table would otherwise hold. The job publishes
// each within its memory target, measured as the peak RSS of the
// process, and, where a memory cgroup (v2 or v1) can be made, under a
// limit of 512 MiB, the deployment's memory, which the job reads as
// Cloud Run's. It does so too when the body is a later day's, after a
// day of the same plots without long values, and on the normal day
// after it, which compares with the long one.
func TestJobMemoryOfLongRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("writes bodies of 200 MB")
	}
	for _, tc := range []struct {
		name   string
		long   spoctest.LongValues
		status bool // the long value is cert_status's, and only it
	}{
		{"four columns", spoctest.LongValues{Every: 21, Bytes: 987_000}, false},
		{"moving columns", spoctest.LongValues{Every: 21, Bytes: 1_000_000, Moving: true}, false},
		{"long statuses", spoctest.LongValues{Every: 21, Bytes: 1_000_000}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := longBody(t, tc.long, tc.status)
			t.Run("peak RSS", func(t *testing.T) {
				out := t.TempDir()
				cmd := jobCommand(body, out)
				start := time.Now()
				logs := runChild(t, cmd)
				peak := childPeak(t, cmd)
				t.Logf("peak RSS %d MiB, %s", peak>>20, time.Since(start).Round(time.Millisecond))
				checkPublished(t, out, logs)
				if peak > memoryTarget {
					t.Errorf("peak RSS %d MiB, want at most %d MiB", peak>>20, memoryTarget>>20)
				}
			})
			t.Run("under a 512MiB cgroup limit", func(t *testing.T) {
				cg := memoryCgroup(t, 512<<20)
				out := t.TempDir()
				cmd := jobCommand(body, out)
				cg.place(cmd)
				logs := runChild(t, cmd)
				checkPublished(t, out, logs)
				if kills := cg.oomKills(t); kills != 0 {
					t.Errorf("%d processes killed for memory under a 512MiB limit", kills)
				}
				t.Logf("peak RSS %d MiB under the limit", childPeak(t, cmd)>>20)
			})
			// The long body as a later day, after a normal day of the same
			// plots: every long plot has changed, and the change table
			// holds their before and after values; then a normal day,
			// which compares with the long one.
			t.Run("as day 2, then a normal day 3", func(t *testing.T) {
				normal := longBody(t, spoctest.LongValues{}, false)
				out := t.TempDir()
				for _, day := range []struct {
					date, body string
					changed    int64
				}{
					{"20261205", normal, 0},
					{"20261206", body, longPlots},
					{"20261207", normal, longPlots},
				} {
					cmd := jobCommand(day.body, out)
					cmd.Env = append(cmd.Env, "SPOC_DATE="+day.date)
					logs := runChild(t, cmd)
					peak := childPeak(t, cmd)
					t.Logf("%s: peak RSS %d MiB", day.date, peak>>20)
					m := checkPublishedOn(t, out, day.date, logs)
					if c := m.Changes; c == nil || c.Changed != day.changed || c.Added+c.Removed != 0 {
						t.Errorf("%s: changes %+v, want %d changed and nothing added or removed", day.date, c, day.changed)
					}
					if peak > memoryTarget {
						t.Errorf("%s: peak RSS %d MiB, want at most %d MiB", day.date, peak>>20, memoryTarget>>20)
					}
				}
			})
		})
	}
}

// longPlots is how many plots of longBody carry long values: every 21st
// of 1,050.
const longPlots = 1050 / 21

// longBody writes a body of 1,050 generated plots with long values to a
// file of the test's, streamed: the test holds none of it. With status,
// the long records are those of long.Every, but with a cert_status of
// long.Bytes, distinct from record to record, in place of their own;
// their other values are those of the plots without long values.
func longBody(t *testing.T, long spoctest.LongValues, status bool) string {
	t.Helper()
	body := filepath.Join(t.TempDir(), "long.json")
	f, err := os.Create(body)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	opts := spoctest.GenOptions{Records: 1050, Seed: 31, Long: long}
	if status {
		// The plots without long values are small enough to hold.
		var normal bytes.Buffer
		opts.Long = spoctest.LongValues{}
		if _, err := spoctest.Generate(&normal, opts); err != nil {
			t.Fatal(err)
		}
		writeLongStatuses(w, normal.Bytes(), long) // w's error is Flush's
	} else if _, err := spoctest.Generate(w, opts); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
	return body
}

// writeLongStatuses writes body, a generated one, to w with the
// cert_status of every long.Every-th record (counting from 1) replaced by
// a value of long.Bytes: the record's number, then letters.
func writeLongStatuses(w io.Writer, body []byte, long spoctest.LongValues) {
	key := []byte(`"cert_status":"`)
	for n := 1; ; n++ {
		i := bytes.Index(body, key)
		if i < 0 {
			break
		}
		i += len(key)
		end := i + bytes.IndexByte(body[i:], '"')
		w.Write(body[:i])
		if n%long.Every == 0 {
			fmt.Fprintf(w, "%08d%s", n, strings.Repeat("S", long.Bytes-8))
		} else {
			w.Write(body[i:end])
		}
		body = body[end:]
	}
	w.Write(body)
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
	cmd.Env = append(cmd.Env, runAsJob+"=1", peakFileEnv+"="+out+".peak", "SPOC_LOG_FORMAT=json", "SPOC_URL="+body, "SPOC_OUTPUT="+out,
		"SPOC_DATE=20261206", "OTEL_METRICS_EXPORTER=none", "OTEL_TRACES_EXPORTER=none")
	return cmd
}

// peakFileEnv names the file a job run as a child (jobCommand) writes its
// own peak RSS to as it exits (reportPeak).
const peakFileEnv = "MSPO_SPOC_TEST_PEAK_FILE"

// childPeak is the peak RSS of cmd, a job run as a child (jobCommand),
// as the child read it from its own /proc entry. The rusage of the child
// would not do: Linux carries the parent's peak into a child that execs
// from a vfork, as Go's os/exec starts it, so a test process that had
// grown larger than the job would be measured instead.
func childPeak(t *testing.T, cmd *exec.Cmd) int64 {
	t.Helper()
	for _, kv := range cmd.Env {
		if file, ok := strings.CutPrefix(kv, peakFileEnv+"="); ok {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("the job's peak RSS: %v", err)
			}
			peak, err := strconv.ParseInt(string(data), 10, 64)
			if err != nil || peak <= 0 {
				t.Fatalf("the job's peak RSS: %q", data)
			}
			return peak
		}
	}
	t.Fatal("the job was not run by jobCommand")
	return 0
}

// reportPeak writes the process's peak RSS to the file peakFileEnv
// names, if any: a job run as a child says its own.
func reportPeak() {
	if file := os.Getenv(peakFileEnv); file != "" {
		peak, err := ownPeak()
		if err != nil {
			fmt.Fprintln(os.Stderr, "peak RSS:", err)
			return
		}
		if err := os.WriteFile(file, []byte(strconv.FormatInt(peak, 10)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "peak RSS:", err)
		}
	}
}

// ownPeak is this process's peak RSS (VmHWM, which exec resets: a
// process's own).
func ownPeak() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", rest, err)
			}
			return kib << 10, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
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
	checkPublishedOn(t, out, "20261206", logs)
}

// checkPublishedOn checks that day (YYYYMMDD) was published with every
// plot, and returns its manifest.
func checkPublishedOn(t *testing.T, out, day, logs string) snapshot.Manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, testPrefix, day, snapshot.ManifestName))
	if err != nil {
		t.Fatalf("no manifest of %s (%v):\n%s", day, err, logs)
	}
	m := readManifest(t, data)
	if m.Parquet.Rows != 1050 {
		t.Errorf("%s: published %d rows, want 1050", day, m.Parquet.Rows)
	}
	return m
}

// cgroup is a memory cgroup of a test's own, v2 or v1, removed at its end.
type cgroup struct {
	dir string
	f   *os.File // v2: the cgroup, for CLONE_INTO_CGROUP
}

// place makes cmd start inside the cgroup: through CLONE_INTO_CGROUP on
// v2; on v1, which has no such flag, through a shell that moves itself
// into the cgroup and then becomes cmd.
func (c *cgroup) place(cmd *exec.Cmd) {
	if c.f != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(c.f.Fd())}
		return
	}
	procs := filepath.Join(c.dir, "cgroup.procs")
	cmd.Args = append([]string{"/bin/sh", "-c", `echo $$ >"$0" && exec "$@"`, procs, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = "/bin/sh"
}

// oomKills reads how many processes of the cgroup were killed for memory.
func (c *cgroup) oomKills(t *testing.T) int {
	name, key := "memory.events", "oom_kill " // v2
	if c.f == nil {
		name = "memory.oom_control" // v1
	}
	data, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if n, ok := strings.CutPrefix(strings.TrimSpace(line), key); ok {
			kills, _ := strconv.Atoi(n)
			return kills
		}
	}
	return 0
}

// memoryCgroup makes a cgroup whose memory is limited to limit (v2's
// memory.max, or v1's memory.limit_in_bytes), or skips the test where
// this process may make none.
func memoryCgroup(t *testing.T, limit int64) *cgroup {
	if os.Geteuid() != 0 {
		t.Skip("only root may make a cgroup: the memory limit of a deployment is not tested here")
	}
	const root = "/sys/fs/cgroup"
	name := fmt.Sprintf("mspo-spoc-test-%d", os.Getpid())
	controllers, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil || !strings.Contains(string(controllers), "memory") {
		return memoryCgroupV1(t, filepath.Join(root, "memory", name), limit)
	}
	if err := os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+memory"), 0); err != nil {
		t.Skipf("cannot enable the memory controller below %s: %v", root, err)
	}
	dir := makeCgroupDir(t, filepath.Join(root, name))
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

func memoryCgroupV1(t *testing.T, dir string, limit int64) *cgroup {
	if _, err := os.Stat(filepath.Dir(dir)); err != nil {
		t.Skipf("no memory cgroup, v2 or v1 (%v): the memory limit of a deployment is not tested here", err)
	}
	dir = makeCgroupDir(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0); err != nil {
		t.Fatal(err)
	}
	// Memory plus swap at the same limit, where swap is accounted: no
	// swapping out of trouble.
	os.WriteFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0)
	return &cgroup{dir: dir}
}

// makeCgroupDir makes the cgroup dir, removed when the test ends, or
// skips the test.
func makeCgroupDir(t *testing.T, dir string) string {
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	return dir
}

// TestJobMemoryOfADayThatReplacesEveryPlot: a day 2 whose 306,000 plots
// all have new ids holds a change table of 612,000 rows (every plot
// added, every one of the day before removed) until the run ends; it
// stays within the memory target.
func TestJobMemoryOfADayThatReplacesEveryPlot(t *testing.T) {
	if testing.Short() {
		t.Skip("two runs of 306,000 plots")
	}
	const plots = 306_000
	dir, out := t.TempDir(), t.TempDir()
	for _, day := range []struct {
		date  string
		first int64
	}{{"20261205", 1}, {"20261206", 10_000_001}} {
		body := filepath.Join(dir, day.date+".json")
		f, err := os.Create(body)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		w.WriteString(`{"data":{"results":[`)
		for i := range int64(plots) {
			if i > 0 {
				w.WriteByte(',')
			}
			fmt.Fprintf(w, `{"entity_smallholder_id":%d,"cert_status":"ACTIVE","certified_area":"2.5"}`, day.first+i)
		}
		w.WriteString(`]}}`)
		if err := errors.Join(w.Flush(), f.Close()); err != nil {
			t.Fatal(err)
		}
		cmd := jobCommand(body, out)
		// The records hold three of SPOC's fields, to keep the body about
		// the change table: the first day's column guard, which refuses
		// a body in which no record holds a declared field, is off.
		cmd.Env = append(cmd.Env, "SPOC_DATE="+day.date, "SPOC_COLLAPSE_BELOW_PERCENT=0")
		logs := runChild(t, cmd)
		peak := childPeak(t, cmd)
		t.Logf("%s: peak RSS %d MiB", day.date, peak>>20)
		data, err := os.ReadFile(filepath.Join(out, testPrefix, day.date, snapshot.ManifestName))
		if err != nil {
			t.Fatalf("no manifest of %s (%v):\n%s", day.date, err, logs)
		}
		if m := readManifest(t, data); m.Parquet.Rows != plots {
			t.Errorf("%s: published %d rows, want %d", day.date, m.Parquet.Rows, plots)
		} else if c := m.Changes; day.first > 1 && (c == nil || c.Added != plots || c.Removed != plots) {
			t.Errorf("%s: changes %+v, want %d added and %d removed", day.date, c, plots, plots)
		}
		if peak > memoryTarget {
			t.Errorf("%s: peak RSS %d MiB, want at most %d MiB", day.date, peak>>20, memoryTarget>>20)
		}
	}
}
