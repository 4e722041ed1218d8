package snapshot

import (
	"bytes"
	"maps"
	"slices"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// A zero field of a Layout takes the default's, a set one is kept (an
// empty dictionary list included: no dictionary), and its columns are
// checked against the table's schema.
func TestLayout(t *testing.T) {
	def := DefaultChangesLayout(spoc.SPOC)
	for _, tc := range []struct {
		name string
		set  Layout
		want Layout
	}{
		{"zero: the default", Layout{}, def},
		{"one field set, the others default", Layout{ZstdLevel: 1}, Layout{ZstdLevel: 1, Dictionary: def.Dictionary}},
		{"every field set", Layout{RowGroupRows: 10, RowGroupBytes: 1000, ZstdLevel: 2, ColumnZstdLevels: map[string]int{"change": 9}, Dictionary: []string{"change"}},
			Layout{RowGroupRows: 10, RowGroupBytes: 1000, ZstdLevel: 2, ColumnZstdLevels: map[string]int{"change": 9}, Dictionary: []string{"change"}}},
		{"no dictionary at all", Layout{Dictionary: []string{}}, Layout{Dictionary: []string{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.set.orDefault(def)
			if got.RowGroupRows != tc.want.RowGroupRows || got.RowGroupBytes != tc.want.RowGroupBytes || got.ZstdLevel != tc.want.ZstdLevel || !maps.Equal(got.ColumnZstdLevels, tc.want.ColumnZstdLevels) ||
				!slices.Equal(got.Dictionary, tc.want.Dictionary) || (got.Dictionary == nil) != (tc.want.Dictionary == nil) {
				t.Errorf("%+v with the default's fields is %+v, want %+v", tc.set, got, tc.want)
			}
		})
	}
	if _, err := sink.NewParquetWriter(&bytes.Buffer{}, changes.Schema(spoc.SPOC), Layout{Dictionary: []string{"no_such_column"}}.options("test")...); err == nil {
		t.Error("a dictionary column outside the schema was accepted")
	}
}
