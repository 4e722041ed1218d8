package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// LockName is the object that marks a day's folder as being published. It
// keeps two runs of one day (a manual run during the scheduled one, two
// backfills) from each publishing part of a snapshot: GCS preconditions
// guard each object, not the set of them.
//
// The lock is a lease: its holder renews it while it runs (on GCS with a
// generation precondition, so a holder that lost it finds out), and a
// lock not renewed for Options.LockLease is stale and taken over. A lock
// left by a run that is known to be gone is taken over at once: one held
// under the same Options.Execution (a retry of the same Cloud Run
// execution starts only after the earlier attempt ended), or one held by
// a process that no longer exists on this host.
const LockName = ".spoc-list-public.lock"

// DefaultLockLease is how long a lock holds without renewal unless
// Options.LockLease says otherwise.
const DefaultLockLease = 2 * time.Minute

// Errors of the day's lock.
var (
	// ErrBusy means another run holds the day's lock: nothing was fetched
	// or published.
	ErrBusy = errors.New("another run is publishing this day")
	// ErrLockLost means the run could not renew its lock before the lease
	// ran out, or found it taken over: it stops and publishes nothing
	// more.
	ErrLockLost = errors.New("the day's lock was lost")
)

// lockInfo is the content of the lock object.
type lockInfo struct {
	Holder    string    `json:"holder"` // host/pid, for people
	Host      string    `json:"host,omitempty"`
	BootID    string    `json:"boot_id,omitempty"`
	PID       int       `json:"pid,omitempty"`
	Execution string    `json:"execution,omitempty"`
	Started   time.Time `json:"started"`
	Renewed   time.Time `json:"renewed"`
	Expires   time.Time `json:"expires"`
}

// lease is a held lock.
type lease struct {
	store      sink.Store
	name       string
	info       lockInfo
	lease      time.Duration
	generation int64
	log        *slog.Logger

	// done is closed when renew returns; release waits for it, so that
	// generation and renewed are never used by two goroutines at once.
	done    chan struct{}
	renewed time.Time
}

// lockDay takes the day's lock, removes what a killed run of the day
// left behind, and keeps renewing the lock until release. The returned
// context is ctx, cancelled with ErrLockLost as its cause if the lock is
// lost.
func lockDay(ctx context.Context, opts Options, dir string, log *slog.Logger) (context.Context, func(), error) {
	store := opts.Store
	name := path.Join(dir, LockName)
	leaseTime := opts.LockLease
	if leaseTime <= 0 {
		leaseTime = DefaultLockLease
	}
	host, _ := os.Hostname()
	me := lockInfo{
		Holder:    fmt.Sprintf("%s/%d", host, os.Getpid()),
		Host:      host,
		BootID:    bootID(),
		PID:       os.Getpid(),
		Execution: opts.Execution,
		Started:   time.Now().UTC(),
	}
	l := &lease{store: store, name: name, info: me, lease: leaseTime, log: log}
	taken := false
	for range 3 {
		now := time.Now().UTC()
		l.info.Renewed, l.info.Expires = now, now.Add(leaseTime)
		data, _ := json.Marshal(l.info)
		created, err := store.Create(ctx, name, "application/json", data)
		if err == nil {
			l.generation, taken = created.Generation, true
			break
		}
		if !errors.Is(err, sink.ErrConflict) {
			return nil, nil, fmt.Errorf("lock %s: %w", store.URL(name), err)
		}
		held, generation, err := readLock(ctx, store, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // released in between
		}
		if err != nil {
			return nil, nil, fmt.Errorf("lock %s: %w", store.URL(name), err)
		}
		why := me.canTakeOver(held, now)
		if why == "" {
			return nil, nil, fmt.Errorf("%w: %s is held by %s", ErrBusy, store.URL(name), held.describe())
		}
		log.WarnContext(ctx, "taking over the day's lock: "+why, "url", store.URL(name), "holder", held.Holder,
			"execution", held.Execution, "renewed", held.Renewed, "expires", held.Expires)
		replaced, err := store.Replace(ctx, name, "application/json", data, generation)
		if errors.Is(err, sink.ErrConflict) {
			continue // renewed or taken by someone else in between: look again
		}
		if err != nil {
			return nil, nil, fmt.Errorf("lock %s: %w", store.URL(name), err)
		}
		l.generation, taken = replaced.Generation, true
		break
	}
	if !taken {
		return nil, nil, fmt.Errorf("%w: %s changed hands during every look", ErrBusy, store.URL(name))
	}
	l.renewed = l.info.Renewed
	if err := removeLeftovers(ctx, store, dir, log); err != nil {
		l.release(ctx)
		return nil, nil, err
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	renewCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.done = make(chan struct{})
	go l.renew(renewCtx, cancel)
	return runCtx, func() {
		stop()
		<-l.done
		cancel(nil)
		l.release(ctx)
	}, nil
}

// canTakeOver says why the lock held can be taken over by me, or "" if
// its holder may still be running.
func (me lockInfo) canTakeOver(held lockInfo, now time.Time) string {
	switch {
	case !now.Before(held.Expires):
		return "not renewed since " + held.Renewed.Format(time.RFC3339) + ", expired"
	case me.Execution != "" && held.Execution == me.Execution:
		return "left by an earlier attempt of this execution (" + me.Execution + ")"
	case me.Execution == "" && held.Execution == "" && held.Host == me.Host && held.BootID == me.BootID &&
		held.PID > 0 && !processExists(held.PID):
		return fmt.Sprintf("its holder, process %d of this host, is gone", held.PID)
	}
	return ""
}

func (l lockInfo) describe() string {
	s := fmt.Sprintf("%s since %s, until %s unless renewed", l.Holder, l.Started.Format(time.RFC3339), l.Expires.Format(time.RFC3339))
	if l.Execution != "" {
		s += " (execution " + l.Execution + ")"
	}
	return s
}

// renew rewrites the lock every third of the lease until ctx is done. If
// the lock was taken over, or could not be renewed before the lease ran
// out, it cancels the run with ErrLockLost.
func (l *lease) renew(ctx context.Context, cancelRun context.CancelCauseFunc) {
	defer close(l.done)
	t := time.NewTicker(l.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now().UTC()
		l.info.Renewed, l.info.Expires = now, now.Add(l.lease)
		data, _ := json.Marshal(l.info)
		wctx, cancel := context.WithTimeout(ctx, l.lease/3)
		info, err := l.store.Replace(wctx, l.name, "application/json", data, l.generation)
		if err == nil {
			l.generation, l.renewed = info.Generation, now
		}
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return
		case errors.Is(err, sink.ErrConflict):
			cancelRun(fmt.Errorf("%w: %s was taken over by another run", ErrLockLost, l.store.URL(l.name)))
			return
		case time.Since(l.renewed) >= l.lease:
			cancelRun(fmt.Errorf("%w: %s could not be renewed for %s: %v", ErrLockLost, l.store.URL(l.name), l.lease, err))
			return
		default:
			l.log.WarnContext(ctx, "could not renew the day's lock, trying again", "url", l.store.URL(l.name), "error", err.Error())
		}
	}
}

