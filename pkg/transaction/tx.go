package transaction

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// Tx is one attempt at changing a day's objects: the objects it stages,
// committed together with the manifest, or not at all. A Tx is used by
// one goroutine.
type Tx struct {
	day    *Day
	run    string // in the hidden names of its objects
	staged []*stagedObject
	state  txState
}

type txState int

const (
	txOpen     txState = iota // objects may be staged
	txPrepared                // every object is committed under its staged name
	txDone                    // committed or aborted
)

// stagedObject is an object of the day, written under its staged name.
type stagedObject struct {
	key    string // its name in the day's folder, as given to Stage
	name   string // the final name
	path   string // the staged name
	obj    *sink.Object
	staged sink.ObjectInfo // once committed under path
	// committed says obj is committed under path: by Prepare, or ahead
	// of it by Open.
	committed bool
}

// Begin starts a transaction on the day, with a run id of its own.
func (d *Day) Begin() *Tx {
	return &Tx{day: d, run: newRunID()}
}

// Stage starts the object that name (a slash-separated path in the day's
// folder) is to hold once the transaction commits. It is written under a
// hidden name of this transaction (".NAME.tmp-RUN"), which matches no
// glob over the day's objects. The caller writes it and leaves it to the
// transaction: Prepare, Commit and Abort commit or abort it.
func (tx *Tx) Stage(ctx context.Context, name, contentType string) (*sink.Object, error) {
	if tx.state != txOpen {
		return nil, errors.New("transaction: stage after prepare, commit or abort")
	}
	full := path.Join(tx.day.dir, name)
	s := &stagedObject{key: name, name: full, path: stagedName(full, tx.run)}
	obj, err := tx.day.store.NewObject(ctx, s.path, contentType)
	if err != nil {
		return nil, err
	}
	s.obj = obj
	tx.staged = append(tx.staged, s)
	return obj, nil
}

// Prepare commits every staged object under its staged name, in the
// order they were staged: nothing is at the final names yet. If one
// fails, those already committed are deleted again and the others
// aborted. Commit prepares a transaction not prepared.
func (tx *Tx) Prepare(ctx context.Context) error {
	if tx.state != txOpen {
		return errors.New("transaction: prepare after prepare, commit or abort")
	}
	for _, s := range tx.staged {
		if s.committed {
			continue
		}
		info, err := s.obj.Commit()
		if err != nil {
			tx.state = txDone
			return errors.Join(err, tx.drop(ctx))
		}
		s.staged, s.committed = info, true
	}
	tx.state = txPrepared
	return nil
}

// Open commits the staged object name under its staged name ahead of
// Prepare, if it is not yet, and opens it for reading: an output made
// from another one (the geolocation layer from the snapshot) reads it
// there, before anything is at the final names. The object stays the
// transaction's: Prepare leaves it as it is, Commit moves it, Abort
// deletes it. Nothing more can be written to it.
func (tx *Tx) Open(ctx context.Context, name string) (sink.ReaderAt, error) {
	i := tx.find(name)
	if i < 0 || tx.state != txOpen {
		return nil, fmt.Errorf("transaction: open %s: not staged", name)
	}
	s := tx.staged[i]
	if !s.committed {
		info, err := s.obj.Commit()
		if err != nil {
			return nil, err
		}
		s.staged, s.committed = info, true
	}
	return tx.day.store.NewReaderAt(ctx, s.path)
}

// drop aborts the staged objects being written and deletes the committed
// ones.
func (tx *Tx) drop(ctx context.Context) error {
	var committed []*stagedObject
	for _, s := range tx.staged {
		if s.committed {
			committed = append(committed, s)
		} else {
			s.obj.Abort()
		}
	}
	return dropStaged(ctx, tx.day.store, committed)
}

// SetAside commits the staged object name alone and copies it to asName
// (another name in the day's folder), out of the transaction: what an
// attempt keeps of itself when the day is not to change, such as a
// refused body. The staged object is then deleted; the transaction no
// longer holds it.
func (tx *Tx) SetAside(ctx context.Context, name, asName string) (sink.ObjectInfo, error) {
	i := tx.find(name)
	if i < 0 || tx.state != txOpen {
		return sink.ObjectInfo{}, fmt.Errorf("transaction: set aside %s: not staged", name)
	}
	s, store := tx.staged[i], tx.day.store
	tx.staged = append(tx.staged[:i], tx.staged[i+1:]...)
	info, err := s.obj.Commit()
	if err != nil {
		return sink.ObjectInfo{}, err
	}
	drop := func() error {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		return store.DeleteGeneration(cctx, s.path, info.Generation)
	}
	// Copy, under a precondition on what is at asName, then remove the
	// staged object (by the generation committed: only this one).
	to := path.Join(tx.day.dir, asName)
	var there int64
	if now, err := store.Stat(ctx, to); err == nil {
		there = now.Generation
	} else if !errors.Is(err, fs.ErrNotExist) {
		return sink.ObjectInfo{}, errors.Join(err, drop())
	}
	copied, err := store.Copy(ctx, s.path, info.Generation, to, there)
	if err != nil {
		return sink.ObjectInfo{}, errors.Join(err, drop())
	}
	return copied, drop()
}

func (tx *Tx) find(name string) int {
	for i, s := range tx.staged {
		if s.key == name {
			return i
		}
	}
	return -1
}

// Abort drops what the transaction staged: objects being written are
// aborted, prepared ones deleted (at their generations; not once the
// lock is lost, when the run touches nothing more). After Commit, or a
// second time, it does nothing, so "defer tx.Abort()" never leaks a
// staged object.
func (tx *Tx) Abort() {
	if tx.state != txDone {
		var err error
		if tx.day.lease.isLost() == nil {
			err = tx.drop(context.Background())
		} else {
			// The lock's new holder settles the day: abort what is being
			// written, delete nothing.
			for _, s := range tx.staged {
				s.obj.Abort()
			}
		}
		if err != nil {
			tx.day.log.Error("could not remove a staged object", "error", err.Error())
		}
	}
	tx.state = txDone
}
