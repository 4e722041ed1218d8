package sink_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/sink/sinktest"
)

// TestStores runs the conformance suite against both stores.
func TestStores(t *testing.T) {
	t.Run("local", func(t *testing.T) { sinktest.Run(t, sinktest.Local) })
	t.Run("gcs", func(t *testing.T) { sinktest.Run(t, sinktest.GCS) })
}

// A killed writer runs no Abort: RemoveTemporary takes away its
// temporary files below a folder, and nothing else.
func TestLocalRemoveTemporary(t *testing.T) {
	b := sinktest.Local(t)
	local := b.Store.(*sink.Local)
	ctx := context.Background()
	sinktest.Write(t, local, ctx, "p/d/kept", []byte("committed"))
	sinktest.Write(t, local, ctx, "p/other/kept", []byte("committed"))
	for _, name := range []string{"p/d/x", "p/d/sub/y", "p/other/z"} {
		obj, err := local.NewObject(ctx, name, "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		obj.Write([]byte("partial"))
		// not aborted: as if the process had been killed
	}
	removed, err := local.RemoveTemporary(ctx, "p/d")
	if err != nil || len(removed) != 2 {
		t.Fatalf("RemoveTemporary = %v, %v; want the two partial files below p/d", removed, err)
	}
	var left []string
	for _, name := range b.List(t) {
		if strings.Contains(name, ".tmp-") {
			left = append(left, name)
		}
	}
	if len(left) != 1 || !strings.HasPrefix(left[0], "p/other/") {
		t.Errorf("temporary files left: %v, want only p/other's", left)
	}
	if got, ok := b.Read(t, "p/d/kept"); !ok || string(got) != "committed" {
		t.Error("a committed file was removed")
	}
}

// A transient failure from GCS is ErrUnavailable, whether the write was
// refused or went through and only its reply was lost: the caller reads
// the object back to tell which.
func TestGCSTransientFailure(t *testing.T) {
	for _, applied := range []bool{false, true} {
		t.Run(map[bool]string{false: "refused", true: "applied, reply lost"}[applied], func(t *testing.T) {
			e := sinktest.NewEmulator(t, "spoc-test")
			b := sinktest.GCSOn(t, e, "spoc-test", "root")
			ctx := context.Background()
			first, err := b.Store.Create(ctx, "d/lease", "text/plain", []byte("v1"))
			if err != nil {
				t.Fatal(err)
			}
			e.Fail(func(r sinktest.Request) sinktest.Fault {
				if r.Write && strings.HasSuffix(r.Object, "d/lease") {
					return sinktest.Fault{Status: http.StatusServiceUnavailable, Applied: applied}
				}
				return sinktest.Fault{}
			})
			_, err = b.Store.Replace(ctx, "d/lease", "text/plain", []byte("v2"), first.Generation)
			e.Fail(nil)
			if !errors.Is(err, sink.ErrUnavailable) {
				t.Fatalf("replace answered 503: %v, want sink.ErrUnavailable", err)
			}
			want := map[bool]string{false: "v1", true: "v2"}[applied]
			if got, _ := b.Read(t, "d/lease"); string(got) != want {
				t.Errorf("object holds %q, want %q", got, want)
			}
		})
	}
}
