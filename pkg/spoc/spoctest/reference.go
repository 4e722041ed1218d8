package spoctest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// referenceLists are the reference lists the generator imitates, each
// the names of its ids 1, 2, ... as the public documentation lists them.
// A reference list changes seldom and holds no quirks the documentation
// tells of, so its body is this list, whatever the seed.
var referenceLists = map[*spoc.Dataset][]string{
	spoc.States: {"Johor", "Kedah", "Kelantan", "Melaka", "Negeri Sembilan", "Pahang", "Perak", "Perlis",
		"Pulau Pinang", "Sabah", "Sarawak", "Selangor", "Terengganu", "Kuala Lumpur", "Labuan", "Putrajaya"},
	spoc.Zones: {"Zon Utara 1", "Zon Utara 2", "Zon Tengah 1", "Zon Tengah 2", "Zon Selatan 1", "Zon Selatan 2",
		"Zon Timur 1", "Zon Timur 2", "Zon Sabah 1", "Zon Sabah 2", "Zon Sarawak"},
}

// generateReference writes the body of a reference list, {"data": [...]}
// with records of the id and the name ({"stateId":1,"state":"Johor"}):
// the first opts.Records of names, less every opts.NextDay.RemoveEvery-th.
// The options that plant SPOC's quirks have nothing to plant in it and
// are refused.
func generateReference(w io.Writer, ds *spoc.Dataset, names []string, opts GenOptions) (Planted, error) {
	p := Planted{Nulls: map[string]int{}, Invalid: map[string]map[string]int{}, ByCertStatus: map[string]int{}}
	nd := opts.NextDay
	if opts.DropEvery != 0 || opts.Long.Every != 0 || nd.StatusEvery != 0 || nd.AreaEvery != 0 || nd.Added != 0 {
		return p, fmt.Errorf("spoctest: the reference list %q is a fixed list: only Records and NextDay.RemoveEvery apply", ds.Name)
	}
	if len(ds.Records) != 1 || len(ds.Columns) != 2 {
		return p, errors.New("spoctest: a reference list has its records under one key, and an id and a name")
	}
	id, name := ds.Columns[0].JSON, ds.Columns[1].JSON
	bw := bufio.NewWriter(w)
	bw.WriteString(`{"` + ds.Records[0] + `":[`)
	for i, n := range names[:min(max(opts.Records, 0), len(names))] {
		if every(nd.RemoveEvery, i) {
			continue
		}
		if p.Records > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString(`{"` + id + `":` + strconv.Itoa(i+1) + `,"` + name + `":` + strconv.Quote(n) + `}`)
		p.Records++
		p.IDSum += int64(i + 1)
	}
	bw.WriteString(`]}`)
	return p, bw.Flush()
}
