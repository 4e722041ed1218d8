package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
)

// GCS is a Store in a Cloud Storage bucket, below a root prefix.
type GCS struct {
	client *storage.Client
	bucket string
	root   string
	// RetryDeadline bounds how long one write request (a small object, a
	// chunk of an upload) is retried on transient errors; zero means the
	// client library's default for a chunk, 32 s. The client retries a
	// small upload until its context ends otherwise.
	RetryDeadline time.Duration
}

func (g *GCS) retryDeadline() time.Duration {
	if g.RetryDeadline > 0 {
		return g.RetryDeadline
	}
	return 32 * time.Second
}

// NewGCS returns a Store writing with client into bucket below root.
func NewGCS(client *storage.Client, bucket, root string) *GCS {
	return &GCS{client: client, bucket: bucket, root: strings.Trim(root, "/")}
}

// OpenGCS creates a client with the default credentials (or for the
// emulator named by STORAGE_EMULATOR_HOST) and returns a Store on bucket.
// The client reads through the JSON API, as it writes: emulators serve
// downloads only there.
func OpenGCS(ctx context.Context, bucket, root string) (*GCS, error) {
	client, err := storage.NewClient(ctx, storage.WithJSONReads())
	if err != nil {
		return nil, fmt.Errorf("gcs client: %w", err)
	}
	return NewGCS(client, bucket, root), nil
}

// Bucket names: 3 to 63 characters of lower-case letters, digits, "-",
// "_" and "." (up to 222 with dots), starting and ending with a letter or
// digit.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$`)

// ParseGCSURL splits "gs://bucket/root" into its bucket and root.
func ParseGCSURL(u string) (bucket, root string, err error) {
	rest, ok := strings.CutPrefix(u, "gs://")
	if !ok {
		return "", "", fmt.Errorf("%q is not a gs:// URL", u)
	}
	bucket, root, _ = strings.Cut(rest, "/")
	if !bucketName.MatchString(bucket) {
		return "", "", fmt.Errorf("%q: %q is not a valid bucket name", u, bucket)
	}
	return bucket, strings.Trim(root, "/"), nil
}

// URL returns gs://bucket/root/name.
func (g *GCS) URL(name string) string {
	return "gs://" + g.bucket + "/" + joinName(g.root, name)
}

// NewObject starts a resumable upload to name. The upload carries a
// precondition: the object must still not exist, or still be at the
// generation seen now. That makes a rerun replace the previous object
// atomically, turns a concurrent writer into ErrConflict instead of a
// silent overwrite, and lets the client retry a failed chunk, which it
// only does for uploads with a precondition.
func (g *GCS) NewObject(ctx context.Context, name, contentType string) (*Object, error) {
	key := joinName(g.root, name)
	url := "gs://" + g.bucket + "/" + key
	handle := g.client.Bucket(g.bucket).Object(key)
	cond, err := replaceCondition(ctx, handle, url)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	w := handle.If(cond).NewWriter(wctx)
	w.ContentType = contentType
	w.ChunkRetryDeadline = g.retryDeadline()
	return newObject(url, &gcsPending{ctx: ctx, w: w, cancel: cancel, handle: handle, cond: cond}), nil
}

// Delete removes the object at name.
func (g *GCS) Delete(ctx context.Context, name string) error {
	key := joinName(g.root, name)
	err := g.client.Bucket(g.bucket).Object(key).Delete(ctx)
	if err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("delete gs://%s/%s: %w", g.bucket, key, err)
	}
	return nil
}

// NewReader reads the object at name.
func (g *GCS) NewReader(ctx context.Context, name string) (Reader, error) {
	r, err := g.client.Bucket(g.bucket).Object(joinName(g.root, name)).NewReader(ctx)
	if err != nil {
		return nil, gcsError("read", g.URL(name), err)
	}
	return gcsReader{r}, nil
}

type gcsReader struct{ *storage.Reader }

