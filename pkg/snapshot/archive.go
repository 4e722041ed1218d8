package snapshot

import (
	"bufio"
	"fmt"

	"github.com/klauspost/compress/gzip"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// rawArchive is the gzip copy of the body, written while the body streams
// into the decoder to an object staged in the attempt's transaction:
// whether it ends as the day's archive or, set aside, under rejected/ is
// known only at the end of the body.
//
// A body that arrives gzip-compressed is archived as it arrived
// (newGzipArchive): the received stream is already a gzip file of the
// body, so nothing is compressed again. Otherwise the body is compressed
// here (newRawArchive).
type rawArchive struct {
	obj   *sink.Object
	gz    *gzip.Writer  // nil when the bytes written are gzip already
	out   *bufio.Writer // between gz and obj; nil with gz
	async *asyncWriter  // feeds gz (or obj) on a goroutine of its own
}

// newGzipArchive starts an archive written to obj with the received
// gzip stream of the body itself (fetch.Body.TeeGzip).
func newGzipArchive(obj *sink.Object) *rawArchive {
	return &rawArchive{obj: obj, async: newAsyncWriter(obj, 4, 256<<10)}
}

// newRawArchive starts an archive that compresses what it is written
// into obj.
func newRawArchive(obj *sink.Object) (*rawArchive, error) {
	// Fastest level: compressing 200 MB takes tens of CPU seconds on a
	// small machine even so, and this JSON still shrinks fivefold.
	// The compressor writes a few hundred bytes at a time (its bit
	// writer's buffer): unbuffered, a 36 MB archive would take some
	// 145,000 writes, each a system call on local disk and a hand-over to
	// the upload goroutine on GCS.
	out := bufio.NewWriterSize(obj, archiveWriteBuffer)
	gz, err := gzip.NewWriterLevel(out, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	// 4 x 256 KiB: the decoder's reads are 64 KiB.
	return &rawArchive{obj: obj, gz: gz, out: out, async: newAsyncWriter(gz, 4, 256<<10)}, nil
}

// archiveWriteBuffer is the size of the writes of a compressed archive
// to its object.
const archiveWriteBuffer = 256 << 10

func (a *rawArchive) Write(p []byte) (int, error) { return a.async.Write(p) }

// finish writes the rest of the archive to its object, which is then
// ready to commit; on failure the object is aborted.
func (a *rawArchive) finish() error {
	if err := a.async.Close(); err != nil {
		a.obj.Abort()
		return fmt.Errorf("write %s: %w", a.obj.URL(), err)
	}
	if a.gz != nil {
		err := a.gz.Close()
		if err == nil {
			err = a.out.Flush()
		}
		if err != nil {
			a.obj.Abort()
			return fmt.Errorf("write %s: %w", a.obj.URL(), err)
		}
	}
	return nil
}

// stop ends the archive's goroutine; the transaction aborts its object.
func (a *rawArchive) stop() { a.async.Close() }
