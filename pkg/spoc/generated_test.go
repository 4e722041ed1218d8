package spoc_test

import (
	"bytes"
	"cmp"
	"reflect"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// checkPlanted compares a decoder's statistics with what the generator
// planted.
func checkPlanted(t *testing.T, ds *spoc.Dataset, st spoc.Stats, p spoctest.Planted) {
	t.Helper()
	if st.RecordsRead != int64(p.Records) || st.RecordsDropped != int64(p.Dropped) || st.RecordsWritten != int64(p.Records-p.Dropped) {
		t.Errorf("read/written/dropped = %d/%d/%d, planted %d records, %d without id", st.RecordsRead, st.RecordsWritten, st.RecordsDropped, p.Records, p.Dropped)
	}
	for _, f := range ds.Schema().Fields() {
		cs := st.Columns[f.Name]
		wantNulls := int64(p.Nulls[f.Name])
		for reason, n := range p.Invalid[f.Name] {
			wantNulls += int64(n)
			if cs.Invalid[reason] != int64(n) {
				t.Errorf("%s: %d invalid (%s), planted %d", f.Name, cs.Invalid[reason], reason, n)
			}
		}
		if len(cs.Invalid) != len(p.Invalid[f.Name]) {
			t.Errorf("%s: invalid values %v, planted %v", f.Name, cs.Invalid, p.Invalid[f.Name])
		}
		if cs.Nulls != wantNulls {
			t.Errorf("%s: %d nulls, planted %d", f.Name, cs.Nulls, wantNulls)
		}
	}
	// The generator sends the dataset's fields and its dropped ones
	// only, every one in some record.
	if len(st.UndeclaredFields) != 0 || len(st.MissingFields) != 0 {
		t.Errorf("undeclared fields %+v, missing %v; want none", st.UndeclaredFields, st.MissingFields)
	}
	if st.DuplicateIDs != int64(p.DuplicateIDs) {
		t.Errorf("duplicate ids %d, planted %d", st.DuplicateIDs, p.DuplicateIDs)
	}
	if st.MPOBWithSeveralPlots != int64(p.MPOBWithSeveralPlots) {
		t.Errorf("MPOB numbers with several plots %d, planted %d", st.MPOBWithSeveralPlots, p.MPOBWithSeveralPlots)
	}
	if st.DeletedRecords != int64(p.Deleted) {
		t.Errorf("deleted %d, planted %d", st.DeletedRecords, p.Deleted)
	}
	for status, n := range p.ByCertStatus {
		if st.RecordsByCertStatus[status] != int64(n) {
			t.Errorf("cert_status %s: %d, planted %d", status, st.RecordsByCertStatus[status], n)
		}
	}
	if len(st.RecordsByCertStatus) != len(p.ByCertStatus) {
		t.Errorf("cert_status values %v, planted %v", st.RecordsByCertStatus, p.ByCertStatus)
	}
}

func TestDecodeGeneratedBody(t *testing.T) {
	for _, opts := range []spoctest.GenOptions{
		{Records: 50_000, Seed: 1},
		{Records: 30_000, Seed: 7, DropEvery: 500},
		{Records: 30_000, Seed: 3, Dataset: spoc.OSH},
		{Records: 25_000, Seed: 9, DropEvery: 700, Dataset: spoc.OSH},
		{Records: 25_000, Seed: 5, Dataset: spoc.GM},
		{Records: 25_000, Seed: 11, DropEvery: 600, Dataset: spoc.GM},
	} {
		ds := cmp.Or(opts.Dataset, spoc.SPOC)
		var buf bytes.Buffer
		planted, err := spoctest.Generate(&buf, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(planted.ByCertStatus) != 4 || planted.DuplicateIDs == 0 || planted.MPOBWithSeveralPlots == 0 || (planted.Deleted == 0) != (ds == spoc.OSH) ||
			len(planted.Invalid["gps_coordinate_lat"]) != 2 || planted.Nulls["daerah_id"] == 0 || (planted.OverCertified == 0) != (ds != spoc.GM) {
			t.Fatalf("the generator planted too few quirks: %+v", planted)
		}
		dec := spoc.NewDecoder(&buf, spoc.WithDataset(ds), spoc.WithBatchSize(8192))
		var rows, idSum int64
		for dec.Next() {
			rec := dec.RecordBatch()
			rows += rec.NumRows()
			for _, v := range rec.Column(0).(interface{ Int64Values() []int64 }).Int64Values() {
				idSum += v
			}
		}
		if err := dec.Err(); err != nil {
			t.Fatal(err)
		}
		st := dec.Stats()
		dec.Release()
		if rows != st.RecordsWritten {
			t.Errorf("%d rows emitted, stats say %d written", rows, st.RecordsWritten)
		}
		if idSum != planted.IDSum {
			t.Errorf("sum of ids %d, planted %d", idSum, planted.IDSum)
		}
		checkPlanted(t, ds, st, planted)
	}
}

// TestReusedBuffersDecodeTheSame decodes one body in one batch and in
// many small ones, where every batch after the first is built in the
// buffers of released ones: the rows must be the same.
func TestReusedBuffersDecodeTheSame(t *testing.T) {
	var buf bytes.Buffer
	if _, err := spoctest.Generate(&buf, spoctest.GenOptions{Records: 5000, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	whole, _, err := spoc.DecodeAll(t, bytes.NewReader(buf.Bytes()), spoc.WithBatchSize(5000))
	if err != nil {
		t.Fatal(err)
	}
	pieces, _, err := spoc.DecodeAll(t, bytes.NewReader(buf.Bytes()), spoc.WithBatchSize(333))
	if err != nil {
		t.Fatal(err)
	}
	for i := range min(len(whole), len(pieces)) {
		if !reflect.DeepEqual(whole[i], pieces[i]) {
			for k, v := range whole[i] {
				if !reflect.DeepEqual(v, pieces[i][k]) {
					t.Errorf("row %d column %s: %#v in one batch, %#v in small ones", i, k, v, pieces[i][k])
				}
			}
			break
		}
	}
	if len(whole) < 4900 || !reflect.DeepEqual(whole, pieces) {
		t.Fatalf("%d rows in one batch, %d in batches of 333, or their values differ", len(whole), len(pieces))
	}
}
