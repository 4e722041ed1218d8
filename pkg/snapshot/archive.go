package snapshot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/klauspost/compress/gzip"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// rawArchive is the gzip copy of the body, written while the body streams
// into the decoder. It goes to a hidden staging name first: whether it
// ends as the day's archive or under rejected/ is known only at the end
// of the body.
//
// A body that arrives gzip-compressed is archived as it arrived
// (newGzipArchive): the received stream is already a gzip file of the
// body, so nothing is compressed again. Otherwise the body is compressed
// here (newRawArchive).
type rawArchive struct {
	store   sink.Store
	staging string
	obj     *sink.Object
	gz      *gzip.Writer  // nil when the bytes written are gzip already
	out     *bufio.Writer // between gz and obj; nil with gz
	async   *asyncWriter  // feeds gz (or obj) on a goroutine of its own
}

// newGzipArchive starts an archive written with the received gzip stream
// of the body itself (fetch.Body.TeeGzip).
func newGzipArchive(ctx context.Context, store sink.Store, staging string) (*rawArchive, error) {
	obj, err := store.NewObject(ctx, staging, "application/gzip")
	if err != nil {
		return nil, err
	}
	return &rawArchive{store: store, staging: staging, obj: obj, async: newAsyncWriter(obj, 4, 256<<10)}, nil
}

// newRawArchive starts the archive at the staged name staging: hidden
// and not ending in .json.gz, so globs over the snapshots never pick it
// up.
func newRawArchive(ctx context.Context, store sink.Store, staging string) (*rawArchive, error) {
	obj, err := store.NewObject(ctx, staging, "application/gzip")
	if err != nil {
		return nil, err
	}
	// Fastest level: compressing 200 MB takes tens of CPU seconds on a
	// small machine even so, and this JSON still shrinks fivefold.
	// The compressor writes a few hundred bytes at a time (its bit
	// writer's buffer): unbuffered, a 36 MB archive would take some
	// 145,000 writes, each a system call on local disk and a hand-over to
	// the upload goroutine on GCS.
	out := bufio.NewWriterSize(obj, archiveWriteBuffer)
	gz, err := gzip.NewWriterLevel(out, gzip.BestSpeed)
	if err != nil {
		obj.Abort()
		return nil, err
	}
	// 4 x 256 KiB: the decoder's reads are 64 KiB.
	return &rawArchive{store: store, staging: staging, obj: obj, gz: gz, out: out, async: newAsyncWriter(gz, 4, 256<<10)}, nil
}

// archiveWriteBuffer is the size of the writes of a compressed archive
// to its object.
const archiveWriteBuffer = 256 << 10

func (a *rawArchive) Write(p []byte) (int, error) { return a.async.Write(p) }

// commit finishes the archive and commits it at its staged name.
func (a *rawArchive) commit() (sink.ObjectInfo, error) {
	if err := a.async.Close(); err != nil {
		a.obj.Abort()
		return sink.ObjectInfo{}, fmt.Errorf("write %s: %w", a.obj.URL(), err)
	}
	if a.gz != nil {
		err := a.gz.Close()
		if err == nil {
			err = a.out.Flush()
		}
		if err != nil {
			a.obj.Abort()
			return sink.ObjectInfo{}, fmt.Errorf("write %s: %w", a.obj.URL(), err)
		}
	}
	return a.obj.Commit()
}

// publish commits the archive and moves it to name, out of the day's
// publish: the body of a refused run, or of one that failed on its
// content, kept under rejected/.
func (a *rawArchive) publish(ctx context.Context, name string) (sink.ObjectInfo, error) {
	info, err := a.commit()
	if err != nil {
		return sink.ObjectInfo{}, err
	}
	drop := func() error {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		return a.store.DeleteGeneration(cctx, a.staging, info.Generation)
	}
	// Copy, under a precondition on what is at name, then remove the
	// staged object (by the generation committed: only this one).
	var there int64
	if now, err := a.store.Stat(ctx, name); err == nil {
		there = now.Generation
	} else if !errors.Is(err, fs.ErrNotExist) {
		return sink.ObjectInfo{}, errors.Join(err, drop())
	}
	copied, err := a.store.Copy(ctx, a.staging, info.Generation, name, there)
	if err != nil {
		return sink.ObjectInfo{}, errors.Join(err, drop())
	}
	return copied, drop()
}

// abort drops an archive that was not published.
func (a *rawArchive) abort() {
	a.async.Close()
	a.obj.Abort()
}
