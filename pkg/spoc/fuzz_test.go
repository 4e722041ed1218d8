package spoc

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecoder feeds arbitrary bytes to the decoder: it must never panic,
// and it either fails or emits valid batches whose rows add up to the
// stats, from a body that encoding/json also finds valid.
func FuzzDecoder(f *testing.F) {
	for _, seed := range []string{
		body(`{"entity_smallholder_id":73042,"entity_name":"JELI","mpob_no":"832452001098","planted_area":"2.4300","gps_coordinate_lat":"5.551060","stateId":3,"daerahId":null,"created_at":"2025-06-03T04:46:41.581Z","deleted":false}`),
		body(`{"entity_smallholder_id":"1","name":"A \"B\" \u00e9 \ud83d\ude00","gps_coordinate_long":"N/A","zoneId":"11","x":[{"y":null}]}`, `null`, `{}`),
		`{"meta":[1,2,{"a":"b"}],"data":{"page_size":"10","results":[],"total":0}}`,
		`{"data":{"results":[{"entity_smallholder_id":1e3,"certified_area":-0.5e-2,"updated_at":"2025-01-01T08:00:00+08:00"}]}}`,
		`{"data":{"results":[{"entity_smallholder_id":1}`,
		`<html>maintenance</html>`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		dec := NewDecoder(bytes.NewReader(input), WithBatchSize(3), WithMaxStringBytes(256))
		defer dec.Release()
		var rows int64
		for dec.Next() {
			rec := dec.RecordBatch()
			checkBatch(t, rec, Schema)
			rows += rec.NumRows()
		}
		if dec.Err() != nil {
			return
		}
		if !json.Valid(input) {
			t.Fatalf("decoded without error a body that is not valid JSON: %q", input)
		}
		st := dec.Stats()
		if rows != st.RecordsWritten || st.RecordsRead != st.RecordsWritten+st.RecordsDropped {
			t.Fatalf("%d rows emitted; stats read %d written %d dropped %d", rows, st.RecordsRead, st.RecordsWritten, st.RecordsDropped)
		}
	})
}
