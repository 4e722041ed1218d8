package sink

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
	return newObject(final, &localPending{ctx: ctx, f: f, final: final}), nil
}

// Delete removes the file at name.
func (l *Local) Delete(_ context.Context, name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	return nil
}

type localPending struct {
	ctx   context.Context
	f     *os.File
	final string
}

func (p *localPending) Write(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	return p.f.Write(b)
}

func (p *localPending) commit(uint32) (int64, error) {
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
	if err == nil {
		err = os.Rename(tmp, p.final)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	// Sync the directory so the rename survives a crash.
	if d, err := os.Open(filepath.Dir(p.final)); err == nil {
		d.Sync()
		d.Close()
	}
	return 0, nil
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
