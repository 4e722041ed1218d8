package transaction

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/sink/sinktest"
)

// fakeClock is a clock whose Sleep returns at once, having moved the
// time on; onSleep, if set, runs after each move (a holder renewing). A
// Sleep of park, if set, waits for its context instead: it parks the
// lease's renewals, which would otherwise spin the clock on.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	park    time.Duration
	onSleep func(now time.Time)
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.park != 0 && d == c.park {
		<-ctx.Done()
		return ctx.Err()
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	now, hook := c.now, c.onSleep
	c.mu.Unlock()
	if hook != nil {
		hook(now)
	}
	return nil
}

const testDir = "raw/spoc/20261126"

// testLockName is the day lock of the job's first dataset.
const testLockName = ".table.lock"

var testLock = path.Join(testDir, testLockName)

func writeHeld(t *testing.T, store sink.Store, held lockInfo) int64 {
	t.Helper()
	data, _ := json.Marshal(held)
	info, err := store.Create(context.Background(), testLock, "application/json", data)
	if err != nil {
		t.Fatal(err)
	}
	return info.Generation
}

func readHeld(t *testing.T, store sink.Store) (lockInfo, int64) {
	t.Helper()
	l, gen, err := readLock(context.Background(), store, testLock)
	if err != nil {
		t.Fatal(err)
	}
	return l, gen
}

// otherHost is a lock of a run on another machine.
func otherHost(renewed time.Time) lockInfo {
	return lockInfo{Holder: "other/1", Host: "other", BootID: "b", PIDNamespace: "pid:[1]", PID: 1, Nonce: "n0",
		Started: renewed.Add(-time.Minute), Renewed: renewed, Expires: renewed.Add(2 * time.Minute)}
}

// TestWatchDecidesOnTheTakersClock: a run that finds the lock held
// decides from what it sees on its own clock, whatever the holder's
// clock wrote in the lock. A holder whose clock is far behind (its
// "expires" long past) but which renews keeps the run out; a silent
// holder whose clock is far ahead is taken over once the lock has stayed
// unchanged for a whole lease by the taker's clock, and not before.
func TestWatchDecidesOnTheTakersClock(t *testing.T) {
	const lease = 2 * time.Minute
	wall := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		stamped  time.Time // the holder's clock
		renews   bool
		wait     time.Duration
		wantBusy string // "": taken over
	}{
		{name: "a renewing holder whose clock is ten minutes behind", stamped: wall.Add(-10 * time.Minute), renews: true, wantBusy: "renewed while this run watched"},
		{name: "a silent holder whose clock is a year ahead", stamped: wall.AddDate(1, 0, 0)},
		{name: "a silent holder, the run waiting less than a lease", stamped: wall, wait: time.Minute, wantBusy: "this run waited (Options.Wait), less than its lease"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, _ := sink.NewLocal(t.TempDir())
			held := otherHost(tc.stamped)
			gen := writeHeld(t, store, held)
			c := &fakeClock{now: wall, park: lease / 3}
			if tc.renews {
				next := wall.Add(lease / 3)
				c.onSleep = func(now time.Time) {
					if now.Before(next) {
						return
					}
					next = now.Add(lease / 3)
					held.Renewed, held.Expires = held.Renewed.Add(lease/3), held.Expires.Add(lease/3)
					held.Nonce += "'"
					data, _ := json.Marshal(held)
					info, err := store.Replace(context.Background(), testLock, "application/json", data, gen)
					if err != nil {
						t.Error(err)
						return
					}
					gen = info.Generation
				}
			}
			opts := Options{Lease: lease, Wait: tc.wait, clock: c}
			_, day, err := Open(context.Background(), store, testDir, testLockName, opts)
			elapsed := c.Now().Sub(wall)
			if tc.wantBusy != "" {
				if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), tc.wantBusy) {
					t.Fatalf("lock: %v, want ErrBusy saying %q", err, tc.wantBusy)
				}
				if now, _ := readHeld(t, store); now.Holder != "other/1" {
					t.Errorf("the lock is now %s's", now.Holder)
				}
				return
			}
			if err != nil {
				t.Fatalf("lock: %v, want it taken over", err)
			}
			defer day.Close(context.Background())
			if elapsed < lease || elapsed > lease+lease/6 {
				t.Errorf("taken over after %s of the taker's clock, want a lease (%s) and at most one poll more", elapsed, lease)
			}
			if now, _ := readHeld(t, store); now.Nonce != day.lease.info.Nonce {
				t.Errorf("the lock holds nonce %q, the taker wrote %q", now.Nonce, day.lease.info.Nonce)
			}
		})
	}
}

