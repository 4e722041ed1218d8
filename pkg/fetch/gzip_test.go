package fetch

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// A saved .gz body hands its whole stream to TeeGzip, the header read at
// Open included; read without TeeGzip, it keeps no copy of the stream
// beyond what Open read.
func TestSavedGzipBodyTee(t *testing.T) {
	// Records that compress little, so that the stream is many times the
	// decompressor's buffer.
	var recs []string
	x := uint64(1)
	for i := range 20000 {
		x = x*6364136223846793005 + 1442695040888963407
		recs = append(recs, fmt.Sprintf(`{"entity_smallholder_id":%d,"name":"%016x"}`, i, x))
	}
	json := []byte(`{"data":{"results":[` + strings.Join(recs, ",") + `]}}`)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(json)
	zw.Close()
	file := filepath.Join(t.TempDir(), "body.json.gz")
	if err := os.WriteFile(file, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	b, err := OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var teed bytes.Buffer
	b.TeeGzip(&teed)
	got, err := io.ReadAll(b)
	b.Close()
	if err != nil || !bytes.Equal(got, json) || !bytes.Equal(teed.Bytes(), gz.Bytes()) {
		t.Errorf("read %d bytes (%v), teed %d of the file's %d; want the body and the file whole", len(got), err, teed.Len(), gz.Len())
	}

	b, err = OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	held := len(b.gzip.pending)
	if _, err := io.Copy(io.Discard, b); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if gz.Len() < 200<<10 {
		t.Fatalf("the test's stream is only %d bytes", gz.Len())
	}
	if len(b.gzip.pending) != held || held > 64<<10 {
		t.Errorf("without TeeGzip the tap holds %d bytes after reading (%d after Open); want only what Open read", len(b.gzip.pending), held)
	}
}
