package sink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Local is a Store in a local directory.
type Local struct {
	root string
}

// NewLocal returns a Store rooted at dir. The directory is created on the
// first write if it does not exist.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("local output: empty directory name")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local output %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("local output %s: not a directory", abs)
	}
	return &Local{root: abs}, nil
}

func (l *Local) path(name string) (string, error) {
	clean := filepath.FromSlash(joinName("", name))
	if clean == "" || !filepath.IsLocal(clean) {
		return "", fmt.Errorf("object name %q leaves the output directory", name)
	}
	return filepath.Join(l.root, clean), nil
}

// URL returns the object's absolute path.
func (l *Local) URL(name string) string {
	p, err := l.path(name)
	if err != nil {
		return filepath.Join(l.root, name)
	}
	return p
}

// NewObject creates a hidden temporary file beside the final name. Its
// name starts with "." and does not end in the final extension, so globs
// such as "*/*.parquet" never pick up a partial file.
func (l *Local) NewObject(ctx context.Context, name, _ string) (*Object, error) {
	final, err := l.path(name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", final, err)
	}
	f, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", final, err)
	}
	return newObject(final, &localPending{ctx: ctx, f: f, final: final, seen: currentGeneration(final)}), nil
}

// currentGeneration is the generation of the file at p, or 0 if there is
// none: the view a commit checks again, as GCS's precondition does.
func currentGeneration(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return localGeneration(fi)
}

// Delete removes the file at name, and the folders above it that this
// leaves empty (below the root), as a GCS "folder" goes with its last
// object.
func (l *Local) Delete(_ context.Context, name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	l.removeEmptyFolders(filepath.Dir(p))
	return nil
}

// removeEmptyFolders removes dir and its parents below the root while
// they are empty; rmdir(2) refuses a folder that is not, so a concurrent
// writer's folder stays.
func (l *Local) removeEmptyFolders(dir string) {
	for dir != l.root && strings.HasPrefix(dir, l.root+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// NewReader opens the file at name.
func (l *Local) NewReader(ctx context.Context, name string) (Reader, error) {
	r, err := l.NewReaderAt(ctx, name)
	if err != nil {
		return nil, err
	}
	return r.(localReaderAt), nil
}

// NewReaderAt opens the file at name for random access.
func (l *Local) NewReaderAt(_ context.Context, name string) (ReaderAt, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	// O_NONBLOCK: a FIFO opens at once, to be refused below, instead of
	// blocking until a writer comes; a regular file reads as usual.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("read %s: %w (%s)", p, ErrNotObject, fi.Mode().Type())
	}
	return localReaderAt{f, fi.Size(), localGeneration(fi)}, nil
}

type localReaderAt struct {
	*os.File
	size       int64
	generation int64
}

func (r localReaderAt) Size() int64       { return r.size }
func (r localReaderAt) Generation() int64 { return r.generation }

// localGeneration stands in for a GCS generation: every write makes a
// new file (a temporary one renamed into place), so the inode number with
// the modification time and size tells one version from the next.
func localGeneration(fi fs.FileInfo) int64 {
	h := fnv.New64a()
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = uint64(st.Ino)
	}
	binary.Write(h, binary.LittleEndian, [3]int64{int64(ino), fi.ModTime().UnixNano(), fi.Size()})
	return int64(h.Sum64()&math.MaxInt64) | 1
}

// List walks the directory below the output root, skipping the temporary
// files of objects being written.
func (l *Local) List(_ context.Context, prefix string) ([]string, error) {
	// Walk only the deepest directory the prefix names.
	dir := l.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		p, err := l.path(prefix[:i])
		if err != nil {
			return nil, err
		}
		dir = p
	}
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dir {
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		if d.IsDir() || isTemporary(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(l.root, p)
		if err != nil {
			return err
		}
		if name := filepath.ToSlash(rel); strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l.URL(prefix), err)
	}
	sort.Strings(names)
	return names, nil
}

