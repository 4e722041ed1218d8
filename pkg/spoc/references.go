package spoc

// The reference lists are small lists that name the ids the others hold.
// Each is unpaginated and sends its records as an array directly under
// data ({"data": [...]}). Only the lists whose fields the public
// documentation (https://docs.jinlee.org/scrapers/MSPO/reference-data)
// gives are declared, with those fields; docs/schema.md names the others
// and why they are not.
//
// A reference list's key is its int32 id (KindKey32), as the other lists
// hold it (state_id, zone_id INT32), so that the two join without a cast.

// States is the list of Malaysia's 16 states and federal territories
// (stateId 1 Johor to 16 Putrajaya), the names of the other lists'
// state_id.
var States = mustDataset(Dataset{
	Name:    "states",
	Group:   References,
	URL:     "https://api.mspots.org.my/api/references/states",
	Object:  "references-states",
	Prefix:  "raw/mspo/api/references/states",
	Records: []string{"data"},
	// The 13 states: the three federal territories (Kuala Lumpur,
	// Labuan, Putrajaya) have next to no oil palm, and a list that left
	// them out would still name every plot's state; fewer than 13 is a
	// list that lost a state. It is also about 85% of the 16, as the
	// other lists' floors are.
	Floor: 13,
	Columns: []Column{
		{JSON: "stateId", Name: "state_id", Kind: KindKey32},
		{JSON: "state", Name: "state"},
	},
})

// Zones is the list of the 11 MSPO zones (zoneId 1 "Zon Utara 1" to 11
// "Zon Sarawak"), the names of the other lists' zone_id.
var Zones = mustDataset(Dataset{
	Name:  "zones",
	Group: References,
	// The documentation's Zones section gives its example as
	// GET .../api/references/spocs? ("the trailing ? is required"), but
	// its endpoints summary table lists the zones at spoc/zones and has
	// no references/spocs: the table is followed. The trailing ? is said
	// of the other URL only, so none is sent.
	URL:     "https://api.mspots.org.my/api/spoc/zones",
	Object:  "spoc-zones",
	Prefix:  "raw/mspo/api/spoc/zones",
	Records: []string{"data"},
	// About 85% of the 11 zones, as the other lists' floors are: a
	// reorganisation that merges a zone or two still publishes, a list
	// that lost a region's zones does not. Zones are MSPO's own
	// grouping, not fixed as the states are.
	Floor: 9,
	Columns: []Column{
		{JSON: "zoneId", Name: "zone_id", Kind: KindKey32},
		{JSON: "zone", Name: "zone"},
	},
})
