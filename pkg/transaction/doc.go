// Package transaction publishes a set of objects in one folder of a
// sink.Store together, or not at all: a day's snapshot, its change table,
// its digest and its archive become visible with the manifest that
// describes them. GCS preconditions make one object atomic; this package
// makes the set atomic with them, under a lock that keeps two runs of one
// folder apart.
//
//	ctx, day, err := transaction.Open(ctx, store, dir, ".x.lock", opts)
//	defer day.Close(ctx)
//	tx := day.Begin()
//	defer tx.Abort()
//	obj, err := tx.Stage(ctx, "x.parquet", sink.ParquetContentType)
//	// ... write obj ...
//	err = tx.Commit(ctx, "x.manifest.json", func(at map[string]sink.ObjectInfo) ([]byte, error) {
//		return json.Marshal(at["x.parquet"])
//	})
//
// # Ownership
//
// Open takes the folder's lock and returns a Day; Close releases it. A
// Tx belongs to its Day, and the objects Stage returns belong to their
// Tx: the caller writes them and never commits or aborts them itself.
// Prepare, Commit or Abort do, or Open, which commits one under its
// hidden name ahead of the others, for an object made from it to read it
// back. Abort after Commit does nothing, so "defer tx.Abort()" never
// leaks a staged object.
//
// # Commit
//
// Commit carries out these steps, recording them in the lock as a
// journal, so that a commit that fails at any step, or whose run dies,
// leaves the folder exactly as it was:
//
//  1. stage (Prepare): each object is committed under a hidden name of
//     its transaction (".NAME.tmp-RUN"), which no glob over the folder
//     matches;
//  2. journal: the lock records, for each object, the generation now at
//     its final name, its staged name and generation, and the name of
//     its backup; and the manifest's generation now;
//  3. back up: each final object that exists is copied to a hidden
//     backup (".NAME.backup-RUN"), at the generation recorded;
//  4. swap: each staged object is copied to its final name under the
//     precondition that the name still holds the recorded generation;
//  5. commit: the lock is confirmed, then the manifest is written under
//     the precondition that it is still at its recorded generation. This
//     is the commit point;
//  6. settle: the backups and staged objects are deleted (at their own
//     generations) and the journal is cleared.
//
// What a reader sees: until step 4 the previous set, whole. During step
// 4 and until the commit point, a reader of the objects by glob may see
// new objects beside the previous manifest; a reader that goes by the
// manifest and checks sizes or CRC32Cs sees that they differ. From the
// commit point on, the new set, whole.
//
// A failure before the commit point restores the folder: each final name
// that no longer holds its recorded generation gets its backup back, or
// is deleted if it held nothing, under a precondition on what it holds.
// Reading the final names, not remembering the swap, makes this right
// after a crash and after a copy that took effect although it reported
// an error. A failure after the commit point leaves only hidden objects,
// which the next Open of the folder removes. An unknown outcome of the
// manifest's write (no answer) is read back: a manifest at another
// generation was this commit's, the only writer while the lock is held.
// Every delete and overwrite names the generation it expects, so a run
// changes only what it wrote.
//
// SetAside commits one staged object alone and copies it elsewhere in
// the folder, out of the commit: what an attempt keeps of itself (a
// refused body) when the folder is not to change.
//
// # Lock
//
// The lock is a lease. Its holder rewrites it every third of
// Options.Lease, each time under a generation precondition, so that a
// holder whose lock was taken over finds out; it also confirms the lock
// just before the swap and just before the manifest's write. A run that
// finds the lock held watches it on its own monotonic clock, never
// comparing another host's clock with its own: if the lock changes, its
// holder is alive and Open fails with ErrBusy; if it stays at one
// generation for a whole lease, its holder stopped renewing it and the
// run takes it over. A lock left by a run known to be gone is taken over
// at once: one held under the same Options.Execution and Options.Task (a
// platform that starts a task's retry only after the earlier attempt
// ended), or one held by a process that no longer exists on this host,
// in the same PID namespace. A lock that is not one this package wrote
// is taken over at once.
//
// The run that takes a lock over first settles the journal it holds
// (finishing a commit that reached its commit point, restoring the
// folder otherwise), then removes what a killed run left in the folder.
// Settle does the same for a folder a run only reads, such as an earlier
// day's, and releases the lock again. While a commit is not settled,
// Close keeps the lock, journal and all, for the next run of the folder.
//
// # Errors
//
// ErrBusy means another run holds the lock: nothing was written.
// ErrLockLost means the run could not renew its lock before the lease
// ran out, or found it taken over: the context Open returned is
// cancelled with it as the cause, Commit fails, and the run touches
// nothing more; the journal stays in the lock for whoever takes it. A
// Commit that fails otherwise has restored the folder, unless its error
// says that the lock keeps the journal for the next run to settle.
// Errors name the objects by their URLs.
package transaction
