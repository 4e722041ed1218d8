package snapshot

import (
	"bytes"
	"slices"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// A zero Layout means the default one, a set one is taken as it is, and
// its columns are checked against the table's schema.
func TestLayout(t *testing.T) {
	if l := (Layout{}).orDefault(DefaultChangesLayout()); !slices.Equal(l.Dictionary, DefaultChangesLayout().Dictionary) {
		t.Errorf("a zero Layout is %+v, want the default", l)
	}
	custom := Layout{ZstdLevel: 1}
	if l := custom.orDefault(DefaultChangesLayout()); l.ZstdLevel != 1 || l.Dictionary != nil {
		t.Errorf("a set Layout became %+v", l)
	}
	if _, err := sink.NewParquetWriter(&bytes.Buffer{}, changes.Schema, Layout{Dictionary: []string{"no_such_column"}}.options("test")...); err == nil {
		t.Error("a dictionary column outside the schema was accepted")
	}
}
