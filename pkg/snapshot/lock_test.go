package snapshot_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

const lockDir = "raw/spoc/20261126"

// lockHeld is a lock object as another run would have written it.
type lockHeld struct {
	Holder    string    `json:"holder"`
	Host      string    `json:"host,omitempty"`
	BootID    string    `json:"boot_id,omitempty"`
	PID       int       `json:"pid,omitempty"`
	Execution string    `json:"execution,omitempty"`
	Started   time.Time `json:"started"`
	Renewed   time.Time `json:"renewed"`
	Expires   time.Time `json:"expires"`
}

func thisHost(t *testing.T) (host, boot string) {
	host, _ = os.Hostname()
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skip("no boot id on this system")
	}
	return host, strings.TrimSpace(string(b))
}

// pidGone is the number of a process that has exited.
func pidGone(t *testing.T) int {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
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

func storeFor(t *testing.T, backend string) (sink.Store, func() []string) {
	if backend == "gcs" {
		store := fakeGCS(t)
		return store, func() []string {
			names, err := store.List(context.Background(), lockDir+"/")
			if err != nil {
				t.Fatal(err)
			}
			return names
		}
	}
	out := t.TempDir()
	store, _ := sink.NewLocal(out)
	return store, func() []string {
		var names []string
		for _, f := range files(t, filepath.Join(out, lockDir)) {
			names = append(names, lockDir+"/"+f)
		}
		return names
	}
}

// TestDayLock covers who may take a day's lock from whom: a live holder
// keeps a second run out; a holder known to be gone (an earlier attempt
// of the same execution, a dead process of this host) or silent past its
// lease does not. The run that takes the lock removes what a killed run
// left in the day's folder.
func TestDayLock(t *testing.T) {
	host, boot := thisHost(t)
	now := time.Now().UTC()
	live := lockHeld{Holder: "other/1", Host: "other", PID: 1, Started: now.Add(-time.Minute), Renewed: now.Add(-10 * time.Second), Expires: now.Add(110 * time.Second)}
	with := func(f func(*lockHeld)) lockHeld { l := live; f(&l); return l }
	for _, tc := range []struct {
		name      string
		held      any // the lock's content
		execution string
		busy      bool
		local     bool // only meaningful on a local store
	}{
		{name: "a live holder elsewhere keeps the run out", held: live, busy: true},
		{name: "a lease not renewed in time is taken over", held: with(func(l *lockHeld) { l.Renewed, l.Expires = now.Add(-3*time.Minute), now.Add(-time.Minute) })},
		{name: "a lock of the same execution is taken over at once", held: with(func(l *lockHeld) { l.Execution = "spoc-abc12" }), execution: "spoc-abc12"},
		{name: "another execution's live lock keeps the run out", held: with(func(l *lockHeld) { l.Execution = "spoc-abc12" }), execution: "spoc-xyz34", busy: true},
		{name: "a dead process of this host is taken over at once", held: with(func(l *lockHeld) { l.Host, l.BootID, l.PID = host, boot, pidGone(t) }), local: true},
		{name: "a live process of this host keeps the run out", held: with(func(l *lockHeld) { l.Host, l.BootID, l.PID = host, boot, pidAlive(t) }), local: true, busy: true},
		{name: "a process number of another boot proves nothing", held: with(func(l *lockHeld) { l.Host, l.BootID, l.PID = host, "another-boot", pidGone(t) }), local: true, busy: true},
		{name: "an unreadable lock is taken over", held: "not json"},
	} {
		for _, backend := range []string{"local", "gcs"} {
			if tc.local && backend != "local" {
				continue
			}
			t.Run(backend+"/"+tc.name, func(t *testing.T) {
				store, list := storeFor(t, backend)
				ctx := context.Background()
				data, _ := json.Marshal(tc.held)
				if s, ok := tc.held.(string); ok {
					data = []byte(s)
				}
				if _, err := store.Create(ctx, path.Join(lockDir, snapshot.LockName), "application/json", data); err != nil {
					t.Fatal(err)
				}
				// What a killed run leaves: its staged archive, committed
				// under a hidden name (and locally its partial files).
				staged := path.Join(lockDir, "."+snapshot.ArchiveName+".tmp-0123456789abcdef")
				if _, err := store.Create(ctx, staged, "application/gzip", []byte("partial")); err != nil {
					t.Fatal(err)
				}
				if backend == "local" {
					obj, _ := store.NewObject(ctx, path.Join(lockDir, snapshot.ParquetName), "application/octet-stream")
					obj.Write([]byte("PAR1 partial")) // never committed nor aborted
				}
				before := list()
				opts := options(t, serve(t, generated(t, 50, 1)), store)
				opts.Execution = tc.execution
				_, err := snapshot.Run(ctx, opts)
				if tc.busy {
					if !errors.Is(err, snapshot.ErrBusy) || !strings.Contains(err.Error(), "other/1") {
						t.Fatalf("run: %v, want ErrBusy naming the holder", err)
					}
					if got := list(); !slices.Equal(got, before) {
						t.Errorf("a refused run changed the day's folder: %v, was %v", got, before)
					}
					return
				}
				if err != nil {
					t.Fatalf("run: %v, want the lock taken over", err)
				}
				want := []string{path.Join(lockDir, snapshot.ManifestName), path.Join(lockDir, snapshot.ParquetName)}
				if got := list(); !slices.Equal(got, want) {
					t.Errorf("day folder holds %v, want %v: the lock released and the leftovers removed", got, want)
				}
			})
		}
	}
}

// slowBody serves a body slowly enough for a run to last about d.
func slowBody(t *testing.T, d time.Duration) string {
	body := generated(t, 2000, 7)
	up := spoctest.NewServer(spoctest.WithBody(body), spoctest.WithThrottle(int64(float64(len(body))/d.Seconds())))
	t.Cleanup(up.Close)
	return up.URL
}

// startRun starts a run on backend that holds the day's lock with lease
// for about d, and returns its store, a lister of the day's folder, and
// where the run's error arrives.
func startRun(t *testing.T, backend string, lease, d time.Duration) (sink.Store, func() []string, <-chan error) {
	store, list := storeFor(t, backend)
	opts := options(t, slowBody(t, d), store)
	opts.LockLease = lease
	done := make(chan error, 1)
	go func() { _, err := snapshot.Run(context.Background(), opts); done <- err }()
	return store, list, done
}

// The holder renews its lease while it runs, a second run meanwhile is
// kept out, and the lock goes when the run ends.
func TestLockIsRenewedWhileTheRunLasts(t *testing.T) {
	for _, backend := range []string{"local", "gcs"} {
		t.Run(backend, func(t *testing.T) {
			// A lease of 900 ms is renewed every 300 ms: several renewals
			// in a run of 2.5 s, with room for a slow, shared machine.
			lease := 900 * time.Millisecond
			store, _, done := startRun(t, backend, lease, 2500*time.Millisecond)
			ctx := context.Background()

			name := path.Join(lockDir, snapshot.LockName)
			renewals := map[string]bool{}
			var busy error
			for deadline := time.Now().Add(10 * time.Second); len(done) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				r, err := store.NewReader(ctx, name)
				if err != nil {
					continue
				}
				var l lockHeld
				json.NewDecoder(r).Decode(&l)
				r.Close()
				renewals[l.Renewed.String()] = true
				if busy == nil && len(renewals) >= 2 {
					second := options(t, slowBody(t, time.Second), store)
					second.LockLease = lease
					_, busy = snapshot.Run(ctx, second)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if len(renewals) < 3 {
				t.Errorf("the lock was seen with %d renewal times over the run, want several", len(renewals))
			}
			if !errors.Is(busy, snapshot.ErrBusy) {
				t.Errorf("a second run during the first: %v, want ErrBusy", busy)
			}
			if _, err := store.NewReader(ctx, name); err == nil {
				t.Error("the lock is still there after the run")
			}
		})
	}
}

// A run whose lock is taken over (its renewals stalled too long, as on a
// partitioned host) stops and publishes nothing.
func TestLockLostStopsTheRun(t *testing.T) {
	for _, backend := range []string{"local", "gcs"} {
		t.Run(backend, func(t *testing.T) {
			store, list, done := startRun(t, backend, 600*time.Millisecond, 3*time.Second)
			ctx := context.Background()

			name := path.Join(lockDir, snapshot.LockName)
			time.Sleep(300 * time.Millisecond)
			r, err := store.NewReaderAt(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			gen := r.Generation()
			r.Close()
			now := time.Now().UTC()
			data, _ := json.Marshal(lockHeld{Holder: "usurper/2", Started: now, Renewed: now, Expires: now.Add(time.Hour)})
			if _, err := store.Replace(ctx, name, "application/json", data, gen); err != nil {
				t.Fatal(err)
			}
			err = <-done
			if !errors.Is(err, snapshot.ErrLockLost) {
				t.Fatalf("run: %v, want ErrLockLost", err)
			}
			got := list()
			if !slices.Equal(got, []string{name}) {
				t.Errorf("day folder holds %v, want only the usurper's lock", got)
			}
			r2, _ := store.NewReader(ctx, name)
			b, _ := io.ReadAll(r2)
			r2.Close()
			if !strings.Contains(string(b), "usurper/2") {
				t.Errorf("the losing run removed or changed the new holder's lock: %s", b)
			}
		})
	}
}
