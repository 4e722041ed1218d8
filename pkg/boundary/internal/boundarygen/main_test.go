package main

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// The committed data must be what the generator makes from the npm package
// world-atlas 2.0.2. The package is not part of the repository, so the
// check runs only where it has been unpacked and named.
func TestCommittedDataMatchesRegeneration(t *testing.T) {
	in := os.Getenv("WORLD_ATLAS_COUNTRIES")
	if in == "" {
		t.Skip("WORLD_ATLAS_COUNTRIES is not set: unpack the npm package world-atlas 2.0.2 " +
			"(npm pack world-atlas@2.0.2) and set it to its countries-10m.json to check the committed data")
	}
	out := t.TempDir() + "/malaysia.bin"
	if err := run(in, out, "458"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../data/malaysia.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("regenerated data (%d bytes) differs from data/malaysia.bin (%d bytes): run go generate ./pkg/boundary", len(got), len(want))
	}
}

// A tiny topology with the features the generator must undo: the
// transform, delta-encoded arcs, an arc shared by two polygons and used
// reversed (~i) by the second, and a polygon with a hole.
const tinyTopology = `{"type":"Topology",
 "transform":{"scale":[0.5,0.25],"translate":[100,1]},
 "arcs":[
  [[4,0],[0,4]],
  [[4,4],[-4,0],[0,-4],[4,0]],
  [[4,0],[4,0],[0,4],[-4,0]],
  [[1,1],[0,1],[1,0],[0,-1],[-1,0]]
 ],
 "objects":{"countries":{"type":"GeometryCollection","geometries":[
  {"type":"Polygon","id":"001","arcs":[[0]]},
  {"type":"MultiPolygon","id":"458","arcs":[[[0,1],[3]],[[-1,2]]]}
 ]}}}`

func TestGenerateDecodesTopology(t *testing.T) {
	got, err := generate(strings.NewReader(tinyTopology), "458")
	if err != nil {
		t.Fatal(err)
	}
	// Quantized (x,y) is (100 + x/2, 1 + y/4) degrees, in microdegrees.
	p := func(x, y int32) [2]int32 { return [2]int32{100e6 + x*5e5, 1e6 + y*25e4} }
	want := encode([][][2]int32{
		// Arcs 0 then 1, joined at (4,4); the closing (4,0) dropped.
		{p(4, 0), p(4, 4), p(0, 4), p(0, 0)},
		// The hole.
		{p(1, 1), p(1, 2), p(2, 2), p(2, 1)},
		// Arc 0 reversed, then arc 2, joined at (4,0).
		{p(4, 4), p(4, 0), p(8, 0), p(8, 4)},
	})
	if !bytes.Equal(got, want) {
		t.Errorf("generate =\n%v\nwant\n%v", got, want)
	}
}

func TestGenerateUnknownID(t *testing.T) {
	_, err := generate(strings.NewReader(tinyTopology), "999")
	if !errors.Is(err, errNoCountry) {
		t.Errorf("err = %v, want errNoCountry", err)
	}
}
