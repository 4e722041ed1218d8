// Command boundarygen reduces Natural Earth's 10m admin-0 countries, as the
// npm package world-atlas 2.0.2 carries them (countries-10m.json, TopoJSON),
// to one country's rings, and writes them in the compact binary form that
// package boundary embeds. Run it through go generate in pkg/boundary:
//
//	WORLD_ATLAS_COUNTRIES=/path/to/countries-10m.json go generate ./pkg/boundary
//
// The output is a pure function of the input file, so a regeneration from
// the same input reproduces the committed file byte for byte.
//
// # Output format
//
// All integers little-endian:
//
//	"BND1"                      magic
//	uint32 rings
//	per ring: uint32 n, then n × (int32 lon, int32 lat) in microdegrees
//
// Rings are open (the closing vertex, equal to the first, is dropped). Outer
// rings and holes are not told apart: the reader counts ray crossings over
// all rings (even-odd), which gives holes and separate islands for free.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
)

func main() {
	in := flag.String("in", "", "countries-10m.json of the npm package world-atlas 2.0.2")
	out := flag.String("out", "", "output file")
	id := flag.String("id", "458", "ISO 3166-1 numeric id of the country to extract (458: Malaysia)")
	flag.Parse()
	if *in == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "boundarygen: -in and -out are required (set WORLD_ATLAS_COUNTRIES for go generate)")
		os.Exit(2)
	}
	if err := run(*in, *out, *id); err != nil {
		fmt.Fprintln(os.Stderr, "boundarygen:", err)
		os.Exit(1)
	}
}

func run(in, out, id string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := generate(f, id)
	if err != nil {
		return fmt.Errorf("generate from %s: %w", in, err)
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

// topology is the part of a TopoJSON topology the generator reads.
type topology struct {
	Type      string `json:"type"`
	Transform *struct {
		Scale     [2]float64 `json:"scale"`
		Translate [2]float64 `json:"translate"`
	} `json:"transform"`
	Arcs    [][][2]int64 `json:"arcs"`
	Objects struct {
		Countries struct {
			Geometries []geometry `json:"geometries"`
		} `json:"countries"`
	} `json:"objects"`
}

type geometry struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	Arcs json.RawMessage `json:"arcs"`
}

// errNoCountry says the topology has no geometry with the requested id.
var errNoCountry = errors.New("no country with this id")

// generate decodes a TopoJSON topology and encodes the rings of the country
// with the given id.
func generate(r io.Reader, id string) ([]byte, error) {
	var topo topology
	if err := json.NewDecoder(r).Decode(&topo); err != nil {
		return nil, fmt.Errorf("decode topology: %w", err)
	}
	if topo.Type != "Topology" || topo.Transform == nil {
		return nil, errors.New("not a quantized TopoJSON topology")
	}
	var g *geometry
	for i := range topo.Objects.Countries.Geometries {
		if topo.Objects.Countries.Geometries[i].ID == id {
			g = &topo.Objects.Countries.Geometries[i]
			break
		}
	}
	if g == nil {
		return nil, fmt.Errorf("id %q: %w", id, errNoCountry)
	}
	var polygons [][][]int
	switch g.Type {
	case "Polygon":
		var p [][]int
		if err := json.Unmarshal(g.Arcs, &p); err != nil {
			return nil, fmt.Errorf("polygon arcs of %q: %w", id, err)
		}
		polygons = [][][]int{p}
	case "MultiPolygon":
		if err := json.Unmarshal(g.Arcs, &polygons); err != nil {
			return nil, fmt.Errorf("multipolygon arcs of %q: %w", id, err)
		}
	default:
		return nil, fmt.Errorf("id %q: geometry type %q, want Polygon or MultiPolygon", id, g.Type)
	}

	arcs := absoluteArcs(topo.Arcs)
	var rings [][][2]int32
	for _, p := range polygons {
		for _, refs := range p {
			q, err := stitch(arcs, refs)
			if err != nil {
				return nil, fmt.Errorf("id %q: %w", id, err)
			}
			ring := make([][2]int32, 0, len(q))
			for _, v := range q {
				lon := float64(v[0])*topo.Transform.Scale[0] + topo.Transform.Translate[0]
				lat := float64(v[1])*topo.Transform.Scale[1] + topo.Transform.Translate[1]
				ring = append(ring, [2]int32{micro(lon), micro(lat)})
			}
			// Quantized rings are closed; the reader closes them itself.
			if len(ring) > 1 && ring[0] == ring[len(ring)-1] {
				ring = ring[:len(ring)-1]
			}
			if len(ring) < 3 {
				continue
			}
			rings = append(rings, ring)
		}
	}
	return encode(rings), nil
}

// absoluteArcs undoes the delta encoding of quantized arcs: each position
// after an arc's first is stored as the difference from the one before.
func absoluteArcs(delta [][][2]int64) [][][2]int64 {
	out := make([][][2]int64, len(delta))
	for i, arc := range delta {
		abs := make([][2]int64, len(arc))
		var x, y int64
		for j, d := range arc {
			x += d[0]
			y += d[1]
			abs[j] = [2]int64{x, y}
		}
		out[i] = abs
	}
	return out
}

// stitch joins the arcs a ring references. A negative reference ~i means
// arc i reversed. Consecutive arcs share their joining position, which is
// kept once.
func stitch(arcs [][][2]int64, refs []int) ([][2]int64, error) {
	var ring [][2]int64
	for k, ref := range refs {
		i, reversed := ref, false
		if ref < 0 {
			i, reversed = ^ref, true
		}
		if i >= len(arcs) {
			return nil, fmt.Errorf("arc %d out of range (%d arcs)", i, len(arcs))
		}
		arc := arcs[i]
		pts := make([][2]int64, len(arc))
		copy(pts, arc)
		if reversed {
			for a, b := 0, len(pts)-1; a < b; a, b = a+1, b-1 {
				pts[a], pts[b] = pts[b], pts[a]
			}
		}
		if k > 0 && len(pts) > 0 {
			pts = pts[1:]
		}
		ring = append(ring, pts...)
	}
	return ring, nil
}

// micro rounds degrees to whole microdegrees (about 0.11 m), far finer
// than the source's quantization.
func micro(deg float64) int32 {
	return int32(math.Round(deg * 1e6))
}

func encode(rings [][][2]int32) []byte {
	var b bytes.Buffer
	b.WriteString("BND1")
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	w(uint32(len(rings)))
	for _, r := range rings {
		w(uint32(len(r)))
		w(r)
	}
	return b.Bytes()
}
