package boundary

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The coastal points lie on the parallel 4° N, east of the last boundary
// crossing of the Terengganu coast (103.428349° E in the data), so they are
// outside the drawn polygons; their distances to the nearest boundary edge
// are given for each.
func TestInMalaysia(t *testing.T) {
	tests := []struct {
		name     string
		lon, lat float64
		want     bool
	}{
		{"Peninsular/Kuala Lumpur", 101.6869, 3.139, true},
		{"Peninsular/Ipoh", 101.09, 4.59, true},
		{"Peninsular/Kota Bharu", 102.24, 6.12, true},
		{"Sabah/Ranau", 116.66, 5.95, true},
		{"Sarawak/Kuching", 110.35, 1.55, true},
		{"Sarawak/Sibu", 111.83, 2.29, true},
		{"Labuan", 115.24, 5.28, true},

		{"Singapore", 103.8198, 1.3521, false},
		{"South China Sea", 109.0, 5.0, false},
		{"Kalimantan", 114.0, 0.5, false},
		{"Sumatra", 101.4, 0.5, false},
		{"southern Thailand/Hat Yai", 100.47, 7.0, false},
		{"Brunei/Bandar Seri Begawan", 114.94, 4.9, false},
		{"null island", 0, 0, false},
		{"lat/lon swapped", 3.139, 101.6869, false},

		{"coast/465 m out to sea is within the tolerance", 103.432856, 4.0, true},
		{"coast/837 m out to sea is within the tolerance", 103.436462, 4.0, true},
		{"coast/1023 m out to sea is beyond the tolerance", 103.438265, 4.0, false},
		{"coast/4.7 km out to sea", 103.473424, 4.0, false},

		{"NaN longitude", math.NaN(), 3.139, false},
		{"NaN latitude", 101.6869, math.NaN(), false},
		{"+Inf longitude", math.Inf(1), 3.139, false},
		{"-Inf latitude", 101.6869, math.Inf(-1), false},
		{"both infinite", math.Inf(1), math.Inf(1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := InMalaysia(tt.lon, tt.lat); got != tt.want {
				t.Errorf("InMalaysia(%v, %v) = %v, want %v", tt.lon, tt.lat, got, tt.want)
			}
		})
	}
}

// The coastal cases above must really be outside the drawn line, or they
// would not test the tolerance.
func TestCoastalCasesAreOutsideThePolygons(t *testing.T) {
	s := malaysia()
	for _, lon := range []float64{103.432856, 103.436462, 103.438265, 103.473424} {
		if s.inside(lon, 4.0) {
			t.Errorf("(%v, 4.0) is inside the polygons; pick a point outside", lon)
		}
	}
}

func TestEmbeddedDataParses(t *testing.T) {
	s, err := parse(malaysiaData)
	if err != nil {
		t.Fatal(err)
	}
	// Malaysia from the Strait of Malacca to eastern Sabah, from Sarawak's
	// southern border to Kedah and northern Sabah.
	if s.MinLon < 99 || s.MinLon > 100.5 || s.MaxLon < 119 || s.MaxLon > 120 ||
		s.MinLat < 0.5 || s.MinLat > 1.3 || s.MaxLat < 7 || s.MaxLat > 7.5 {
		t.Errorf("extent lon %v..%v lat %v..%v is not Malaysia's", s.MinLon, s.MaxLon, s.MinLat, s.MaxLat)
	}
	if len(s.segs) < 1000 {
		t.Errorf("%d edges, want the 10m boundary's thousands", len(s.segs))
	}
}

func TestParseRejectsBadData(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"wrong magic", []byte("XXXX\x00\x00\x00\x00")},
		{"no rings", []byte("BND1\x00\x00\x00\x00")},
		{"ring count beyond data", []byte("BND1\x01\x00\x00\x00")},
		{"ring of two vertices", append([]byte("BND1\x01\x00\x00\x00\x02\x00\x00\x00"), make([]byte, 16)...)},
		{"vertices beyond data", append([]byte("BND1\x01\x00\x00\x00\x03\x00\x00\x00"), make([]byte, 16)...)},
		{"trailing bytes", append(append([]byte{}, malaysiaData...), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parse(tt.data); err == nil {
				t.Error("parse succeeded, want an error")
			}
		})
	}
}

// The indexes only skip work: the answer must equal a scan of every edge.
func TestIndexesAgreeWithFullScan(t *testing.T) {
	s := malaysia()
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		lon := s.MinLon - 0.1 + r.Float64()*(s.MaxLon-s.MinLon+0.2)
		lat := s.MinLat - 0.1 + r.Float64()*(s.MaxLat-s.MinLat+0.2)
		want := fullScanInside(s, lon, lat) || fullScanDistance(s, lon, lat) <= Tolerance
		if got := s.contains(lon, lat); got != want {
			t.Fatalf("contains(%v, %v) = %v, full scan says %v", lon, lat, got, want)
		}
	}
}

func fullScanInside(s *shape, lon, lat float64) bool {
	in := false
	for _, g := range s.segs {
		if g.crossedBy(lon, lat) {
			in = !in
		}
	}
	return in
}

func fullScanDistance(s *shape, lon, lat float64) float64 {
	kx := metresPerDegree * math.Cos(lat*math.Pi/180)
	best := math.Inf(1)
	for _, g := range s.segs {
		best = math.Min(best, math.Sqrt(g.distance2(lon, lat, kx)))
	}
	return best
}

// BenchmarkInMalaysia checks points spread like a plot list's: most on
// land in the peninsula, Sabah and Sarawak, some on the coast, a few
// placeholders and points abroad. 3 million points take b.N = 3e6 × ns/op.
func BenchmarkInMalaysia(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	centres := [][2]float64{
		{101.6869, 3.139}, {101.09, 4.59}, {102.24, 6.12}, {103.33, 3.8}, // peninsula
		{116.66, 5.95}, {117.9, 5.0}, {118.1, 5.84}, // Sabah
		{110.35, 1.55}, {111.83, 2.29}, {113.99, 4.4}, // Sarawak
		{103.43, 4.0},                            // a coast
		{0, 0}, {103.8198, 1.3521}, {101.4, 0.5}, // placeholders and abroad
	}
	pts := make([][2]float64, 1<<16)
	for i := range pts {
		c := centres[r.IntN(len(centres))]
		pts[i] = [2]float64{c[0] + r.NormFloat64()*0.3, c[1] + r.NormFloat64()*0.3}
	}
	InMalaysia(0, 0) // parse and index outside the timer
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := range b.N {
		p := pts[i&(len(pts)-1)]
		if InMalaysia(p[0], p[1]) {
			n++
		}
	}
	_ = n
}

// BenchmarkParse is the one-off cost of the first InMalaysia call.
func BenchmarkParse(b *testing.B) {
	for range b.N {
		if _, err := parse(malaysiaData); err != nil {
			b.Fatal(err)
		}
	}
}
