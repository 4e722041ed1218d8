package sinktest

import (
	"context"
	"sync"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// Faulty is a Store that fails the operations a rule picks, before or
// after they take effect: a fault-injecting wrapper for testing what a
// caller leaves behind when any one step fails, on any store.
type Faulty struct {
	sink.Store
	mu   sync.Mutex
	rule func(Op) StoreFault
}

// Op is one operation on a Faulty store: its kind ("new-object",
// "create", "replace", "copy", "delete", "delete-generation", "stat",
// "read") and the object it is about (the destination of a copy).
type Op struct {
	Kind, Name string
}

// Writes reports whether the operation changes the store.
func (o Op) Writes() bool {
	switch o.Kind {
	case "stat", "read":
		return false
	}
	return true
}

// StoreFault is what a Faulty store does to one operation: nothing (a
// nil Err), or fail with Err, before the operation or, with Applied,
// after carrying it out.
type StoreFault struct {
	Err     error
	Applied bool
}

// NewFaulty wraps store; Fail sets its rule.
func NewFaulty(store sink.Store) *Faulty { return &Faulty{Store: store} }

// Fail sets the rule that picks a fault for each operation; nil clears
// it. The rule may be called from several goroutines at once.
func (f *Faulty) Fail(rule func(Op) StoreFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rule = rule
}

// fault asks the rule about one operation. The rule runs outside the
// store's lock: it may block one operation (a writer stalled mid-way)
// while others go on.
func (f *Faulty) fault(kind, name string) StoreFault {
	f.mu.Lock()
	op := Op{Kind: kind, Name: name}
	rule := f.rule
	f.mu.Unlock()
	if rule == nil {
		return StoreFault{}
	}
	return rule(op)
}

// do runs op unless the fault says to fail first, and fails after it if
// the fault was applied.
func do[T any](f *Faulty, kind, name string, op func() (T, error)) (T, error) {
	fault := f.fault(kind, name)
	if fault.Err != nil && !fault.Applied {
		var zero T
		return zero, fault.Err
	}
	v, err := op()
	if err == nil && fault.Err != nil {
		return v, fault.Err
	}
	return v, err
}

// NewObject starts the object; an applied fault aborts it before it
// fails, as a caller given an error cannot: what stays of an upload
// started whose reply was lost is a session nobody finalises.
func (f *Faulty) NewObject(ctx context.Context, name, contentType string) (*sink.Object, error) {
	obj, err := do(f, "new-object", name, func() (*sink.Object, error) { return f.Store.NewObject(ctx, name, contentType) })
	if err != nil && obj != nil {
		obj.Abort()
		return nil, err
	}
	return obj, err
}

func (f *Faulty) Create(ctx context.Context, name, contentType string, data []byte) (sink.ObjectInfo, error) {
	return do(f, "create", name, func() (sink.ObjectInfo, error) { return f.Store.Create(ctx, name, contentType, data) })
}

func (f *Faulty) Replace(ctx context.Context, name, contentType string, data []byte, generation int64) (sink.ObjectInfo, error) {
	return do(f, "replace", name, func() (sink.ObjectInfo, error) {
		return f.Store.Replace(ctx, name, contentType, data, generation)
	})
}

func (f *Faulty) Copy(ctx context.Context, from string, generation int64, to string, toGeneration int64) (sink.ObjectInfo, error) {
	return do(f, "copy", to, func() (sink.ObjectInfo, error) { return f.Store.Copy(ctx, from, generation, to, toGeneration) })
}

func (f *Faulty) Delete(ctx context.Context, name string) error {
	_, err := do(f, "delete", name, func() (struct{}, error) { return struct{}{}, f.Store.Delete(ctx, name) })
	return err
}

func (f *Faulty) DeleteGeneration(ctx context.Context, name string, generation int64) error {
	_, err := do(f, "delete-generation", name, func() (struct{}, error) {
		return struct{}{}, f.Store.DeleteGeneration(ctx, name, generation)
	})
	return err
}

func (f *Faulty) Stat(ctx context.Context, name string) (sink.ObjectInfo, error) {
	return do(f, "stat", name, func() (sink.ObjectInfo, error) { return f.Store.Stat(ctx, name) })
}

func (f *Faulty) NewReader(ctx context.Context, name string) (sink.Reader, error) {
	return do(f, "read", name, func() (sink.Reader, error) { return f.Store.NewReader(ctx, name) })
}

func (f *Faulty) NewReaderAt(ctx context.Context, name string) (sink.ReaderAt, error) {
	return do(f, "read", name, func() (sink.ReaderAt, error) { return f.Store.NewReaderAt(ctx, name) })
}

// RemoveTemporary passes through to a store that removes partial files
// (the local one), so that the wrapper changes nothing but the faults.
func (f *Faulty) RemoveTemporary(ctx context.Context, dir string, keep func(name string) bool) ([]string, error) {
	r, ok := f.Store.(interface {
		RemoveTemporary(ctx context.Context, dir string, keep func(name string) bool) ([]string, error)
	})
	if !ok {
		return nil, nil
	}
	if fault := f.fault("remove-temporary", dir); fault.Err != nil {
		return nil, fault.Err
	}
	return r.RemoveTemporary(ctx, dir, keep)
}