func (r gcsReader) Size() int64 { return r.Attrs.Size }

// ErrUnreachable is ErrUnavailable when no connection to GCS could be
// made at all (refused, no route, a host name that does not resolve):
// GCS was never reached, rather than reached and failing.
var ErrUnreachable error = unreachableError{}

type unreachableError struct{}

func (unreachableError) Error() string        { return "store unreachable" }
func (unreachableError) Is(target error) bool { return target == ErrUnavailable }

// unreachable reports whether err is a failure to connect: a dial that
// failed, or a host name that did not resolve.
func unreachable(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &dns) || (errors.As(err, &op) && op.Op == "dial")
}

// gcsError is where GCS errors become the Store's: a missing object wraps
// fs.ErrNotExist, a failed precondition (HTTP 412) ErrConflict, and what
// the client library would retry (429, 5xx, a reset or cut connection)
// ErrUnavailable.
func gcsError(op, url string, err error) error {
	if url != "" {
		op += " " + url
	}
	var gerr *googleapi.Error
	isAPI := errors.As(err, &gerr)
	switch {
	case errors.Is(err, storage.ErrObjectNotExist), isAPI && gerr.Code == http.StatusNotFound:
		return fmt.Errorf("%s: %w (%w)", op, fs.ErrNotExist, err)
	case isAPI && gerr.Code == http.StatusPreconditionFailed:
		return fmt.Errorf("%s: %w (%w)", op, ErrConflict, err)
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", op, err)
	case unreachable(err):
		// The client retried until the context ended: ErrUnreachable
		// says that no try got through, which a deadline alone hides.
		return fmt.Errorf("%s: %w (%w)", op, ErrUnreachable, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	case storage.ShouldRetry(err):
		return fmt.Errorf("%s: %w (%w)", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// NewReaderAt opens the object at name for ranged reads. The reads are
// pinned to the generation there now: should the object be replaced
// meanwhile, they fail instead of mixing two versions.
func (g *GCS) NewReaderAt(ctx context.Context, name string) (ReaderAt, error) {
	handle := g.client.Bucket(g.bucket).Object(joinName(g.root, name))
	attrs, err := handle.Attrs(ctx)
	if err != nil {
		return nil, gcsError("read", g.URL(name), err)
	}
	return &gcsReaderAt{ctx: ctx, handle: handle.Generation(attrs.Generation), url: g.URL(name), size: attrs.Size, generation: attrs.Generation}, nil
}

// gcsReaderAt makes one ranged GET per ReadAt; Parquet readers ask for a
// whole column chunk at a time, so there are few.
type gcsReaderAt struct {
	ctx        context.Context
	handle     *storage.ObjectHandle
	url        string
	size       int64
	generation int64
	pos        int64 // for Seek only
}

func (r *gcsReaderAt) Size() int64       { return r.size }
func (r *gcsReaderAt) Generation() int64 { return r.generation }

func (r *gcsReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", r.url, off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want, short := int64(len(p)), false
	if off+want > r.size {
		want, short = r.size-off, true
	}
	rr, err := r.handle.NewRangeReader(r.ctx, off, want)
	if err != nil {
		return 0, fmt.Errorf("read %s at %d: %w", r.url, off, err)
	}
	defer rr.Close()
	n, err := io.ReadFull(rr, p[:want])
	if err != nil {
		return n, fmt.Errorf("read %s at %d: %w", r.url, off, err)
	}
	if short {
		return n, io.EOF
	}
	return n, nil
}

func (r *gcsReaderAt) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	}
	if offset < 0 {
		return r.pos, fmt.Errorf("seek %s: negative position %d", r.url, offset)
	}
	r.pos = offset
	return offset, nil
}

func (r *gcsReaderAt) Close() error { return nil }

// List lists the bucket below root+prefix. Objects being written are not
// listed: GCS shows an upload only once it is finalised.
func (g *GCS) List(ctx context.Context, prefix string) ([]string, error) {
	q := &storage.Query{Prefix: joinName(g.root, prefix)}
	if err := q.SetAttrSelection([]string{"Name"}); err != nil {
		return nil, err
	}
	var names []string
	it := g.client.Bucket(g.bucket).Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, gcsError("list", g.URL(prefix), err)
		}
		name := attrs.Name
		if g.root != "" {
			name = strings.TrimPrefix(name, g.root+"/")
		}
		names = append(names, name)
	}
	return names, nil // GCS lists in lexicographic order
}

