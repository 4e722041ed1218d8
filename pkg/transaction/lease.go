package transaction

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// lockInfo is the content of the lock object.
type lockInfo struct {
	Holder       string `json:"holder"` // host/pid, for people
	Host         string `json:"host,omitempty"`
	BootID       string `json:"boot_id,omitempty"`
	PIDNamespace string `json:"pid_namespace,omitempty"`
	PID          int    `json:"pid,omitempty"`
	Execution    string `json:"execution,omitempty"`
	Task         string `json:"task,omitempty"`
	// Nonce is new for every write of the lock: a run that reads back the
	// lock after a write whose reply was lost knows from it whether the
	// write went through.
	Nonce   string    `json:"nonce,omitempty"`
	Started time.Time `json:"started"`
	Renewed time.Time `json:"renewed"`
	// Expires is for people reading the lock; no run compares it with
	// its own clock.
	Expires time.Time `json:"expires"`
	// Publish is the journal of a publish under way (see commit.go).
	Publish *journal `json:"publish,omitempty"`

	unreadable string // why the lock object is not one this job wrote
}

// clock is the time a lease is measured in. Now must carry a monotonic
// reading: durations are never measured on the wall clock.
type clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx is done (then it returns ctx's error).
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// lease is the day's lock, held or being taken.
type lease struct {
	store sink.Store
	name  string
	lease time.Duration
	wait  time.Duration // how long to watch a lock held by another run
	clock clock
	log   *slog.Logger

	mu         sync.Mutex // guards what follows: the renewals run on their own goroutine
	info       lockInfo
	generation int64     // of this run's last write of the lock
	renewed    time.Time // when that write was sent, on the monotonic clock
	lost       error     // set once the lock is lost: nothing more is written

	stop func()        // stops the renewals
	done chan struct{} // closed when they have stopped
}

// gone says why the lock held can be taken over by me at once, or "" if
// its holder may still be running.
func (me lockInfo) gone(held lockInfo) string {
	switch {
	case held.unreadable != "":
		return "it is not a lock this job wrote (" + held.unreadable + ")"
	case me.Execution != "" && held.Execution == me.Execution && held.Task == me.Task:
		return "left by an earlier attempt of this execution's task (" + me.Execution + ", task " + me.Task + ")"
	case me.Execution == "" && held.Execution == "" && held.Host == me.Host && held.BootID != "" &&
		held.BootID == me.BootID && held.PIDNamespace != "" && held.PIDNamespace == me.PIDNamespace &&
		held.PID > 0 && !processExists(held.PID):
		return fmt.Sprintf("its holder, process %d of this host, is gone", held.PID)
	}
	return ""
}

func (l lockInfo) describe() string {
	s := fmt.Sprintf("%s since %s, renewed %s", l.Holder, l.Started.Format(time.RFC3339), l.Renewed.Format(time.RFC3339))
	if l.Execution != "" {
		s += " (execution " + l.Execution
		if l.Task != "" {
			s += ", task " + l.Task
		}
		s += ")"
	}
	return s
}

// newLease is the lease of the lock at name, not yet taken.
func newLease(store sink.Store, name string, opts Options) *lease {
	leaseTime := opts.Lease
	if leaseTime <= 0 {
		leaseTime = DefaultLease
	}
	wait := opts.Wait
	if wait <= 0 {
		wait = leaseTime + leaseTime/8
	}
	c := opts.clock
	if c == nil {
		c = realClock{}
	}
	host, _ := os.Hostname()
	return &lease{
		store: store, name: name, lease: leaseTime, wait: wait, clock: c, log: opts.logger(),
		info: lockInfo{
			Holder:       fmt.Sprintf("%s/%d", host, os.Getpid()),
			Host:         host,
			BootID:       bootID(),
			PIDNamespace: pidNamespace(),
			PID:          os.Getpid(),
			Execution:    opts.Execution,
			Task:         opts.Task,
			Started:      time.Now().UTC(),
		},
	}
}

// take writes the lock: at once if it is free or its holder is known to
// be gone, after watching it for up to l.wait otherwise (ErrBusy if its
// holder renews it). held is the lock taken over, nil if it was free.
func (l *lease) take(ctx context.Context) (held *lockInfo, err error) {
	store, log, url := l.store, l.log, l.store.URL(l.name)
	for range 3 {
		err := l.writeWithin(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, sink.ErrConflict) {
			return nil, fmt.Errorf("lock %s: %w", url, err)
		}
		h, generation, err := readLock(ctx, store, l.name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // released in between
		}
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", url, err)
		}
		why := l.info.gone(h)
		if why == "" {
			if why, err = l.watch(ctx, h, generation); err != nil {
				return nil, err
			}
			if why == "" {
				continue // released while watched
			}
		}
		log.WarnContext(ctx, "taking over the day's lock: "+why, "url", url, "holder", h.Holder,
			"execution", h.Execution, "task", h.Task, "renewed", h.Renewed, "publish_pending", h.Publish != nil)
		l.generation = generation
		l.info.Publish = h.Publish // carried until settled, should this run die too
		if err := l.writeWithin(ctx); err != nil {
			l.generation, l.info.Publish = 0, nil
			if errors.Is(err, sink.ErrConflict) {
				continue // renewed or taken by someone else in between: look again
			}
			return nil, fmt.Errorf("lock %s: %w", url, err)
		}
		held = &h
		break
	}
	if l.generation == 0 {
		return nil, fmt.Errorf("%w: %s changed hands during every look", ErrBusy, url)
	}
	return held, nil
}

