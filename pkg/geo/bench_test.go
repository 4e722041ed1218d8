package geo_test

import (
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/calee-data/mspo-spoc/pkg/geo"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// BenchmarkPlots looks up a plot's count of plots at its point, for
// 300,000 plots at distinct points and at one point: a lookup must not
// cost more when the point is shared (a layer asks once per plot).
func BenchmarkPlots(b *testing.B) {
	const n = 300_000
	for _, shared := range []bool{false, true} {
		b.Run(fmt.Sprint("shared=", shared), func(b *testing.B) {
			points, err := geo.NewPoints(spoc.SPOC)
			if err != nil {
				b.Fatal(err)
			}
			lon, lat := pointBatch(n, shared)
			defer lon.Release()
			defer lat.Release()
			rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{
				{Name: "gps_coordinate_long", Type: arrow.PrimitiveTypes.Float64},
				{Name: "gps_coordinate_lat", Type: arrow.PrimitiveTypes.Float64},
			}, nil), []arrow.Array{lon, lat}, n)
			defer rec.Release()
			if err := points.Add(rec); err != nil {
				b.Fatal(err)
			}
			points.Finish()
			b.ResetTimer()
			for i := range b.N {
				k := i % n
				if points.Plots(lon.Value(k), lat.Value(k)) == 0 {
					b.Fatal("a point added is not found")
				}
			}
		})
	}
}

func pointBatch(n int, shared bool) (lon, lat *array.Float64) {
	lb, tb := array.NewFloat64Builder(memory.DefaultAllocator), array.NewFloat64Builder(memory.DefaultAllocator)
	defer lb.Release()
	defer tb.Release()
	for i := range n {
		if shared {
			i = 0
		}
		lb.Append(101 + float64(i)*1e-6)
		tb.Append(3 + float64(i)*1e-6)
	}
	return lb.NewFloat64Array(), tb.NewFloat64Array()
}
