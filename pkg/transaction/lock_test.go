package transaction

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// stampedStore writes the lock with the renewal stamps of held, as a
// holder whose clock says so would, whatever the lease's clock says.
type stampedStore struct {
	sink.Store
	held lockInfo
}

func (s stampedStore) stamp(data []byte) []byte {
	var l lockInfo
	if json.Unmarshal(data, &l) != nil {
		return data
	}
	l.Renewed, l.Expires = s.held.Renewed, s.held.Expires
	data, _ = json.Marshal(l)
	return data
}

func (s stampedStore) Create(ctx context.Context, name, contentType string, data []byte) (sink.ObjectInfo, error) {
	return s.Store.Create(ctx, name, contentType, s.stamp(data))
}

func (s stampedStore) Replace(ctx context.Context, name, contentType string, data []byte, generation int64) (sink.ObjectInfo, error) {
	return s.Store.Replace(ctx, name, contentType, s.stamp(data), generation)
}

// holdLock makes held the holder of the test's lock, renewing it every
// 50 ms as a live holder does (with held's renewal stamps), until the
// returned stop is called or the test ends.
func holdLock(t *testing.T, store sink.Store, held lockInfo) (stop func()) {
	t.Helper()
	l := newLease(stampedStore{store, held}, testLock, Options{Lease: 150 * time.Millisecond})
	l.info = held
	if err := l.writeWithin(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.done = make(chan struct{})
	go l.renew(ctx, func(error) {})
	stop = func() { cancel(); <-l.done }
	t.Cleanup(cancel)
	return stop
}

// pidAlive is the number of a live process, stopped at the end of the test.
func pidAlive(t *testing.T) int {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("cannot start sleep:", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// commitOnce opens the test's day, commits a Parquet object and a
// manifest, and closes the day.
func commitOnce(store sink.Store, opts Options) error {
	ctx, day, err := Open(context.Background(), store, testDir, testLockName, opts)
	if err != nil {
		return err
	}
	defer day.Close(ctx)
	tx := day.Begin()
	defer tx.Abort()
	obj, err := tx.Stage(ctx, "table.parquet", "application/octet-stream")
	if err != nil {
		return err
	}
	if _, err := obj.Write([]byte("PAR1 a snapshot PAR1")); err != nil {
		return err
	}
	return tx.Commit(ctx, manifestName, func(at map[string]sink.ObjectInfo) ([]byte, error) {
		return json.Marshal(at)
	})
}

// TestDayLock covers who may take a day's lock from whom: a holder that
// renews its lock keeps a second run out, whatever its clock says; a
// holder known to be gone (an earlier attempt of the same execution's
// task, a dead process of this host in this PID namespace) is taken over
// at once; any other is taken over once its lock stays unchanged for a
// whole lease. The run that takes the lock removes what a killed run left
// in the day's folder.
func TestDayLock(t *testing.T) {
	host, _ := os.Hostname()
	boot, ns := bootID(), pidNamespace()
	if boot == "" || ns == "" {
		t.Skip("no boot id or PID namespace on this system")
	}
	now := time.Now().UTC()
	live := lockInfo{Holder: "other/1", Host: "other", PID: 1, Nonce: "n", Started: now.Add(-time.Minute), Renewed: now.Add(-10 * time.Second), Expires: now.Add(110 * time.Second)}
	with := func(f func(*lockInfo)) lockInfo { l := live; f(&l); return l }
	const (
		atOnce = "at once"
		stale  = "not renewed for"
	)
	for _, tc := range []struct {
		name            string
		held            any // the lock's content: a lockInfo, or bytes as a string
		renewed         bool
		execution, task string
		busy            bool
		why             string // the reason the takeover logs
		local           bool   // only meaningful on a local store
	}{
		{name: "a live holder elsewhere keeps the run out", held: live, renewed: true, busy: true},
		{name: "a live holder whose clock is far behind keeps the run out", held: with(func(l *lockInfo) { l.Renewed, l.Expires = now.Add(-time.Hour), now.Add(-58*time.Minute) }), renewed: true, busy: true},
		{name: "a lease not renewed in time is taken over", held: live, why: stale},
		{name: "a silent holder whose clock is far ahead is taken over", held: with(func(l *lockInfo) { l.Expires = now.AddDate(1, 0, 0) }), why: stale},
		{name: "a lock of the same execution's task is taken over at once", held: with(func(l *lockInfo) { l.Execution, l.Task = "spoc-abc12", "0" }), execution: "spoc-abc12", task: "0", why: "earlier attempt of this execution's task"},
		{name: "another task's live lock keeps the run out", held: with(func(l *lockInfo) { l.Execution, l.Task = "spoc-abc12", "1" }), renewed: true, execution: "spoc-abc12", task: "0", busy: true},
		{name: "another execution's live lock keeps the run out", held: with(func(l *lockInfo) { l.Execution = "spoc-abc12" }), renewed: true, execution: "spoc-xyz34", busy: true},
		{name: "a dead process of this host is taken over at once", held: with(func(l *lockInfo) { l.Host, l.BootID, l.PIDNamespace, l.PID = host, boot, ns, deadPID(t) }), local: true, why: "is gone"},
		{name: "a live process of this host keeps the run out", held: with(func(l *lockInfo) { l.Host, l.BootID, l.PIDNamespace, l.PID = host, boot, ns, pidAlive(t) }), renewed: true, local: true, busy: true},
		{name: "a process number of another boot proves nothing", held: with(func(l *lockInfo) { l.Host, l.BootID, l.PIDNamespace, l.PID = host, "another-boot", ns, deadPID(t) }), renewed: true, local: true, busy: true},
		{name: "a process number of another boot is not taken over at once", held: with(func(l *lockInfo) { l.Host, l.BootID, l.PIDNamespace, l.PID = host, "another-boot", ns, deadPID(t) }), local: true, why: stale},
		{name: "a process number of another PID namespace proves nothing", held: with(func(l *lockInfo) {
			l.Host, l.BootID, l.PIDNamespace, l.PID = host, boot, "pid:[4026532999]", deadPID(t)
		}), local: true, why: stale},
		{name: "an unreadable lock is taken over at once", held: "not json", why: "not a lock this job wrote"},
	} {
		for _, backend := range []string{"local", "gcs"} {
			if tc.local && backend != "local" {
				continue
			}
			t.Run(backend+"/"+tc.name, func(t *testing.T) {
				store, list := localStore(t)
				if backend == "gcs" {
					store, list = gcsStore(t)
				}
				ctx := context.Background()
				stopRenewing := func() {}
				if tc.renewed {
					stopRenewing = holdLock(t, store, tc.held.(lockInfo))
				} else {
					data, _ := json.Marshal(tc.held)
					if s, ok := tc.held.(string); ok {
						data = []byte(s)
					}
					if _, err := store.Create(ctx, testLock, "application/json", data); err != nil {
						t.Fatal(err)
					}
				}
				// What a killed run leaves: its staged archive, committed
				// under a hidden name (and locally its partial files).
				staged := path.Join(testDir, ".table.json.gz.tmp-0123456789abcdef")
				if _, err := store.Create(ctx, staged, "application/gzip", []byte("partial")); err != nil {
					t.Fatal(err)
				}
				if backend == "local" {
					obj, _ := store.NewObject(ctx, path.Join(testDir, "table.parquet"), "application/octet-stream")
					obj.Write([]byte("PAR1 partial")) // never committed nor aborted
				}
				before := list()
				var logs bytes.Buffer
				// A short lease: a silent lock is stale after 600 ms.
				opts := Options{Lease: 600 * time.Millisecond, Execution: tc.execution, Task: tc.task, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
				err := commitOnce(store, opts)
				stopRenewing() // before listing: a renewal's partial file is no leftover
				if tc.busy {
					if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "other/1") {
						t.Fatalf("open: %v, want ErrBusy naming the holder", err)
					}
					if got := list(); !slices.Equal(got, before) {
						t.Errorf("a refused run changed the day's folder: %v, was %v", got, before)
					}
					return
				}
				if err != nil {
					t.Fatalf("commit: %v, want the lock taken over", err)
				}
				took := regexp.MustCompile(`taking over the day's lock: ([^"]*)`).FindStringSubmatch(logs.String())
				switch {
				case took == nil:
					t.Errorf("no takeover logged:\n%s", logs.String())
				case !strings.Contains(took[1], tc.why):
					t.Errorf("taken over because %q, want %q", took[1], tc.why)
				case tc.why != stale && strings.Contains(logs.String(), "watching whether its holder renews it"):
					t.Errorf("a lock whose holder is known to be gone was watched first:\n%s", logs.String())
				}
				want := []string{path.Join(testDir, manifestName), path.Join(testDir, "table.parquet")}
				if got := list(); !slices.Equal(got, want) {
					t.Errorf("day folder holds %v, want %v: the lock released and the leftovers removed", got, want)
				}
			})
		}
	}
}

// The run that takes the lock removes what a killed writer left in the
// day's folder, but not the temporary file another run is writing the
// lock through at that moment (on local disk a lock is written to a
// hidden temporary file and linked into place): removing it made that
// run fail with "no such file or directory" instead of ErrBusy.
func TestOpenSparesAnotherRunsLockWrite(t *testing.T) {
	dir := t.TempDir()
	store, err := sink.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, filepath.FromSlash(testDir))
	if err := os.MkdirAll(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	lockWrite := filepath.Join(folder, "."+testLockName+".tmp-123456")
	killedWrite := filepath.Join(folder, ".table.parquet.tmp-654321")
	for _, f := range []string{lockWrite, killedWrite} {
		if err := os.WriteFile(f, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, day, err := Open(context.Background(), store, testDir, testLockName, Options{Lease: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	day.Close(ctx)
	if _, err := os.Stat(lockWrite); err != nil {
		t.Errorf("another run's write of the lock was removed: %v", err)
	}
	if _, err := os.Stat(killedWrite); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a killed writer's partial file is still there: %v", err)
	}
}