// keep renews the lock every third of the lease until release, and
// returns ctx cancelled with ErrLockLost as its cause if the lock is
// lost.
func (l *lease) keep(ctx context.Context) context.Context {
	runCtx, cancel := context.WithCancelCause(ctx)
	renewCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.done = make(chan struct{})
	l.stop = func() { stop(); <-l.done; cancel(nil) }
	go l.renew(renewCtx, cancel)
	return runCtx
}

// watch looks at the lock held at generation for up to l.wait. It
// returns ErrBusy as soon as the lock changes (its holder renewed it),
// "" if the lock went (released: try again), or why it may be taken over
// once it has stayed at generation for a whole lease by this run's clock.
func (l *lease) watch(ctx context.Context, held lockInfo, generation int64) (string, error) {
	url := l.store.URL(l.name)
	busy := func(how string) error {
		return fmt.Errorf("%w: %s is held by %s; %s", ErrBusy, url, held.describe(), how)
	}
	seen := l.clock.Now()
	poll := min(l.lease/12, 5*time.Second)
	l.log.InfoContext(ctx, "the day's lock is held: watching whether its holder renews it", "url", url,
		"holder", held.Holder, "lease", l.lease.String(), "wait", l.wait.String())
	for {
		unchanged := l.clock.Now().Sub(seen)
		if unchanged >= l.lease {
			return fmt.Sprintf("not renewed for %s (a whole lease) while this run watched", unchanged.Round(time.Millisecond)), nil
		}
		if unchanged >= l.wait {
			return "", busy(fmt.Sprintf("it was not renewed in the %s this run waited (Options.Wait), less than its lease of %s", l.wait, l.lease))
		}
		if err := l.clock.Sleep(ctx, min(poll, l.lease-unchanged, l.wait-unchanged)); err != nil {
			return "", fmt.Errorf("lock %s: %w", url, err)
		}
		now, err := l.store.Stat(ctx, l.name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", nil
		case errors.Is(err, sink.ErrUnavailable):
			continue // an unanswered look proves nothing either way
		case err != nil:
			return "", fmt.Errorf("lock %s: %w", url, err)
		case now.Generation != generation:
			return "", busy("it was renewed while this run watched")
		}
	}
}

