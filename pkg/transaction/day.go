package transaction

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// DefaultLease is how long a day's lock holds without renewal unless
// Options.Lease says otherwise.
const DefaultLease = 2 * time.Minute

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

// Options are the lock's timing and the identity of its holder.
type Options struct {
	// Lease is how long the lock holds against other runs without being
	// renewed; the holder renews it every third of that. Zero means
	// DefaultLease.
	Lease time.Duration
	// Wait is how long a run that finds the lock held watches it before
	// it gives up with ErrBusy. Zero means the lease and an eighth.
	Wait time.Duration
	// Execution and Task identify the platform's execution and task this
	// run is an attempt of: a lock held under the same pair was left by
	// an earlier attempt that is over, and is taken over at once.
	Execution, Task string
	Logger          *slog.Logger // nil: no logs

	clock clock // nil: the real one
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// Day is a day's folder, held under its lock until Close.
type Day struct {
	store sink.Store
	dir   string
	lease *lease
	log   *slog.Logger
}

// Open takes the lock lockName in the folder dir: at once if it is free
// or its holder is known to be gone, after watching it for up to
// Options.Wait otherwise (ErrBusy if its holder renews it). It then
// settles the journal an earlier holder left in the lock, removes the
// hidden objects a killed run left in dir, and keeps renewing the lock
// until Close. The returned context is ctx, cancelled with ErrLockLost as
// its cause if the lock is lost.
func Open(ctx context.Context, store sink.Store, dir, lockName string, opts Options) (context.Context, *Day, error) {
	l := newLease(store, path.Join(dir, lockName), opts)
	held, err := l.take(ctx)
	if err != nil {
		return nil, nil, err
	}
	if held != nil && held.Publish != nil {
		if err := settleTakenOver(ctx, l, held); err != nil {
			l.release(ctx)
			return nil, nil, err
		}
	}
	if err := removeLeftovers(ctx, store, dir, lockName, l.log); err != nil {
		l.release(ctx)
		return nil, nil, err
	}
	return l.keep(ctx), &Day{store: store, dir: dir, lease: l, log: l.log}, nil
}

// settleTakenOver settles the commit that held, the lock's earlier
// holder, left in it, and then takes its journal out of the lock l.
func settleTakenOver(ctx context.Context, l *lease, held *lockInfo) error {
	j := held.Publish
	committed, err := settle(ctx, l.store, j)
	if err != nil {
		return fmt.Errorf("settle the publish %s left in %s: %w", j.Run, l.store.URL(l.name), err)
	}
	l.log.WarnContext(ctx, "settled the publish the earlier holder of the day's lock left unfinished",
		"run", j.Run, "committed", committed, "undone", !committed, "holder", held.Holder)
	return l.journalSettled(ctx)
}

// Close stops renewing the lock and deletes it (its own generation
// only). It keeps the lock when it holds the journal of a commit not
// settled, so that the next run of the day settles it, and leaves
// everything as it is once the lock is lost.
func (d *Day) Close(ctx context.Context) { d.lease.release(ctx) }

// Settle looks at the lock lockName of an earlier day's folder dir. A
// lock that holds the journal of a commit is taken as Open takes it (at
// once from a holder known to be gone, after a whole unrenewed lease
// from any other), which settles the commit; then it is released. A
// holder that renews it is left alone: why says so, and the day is not
// to be relied on. A lock without a journal is a run that has not
// swapped anything yet; one that does not read holds no journal either,
// and is logged. The logs name the day by dir's last element.
func Settle(ctx context.Context, store sink.Store, dir, lockName string, opts Options) (why string, err error) {
	d, log := path.Base(dir), opts.logger()
	held, _, err := readLock(ctx, store, path.Join(dir, lockName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("look at the lock of %s: %w", d, err)
	case held.unreadable != "":
		// No journal can be read from it: there is nothing to settle,
		// and the day is whole or not by its manifest, as without a lock.
		log.WarnContext(ctx, "an earlier day's lock does not read: taking it to hold no publish under way",
			"snapshot", d, "url", store.URL(path.Join(dir, lockName)), "reason", held.unreadable)
		return "", nil
	case held.Publish == nil:
		return "", nil
	}
	log.WarnContext(ctx, "an earlier day's lock holds a publish under way: settling it before comparing with that day",
		"snapshot", d, "holder", held.Holder, "renewed", held.Renewed)
	_, day, err := Open(ctx, store, dir, lockName, opts)
	switch {
	case ctx.Err() != nil:
		return "", fmt.Errorf("settle %s: %w", d, ctx.Err())
	case errors.Is(err, ErrBusy):
		// Renewed by its holder, or not watched for a whole lease.
		return "its lock holds a publish under way, not taken over: " + err.Error(), nil
	case err != nil:
		return "its unfinished publish could not be settled: " + err.Error(), nil
	}
	day.Close(ctx)
	return "", nil
}

// removeLeftovers removes what a killed run of the day left in its
// folder: hidden objects it staged or backed up (".NAME.tmp-RUN",
// ".NAME.backup-RUN") and, locally, partial files. The caller holds the
// day's lock and has settled any commit it recorded, so none of them is
// anyone's any more, but for the lock's own: another run may be writing
// the lock through a temporary file of the local store at this moment,
// to find it held. Each is removed at the generation seen.
func removeLeftovers(ctx context.Context, store sink.Store, dir, lockName string, log *slog.Logger) error {
	names, err := store.List(ctx, dir+"/")
	if err != nil {
		return fmt.Errorf("look for leftovers: %w", err)
	}
	var removed []string
	for _, name := range names {
		if base := path.Base(name); base == lockName || !strings.HasPrefix(base, ".") ||
			!strings.Contains(base, ".tmp-") && !strings.Contains(base, ".backup-") {
			continue
		}
		if err := deleteAsSeen(ctx, store, name); err != nil {
			return fmt.Errorf("remove leftovers: %w", err)
		}
		removed = append(removed, name)
	}
	if r, ok := store.(temporaryRemover); ok {
		lockWrite := func(name string) bool { return strings.HasPrefix(name, "."+lockName+".tmp-") }
		files, err := r.RemoveTemporary(ctx, dir, lockWrite)
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

// temporaryRemover is a store that can remove the partial files a killed
// writer left behind (the local store: on GCS an upload that was never
// finalised is not visible at all).
type temporaryRemover interface {
	RemoveTemporary(ctx context.Context, dir string, keep func(name string) bool) ([]string, error)
}
