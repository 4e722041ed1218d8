package historytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// Body is a generated body of a dataset taken apart, so that the days
// of a test can be made from it: its document, and its records.
type Body struct {
	ds      *spoc.Dataset
	doc     map[string]any
	Records []map[string]any
}

// NewBody generates a body of ds with records records.
func NewBody(t testing.TB, ds *spoc.Dataset, records int) Body {
	t.Helper()
	var buf bytes.Buffer
	if _, err := spoctest.Generate(&buf, spoctest.GenOptions{Dataset: ds, Records: records, Seed: 34}); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	dec.UseNumber()
	b := Body{ds: ds}
	if err := dec.Decode(&b.doc); err != nil {
		t.Fatal(err)
	}
	for _, r := range b.list() {
		b.Records = append(b.Records, r.(map[string]any))
	}
	return b
}

// list is the records array of the document.
func (b Body) list() []any {
	var v any = b.doc
	for _, k := range b.ds.Records {
		v = v.(map[string]any)[k]
	}
	return v.([]any)
}

// With is a body of the records recs (copies of which a day may change).
func (b Body) With(t testing.TB, recs []map[string]any) []byte {
	t.Helper()
	var v any = b.doc
	keys := b.ds.Records
	for _, k := range keys[:len(keys)-1] {
		v = v.(map[string]any)[k]
	}
	list := make([]any, len(recs))
	for i, r := range recs {
		list[i] = r
	}
	v.(map[string]any)[keys[len(keys)-1]] = list
	out, err := json.Marshal(b.doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TextField is the JSON field of the first string column that is not
// the key: the one a day changes.
func TextField(ds *spoc.Dataset) string {
	for _, c := range ds.Columns[1:] {
		if c.Kind == spoc.KindString && c.JSON != "" {
			return c.JSON
		}
	}
	return ""
}

// Days are four days of a history test, by folder name, made from day
// 1's records: day 2 removes some plots, changes a value
// of others and adds two; day 3 is skipped; day 4 brings the removed
// plots back and changes the values back, and changes others; day 2
// also repeats two ids with other values (the first row stands); day 5
// removes the plots day 2 added and one that came back.
func Days(t testing.TB, b Body) map[string][]byte {
	t.Helper()
	ds := b.ds
	key, text := ds.Columns[0].JSON, TextField(ds)
	if text == "" {
		t.Fatalf("%s has no string column to change", ds.Name)
	}
	n := len(b.Records)
	removedOn2 := func(i int) bool { return i%7 == 3 && i < n-1 }
	changedOn2 := func(i int) bool { return i%5 == 1 }
	changedOn4 := func(i int) bool { return i%6 == 2 }
	clone := func(r map[string]any, suffix string) map[string]any {
		c := maps.Clone(r)
		if suffix != "" {
			s, _ := c[text].(string)
			c[text] = s + suffix
		}
		return c
	}
	var maxID int64
	for _, r := range b.Records {
		if id, err := r[key].(json.Number).Int64(); err == nil {
			maxID = max(maxID, id)
		}
	}
	newPlots := []map[string]any{clone(b.Records[0], " (new)"), clone(b.Records[1], " (new)")}
	for k, r := range newPlots {
		r[key] = json.Number(fmt.Sprint(maxID + 1 + int64(k)))
	}

	var day2, day4, day5 []map[string]any
	for i, r := range b.Records {
		switch {
		case removedOn2(i):
		case changedOn2(i):
			day2 = append(day2, clone(r, " v2"))
		default:
			day2 = append(day2, clone(r, ""))
		}
		if changedOn4(i) {
			day4 = append(day4, clone(r, " v4"))
		} else {
			day4 = append(day4, clone(r, ""))
		}
	}
	// Later rows of an id, with other values, which the first stands for:
	// one of a plot kept, one of a plot added.
	day2 = append(day2, newPlots...)
	day2 = append(day2, clone(b.Records[4], " repeated"), clone(newPlots[0], " repeated"))
	day4 = append(day4, newPlots...)
	const cameBack = 3 // removed on day 2
	for i, r := range day4[:n] {
		if i != cameBack {
			day5 = append(day5, r)
		}
	}
	return map[string][]byte{
		// A first day too may repeat an id, with other values.
		"20261201": b.With(t, append(slices.Clone(b.Records), clone(b.Records[2], " repeated"))),
		"20261202": b.With(t, day2),
		"20261204": b.With(t, day4),
		"20261205": b.With(t, day5),
	}
}
