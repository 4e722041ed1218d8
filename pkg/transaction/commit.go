package transaction

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// Commit puts the staged objects at their final names and then writes
// the manifest at manifestName (in the day's folder), whose bytes
// manifest returns given what now stands at each final name (by the
// names given to Stage). The manifest's write is the commit point: see
// the package documentation for the steps and what a failure at each
// leaves. A transaction not yet prepared is prepared first.
func (tx *Tx) Commit(ctx context.Context, manifestName string, manifest func(at map[string]sink.ObjectInfo) ([]byte, error)) error {
	if tx.state == txOpen {
		if err := tx.Prepare(ctx); err != nil {
			return err
		}
	}
	if tx.state != txPrepared {
		return errors.New("transaction: commit after commit or abort")
	}
	tx.state = txDone
	d, store, log := tx.day, tx.day.store, tx.day.log
	manifestPath := path.Join(d.dir, manifestName)
	j, err := newJournal(ctx, store, tx.run, manifestPath, tx.staged)
	if err == nil {
		err = d.lease.setJournal(ctx, j)
	}
	if err != nil {
		// Nothing was swapped: drop what was staged, unless the lock is
		// lost, when this run touches nothing more.
		if d.lease.isLost() == nil {
			if derr := dropStaged(ctx, store, tx.staged); derr != nil {
				log.ErrorContext(ctx, "could not remove a staged object", "error", derr.Error())
			}
		}
		return err
	}
	infos, err := swap(ctx, store, j)
	if err == nil {
		err = d.lease.confirm(ctx)
	}
	if err != nil {
		return tx.undo(ctx, j, err)
	}
	at := make(map[string]sink.ObjectInfo, len(tx.staged))
	for _, s := range tx.staged {
		at[s.key] = infos[s.name]
	}
	data, err := manifest(at)
	if err != nil {
		return tx.undo(ctx, j, err)
	}
	if err := writeManifest(ctx, store, manifestPath, data, j.ManifestPrevious); err != nil {
		cctx, cancel := cleanupContext(ctx)
		committed, serr := manifestCommitted(cctx, store, j)
		cancel()
		switch {
		case serr != nil:
			return fmt.Errorf("%w; whether it was written is not known (%v): the day's lock keeps the publish journal, and the next run of the day finishes or undoes the publish", err, serr)
		case !committed:
			return tx.undo(ctx, j, err)
		}
		log.WarnContext(ctx, "the manifest was written although the store did not say so", "url", store.URL(manifestPath), "error", err.Error())
	}
	// Committed: what remains only tidies hidden objects.
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	if err := dropJournaled(cctx, store, j); err != nil {
		log.ErrorContext(ctx, "published, but could not remove a staged object or backup; the next run of the day removes it", "error", err.Error())
	} else if err := d.lease.setJournal(cctx, nil); err != nil {
		log.ErrorContext(ctx, "published, but could not clear the publish journal from the day's lock", "error", err.Error())
	}
	return nil
}

// undo restores the day after a commit failed before its commit point,
// and returns cause, with the restore's own failure if any. A run whose
// lock is lost touches nothing: the run that took the lock over settles
// the journal it found there.
func (tx *Tx) undo(ctx context.Context, j *journal, cause error) error {
	d := tx.day
	if lost := d.lease.isLost(); lost != nil {
		if !errors.Is(cause, ErrLockLost) {
			cause = fmt.Errorf("%w (%w)", cause, lost)
		}
		return cause
	}
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	if err := restore(cctx, d.store, j); err != nil {
		return fmt.Errorf("%w; undoing the publish failed too (%v): the day's lock keeps the publish journal, and the next run of the day undoes it", cause, err)
	}
	if err := d.lease.setJournal(cctx, nil); err != nil {
		d.log.ErrorContext(ctx, "undid the publish, but could not clear the publish journal from the day's lock", "error", err.Error())
	}
	return cause
}

// writeManifest writes data as the manifest at name, under the
// precondition that name is still at generation (0: still absent).
func writeManifest(ctx context.Context, store sink.Store, name string, data []byte, generation int64) error {
	var err error
	if generation == 0 {
		_, err = store.Create(ctx, name, "application/json", data)
	} else {
		_, err = store.Replace(ctx, name, "application/json", data, generation)
	}
	if err != nil {
		return fmt.Errorf("write the manifest: %w", err)
	}
	return nil
}

// journal is a publish under way, kept in the day's lock.
type journal struct {
	Run string `json:"run"`
	// Manifest is the manifest's name and ManifestPrevious its generation
	// before this publish (0: none): a manifest at another generation was
	// written by this publish, the only writer while the lock is held.
	Manifest         string         `json:"manifest"`
	ManifestPrevious int64          `json:"manifest_previous"`
	Objects          []journalEntry `json:"objects"`
}

// journalEntry is one object of a publish.
type journalEntry struct {
	Name             string `json:"name"`     // the final name
	Previous         int64  `json:"previous"` // its generation before the swap; 0: absent
	Staged           string `json:"staged"`
	StagedGeneration int64  `json:"staged_generation"`
	Backup           string `json:"backup,omitempty"` // where Previous is kept until the commit
}

