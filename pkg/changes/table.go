package changes

import (
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// valueRoles are the roles of the columns whose values the change table
// holds before and after, in the table's order.
var valueRoles = [...]spoc.Role{spoc.RoleStatus, spoc.RoleCertifiedArea, spoc.RoleUpdateTime}

// table is the change table of one dataset: its schema, and the
// dataset's columns that hold the key and each of valueRoles.
type table struct {
	schema *arrow.Schema
	id     string
	// status, area and updated are the columns of valueRoles, in that
	// order; "" where the dataset gives the role to none, and the table
	// has no such columns.
	status, area, updated string
	dictionary            []string
}

func newTable(ds *spoc.Dataset) *table {
	t := &table{id: ds.Columns[0].Name, dictionary: []string{"change"}}
	fields := []arrow.Field{
		// The key keeps the dataset's type: int64, or int32 for a
		// reference list (spoc.KindKey32).
		{Name: t.id, Type: ds.Schema().Field(0).Type},
		{Name: "change", Type: arrow.BinaryTypes.String},
		// "element", as Parquet names a list's values, so that the schema
		// read back from the file is this one.
		{Name: "changed_columns", Type: arrow.ListOfField(arrow.Field{Name: "element", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
	}
	for i, at := range [len(valueRoles)]*string{&t.status, &t.area, &t.updated} {
		c, ok := ds.ColumnWithRole(valueRoles[i])
		if !ok {
			continue
		}
		*at = c.Name
		typ := ds.Schema().Field(ds.Schema().FieldIndices(c.Name)[0]).Type
		for _, name := range [...]string{c.Name + "_before", c.Name + "_after"} {
			fields = append(fields, arrow.Field{Name: name, Type: typ, Nullable: true})
			if c.Dictionary {
				t.dictionary = append(t.dictionary, name)
			}
		}
	}
	t.schema = arrow.NewSchema(fields, nil)
	return t
}

// Schema is the table of one day's changes of ds, one row per plot that
// was added, removed or changed, ordered by the key (ds's first column).
// After the key, change and changed_columns come the before and after
// values of the columns ds gives the status, the certified area and the
// update time (spoc.RoleStatus, spoc.RoleCertifiedArea,
// spoc.RoleUpdateTime), in that order, each named after its column:
// cert_status_before, cert_status_after, certified_area_before... A role
// ds gives to no column has no columns here.
//
// The before columns are null for an added plot, the after columns for a
// removed one, and changed_columns is null unless the change is
// "changed". A status longer than spoc.MaxStatusBytes stands as
// LongStatus: the plot is still found changed when only its long status
// changed, as changed_columns says, but its before and after may then
// read alike.
func Schema(ds *spoc.Dataset) *arrow.Schema { return newTable(ds).schema }

// DictionaryColumns names the columns of Schema(ds) whose values repeat
// enough for a dictionary to pay: change, and the before and after of a
// column that ds marks Dictionary (the status).
func DictionaryColumns(ds *spoc.Dataset) []string { return newTable(ds).dictionary }