// TestGone is when a lock is taken over at once, without watching.
func TestGone(t *testing.T) {
	me := lockInfo{Host: "h", BootID: "b", PIDNamespace: pidNamespace(), PID: 1}
	if me.PIDNamespace == "" {
		t.Skip("no PID namespace on this system")
	}
	dead := deadPID(t)
	inExecution := func(execution, task string) lockInfo {
		return lockInfo{Holder: "x", Execution: execution, Task: task, Started: time.Now()}
	}
	onHost := func(ns string, pid int) lockInfo {
		return lockInfo{Holder: "x", Host: "h", BootID: "b", PIDNamespace: ns, PID: pid, Started: time.Now()}
	}
	for _, tc := range []struct {
		name       string
		me, held   lockInfo
		wantReason string // "": not gone
	}{
		{"an earlier attempt of this execution's task", inExecution("e1", "0"), inExecution("e1", "0"), "earlier attempt"},
		{"another task of this execution", inExecution("e1", "0"), inExecution("e1", "1"), ""},
		{"another execution", inExecution("e1", "0"), inExecution("e2", "0"), ""},
		{"a dead process in this PID namespace", me, onHost(me.PIDNamespace, dead), "is gone"},
		{"a dead process number in another PID namespace", me, onHost("pid:[4026532999]", dead), ""},
		{"a lock without a PID namespace", me, onHost("", dead), ""},
		{"a live process in this PID namespace", me, onHost(me.PIDNamespace, 1), ""},
		{"an unreadable lock", me, lockInfo{unreadable: "invalid character"}, "not a lock this job wrote"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.me.gone(tc.held)
			if tc.wantReason == "" && got != "" || !strings.Contains(got, tc.wantReason) {
				t.Errorf("gone = %q, want %q", got, tc.wantReason)
			}
		})
	}
}

// TestLeaseWritesResolveLostReplies: a write of the lock that fails
// transiently, or whose retry meets its own earlier try, is resolved by
// reading the lock back, and the run goes on holding it; a write that
// another run's lock answers is a lost lock.
func TestLeaseWritesResolveLostReplies(t *testing.T) {
	unavailable := fmt.Errorf("%w: 503", sink.ErrUnavailable)
	conflict := fmt.Errorf("%w: 412", sink.ErrConflict)
	for _, tc := range []struct {
		name   string
		kind   string // the operation faulted: create (taking the lock) or replace (a renewal)
		faults []sinktest.StoreFault
		usurp  bool // another run replaces the lock before the renewal
		lost   bool
	}{
		{name: "create refused twice", kind: "create", faults: []sinktest.StoreFault{{Err: unavailable}, {Err: unavailable}}},
		{name: "create applied, reply lost", kind: "create", faults: []sinktest.StoreFault{{Err: unavailable, Applied: true}}},
		{name: "create applied, the retry answered 412", kind: "create", faults: []sinktest.StoreFault{{Err: conflict, Applied: true}}},
		{name: "renewal refused", kind: "replace", faults: []sinktest.StoreFault{{Err: unavailable}}},
		{name: "renewal applied, reply lost", kind: "replace", faults: []sinktest.StoreFault{{Err: unavailable, Applied: true}}},
		{name: "renewal applied, the retry answered 412", kind: "replace", faults: []sinktest.StoreFault{{Err: conflict, Applied: true}}},
		{name: "renewal after a takeover", kind: "replace", usurp: true, lost: true},
		{name: "renewal after a takeover, reply lost", kind: "replace", faults: []sinktest.StoreFault{{Err: unavailable}}, usurp: true, lost: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local, _ := sink.NewLocal(t.TempDir())
			store := sinktest.NewFaulty(local)
			ctx := context.Background()
			c := &fakeClock{now: time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)}
			var mu sync.Mutex
			faults := tc.faults
			arm := func() {
				store.Fail(func(op sinktest.Op) sinktest.StoreFault {
					mu.Lock()
					defer mu.Unlock()
					if op.Kind != tc.kind || op.Name != testLock || len(faults) == 0 {
						return sinktest.StoreFault{}
					}
					f := faults[0]
					faults = faults[1:]
					return f
				})
			}
			if tc.kind == "create" {
				arm()
			}
			l := newLease(store, testLock, Options{Lease: time.Minute, clock: c})
			if err := l.writeWithin(ctx); err != nil {
				t.Fatalf("take the lock: %v", err)
			}
			if tc.kind == "replace" {
				if tc.usurp {
					_, gen := readHeld(t, local)
					other, _ := json.Marshal(otherHost(c.Now()))
					if _, err := local.Replace(ctx, testLock, "application/json", other, gen); err != nil {
						t.Fatal(err)
					}
				}
				arm()
				err := l.confirm(ctx)
				if tc.lost {
					if !errors.Is(err, ErrLockLost) || l.isLost() == nil {
						t.Fatalf("renewal: %v, want ErrLockLost", err)
					}
					if now, _ := readHeld(t, local); now.Holder != "other/1" {
						t.Errorf("the lock is now %s's", now.Holder)
					}
					return
				}
				if err != nil {
					t.Fatalf("renewal: %v, want it resolved", err)
				}
			}
			now, gen := readHeld(t, local)
			if now.Nonce != l.info.Nonce || gen != l.generation {
				t.Fatalf("the lock holds nonce %q at generation %d; the run wrote %q and holds generation %d", now.Nonce, gen, l.info.Nonce, l.generation)
			}
			if len(faults) != 0 {
				t.Errorf("%d faults were not met", len(faults))
			}
			// The next renewal works: the run did not lose its lock.
			store.Fail(nil)
			if err := l.confirm(ctx); err != nil {
				t.Fatalf("the renewal after: %v", err)
			}
		})
	}
}

