package changes_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// nextDay is how the generated day 2 of these tests differs from day 1;
// at 20,100 records, day 1 repeats one id (the generator repeats one in
// 20,011).
var nextDay = spoctest.Changes{RemoveEvery: 31, StatusEvery: 17, AreaEvery: 23, Added: 40}

// compareBatches compares batches with base and returns the result and
// the comparison, whose Digester holds the day's digest.
func compareBatches(t *testing.T, base *changes.Baseline, batches []arrow.RecordBatch) (*changes.Result, *changes.Comparison) {
	t.Helper()
	c := base.NewComparison()
	for _, rec := range batches {
		if err := c.Add(rec); err != nil {
			t.Fatal(err)
		}
	}
	r, err := c.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

func digestBytes(t *testing.T, d *changes.Digester, snapshot string) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := d.WriteDigest(&buf, snapshot)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteDigest says %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func readDigest(ds *spoc.Dataset, snapshot string, digest []byte, file []byte) (*changes.Baseline, error) {
	return changes.ReadDigest(context.Background(), ds, snapshot, bytes.NewReader(digest), int64(len(digest)), bytes.NewReader(file))
}

func releaseAll(t *testing.T, batches []arrow.RecordBatch) {
	t.Cleanup(func() {
		for _, rec := range batches {
			rec.Release()
		}
	})
}

// The digest a run writes stands for its snapshot's Parquet file: for
// each dataset, day 2 compared with day 1's digest gives the change table
// and summary that day 2 compared with day 1's file gives, row for row,
// and so does day 3 against the digest that day 2's comparison built,
// with its keys carried over. A digest built in sliced batches is the
// same digest.
func TestDigestComparesAsTheParquetFile(t *testing.T) {
	for _, ds := range []*spoc.Dataset{spoc.SPOC, spoc.OSH, spoc.GM} {
		t.Run(ds.Name, func(t *testing.T) {
			day1, file1, err := generatedDayOf(ds, spoctest.GenOptions{Records: 20100, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			day2, file2, err := generatedDayOf(ds, spoctest.GenOptions{Records: 20100, Seed: 1, NextDay: nextDay})
			if err != nil {
				t.Fatal(err)
			}
			releaseAll(t, day1)
			releaseAll(t, day2)

			fromFile, err := changes.ReadBaseline(context.Background(), ds, "20261125", bytes.NewReader(file1))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := compareBatches(t, fromFile, day2)
			if s := want.Summary; s.Added == 0 || s.Removed == 0 || s.Changed == 0 || s.IgnoredDuplicates.Previous == 0 {
				t.Fatalf("the generated days differ too little to test: %+v", s)
			}

			d, err := changes.NewDigester(ds)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range day1 {
				n := rec.NumRows()
				for _, part := range []arrow.RecordBatch{rec.NewSlice(0, n/3), rec.NewSlice(n/3, n)} {
					err := d.Add(part)
					part.Release()
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			fromDigest, err := readDigest(ds, "20261125", digestBytes(t, d, "20261125"), file1)
			if err != nil {
				t.Fatal(err)
			}
			if fromDigest.Len() != fromFile.Len() {
				t.Errorf("the digest has %d ids, the file %d", fromDigest.Len(), fromFile.Len())
			}
			got, cmp := compareBatches(t, fromDigest, day2)
			if fmt.Sprint(got.Summary) != fmt.Sprint(want.Summary) {
				t.Errorf("summary from the digest\n%+v\nfrom the file\n%+v", got.Summary, want.Summary)
			}
			if g, w := rowsOf(t, got, 0), rowsOf(t, want, 0); !slices.Equal(g, w) {
				t.Errorf("change table from the digest differs from the file's: %d rows, want %d", len(g), len(w))
			}

			// Day 2's digest, as the run of day 2 writes it, against
			// day 2 itself and against day 1 reversed: as its file.
			day2Digest := digestBytes(t, cmp.Digester(), "20261126")
			next, err := readDigest(ds, "20261126", day2Digest, file2)
			if err != nil {
				t.Fatal(err)
			}
			if r, _ := compareBatches(t, next, day2); r.Summary.Rows() != 0 || r.Summary.Unchanged == 0 {
				t.Errorf("day 2 against its own digest: %+v; want every plot unchanged", r.Summary)
			}
			next, err = readDigest(ds, "20261126", day2Digest, file2)
			if err != nil {
				t.Fatal(err)
			}
			back, err := changes.ReadBaseline(context.Background(), ds, "20261126", bytes.NewReader(file2))
			if err != nil {
				t.Fatal(err)
			}
			got, _ = compareBatches(t, next, day1)
			want, _ = compareBatches(t, back, day1)
			if fmt.Sprint(got.Summary) != fmt.Sprint(want.Summary) || !slices.Equal(rowsOf(t, got, 0), rowsOf(t, want, 0)) {
				t.Errorf("day 1 against day 2's digest\n%+v\nagainst its file\n%+v", got.Summary, want.Summary)
			}
		})
	}
}

// A digest that cannot stand for the snapshot asked for is refused with
// ErrDigest, naming the snapshot: cut anywhere, not a digest, with bytes
// after its rows, its rows out of order, a header that lies about its
// size or rows, another day's, another dataset's.
func TestReadDigestRefusesWhatItCannotUse(t *testing.T) {
	day, file, err := generatedDayOf(spoc.SPOC, spoctest.GenOptions{Records: 300, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	releaseAll(t, day)
	build := func(ds *spoc.Dataset, batches []arrow.RecordBatch) []byte {
		d, err := changes.NewDigester(ds)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range batches {
			if err := d.Add(rec); err != nil {
				t.Fatal(err)
			}
		}
		return digestBytes(t, d, "20261125")
	}
	good := build(spoc.SPOC, day)
	if _, err := readDigest(spoc.SPOC, "20261125", good, file); err != nil {
		t.Fatalf("the digest itself: %v", err)
	}
	oshDay, _, err := generatedDayOf(spoc.OSH, spoctest.GenOptions{Records: 300, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	releaseAll(t, oshDay)
	headerEnd := 12 + int(binary.LittleEndian.Uint32(good[8:12]))
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }

	cases := map[string]struct {
		digest   []byte
		snapshot string
		want     string
	}{
		"empty":             {digest: nil, want: "header"},
		"cut in the magic":  {digest: good[:5], want: "header"},
		"cut in the header": {digest: good[:headerEnd-3], want: "header"},
		"cut in a row":      {digest: good[:headerEnd+16*7+5], want: "rows in"},
		"cut after a row":   {digest: good[:len(good)-16], want: "rows in"},
		"not a digest":      {digest: edit(func(b []byte) []byte { b[0] = 'X'; return b }), want: "not a digest"},
		"bytes after it":    {digest: append(bytes.Clone(good), make([]byte, 16)...), want: "rows in"},
		"header too large": {digest: edit(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[8:12], 1<<31)
			return b
		}), want: "a header of"},
		"header not JSON": {digest: edit(func(b []byte) []byte { b[12] = '['; return b }), want: "header"},
		"rows out of order": {digest: edit(func(b []byte) []byte {
			r := b[headerEnd:]
			first, second := bytes.Clone(r[:16]), bytes.Clone(r[16:32])
			copy(r, second)
			copy(r[16:], first)
			return b
		}), want: "after"},
		"rows it lacks": {digest: edit(func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"rows":`, `"rows":1`, 1))
		}), want: "header"},
		"another day's":     {digest: good, snapshot: "20261124", want: `snapshot "20261125"`},
		"another dataset's": {digest: build(spoc.OSH, oshDay), want: "columns"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			snapshot := tc.snapshot
			if snapshot == "" {
				snapshot = "20261125"
			}
			_, err := readDigest(spoc.SPOC, snapshot, tc.digest, file)
			if !errors.Is(err, changes.ErrDigest) || !strings.Contains(err.Error(), snapshot) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadDigest: %v; want an ErrDigest naming snapshot %s and saying %q", err, snapshot, tc.want)
			}
		})
	}
}

// A digest is written once: a batch added after it would be in no
// digest, so Add refuses it.
func TestDigesterAddAfterWrite(t *testing.T) {
	d, err := changes.NewDigester(spoc.SPOC)
	if err != nil {
		t.Fatal(err)
	}
	rec := batch(t, plot{id: 1, name: "ALI"})
	defer rec.Release()
	if err := d.Add(rec); err != nil {
		t.Fatal(err)
	}
	digestBytes(t, d, "20261125")
	if err := d.Add(rec); err == nil {
		t.Error("Add after WriteDigest: no error")
	}
}