// Stat reads the object's attributes.
func (g *GCS) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	attrs, err := g.client.Bucket(g.bucket).Object(joinName(g.root, name)).Attrs(ctx)
	if err != nil {
		return ObjectInfo{}, gcsError("stat", g.URL(name), err)
	}
	return ObjectInfo{URL: g.URL(name), Size: attrs.Size, CRC32C: attrs.CRC32C, Generation: attrs.Generation}, nil
}

// Copy rewrites that generation of from to to on the server, under a
// precondition on to: a metadata copy within one bucket, location and
// storage class, whatever the object's size.
func (g *GCS) Copy(ctx context.Context, from string, generation int64, to string, toGeneration int64) (ObjectInfo, error) {
	if generation <= 0 {
		return ObjectInfo{}, fmt.Errorf("copy %s: no generation to copy", g.URL(from))
	}
	bucket := g.client.Bucket(g.bucket)
	src := bucket.Object(joinName(g.root, from)).Generation(generation)
	dst := bucket.Object(joinName(g.root, to)).If(generationCondition(toGeneration))
	attrs, err := dst.CopierFrom(src).Run(ctx)
	if err != nil {
		return ObjectInfo{}, gcsError("copy "+g.URL(from)+" to", g.URL(to), err)
	}
	return ObjectInfo{URL: g.URL(to), Size: attrs.Size, CRC32C: attrs.CRC32C, Generation: attrs.Generation}, nil
}

// generationCondition is the precondition "still at generation", or
// "still absent" for 0.
func generationCondition(generation int64) storage.Conditions {
	if generation == 0 {
		return storage.Conditions{DoesNotExist: true}
	}
	return storage.Conditions{GenerationMatch: generation}
}

// Create uploads data with a does-not-exist precondition.
func (g *GCS) Create(ctx context.Context, name, contentType string, data []byte) (ObjectInfo, error) {
	info, err := g.upload(ctx, name, contentType, data, storage.Conditions{DoesNotExist: true})
	if err != nil {
		return ObjectInfo{}, gcsError("create", g.URL(name), err)
	}
	return info, nil
}

// Replace uploads data with a generation-match precondition.
func (g *GCS) Replace(ctx context.Context, name, contentType string, data []byte, generation int64) (ObjectInfo, error) {
	if generation <= 0 {
		return ObjectInfo{}, fmt.Errorf("replace %s: no generation to match", g.URL(name))
	}
	info, err := g.upload(ctx, name, contentType, data, storage.Conditions{GenerationMatch: generation})
	if err != nil {
		return ObjectInfo{}, gcsError("replace", g.URL(name), err)
	}
	return info, nil
}

// upload writes a small object in one request under cond.
func (g *GCS) upload(parent context.Context, name, contentType string, data []byte, cond storage.Conditions) (ObjectInfo, error) {
	ctx, cancel := context.WithTimeout(parent, g.retryDeadline())
	defer cancel()
	w := g.client.Bucket(g.bucket).Object(joinName(g.root, name)).If(cond).NewWriter(ctx)
	w.ContentType = contentType
	// One chunk of 256 KiB holds these small objects, so they go in one
	// request; and unlike ChunkSize 0 a chunked upload is retried by the
	// client on a transient error, which the precondition makes safe.
	w.ChunkSize = googleapi.MinUploadChunkSize
	w.Write(data)
	if err := w.Close(); err != nil {
		if ctx.Err() != nil && parent.Err() == nil {
			if unreachable(err) {
				return ObjectInfo{}, fmt.Errorf("%w: no connection could be made (%w)", ErrUnreachable, err)
			}
			return ObjectInfo{}, fmt.Errorf("%w: no answer in %s of retries (%w)", ErrUnavailable, g.retryDeadline(), err)
		}
		return ObjectInfo{}, err
	}
	a := w.Attrs()
	return ObjectInfo{URL: g.URL(name), Size: a.Size, CRC32C: a.CRC32C, Generation: a.Generation}, nil
}