// write writes the lock with a new nonce: created if this run holds no
// generation yet, else replacing its own generation. A write that fails
// transiently, or whose retry meets its own earlier try (ErrConflict), is
// resolved by reading the lock back: if it holds this write's nonce, the
// run adopts its generation; if it is still at the old generation, the
// write is tried again until ctx is done; otherwise another run has it
// (ErrConflict).
func (l *lease) write(ctx context.Context) error {
	l.info.Nonce = newRunID()
	sent := l.clock.Now()
	l.info.Renewed, l.info.Expires = sent.UTC().Round(0), sent.UTC().Round(0).Add(l.lease)
	data, err := json.Marshal(l.info)
	if err != nil {
		return err
	}
	for try := 0; ; try++ {
		var info sink.ObjectInfo
		if l.generation == 0 {
			info, err = l.store.Create(ctx, l.name, "application/json", data)
		} else {
			info, err = l.store.Replace(ctx, l.name, "application/json", data, l.generation)
		}
		if err == nil {
			l.generation, l.renewed = info.Generation, sent
			return nil
		}
		if !errors.Is(err, sink.ErrUnavailable) && !errors.Is(err, sink.ErrConflict) {
			return err
		}
		there, generation, rerr := readLock(ctx, l.store, l.name)
		switch {
		case rerr == nil && there.Nonce == l.info.Nonce:
			l.log.InfoContext(ctx, "the day's lock was written although the store did not say so", "url", l.store.URL(l.name), "error", err.Error())
			l.generation, l.renewed = generation, sent
			return nil
		case errors.Is(err, sink.ErrConflict):
			return err
		case rerr == nil && generation != l.generation, errors.Is(rerr, fs.ErrNotExist) && l.generation != 0:
			return fmt.Errorf("%w: the lock changed while this run wrote it (%v)", sink.ErrConflict, err)
		}
		// Not written (or not known): try again, as the precondition allows.
		if serr := l.clock.Sleep(ctx, min(50*time.Millisecond<<min(try, 6), l.lease/6)); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

// writeWithin is write given at most a lease to succeed.
func (l *lease) writeWithin(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.lease)
	defer cancel()
	return l.write(ctx)
}

// renew rewrites the lock every third of the lease until ctx is done; if
// the lock is lost it cancels the run with that cause.
func (l *lease) renew(ctx context.Context, cancelRun context.CancelCauseFunc) {
	defer close(l.done)
	for {
		if l.clock.Sleep(ctx, l.lease/3) != nil {
			return
		}
		if err := l.confirm(ctx); err != nil {
			if ctx.Err() == nil {
				cancelRun(err)
			}
			return
		}
	}
}

// confirm renews the lock now: a nil error means this run held it when
// the write took effect, and no other run can take it for a whole lease
// from then. The holder confirms just before it swaps the day's objects
// into place and just before it writes the manifest.
func (l *lease) confirm(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.confirmLocked(ctx)
}

func (l *lease) confirmLocked(ctx context.Context) error {
	url := l.store.URL(l.name)
	if l.lost != nil {
		return l.lost
	}
	for {
		// Keep trying until this run's lease would have run out: until
		// then no other run takes the lock.
		wctx, cancel := context.WithDeadline(ctx, l.renewed.Add(l.lease))
		err := l.write(wctx)
		cancel()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, sink.ErrConflict):
			l.lost = fmt.Errorf("%w: %s was taken over by another run", ErrLockLost, url)
		case ctx.Err() != nil:
			return fmt.Errorf("lock %s: %w", url, ctx.Err())
		case l.clock.Now().Sub(l.renewed) >= l.lease:
			l.lost = fmt.Errorf("%w: %s could not be renewed for %s: %v", ErrLockLost, url, l.lease, err)
		default:
			l.log.WarnContext(ctx, "could not renew the day's lock, trying again", "url", url, "error", err.Error())
			if serr := l.clock.Sleep(ctx, l.lease/12); serr != nil {
				return fmt.Errorf("lock %s: %w", url, serr)
			}
			continue
		}
		return l.lost
	}
}

