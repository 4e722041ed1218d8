package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/sink/sinktest"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

const lockDir = "raw/spoc/20261126"

// lockHeld is a lock object as another run would have written it.
type lockHeld struct {
	Holder       string    `json:"holder"`
	Host         string    `json:"host,omitempty"`
	BootID       string    `json:"boot_id,omitempty"`
	PIDNamespace string    `json:"pid_namespace,omitempty"`
	PID          int       `json:"pid,omitempty"`
	Execution    string    `json:"execution,omitempty"`
	Task         string    `json:"task,omitempty"`
	Nonce        string    `json:"nonce,omitempty"`
	Started      time.Time `json:"started"`
	Renewed      time.Time `json:"renewed"`
	Expires      time.Time `json:"expires"`
	// Publish is a journal, as its run wrote it.
	Publish json.RawMessage `json:"publish,omitempty"`
}

// syncBuffer is a log destination for a run and its lease's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// renewLock rewrites the lock at name every 50 ms, as a live holder
// does, until the returned stop is called or the test ends.
func renewLock(t *testing.T, store sink.Store, name string, held lockHeld) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			time.Sleep(50 * time.Millisecond)
			r, err := store.NewReaderAt(ctx, name)
			if err != nil {
				continue
			}
			gen := r.Generation()
			r.Close()
			held.Nonce = fmt.Sprint("renewal-", i)
			data, _ := json.Marshal(held)
			store.Replace(ctx, name, "application/json", data, gen)
		}
	}()
	return stop
}

func thisHost(t *testing.T) (host, boot string) {
	host, _ = os.Hostname()
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skip("no boot id on this system")
	}
	return host, strings.TrimSpace(string(b))
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
	opts.Lock.Lease = lease
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
					second.Lock.Lease = lease
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

// TestStalledHolderIsSettledByTheTaker: run A stalls in the middle of
// its publish (a partitioned host: the write hangs, its renewals fail),
// once halfway through moving the day's objects into place and once
// after its manifest committed. Run B takes the lock over when it has
// stayed unchanged for a lease, finds A's publish journal in it and
// settles it (undoing the half-done swap, or keeping the committed
// day), then publishes. When A wakes, the partition healed, its lock is
// lost and it touches nothing: the day stays as B left it.
func TestStalledHolderIsSettledByTheTaker(t *testing.T) {
	for _, tc := range []struct {
		name      string
		stallAt   func(sinktest.Op) bool
		committed bool
	}{
		{"halfway through the swap", func(op sinktest.Op) bool {
			return op.Kind == "copy" && path.Base(op.Name) == snapshot.ArchiveName
		}, false},
		{"after the manifest", func(op sinktest.Op) bool {
			return op.Kind == "delete-generation" && strings.Contains(op.Name, ".backup-")
		}, true},
	} {
		for _, backend := range []string{"local", "gcs"} {
			t.Run(backend+"/"+tc.name, func(t *testing.T) {
				base, list := storeFor(t, backend)
				publishDay(t, base, day, generated(t, 300, 1))
				wakeA := runStalled(t, base, tc.stallAt, func(a sink.Store) snapshot.Options {
					optsA := rerunOptions(t, a, generated(t, 300, 2))
					optsA.Lock.Lease = 600 * time.Millisecond
					return optsA
				})

				optsB := rerunOptions(t, base, generated(t, 300, 3))
				optsB.Lock.Lease = 600 * time.Millisecond
				var logs syncBuffer
				optsB.Telemetry.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				mB, err := snapshot.Run(context.Background(), optsB)
				if err != nil {
					t.Fatalf("run B: %v\n%s", err, logs.String())
				}
				if !strings.Contains(logs.String(), "settled the publish the earlier holder") ||
					!strings.Contains(logs.String(), fmt.Sprintf("committed=%v", tc.committed)) {
					t.Errorf("run B's logs do not say it settled A's publish (committed=%v):\n%s", tc.committed, logs.String())
				}
				checkPublished(t, base, rerunDir)
				afterB := dayContents(t, base, list)

				errA := wakeA()
				if !tc.committed && !errors.Is(errA, snapshot.ErrLockLost) {
					t.Errorf("run A: %v, want ErrLockLost", errA)
				}
				if d := sinktest.DiffContents(afterB, dayContents(t, base, list)); d != "" {
					t.Errorf("run A changed the day after it lost its lock: %s", d)
				}
				if m := readManifest(t, base, path.Join(rerunDir, snapshot.ManifestName)); m.Source.SHA256 != mB.Source.SHA256 {
					t.Errorf("the day's manifest is not run B's")
				}
				if names := list(); slices.Contains(names, path.Join(lockDir, snapshot.LockName)) {
					t.Errorf("a lock is left: %v", names)
				}
			})
		}
	}
}

