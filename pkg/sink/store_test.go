package sink_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

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
	removed, err := local.RemoveTemporary(ctx, "p/d", nil)
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

// once fails the first write to an object whose name ends in suffix with
// a 503, applied or not, and lets the client's retries through.
func once(e *sinktest.Emulator, suffix string, applied bool) {
	failed := false
	e.Fail(func(r sinktest.Request) sinktest.Fault {
		if r.Write && strings.HasSuffix(r.Object, suffix) && !failed {
			failed = true
			return sinktest.Fault{Status: http.StatusServiceUnavailable, Applied: applied}
		}
		return sinktest.Fault{}
	})
}

// One 503 on a small write is retried by the client (it was not, with
// ChunkSize 0); and an upload that GCS applied but whose reply was lost
// commits, although the client's retry meets the object it wrote (412):
// the object there has the bytes written.
func TestGCSRetriesAndResolvesALostReply(t *testing.T) {
	ctx := context.Background()
	for _, applied := range []bool{false, true} {
		name := map[bool]string{false: "refused once", true: "applied once, reply lost"}[applied]
		t.Run("create/"+name, func(t *testing.T) {
			e := sinktest.NewEmulator(t, "spoc-test")
			b := sinktest.GCSOn(t, e, "spoc-test", "root")
			once(e, "d/lock", applied)
			_, err := b.Store.Create(ctx, "d/lock", "text/plain", []byte("v1"))
			e.Fail(nil)
			switch {
			case !applied && err != nil:
				t.Fatalf("create after one refused request: %v, want it retried", err)
			case applied && !errors.Is(err, sink.ErrConflict):
				// The retry finds the object: the caller must read it back.
				t.Fatalf("create whose reply was lost: %v, want ErrConflict from the retry", err)
			}
			if got, _ := b.Read(t, "d/lock"); string(got) != "v1" {
				t.Errorf("object holds %q, want v1", got)
			}
		})
		t.Run("object/"+name, func(t *testing.T) {
			e := sinktest.NewEmulator(t, "spoc-test")
			b := sinktest.GCSOn(t, e, "spoc-test", "root")
			obj, err := b.Store.NewObject(ctx, "d/table.parquet", "application/octet-stream")
			if err != nil {
				t.Fatal(err)
			}
			obj.Write([]byte("PAR1 some bytes PAR1"))
			once(e, "d/table.parquet", applied)
			info, err := obj.Commit()
			e.Fail(nil)
			if err != nil {
				t.Fatalf("commit: %v, want the upload resolved", err)
			}
			now, err := b.Store.Stat(ctx, "d/table.parquet")
			if err != nil || now.Generation != info.Generation {
				t.Errorf("commit gave generation %d, the object has %d (%v)", info.Generation, now.Generation, err)
			}
		})
	}
	t.Run("object replaced by another writer", func(t *testing.T) {
		e := sinktest.NewEmulator(t, "spoc-test")
		b := sinktest.GCSOn(t, e, "spoc-test", "root")
		obj, _ := b.Store.NewObject(ctx, "d/table.parquet", "application/octet-stream")
		obj.Write([]byte("mine"))
		if _, err := b.Store.Create(ctx, "d/table.parquet", "text/plain", []byte("theirs")); err != nil {
			t.Fatal(err)
		}
		if _, err := obj.Commit(); !errors.Is(err, sink.ErrConflict) {
			t.Fatalf("commit over another writer's object: %v, want ErrConflict", err)
		}
	})
}

// A GCS that cannot be connected to at all (here a closed port on
// loopback) is ErrUnreachable, which is also ErrUnavailable, from every
// call: the caller can say GCS was never reached rather than that it
// gave no answer.
func TestGCSUnreachable(t *testing.T) {
	closed := sinktest.ClosedAddr(t)
	var dialed []string
	var mu sync.Mutex
	transport := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		if addr != closed {
			return nil, fmt.Errorf("test refuses to dial %s", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	client, err := storage.NewClient(context.Background(), option.WithHTTPClient(&http.Client{Transport: transport}),
		option.WithEndpoint("http://"+closed+"/storage/v1/"), option.WithoutAuthentication(), storage.WithJSONReads())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	store := sink.NewGCS(client, "spoc-test", "root")
	store.RetryDeadline = 200 * time.Millisecond
	for _, tc := range []struct {
		op   string
		call func(context.Context) error
	}{
		{"create", func(ctx context.Context) error {
			_, err := store.Create(ctx, "d/lock", "text/plain", []byte("v1"))
			return err
		}},
		{"replace", func(ctx context.Context) error {
			_, err := store.Replace(ctx, "d/lock", "text/plain", []byte("v2"), 7)
			return err
		}},
		{"stat", func(ctx context.Context) error { _, err := store.Stat(ctx, "d/lock"); return err }},
		{"list", func(ctx context.Context) error { _, err := store.List(ctx, "d/"); return err }},
		{"read", func(ctx context.Context) error { _, err := store.NewReader(ctx, "d/lock"); return err }},
		{"new object", func(ctx context.Context) error {
			_, err := store.NewObject(ctx, "d/table.parquet", "application/octet-stream")
			return err
		}},
	} {
		// A write gives up after store.RetryDeadline, a read when its
		// context ends. The context leaves the time a loaded machine
		// needs to get a first dial in: one that ends before any dial
		// leaves only a deadline, which is not ErrUnreachable.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := tc.call(ctx)
		cancel()
		if !errors.Is(err, sink.ErrUnreachable) || !errors.Is(err, sink.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnreachable and ErrUnavailable", tc.op, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialed) == 0 {
		t.Error("no connection was tried")
	}
	for _, addr := range dialed {
		if addr != closed {
			t.Errorf("dialed %s, not the closed loopback port", addr)
		}
	}
}
