package spoc_test

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

func ExampleDecoder() {
	body := `{"data":{"page_size":"10","results":[
		{"entity_smallholder_id":73042,"mpob_no":"012345678901","planted_area":" 2.4300 ","gps_coordinate_lat":"-","stateId":"3"},
		{"entity_smallholder_id":null,"name":"dropped: no id"}
	]}}`
	dec := spoc.NewDecoder(strings.NewReader(body))
	defer dec.Release()
	for dec.Next() {
		rec := dec.RecordBatch()
		fmt.Println("rows:", rec.NumRows())
		fmt.Println("mpob_no:", rec.Column(2).(*array.String).Value(0))
		fmt.Println("planted_area:", rec.Column(4).(*array.Float64).Value(0))
		fmt.Println("gps_coordinate_lat null:", rec.Column(6).IsNull(0))
		fmt.Println("state_id:", rec.Column(8).(*array.Int32).Value(0))
	}
	if err := dec.Err(); err != nil {
		fmt.Println("error:", err)
	}
	st := dec.Stats()
	fmt.Println("dropped:", st.DroppedByReason)
	fmt.Println("invalid gps_coordinate_lat:", st.Columns["gps_coordinate_lat"].Invalid)
	// Output:
	// rows: 1
	// mpob_no: 012345678901
	// planted_area: 2.43
	// gps_coordinate_lat null: true
	// state_id: 3
	// dropped: map[null_id:1]
	// invalid gps_coordinate_lat: map[not_a_number:1]
}