// runStalled starts a run with the options opts gives it for its store,
// which stalls it at the first operation at picks, as a holder cut off
// from the store: from then on its writes fail as unanswered. It returns
// once the run has stalled. wake heals the partition (the stalled
// operation fails as timed out, the writes after it go through) and
// returns the run's error; the test's end wakes a run not woken.
func runStalled(t *testing.T, base sink.Store, at func(sinktest.Op) bool, opts func(sink.Store) snapshot.Options) (wake func() error) {
	t.Helper()
	a := sinktest.NewFaulty(base)
	stalled, healed := make(chan struct{}), make(chan struct{})
	var partitioned atomic.Bool
	a.Fail(func(op sinktest.Op) sinktest.StoreFault {
		if partitioned.Load() {
			if op.Writes() {
				return sinktest.StoreFault{Err: fmt.Errorf("%w: partitioned", sink.ErrUnavailable)}
			}
			return sinktest.StoreFault{}
		}
		if at(op) {
			partitioned.Store(true)
			close(stalled)
			<-healed
			partitioned.Store(false)
			return sinktest.StoreFault{Err: fmt.Errorf("%w: timed out", sink.ErrUnavailable)}
		}
		return sinktest.StoreFault{}
	})
	done := make(chan error, 1)
	go func() { _, err := snapshot.Run(context.Background(), opts(a)); done <- err }()
	var once sync.Once
	var err error
	wake = func() error {
		once.Do(func() { close(healed); err = <-done })
		return err
	}
	t.Cleanup(func() { wake() })
	select {
	case <-stalled:
	case err := <-done:
		t.Fatalf("the run ended before it stalled: %v", err)
	}
	return wake
}

// TestLeaseSurvivesOneLostReplyOnGCS: one 503 on the lock's create or
// on one of its renewals, before or after GCS carried it out, does not
// fail a healthy run: the write is retried, or read back and adopted.
func TestLeaseSurvivesOneLostReplyOnGCS(t *testing.T) {
	for _, tc := range []struct {
		name    string
		nth     int // the lock write faulted: 1 is the create
		applied bool
	}{
		{"create refused", 1, false},
		{"create applied, reply lost", 1, true},
		{"renewal refused", 2, false},
		{"renewal applied, reply lost", 2, true},
		{"a later renewal applied, reply lost", 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := sinktest.NewEmulator(t, "spoc-test")
			h := sinktest.GCSOn(t, e, "spoc-test", "root")
			var mu sync.Mutex
			writes, hit := 0, false
			e.Fail(func(r sinktest.Request) sinktest.Fault {
				mu.Lock()
				defer mu.Unlock()
				if !r.Write || path.Base(r.Object) != snapshot.LockName || r.Method == http.MethodDelete {
					return sinktest.Fault{}
				}
				if writes++; writes == tc.nth {
					hit = true
					return sinktest.Fault{Status: http.StatusServiceUnavailable, Applied: tc.applied}
				}
				return sinktest.Fault{}
			})
			// A lease of 900 ms is renewed every 300 ms in a run of 2 s.
			opts := options(t, slowBody(t, 2*time.Second), h.Store)
			opts.Lock.Lease = 900 * time.Millisecond
			_, err := snapshot.Run(context.Background(), opts)
			e.Fail(nil)
			if err != nil {
				t.Fatalf("run: %v, want the lost reply resolved", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !hit {
				t.Fatalf("the run wrote its lock %d times, the fault was at write %d", writes, tc.nth)
			}
		})
	}
}
