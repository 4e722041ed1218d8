package spoc

import (
	"net/url"
	"slices"
)

// GM is the list of smallholders certified through a group manager (a
// company or cooperative that holds the certificate for its members),
// about 2,300 records. Its fields are SPOC's, in SPOC's order, with
// gm_code (the group manager's code, "GRM1086921") where SPOC has
// spoc_code, and without the geolocation string: the list does not send
// it, so it is not among Dropped either, and should it appear it is
// reported as an undeclared field. The conversion rules are SPOC's.
//
// The public documentation of the endpoint
// (https://docs.jinlee.org/scrapers/MSPO/smallholders/group-manager)
// gives these fields, the records under data.results, and an example
// record whose coordinates have eight decimals ("1.57191667",
// "103.98219444") and whose certified area (5.26 ha) exceeds its planted
// area (5.07 ha). Both are published as sent: a float64 keeps eight
// decimals of a coordinate exactly enough to print them back, and the
// areas are the upstream's figures, not checked against each other.
var GM = mustDataset(Dataset{
	Name:   "gm",
	URL:    "https://api.mspots.org.my/api/groupmanager/list-public",
	Object: "groupmanager-list-public",
	Prefix: "raw/mspo/api/groupmanager/list-public",
	// The endpoint ignores state, page and pageSize and returns every
	// record; page and pageSize are sent with the defaults its
	// documentation gives, as SPOC's and OSH's are.
	Query: url.Values{"page": {"1"}, "pageSize": {"10"}},
	// A little below the ~2,300 records of 2026, as SPOC's and OSH's
	// floors are (about 85% of a day): a body that falls under it has
	// lost records, not gained a slow week. The list is small, so a
	// floor much nearer would refuse an ordinary day's removals.
	Floor:   2_000,
	Records: []string{"data", "results"},
	// SPOC's columns, in SPOC's order and with its kinds, dictionaries
	// and roles, so that the two lists' tables line up column for column
	// but for the code.
	Columns: replaced(SPOC.Columns, "spoc_code", Column{JSON: "gm_code", Name: "gm_code", Dictionary: true}),
})

// replaced is a copy of cols with the column named name replaced by c.
func replaced(cols []Column, name string, c Column) []Column {
	out := slices.Clone(cols)
	i := slices.IndexFunc(out, func(col Column) bool { return col.Name == name })
	if i < 0 {
		panic("spoc: no column " + name + " to replace")
	}
	out[i] = c
	return out
}
