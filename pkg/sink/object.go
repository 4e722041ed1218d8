// Package sink is where the job's tables go: it encodes Arrow record
// batches as Parquet and writes objects to a local directory or a Google
// Cloud Storage bucket, publishing each one atomically.
//
// # Writing objects
//
// A Store hands out Objects. Bytes written to an Object are not visible at
// its name until Commit returns nil: a local object is written to a hidden
// temporary file beside the final name, synced and renamed; a GCS object
// streams through a resumable upload that GCS finalises only on Commit.
// Abort, a cancelled context or any error before Commit leaves nothing at
// the name (and a rerun's previous object stays as it was). Abort after
// Commit does nothing, so "defer obj.Abort()" is the way to never leak a
// half-written object.
//
// Every object's size and CRC32C are computed while it is written; on GCS
// the server's CRC32C is checked against it at Commit.
//
// # Ownership
//
// The Parquet writer never closes the writer it is given (pqarrow's own
// FileWriter would, and closing a GCS writer commits the object): the
// caller writes the footer with ParquetWriter.Close and only then decides
// to Commit.
//
// # Errors
//
// Errors name the operation and the object's URL, and both stores map
// their own errors to the same sentinels, each in one place (gcsError,
// localError): a missing object wraps fs.ErrNotExist, and ErrConflict
// means the object changed while this writer wrote it (another writer
// committed the same name first, or replaced the generation a Replace,
// Copy or Commit expected); nothing of this writer was published.
// ErrUnavailable means the store did not answer or failed transiently:
// the write may have taken effect, so a caller reads back before it
// retries.
//
// GCS checks its preconditions atomically on the server. Local checks
// them just before the rename that publishes, which tells a writer that
// committed before from one that commits after, but not two commits
// within that instant; the job's day lock keeps two of its runs from
// writing one day at once, so that instant is never contested.
//
// # Publishing a set of objects
//
// A Store makes one object atomic; a set of them (a snapshot, its
// change table and its manifest) is made atomic by the caller with the
// generation primitives, as package transaction does: stage each object
// under a name of its own, Copy the current version of each final name
// to a backup, Copy each staged object over its final name under a
// precondition on the generation seen, and write the object that marks
// the set complete last, with Create or Replace under a precondition
// too. Undoing is a Copy back from the backups, again under
// preconditions, and cleaning up is DeleteGeneration, which never
// removes a version it was not given. Delete, by name, is for callers
// that own a name outright.
//
// A write whose reply was lost is resolved where it can be: a GCS
// upload whose retry meets the very bytes it wrote (412 against its own
// object) commits with that generation; a small write answered with a
// transient error wraps ErrUnavailable, for the caller to read back.
//
// Package sinktest holds the conformance suite both stores pass, a GCS
// emulator that injects faults into requests, and a fault-injecting
// wrapper for any Store.
package sink

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strings"
)

// ErrConflict means another writer changed the object between the start of
// the write and its commit.
var ErrConflict = errors.New("object changed by another writer")

// ErrNotObject is a name whose local file is not a regular file (a
// FIFO, a device, a directory): it holds no object, and is not opened
// for reading, since opening a FIFO would wait for a writer forever.
var ErrNotObject = errors.New("not an object: not a regular file")

// ErrAborted is returned by Write and Commit on an aborted object.
var ErrAborted = errors.New("object aborted")

// ErrUnavailable means the store did not answer, or answered with a
// transient failure (HTTP 429 or 5xx, a reset connection): the operation
// may or may not have taken effect. A caller whose write carries a
// precondition can retry it, reading the object back first to learn
// whether the failed try went through.
var ErrUnavailable = errors.New("store unavailable")

// Store is a place objects are written to: a local directory or a GCS
// bucket, with a root prefix.
type Store interface {
	// NewObject starts a new object at name, a slash-separated path below
	// the store's root. contentType is recorded where the store keeps it.
	NewObject(ctx context.Context, name, contentType string) (*Object, error)
	// Delete removes the object at name; a missing object is not an error.
	Delete(ctx context.Context, name string) error
	// NewReader reads the committed object at name from its start. A
	// missing object is an error that wraps fs.ErrNotExist.
	NewReader(ctx context.Context, name string) (Reader, error)
	// NewReaderAt opens the committed object at name for reads at any
	// offset, as a Parquet reader needs, without downloading it whole. A
	// missing object is an error that wraps fs.ErrNotExist.
	NewReaderAt(ctx context.Context, name string) (ReaderAt, error)
	// List returns the names of the committed objects whose names start
	// with prefix, sorted. Objects being written are not listed.
	List(ctx context.Context, prefix string) ([]string, error)
	// Create writes a small object at name only if no object is there:
	// otherwise it returns an error that wraps ErrConflict. Of two
	// concurrent Creates of one name, one succeeds. The info's Generation
	// identifies this version for Replace and DeleteGeneration.
	Create(ctx context.Context, name, contentType string, data []byte) (ObjectInfo, error)
	// Replace writes a small object at name only if the object there is
	// still at generation (as Create, Replace or ReaderAt.Generation gave
	// it); if it was replaced or deleted meanwhile, it returns an error
	// that wraps ErrConflict. On GCS this is a generation precondition;
	// locally the generation is checked just before the rename, which
	// tells a writer that came before from one that came after, but not
	// two writers within that instant.
	Replace(ctx context.Context, name, contentType string, data []byte, generation int64) (ObjectInfo, error)
	// DeleteGeneration removes the object at name if it is still at
	// generation; an object that is gone or was replaced is left as it
	// is, without an error.
	DeleteGeneration(ctx context.Context, name string, generation int64) error
	// Stat describes the committed object at name: its size and
	// generation (and its CRC32C on GCS, which keeps one; 0 locally). A
	// missing object is an error that wraps fs.ErrNotExist.
	Stat(ctx context.Context, name string) (ObjectInfo, error)
	// Copy copies the version generation of the committed object at from
	// to the name to, only if to is still at toGeneration (0: still
	// absent): otherwise it returns an error that wraps ErrConflict and
	// to is left as it is. If from is gone or no longer at generation, the
	// error wraps fs.ErrNotExist. The info is the copy's. GCS copies on
	// the server; locally the copy is a hard link (objects are never
	// written in place, so the two names cannot diverge), which makes it
	// instant and gives it the generation of from.
	Copy(ctx context.Context, from string, generation int64, to string, toGeneration int64) (ObjectInfo, error)
	// URL is the address of name: gs://bucket/root/name or a local path.
	URL(name string) string
}