// A lock that cannot be written for a whole lease (by the holder's own
// monotonic clock) is lost; until then each renewal is tried again.
func TestLeaseLostAfterALeaseOfFailedRenewals(t *testing.T) {
	local, _ := sink.NewLocal(t.TempDir())
	store := sinktest.NewFaulty(local)
	start := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	c := &fakeClock{now: start}
	l := newLease(store, testLock, Options{Lease: time.Minute, clock: c})
	ctx := context.Background()
	if err := l.writeWithin(ctx); err != nil {
		t.Fatal(err)
	}
	tries := 0
	store.Fail(func(op sinktest.Op) sinktest.StoreFault {
		if op.Kind == "replace" {
			tries++
			return sinktest.StoreFault{Err: fmt.Errorf("%w: 503", sink.ErrUnavailable)}
		}
		return sinktest.StoreFault{}
	})
	err := l.confirm(ctx)
	if !errors.Is(err, ErrLockLost) || !strings.Contains(err.Error(), "could not be renewed") {
		t.Fatalf("confirm: %v, want ErrLockLost", err)
	}
	if elapsed := c.Now().Sub(start); elapsed < time.Minute || tries < 3 {
		t.Errorf("lost after %s and %d tries, want a whole lease of retries", elapsed, tries)
	}
	// Lost: release touches nothing, the lock stays for whoever takes it.
	l.release(ctx)
	if _, err := local.Stat(ctx, testLock); err != nil {
		t.Errorf("a run that lost its lock deleted it: %v", err)
	}
}

// deadPID is the number of a process that has exited.
func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run true:", err)
	}
	return cmd.Process.Pid
}

// TestZombieProcessIsGone: a holder killed but not yet reaped by its
// parent is a zombie, which kill(pid, 0) still finds; it runs no more
// code, so its lock is taken over at once.
func TestZombieProcessIsGone(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("cannot start sleep:", err)
	}
	pid := cmd.Process.Pid
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Reaped only at the end: until then the child is a zombie.
	t.Cleanup(func() { cmd.Wait() })
	stat := fmt.Sprintf("/proc/%d/stat", pid)
	for {
		b, err := os.ReadFile(stat)
		if err != nil {
			t.Skip("no /proc on this system:", err)
		}
		if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && b[i+2] == 'Z' {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if processExists(pid) {
		t.Errorf("process %d, a zombie, counts as running", pid)
	}
	if !processExists(os.Getpid()) {
		t.Errorf("this process counts as gone")
	}
}
