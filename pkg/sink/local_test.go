package sink

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocalRejectsNamesOutsideTheDirectory(t *testing.T) {
	store, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../x", "a/../../x", ""} {
		if _, err := store.NewObject(context.Background(), name, ""); err == nil {
			t.Errorf("NewObject(%q) succeeded", name)
		}
	}
}

func TestLocalTemporaryFilesAreHidden(t *testing.T) {
	dir := t.TempDir()
	store, _ := NewLocal(dir)
	obj, err := store.NewObject(context.Background(), "20261126/spoc-list-public.parquet", ParquetContentType)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Abort()
	entries, _ := os.ReadDir(filepath.Join(dir, "20261126"))
	if len(entries) != 1 || !isTemporary(entries[0].Name()) || strings.HasSuffix(entries[0].Name(), ".parquet") {
		t.Fatalf("pending file %v: want one hidden temporary name that no *.parquet glob matches", entries)
	}
}

func TestParseGCSURL(t *testing.T) {
	tests := []struct {
		in, bucket, root string
		ok               bool
	}{
		{"gs://calee_data", "calee_data", "", true},
		{"gs://calee_data/", "calee_data", "", true},
		{"gs://my-bucket/a/b/", "my-bucket", "a/b", true},
		{"gs://", "", "", false},
		{"gs://Upper", "", "", false},
		{"gs://a", "", "", false},
		{"s3://bucket", "", "", false},
	}
	for _, tt := range tests {
		bucket, root, err := ParseGCSURL(tt.in)
		if (err == nil) != tt.ok || bucket != tt.bucket || root != tt.root {
			t.Errorf("ParseGCSURL(%q) = %q, %q, %v; want %q, %q, ok=%v", tt.in, bucket, root, err, tt.bucket, tt.root, tt.ok)
		}
	}
}
