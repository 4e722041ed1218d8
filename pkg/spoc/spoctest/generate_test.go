package spoctest_test

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// Generate imitates a list from its Dataset: a dataset that declares
// some of SPOC's fields gets those only, under its records path, and the
// counts of its columns only; one that declares a field the generator
// does not make is refused.
func TestGenerateFollowsTheDataset(t *testing.T) {
	dataset := func(t *testing.T, second spoc.Column) *spoc.Dataset {
		t.Helper()
		ds, err := spoc.NewDataset(spoc.Dataset{Name: "few", Object: "few", Floor: 1, Records: []string{"data", "items"},
			Columns: []spoc.Column{{JSON: "entity_smallholder_id", Name: "id", Kind: spoc.KindKey}, second}})
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}

	t.Run("fewer fields", func(t *testing.T) {
		ds := dataset(t, spoc.Column{JSON: "daerah", Name: "daerah"})
		var body bytes.Buffer
		planted, err := spoctest.Generate(&body, spoctest.GenOptions{Dataset: ds, Records: 2000, Seed: 5, DropEvery: 100})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(body.String(), `"items":[{"entity_smallholder_id":70000,"daerah":`) {
			t.Errorf("the body does not start with the dataset's records and fields: %.120s", body.String())
		}
		dec := spoc.NewDecoder(&body, spoc.WithDataset(ds))
		for dec.Next() {
		}
		if err := dec.Err(); err != nil {
			t.Fatal(err)
		}
		st := dec.Stats()
		if st.RecordsRead != int64(planted.Records) || st.RecordsDropped != int64(planted.Dropped) || planted.Dropped == 0 {
			t.Errorf("read %d, dropped %d; planted %d records, %d without id", st.RecordsRead, st.RecordsDropped, planted.Records, planted.Dropped)
		}
		if len(st.UndeclaredFields) != 0 || len(st.MissingFields) != 0 {
			t.Errorf("undeclared fields %+v, missing %v; want none", st.UndeclaredFields, st.MissingFields)
		}
		if len(planted.Nulls) != 1 || planted.Nulls["daerah"] == 0 || st.Columns["daerah"].Nulls != int64(planted.Nulls["daerah"]) ||
			len(planted.Invalid) != 0 || planted.Deleted != 0 {
			t.Errorf("planted nulls %v, invalid %v, deleted %d; the decoder counts %d null daerah",
				planted.Nulls, planted.Invalid, planted.Deleted, st.Columns["daerah"].Nulls)
		}
	})

	t.Run("a field it does not make", func(t *testing.T) {
		ds := dataset(t, spoc.Column{JSON: "colour", Name: "colour"})
		if _, err := spoctest.Generate(io.Discard, spoctest.GenOptions{Dataset: ds, Records: 10}); err == nil || !strings.Contains(err.Error(), "colour") {
			t.Errorf("Generate: %v, want an error naming colour", err)
		}
	})
}

// spoc.GM's body is SPOC's with gm_code in spoc_code's place, no
// geolocation, coordinates of eight decimals, and some records certified
// for more than they have planted, which Planted counts.
func TestGenerateGM(t *testing.T) {
	var body bytes.Buffer
	planted, err := spoctest.Generate(&body, spoctest.GenOptions{Dataset: spoc.GM, Records: 2000, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	b := body.String()
	if !strings.HasPrefix(b, `{"status":"success","message":"OK","data":{"page_size":"10","results":[{"entity_smallholder_id":70000,`) ||
		strings.Contains(b, `"spoc_code"`) || strings.Contains(b, `"geolocation"`) || !strings.Contains(b, `","gm_code":"GRM10`) ||
		strings.Count(b, `"gm_code"`) != 2000 {
		t.Errorf("not a GM body: %.400s", b)
	}
	if !regexp.MustCompile(`"gps_coordinate_lat":"-?[0-9]+\.[0-9]{8}","gps_coordinate_long":"-?[0-9]+\.[0-9]{8}"`).MatchString(b) ||
		regexp.MustCompile(`"gps_coordinate_lat":"-?[0-9]+\.[0-9]{6}"`).MatchString(b) {
		t.Error("the coordinates do not have eight decimals")
	}
	if planted.OverCertified < 50 || planted.OverCertified > 200 {
		t.Errorf("%d records certified for more than planted, want about 5%% of 2000", planted.OverCertified)
	}
}

// A reference list's body is its documented list under data, the first
// Records of it less every RemoveEvery-th; the options that plant SPOC's
// quirks are refused.
func TestGenerateReferenceLists(t *testing.T) {
	for _, tc := range []struct {
		ds      *spoc.Dataset
		opts    spoctest.GenOptions
		records int
		idSum   int64
		start   string
	}{
		{spoc.States, spoctest.GenOptions{Records: 1000}, 16, 136, `{"data":[{"stateId":1,"state":"Johor"},{"stateId":2,"state":"Kedah"},`},
		{spoc.Zones, spoctest.GenOptions{Records: 1000}, 11, 66, `{"data":[{"zoneId":1,"zone":"Zon Utara 1"},`},
		{spoc.States, spoctest.GenOptions{Records: 5}, 5, 15, `{"data":[{"stateId":1,`},
		{spoc.Zones, spoctest.GenOptions{Records: 1000, NextDay: spoctest.Changes{RemoveEvery: 5}}, 9, 66 - 5 - 10, `{"data":[{"zoneId":1,`},
	} {
		tc.opts.Dataset = tc.ds
		var body bytes.Buffer
		planted, err := spoctest.Generate(&body, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(body.String(), tc.start) || planted.Records != tc.records || planted.IDSum != tc.idSum {
			t.Errorf("%s %+v: %d records, id sum %d, body %.80s; want %d, %d, %s", tc.ds.Name, tc.opts, planted.Records, planted.IDSum, body.String(), tc.records, tc.idSum, tc.start)
		}
		dec := spoc.NewDecoder(&body, spoc.WithDataset(tc.ds))
		for dec.Next() {
		}
		st := dec.Stats()
		if err := dec.Err(); err != nil || st.RecordsWritten != int64(tc.records) || len(st.UndeclaredFields)+len(st.MissingFields) != 0 {
			t.Errorf("%s: decoded %d records (undeclared %v, missing %v), error %v", tc.ds.Name, st.RecordsWritten, st.UndeclaredFields, st.MissingFields, err)
		}
	}
	if _, err := spoctest.Generate(io.Discard, spoctest.GenOptions{Dataset: spoc.States, Records: 16, DropEvery: 3}); err == nil {
		t.Error("DropEvery for a reference list: no error")
	}
}

// Every list's generated body sends every field its dataset declares in
// every record, null when it has no value, as the real lists do: a
// first day refuses a body in which no record holds a declared field,
// and a body the tests generate must not look like one.
func TestGenerateSendsEveryDeclaredFieldInEveryRecord(t *testing.T) {
	for name, ds := range spoc.Datasets() {
		for _, n := range []int{1, 200} {
			var body bytes.Buffer
			if _, err := spoctest.Generate(&body, spoctest.GenOptions{Dataset: ds, Records: n, Seed: 3}); err != nil {
				t.Fatal(err)
			}
			dec := spoc.NewDecoder(&body, spoc.WithDataset(ds))
			for dec.Next() {
			}
			if err := dec.Err(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			st := dec.Stats()
			for _, c := range ds.Columns {
				if got := st.Columns[c.Name].Present; got != st.RecordsRead || got == 0 {
					t.Errorf("%s, %d records: %s is in %d of %d records", name, n, c.JSON, got, st.RecordsRead)
				}
			}
		}
	}
}
