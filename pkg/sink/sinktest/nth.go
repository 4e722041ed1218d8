package sinktest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// NthWrite fails one write of a run, the nth: for testing what a caller
// leaves behind when each of its writes fails in turn (arm 1, 2, ...
// until a run no longer reaches the fault).
type NthWrite struct {
	arm    func(n int)
	disarm func() (reached bool, hit string)
}

// Arm fails the nth write from now on.
func (p NthWrite) Arm(n int) { p.arm(n) }

// Disarm clears the fault and says whether the writes reached it, and
// which write it hit ("KIND BASENAME").
func (p NthWrite) Disarm() (reached bool, hit string) { return p.disarm() }

// FailNthWrite fails the nth write through f: refused with err before
// it, or (applied) carried out with its reply lost, an error wrapping
// sink.ErrUnavailable and err.
func FailNthWrite(f *Faulty, applied bool, err error) NthWrite {
	fault := err
	if applied {
		fault = fmt.Errorf("%w (%w)", sink.ErrUnavailable, err)
	}
	var writes, at int
	var hit Op
	return NthWrite{
		arm: func(n int) {
			writes, at, hit = 0, n, Op{}
			f.Fail(func(op Op) StoreFault {
				if !op.Writes() {
					return StoreFault{}
				}
				if writes++; writes == at {
					hit = op
					return StoreFault{Err: fault, Applied: applied}
				}
				return StoreFault{}
			})
		},
		disarm: func() (bool, string) {
			f.Fail(nil)
			return writes >= at, hit.Kind + " " + path.Base(hit.Name)
		},
	}
}

// FailNthRequest fails the nth write request e receives: refused with a
// 403 (which the client does not retry), or (applied) carried out and
// answered 503 (which it retries, meeting its own write).
func FailNthRequest(e *Emulator, applied bool) NthWrite {
	var writes, at int
	var hit Request
	return NthWrite{
		arm: func(n int) {
			writes, at, hit = 0, n, Request{}
			e.Fail(func(r Request) Fault {
				if !r.Write {
					return Fault{}
				}
				if writes++; writes != at {
					return Fault{}
				}
				hit = r
				if applied {
					return Fault{Status: http.StatusServiceUnavailable, Applied: true}
				}
				return Fault{Status: http.StatusForbidden}
			})
		},
		disarm: func() (bool, string) {
			e.Fail(nil)
			kind := strings.ToLower(hit.Method)
			if hit.Copy {
				kind = "copy"
			}
			return writes >= at, kind + " " + path.Base(hit.Object)
		},
	}
}

// Contents is each object of names in s with the SHA-256 of its bytes.
func Contents(t testing.TB, s sink.Store, names []string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, name := range names {
		sum := sha256.Sum256(ReadAll(t, s, name))
		got[name] = hex.EncodeToString(sum[:])
	}
	return got
}

// DiffContents says what differs between two Contents: "-NAME" for an
// object gone, "~NAME" for one changed, "+NAME" for one new; "" if
// nothing.
func DiffContents(before, after map[string]string) string {
	var d []string
	for _, name := range slices.Sorted(maps.Keys(before)) {
		switch a, ok := after[name]; {
		case !ok:
			d = append(d, "-"+name)
		case a != before[name]:
			d = append(d, "~"+name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(after)) {
		if _, ok := before[name]; !ok {
			d = append(d, "+"+name)
		}
	}
	return strings.Join(d, " ")
}

// Hidden is the names in contents whose last element starts with a dot.
func Hidden(contents map[string]string) []string {
	var hidden []string
	for _, name := range slices.Sorted(maps.Keys(contents)) {
		if strings.HasPrefix(path.Base(name), ".") {
			hidden = append(hidden, name)
		}
	}
	return hidden
}

// EveryWrite runs run(n) with the nth write faulted by plan, for n = 1,
// 2, ... until a run no longer reaches its fault; that run must succeed.
// A run that fails must leave contents() as it was before it. Each run
// that succeeds is checked by check, given the contents before and after
// it; after one that met its fault (past the commit point), tidy runs
// cleanly, and must leave no hidden object. It returns the writes hit.
func EveryWrite(t *testing.T, plan NthWrite, contents func() map[string]string, run func(n int) error, check func(before, after map[string]string), tidy func()) []string {
	t.Helper()
	var hits []string
	failed, committed := 0, 0
	for n := 1; ; n++ {
		before := contents()
		plan.Arm(n)
		err := run(n)
		reached, hit := plan.Disarm()
		after := contents()
		if !reached {
			if err != nil {
				t.Fatalf("run without a fault: %v", err)
			}
			check(before, after)
			break
		}
		hits = append(hits, hit)
		if err != nil {
			failed++
			if d := DiffContents(before, after); d != "" {
				t.Errorf("fault at write %d (%s): run failed (%v) and changed the day: %s", n, hit, err, d)
			}
			continue
		}
		committed++
		check(before, after)
		// A fault after the commit may leave a hidden backup or staged
		// object, which the next run removes: let it, so that each
		// fault starts from a tidy day.
		tidy()
		if h := Hidden(contents()); h != nil {
			t.Errorf("a clean rerun left hidden objects: %v", h)
		}
	}
	t.Logf("%d faults: %d runs failed leaving the day as it was, %d committed; faulted: %s", len(hits), failed, committed, strings.Join(hits, ", "))
	return hits
}