// DeleteGeneration deletes that generation of the object: GCS answers
// 404 when it is not the live one (or is gone), which is left alone.
func (g *GCS) DeleteGeneration(ctx context.Context, name string, generation int64) error {
	err := g.client.Bucket(g.bucket).Object(joinName(g.root, name)).Generation(generation).Delete(ctx)
	if err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("delete %s generation %d: %w", g.URL(name), generation, err)
	}
	return nil
}

type gcsPending struct {
	ctx    context.Context
	w      *storage.Writer
	cancel context.CancelFunc
	handle *storage.ObjectHandle
	cond   storage.Conditions // the upload's precondition
}

func (p *gcsPending) Write(b []byte) (int, error) { return p.w.Write(b) }

func (p *gcsPending) commit(crc uint32, size int64) (int64, error) {
	defer p.cancel()
	if err := p.w.Close(); err != nil {
		if gen, ok := p.landed(crc, size, err); ok {
			return gen, nil
		}
		return 0, gcsError("finalise the upload", "", err)
	}
	attrs := p.w.Attrs()
	if attrs.CRC32C != crc {
		// GCS checks the checksum the client sends, so this means the
		// bytes were changed between this process and the client library.
		// Take the object back rather than let it stand.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), 30*time.Second)
		defer cancel()
		p.handle.If(storage.Conditions{GenerationMatch: attrs.Generation}).Delete(ctx)
		return 0, fmt.Errorf("stored CRC32C %08x differs from written %08x", attrs.CRC32C, crc)
	}
	return attrs.Generation, nil
}

// landed resolves a finalise that failed with a precondition failure or
// a transient error: when GCS applied the upload but its reply was lost,
// the client's retry meets the object it just wrote and gets 412. If the
// object there now has exactly the bytes written (size and CRC32C) and
// is not the generation the precondition expected, the upload landed,
// and its generation is returned. An object of the same bytes from
// another writer would be indistinguishable, and as good.
func (p *gcsPending) landed(crc uint32, size int64, err error) (int64, bool) {
	var gerr *googleapi.Error
	if !(errors.As(err, &gerr) && gerr.Code == http.StatusPreconditionFailed) && !storage.ShouldRetry(err) {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), 30*time.Second)
	defer cancel()
	attrs, aerr := p.handle.Attrs(ctx)
	if aerr != nil || attrs.Size != size || attrs.CRC32C != crc ||
		(p.cond.GenerationMatch != 0 && attrs.Generation == p.cond.GenerationMatch) {
		return 0, false
	}
	return attrs.Generation, true
}

// abort cancels the upload's context before closing the writer: a
// storage.Writer closed with a live context would finalise the object.
func (p *gcsPending) abort() error {
	p.cancel()
	p.w.Close()
	return nil
}

// replaceCondition is the precondition of a write that replaces the object
// at handle: still absent, or still at the generation seen now.
func replaceCondition(ctx context.Context, handle *storage.ObjectHandle, url string) (storage.Conditions, error) {
	attrs, err := handle.Attrs(ctx)
	switch {
	case errors.Is(err, storage.ErrObjectNotExist):
		return storage.Conditions{DoesNotExist: true}, nil
	case err != nil:
		return storage.Conditions{}, gcsError("stat", url, err)
	}
	return storage.Conditions{GenerationMatch: attrs.Generation}, nil
}