// setJournal records j (nil: none) in the lock, which also confirms it.
func (l *lease) setJournal(ctx context.Context, j *journal) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.info.Publish
	l.info.Publish = j
	if err := l.confirmLocked(ctx); err != nil {
		l.info.Publish = was
		return err
	}
	return nil
}

// journalSettled takes the journal out of the lock once it is settled,
// which confirms the lock. Unlike setJournal(nil), a failed write does
// not put the settled journal back: the lock is released, not kept for
// a next run to settle again.
func (l *lease) journalSettled(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.info.Publish = nil
	return l.confirmLocked(ctx)
}

// isLost reports whether the lock is lost: the run must touch nothing.
func (l *lease) isLost() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// release stops the renewals and deletes the lock (its own generation
// only). It keeps the lock when it holds the journal of a publish not
// settled, so that the next run settles it, and leaves everything as it
// is once the lock is lost.
func (l *lease) release(ctx context.Context) {
	if l.stop != nil {
		l.stop()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.lost != nil:
		return
	case l.info.Publish != nil:
		l.log.ErrorContext(ctx, "keeping the day's lock: it holds a publish that could not be settled; the next run of the day settles it",
			"url", l.store.URL(l.name))
		return
	}
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := l.store.DeleteGeneration(cleanup, l.name, l.generation); err != nil {
		l.log.ErrorContext(ctx, "could not release the day's lock", "url", l.store.URL(l.name), "error", err.Error())
	}
}

// maxLockBytes is the most of a lock object that is read. The locks this
// job writes hold under 1 KB, a publish journal included; anything 64
// times that was written by something else, and decoding it would put an
// object of any size in memory.
const maxLockBytes = 64 << 10

// readLock reads the lock at name and the generation it was read at. A
// lock bigger than maxLockBytes is not read at all: like one that does
// not decode, it is unreadable.
func readLock(ctx context.Context, store sink.Store, name string) (lockInfo, int64, error) {
	r, err := store.NewReaderAt(ctx, name)
	if errors.Is(err, sink.ErrNotObject) {
		// Not a file any run wrote: taken over at once.
		return lockInfo{Holder: "an unreadable lock", unreadable: err.Error()}, 0, nil
	}
	if err != nil {
		return lockInfo{}, 0, err
	}
	defer r.Close()
	// Written by no run of ours (they write whole JSON objects in one
	// atomic write): taken over at once.
	unreadable := func(why string) (lockInfo, int64, error) {
		return lockInfo{Holder: "an unreadable lock", unreadable: why}, r.Generation(), nil
	}
	if r.Size() > maxLockBytes {
		return unreadable(fmt.Sprintf("it holds %d bytes, more than a lock may (%d)", r.Size(), maxLockBytes))
	}
	var l lockInfo
	if err := json.NewDecoder(io.NewSectionReader(r, 0, r.Size())).Decode(&l); err != nil {
		return unreadable(err.Error())
	}
	return l, r.Generation(), nil
}

// newRunID is 16 random hex digits.
func newRunID() string {
	var id [8]byte
	rand.Read(id[:])
	return hex.EncodeToString(id[:])
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

// pidNamespace identifies this process's PID namespace ("pid:[4026531836]"):
// two containers can share a host name and a boot and still number their
// processes apart. Empty where the kernel does not say, and then no
// process number is trusted.
func pidNamespace() string {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return ns
}

// processExists reports whether a process with that number runs on this
// host (one of another user counts too). A zombie, killed but not yet
// reaped by its parent, still has its number but runs no more code: it
// counts as gone.
func processExists(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !processDead(pid)
}

// processDead reports whether /proc says the process pid is a zombie or
// dead (its state, the field after the parenthesised command name, is Z
// or X); false where /proc does not say.
func processDead(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state == 'Z' || state == 'X'
}
