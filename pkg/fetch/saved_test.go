package fetch_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/calee-data/mspo-spoc/pkg/fetch"
)

// TestSavedBodyErrors: a saved body that is cut or corrupt is a
// *BodyError, FailureBadBody, not retried: reading it again gives the
// same bytes. Errors of the store a body is read from through an Opener
// keep their own kind (a reset GCS read may well succeed the next time).
func TestSavedBodyErrors(t *testing.T) {
	_, gz := generated(t, 2000, 5)
	corrupt := bytes.Clone(gz)
	corrupt[len(corrupt)-6] ^= 0xff // the CRC-32 of the trailer

	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	stored := map[string]io.Reader{
		"gs://b/cut.json.gz":   bytes.NewReader(gz[:len(gz)/2]),
		"gs://b/reset.json.gz": io.MultiReader(bytes.NewReader(gz[:len(gz)/2]), iotest.ErrReader(syscall.ECONNRESET)),
	}
	c, err := fetch.NewClient(fetch.ClientOptions{Openers: map[string]fetch.Opener{
		"gs": func(_ context.Context, u string) (io.ReadCloser, int64, error) {
			return io.NopCloser(stored[u]), -1, nil
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, source string
		kind         string
	}{
		{"a cut .gz file", write("cut.json.gz", gz[:len(gz)/2]), fetch.FailureBadBody},
		{"a .gz file cut in its header", write("head.json.gz", gz[:6]), fetch.FailureBadBody},
		{"a .gz file whose checksum fails", write("corrupt.json.gz", corrupt), fetch.FailureBadBody},
		{"a cut gzip object", "gs://b/cut.json.gz", fetch.FailureBadBody},
		{"a gzip object whose read is reset", "gs://b/reset.json.gz", fetch.FailureReset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readAll(t, c, tc.source)
			f := fetch.Classify(err)
			if f.Kind != tc.kind || f.Retryable != (tc.kind != fetch.FailureBadBody) {
				t.Fatalf("error %v classified %+v, want %s", err, f, tc.kind)
			}
			var be *fetch.BodyError
			if tc.kind == fetch.FailureBadBody && !errors.As(err, &be) {
				t.Errorf("error %v, want a *BodyError", err)
			}
		})
	}
}