// Reader reads a committed object from its start.
type Reader interface {
	io.ReadCloser
	Size() int64 // the object's size in bytes
}

// ReaderAt reads one version of a committed object at any offset. Seek
// exists for readers that find the size with Seek(0, io.SeekEnd); it
// does not move ReadAt.
type ReaderAt interface {
	io.ReaderAt
	io.Seeker
	io.Closer
	Size() int64
	// Generation identifies the version read, for Replace and
	// DeleteGeneration.
	Generation() int64
}

// ObjectInfo describes a committed object.
type ObjectInfo struct {
	URL        string `json:"url"`
	Size       int64  `json:"size"`
	CRC32C     uint32 `json:"crc32c"`
	Generation int64  `json:"generation,omitempty"` // GCS object generation; 0 for local files but from Create and Replace
}

// pending is what a backend does for one object.
type pending interface {
	io.Writer
	// commit publishes the object; crc and size are the CRC32C and
	// length of all bytes written. It returns the generation the backend
	// gave the object, if any.
	commit(crc uint32, size int64) (generation int64, err error)
	abort() error
}

type objectState uint8

const (
	stateOpen objectState = iota
	stateCommitted
	stateAborted
	stateFailed
)

// Object is an object being written. It is not safe for concurrent use.
type Object struct {
	url   string
	p     pending
	crc   hash.Hash32
	size  int64
	state objectState
	err   error // the first write error; Commit refuses after one
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newObject(url string, p pending) *Object {
	return &Object{url: url, p: p, crc: crc32.New(castagnoli)}
}

// URL is the address the object gets on Commit.
func (o *Object) URL() string { return o.url }

// Write appends p to the object.
func (o *Object) Write(p []byte) (int, error) {
	switch {
	case o.state == stateAborted:
		return 0, fmt.Errorf("write %s: %w", o.url, ErrAborted)
	case o.state != stateOpen:
		return 0, fmt.Errorf("write %s: object already closed", o.url)
	case o.err != nil:
		return 0, o.err
	}
	n, err := o.p.Write(p)
	o.crc.Write(p[:n])
	o.size += int64(n)
	if err != nil {
		o.err = fmt.Errorf("write %s: %w", o.url, err)
		return n, o.err
	}
	return n, nil
}

// Size is the number of bytes written so far.
func (o *Object) Size() int64 { return o.size }

// Commit publishes the object at its name. On error nothing is published
// and the object is aborted.
func (o *Object) Commit() (ObjectInfo, error) {
	switch o.state {
	case stateAborted:
		return ObjectInfo{}, fmt.Errorf("commit %s: %w", o.url, ErrAborted)
	case stateCommitted, stateFailed:
		return ObjectInfo{}, fmt.Errorf("commit %s: object already closed", o.url)
	}
	if o.err != nil {
		o.Abort()
		return ObjectInfo{}, fmt.Errorf("commit %s after a failed write: %w", o.url, o.err)
	}
	crc := o.crc.Sum32()
	gen, err := o.p.commit(crc, o.size)
	if err != nil {
		o.state = stateFailed
		return ObjectInfo{}, fmt.Errorf("commit %s: %w", o.url, err)
	}
	o.state = stateCommitted
	return ObjectInfo{URL: o.url, Size: o.size, CRC32C: crc, Generation: gen}, nil
}

// Abort discards the object. It does nothing after Commit or a second time.
func (o *Object) Abort() error {
	if o.state != stateOpen {
		return nil
	}
	o.state = stateAborted
	if err := o.p.abort(); err != nil {
		return fmt.Errorf("abort %s: %w", o.url, err)
	}
	return nil
}

// Open returns the store for an output location: "gs://bucket" or
// "gs://bucket/root" for Cloud Storage (the client is created with the
// default credentials, or for STORAGE_EMULATOR_HOST when set), or a local
// directory as a path or file:// URL.
func Open(ctx context.Context, output string) (Store, error) {
	if strings.HasPrefix(output, "gs://") {
		bucket, root, err := ParseGCSURL(output)
		if err != nil {
			return nil, err
		}
		return OpenGCS(ctx, bucket, root)
	}
	return NewLocal(strings.TrimPrefix(output, "file://"))
}

// joinName joins a root and a name with one slash.
func joinName(root, name string) string {
	root = strings.Trim(root, "/")
	name = strings.TrimLeft(name, "/")
	if root == "" {
		return name
	}
	return root + "/" + name
}