// Stat describes the file at name.
func (l *Local) Stat(_ context.Context, name string) (ObjectInfo, error) {
	p, err := l.path(name)
	if err != nil {
		return ObjectInfo{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", p, err)
	}
	return ObjectInfo{URL: p, Size: fi.Size(), Generation: localGeneration(fi)}, nil
}

// Copy hard-links the file at from to a temporary name beside to, checks
// to's generation and renames the link over it. The copy shares the
// file's inode, and so its generation; its CRC32C is read from the file.
func (l *Local) Copy(_ context.Context, from string, generation int64, to string, toGeneration int64) (ObjectInfo, error) {
	src, err := l.path(from)
	if err != nil {
		return ObjectInfo{}, err
	}
	dst, err := l.path(to)
	if err != nil {
		return ObjectInfo{}, err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("copy %s: %w", src, err)
	}
	if localGeneration(fi) != generation {
		return ObjectInfo{}, fmt.Errorf("copy %s: %w: generation %d is no longer there", src, fs.ErrNotExist, generation)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return ObjectInfo{}, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-"+strconv.FormatUint(rand.Uint64(), 36))
	if err := os.Link(src, tmp); err != nil {
		return ObjectInfo{}, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	defer os.Remove(tmp)
	if currentGeneration(dst) != toGeneration {
		return ObjectInfo{}, fmt.Errorf("copy %s to %s: %w", src, dst, ErrConflict)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return ObjectInfo{}, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	syncDir(filepath.Dir(dst))
	crc, err := fileCRC32C(dst)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return ObjectInfo{URL: dst, Size: fi.Size(), CRC32C: crc, Generation: generation}, nil
}

// fileCRC32C is the CRC32C of the file at p.
func fileCRC32C(p string) (uint32, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, f); err != nil {
		return 0, err
	}
	return h.Sum32(), nil
}

// Create writes a temporary file and links it to name: link(2) fails if
// name exists, which makes the creation exclusive.
func (l *Local) Create(_ context.Context, name, _ string, data []byte) (ObjectInfo, error) {
	final, tmp, err := l.writeTemporary(name, data)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("create %s: %w", final, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ObjectInfo{}, fmt.Errorf("create %s: %w", final, ErrConflict)
		}
		return ObjectInfo{}, fmt.Errorf("create %s: %w", final, err)
	}
	syncDir(filepath.Dir(final))
	return l.info(final, data)
}

// Replace renames a new file over name if the file there is still at
// generation.
func (l *Local) Replace(_ context.Context, name, _ string, data []byte, generation int64) (ObjectInfo, error) {
	final, tmp, err := l.writeTemporary(name, data)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("replace %s: %w", final, err)
	}
	defer os.Remove(tmp)
	fi, err := os.Stat(final)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ObjectInfo{}, fmt.Errorf("replace %s: %w: it was deleted", final, ErrConflict)
	case err != nil:
		return ObjectInfo{}, fmt.Errorf("replace %s: %w", final, err)
	case localGeneration(fi) != generation:
		return ObjectInfo{}, fmt.Errorf("replace %s: %w", final, ErrConflict)
	}
	if err := os.Rename(tmp, final); err != nil {
		return ObjectInfo{}, fmt.Errorf("replace %s: %w", final, err)
	}
	syncDir(filepath.Dir(final))
	return l.info(final, data)
}

// DeleteGeneration removes the file at name if it is still at generation.
func (l *Local) DeleteGeneration(ctx context.Context, name string, generation int64) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	fi, err := os.Stat(p)
	if err != nil || localGeneration(fi) != generation {
		return nil
	}
	return l.Delete(ctx, name)
}

// writeTemporary writes data to a hidden temporary file beside name's
// final path, readable by all as a committed object is.
func (l *Local) writeTemporary(name string, data []byte) (final, tmp string, err error) {
	if final, err = l.path(name); err != nil {
		return name, "", err
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return final, "", err
	}
	f, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".tmp-*")
	if err != nil {
		return final, "", err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		os.Remove(f.Name())
		return final, "", err
	}
	return final, f.Name(), nil
}

// info describes the file at p, just written with data.
func (l *Local) info(p string, data []byte) (ObjectInfo, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", p, err)
	}
	return ObjectInfo{URL: p, Size: fi.Size(), CRC32C: crc32.Checksum(data, castagnoli), Generation: localGeneration(fi)}, nil
}

// RemoveTemporary removes the hidden temporary files below the folder
// dir (".NAME.tmp-*", in subfolders too) and returns their names. They
// are what a writer killed before Commit or Abort leaves behind (a
// crashed process runs no deferred Abort): call it only while no other
// writer can be writing below dir, but for the files keep spares (by
// their base names; nil spares none), which a live writer may be
// writing still.
func (l *Local) RemoveTemporary(_ context.Context, dir string, keep func(name string) bool) ([]string, error) {
	root, err := l.path(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == root {
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		if d.IsDir() || !isTemporary(d.Name()) || keep != nil && keep(d.Name()) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		rel, _ := filepath.Rel(l.root, p)
		removed = append(removed, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("remove temporary files below %s: %w", root, err)
	}
	return removed, nil
}

type localPending struct {
	ctx   context.Context
	f     *os.File
	final string
	seen  int64 // the final name's generation when the object was started; 0: absent
}

func (p *localPending) Write(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	return p.f.Write(b)
}

func (p *localPending) commit(uint32, int64) (int64, error) {
	tmp := p.f.Name()
	err := p.ctx.Err()
	if err == nil {
		err = p.f.Sync()
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644) // CreateTemp makes the file private
	}
	if err == nil && currentGeneration(p.final) != p.seen {
		err = fmt.Errorf("%w: %s was replaced or deleted since this object was started", ErrConflict, p.final)
	}
	if err == nil {
		err = os.Rename(tmp, p.final)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	syncDir(filepath.Dir(p.final))
	// The generation of what this commit put there, so that its writer
	// can later replace or delete exactly that version and nothing else.
	return currentGeneration(p.final), nil
}

// syncDir syncs a directory so a rename in it survives a crash.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func (p *localPending) abort() error {
	p.f.Close()
	if err := os.Remove(p.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// isTemporary reports whether a file name is one of Local's partial files.
func isTemporary(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}