// stagedName is the hidden name an attempt commits the object name under
// before the swap: it matches none of the day's globs.
func stagedName(name, run string) string {
	return path.Join(path.Dir(name), "."+path.Base(name)+".tmp-"+run)
}

func backupName(name, run string) string {
	return path.Join(path.Dir(name), "."+path.Base(name)+".backup-"+run)
}

// newJournal records what is at each final name now.
func newJournal(ctx context.Context, store sink.Store, run, manifest string, staged []*stagedObject) (*journal, error) {
	j := &journal{Run: run, Manifest: manifest}
	var err error
	if j.ManifestPrevious, err = generationAt(ctx, store, manifest); err != nil {
		return nil, err
	}
	for _, s := range staged {
		e := journalEntry{Name: s.name, Staged: s.path, StagedGeneration: s.staged.Generation}
		if e.Previous, err = generationAt(ctx, store, s.name); err != nil {
			return nil, err
		}
		if e.Previous != 0 {
			e.Backup = backupName(s.name, run)
		}
		j.Objects = append(j.Objects, e)
	}
	return j, nil
}

// swap backs up every final object, then copies every staged object to
// its final name, and returns what is at the final names by name.
func swap(ctx context.Context, store sink.Store, j *journal) (map[string]sink.ObjectInfo, error) {
	for _, e := range j.Objects {
		if e.Previous == 0 {
			continue
		}
		if _, err := store.Copy(ctx, e.Name, e.Previous, e.Backup, 0); err != nil {
			return nil, fmt.Errorf("back up %s: %w", store.URL(e.Name), err)
		}
	}
	infos := map[string]sink.ObjectInfo{}
	for _, e := range j.Objects {
		info, err := store.Copy(ctx, e.Staged, e.StagedGeneration, e.Name, e.Previous)
		if err != nil {
			return nil, fmt.Errorf("move %s into place: %w", store.URL(e.Name), err)
		}
		infos[e.Name] = info
	}
	return infos, nil
}

// restore undoes a swap that did not commit: each final name that no
// longer holds its recorded generation gets its backup back (or is
// deleted, if it held nothing), under a precondition on the generation
// it holds now. Then the backups and staged objects go. Reading the
// final names, not remembering the swap, makes it right after a crash
// and after a copy that took effect although it reported an error.
func restore(ctx context.Context, store sink.Store, j *journal) error {
	for _, e := range j.Objects {
		now, err := generationAt(ctx, store, e.Name)
		switch {
		case err != nil:
			return fmt.Errorf("restore %s: %w", store.URL(e.Name), err)
		case now == e.Previous:
			continue
		case e.Previous == 0:
			err = store.DeleteGeneration(ctx, e.Name, now)
		default:
			var backup int64
			if backup, err = generationAt(ctx, store, e.Backup); err == nil && backup == 0 {
				err = fmt.Errorf("its backup %s is gone", store.URL(e.Backup))
			}
			if err == nil {
				_, err = store.Copy(ctx, e.Backup, backup, e.Name, now)
			}
		}
		if err != nil {
			return fmt.Errorf("restore %s: %w", store.URL(e.Name), err)
		}
	}
	return dropJournaled(ctx, store, j)
}

// dropJournaled deletes a publish's backups and staged objects.
func dropJournaled(ctx context.Context, store sink.Store, j *journal) error {
	var errs []error
	for _, e := range j.Objects {
		if e.Backup != "" {
			errs = append(errs, deleteAsSeen(ctx, store, e.Backup))
		}
		if err := store.DeleteGeneration(ctx, e.Staged, e.StagedGeneration); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dropStaged deletes an attempt's staged objects, at their generations.
func dropStaged(ctx context.Context, store sink.Store, staged []*stagedObject) error {
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	var errs []error
	for _, s := range staged {
		if err := store.DeleteGeneration(ctx, s.path, s.staged.Generation); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// manifestCommitted reports whether the publish of j reached its commit
// point: the manifest is no longer at the generation it had before.
func manifestCommitted(ctx context.Context, store sink.Store, j *journal) (bool, error) {
	now, err := generationAt(ctx, store, j.Manifest)
	if err != nil {
		return false, err
	}
	return now != j.ManifestPrevious, nil
}

// settle finishes or undoes the commit of j that a run whose lock was
// taken over left unfinished, deciding by the manifest whether it
// reached its commit point.
func settle(ctx context.Context, store sink.Store, j *journal) (committed bool, err error) {
	if committed, err = manifestCommitted(ctx, store, j); err != nil {
		return false, err
	}
	if committed {
		return true, dropJournaled(ctx, store, j)
	}
	return false, restore(ctx, store, j)
}

// generationAt is the generation of the object at name, 0 if none.
func generationAt(ctx context.Context, store sink.Store, name string) (int64, error) {
	info, err := store.Stat(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return info.Generation, nil
}

// deleteAsSeen deletes the object at name at the generation it has now.
func deleteAsSeen(ctx context.Context, store sink.Store, name string) error {
	generation, err := generationAt(ctx, store, name)
	if err != nil || generation == 0 {
		return err
	}
	return store.DeleteGeneration(ctx, name, generation)
}

// cleanupContext is a context for undoing and settling, which must go on
// when the run's own context is done.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}