// release deletes the lock if it is still this run's.
func (l *lease) release(ctx context.Context) {
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := l.store.DeleteGeneration(cleanup, l.name, l.generation); err != nil {
		l.log.ErrorContext(ctx, "could not release the day's lock", "url", l.store.URL(l.name), "error", err.Error())
	}
}

// readLock reads the lock at name and the generation it was read at.
func readLock(ctx context.Context, store sink.Store, name string) (lockInfo, int64, error) {
	r, err := store.NewReaderAt(ctx, name)
	if err != nil {
		return lockInfo{}, 0, err
	}
	defer r.Close()
	var l lockInfo
	if err := json.NewDecoder(io.NewSectionReader(r, 0, r.Size())).Decode(&l); err != nil {
		// Written by no run of ours (they write whole JSON objects):
		// stale, like an expired one.
		return lockInfo{Holder: "an unreadable lock (" + err.Error() + ")"}, r.Generation(), nil
	}
	return l, r.Generation(), nil
}

// temporaryRemover is a store that can remove the partial files a killed
// writer left behind (the local store: on GCS an upload that was never
// finalised is not visible at all).
type temporaryRemover interface {
	RemoveTemporary(ctx context.Context, dir string) ([]string, error)
}

// removeLeftovers removes what a killed run of the day left in its
// folder: the staged raw archive (a hidden ".tmp-" object) and, locally,
// hidden temporary files. The caller holds the day's lock, so no live
// run is writing them.
func removeLeftovers(ctx context.Context, store sink.Store, dir string, log *slog.Logger) error {
	names, err := store.List(ctx, dir+"/")
	if err != nil {
		return fmt.Errorf("look for leftovers: %w", err)
	}
	var staged []string
	for _, name := range names {
		if base := path.Base(name); strings.HasPrefix(base, ".") && strings.Contains(base, ".tmp-") {
			staged = append(staged, name)
		}
	}
	if err := removeAll(ctx, store, staged); err != nil {
		return fmt.Errorf("remove leftovers: %w", err)
	}
	removed := staged
	if r, ok := store.(temporaryRemover); ok {
		files, err := r.RemoveTemporary(ctx, dir)
		removed = append(removed, files...)
		if err != nil {
			return fmt.Errorf("remove leftovers: %w", err)
		}
	}
	if len(removed) > 0 {
		log.InfoContext(ctx, "removed what an earlier run of the day left behind", "objects", removed)
	}
	return nil
}

// bootID identifies this boot of this host's kernel, so that a process
// number is compared only with processes of the same boot; empty where
// the kernel does not say.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// processExists reports whether a process with that number runs on this
// host (one of another user counts too).
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
