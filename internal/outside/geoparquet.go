package outside

import (
	_ "embed"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// GeoParquetEnv names a node_modules folder with the npm packages of
// geoparquet/package.json, at the versions it pins.
const GeoParquetEnv = "GEOPARQUET_NODE_MODULES"

var (
	//go:embed geoparquet/read.mjs
	geoParquetScript []byte
	//go:embed geoparquet/package.json
	geoParquetPackages []byte
)

// Layer is what the npm geoparquet package saw in a GeoParquet file.
type Layer struct {
	// Geo is the file's "geo" metadata, as the reader parsed it; nil
	// when the file has none.
	Geo *GeoMetadata `json:"geo"`
	// GeometryType is the logical type hyparquet gave the primary column
	// from that metadata: "GEOMETRY" for a WKB column, "" when it did not
	// take the column for a geometry.
	GeometryType string `json:"geometryType"`
	// Features are the GeoJSON features of the package's toGeoJson, in
	// row order. A row without a geometry has none, and a feature's
	// properties leave out the row's null columns.
	Features []Feature `json:"features"`
	// Rows are every row as hyparquet reads it.
	Rows []Row `json:"rows"`
}

// GeoMetadata is GeoParquet's file metadata.
type GeoMetadata struct {
	Version       string                   `json:"version"`
	PrimaryColumn string                   `json:"primary_column"`
	Columns       map[string]GeoColumnMeta `json:"columns"`
}

// GeoColumnMeta is GeoParquet's metadata of a geometry column.
type GeoColumnMeta struct {
	Encoding      string                         `json:"encoding"`
	GeometryTypes []string                       `json:"geometry_types"`
	BBox          []float64                      `json:"bbox"`
	Covering      map[string]map[string][]string `json:"covering"`
	CRS           json.RawMessage                `json:"crs,omitempty"`
}

// Feature is a GeoJSON feature.
type Feature struct {
	Type       string         `json:"type"`
	Geometry   *Geometry      `json:"geometry"`
	Properties map[string]any `json:"properties"`
}

// Geometry is a GeoJSON point: Coordinates are longitude, then latitude.
// (The layers read are points; another geometry fails to decode.)
type Geometry struct {
	Type        string    `json:"type"`
	Coordinates []float64 `json:"coordinates"`
}

// Row is a row of the file: its primary geometry, nil where null, and its
// other columns by name. INT64 values come as float64, exactly (the
// reader fails past 2^53), and structs as maps.
type Row struct {
	Geometry *Geometry      `json:"geometry"`
	Columns  map[string]any `json:"columns"`
}

// GeoParquet reads the GeoParquet file at path with the npm geoparquet
// package (Node.js, geoparquet/read.mjs) and returns what it saw. The
// node_modules folder is GeoParquetEnv's, which .ci/run installs and
// sets; the test is skipped without it, and fails where its packages are
// not the versions geoparquet/package.json pins.
func GeoParquet(t testing.TB, path string) *Layer {
	t.Helper()
	modules := os.Getenv(GeoParquetEnv)
	var pinned struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(geoParquetPackages, &pinned); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(pinned.Dependencies))
	for name := range pinned.Dependencies {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if modules == "" || !installed(modules, name) {
			t.Skip("the npm GeoParquet reader is not installed: set " + GeoParquetEnv +
				" to the node_modules folder of `npm install` run in a copy of internal/outside/geoparquet (.ci/run does)")
		}
		var got struct {
			Version string `json:"version"`
		}
		data, err := os.ReadFile(filepath.Join(modules, name, "package.json"))
		if err == nil {
			err = json.Unmarshal(data, &got)
		}
		if err != nil {
			t.Fatal(err)
		}
		if want := pinned.Dependencies[name]; got.Version != want {
			t.Fatalf("%s has %s %s, and internal/outside/geoparquet/package.json pins %s: install it again", modules, name, got.Version, want)
		}
	}
	run := nodeScript(t, modules, "read.mjs", geoParquetScript)
	out, err := run(path)
	if err != nil {
		t.Fatalf("the npm GeoParquet reader could not read %s: %v", path, err)
	}
	var layer Layer
	if err := json.Unmarshal(out, &layer); err != nil {
		t.Fatalf("what the npm GeoParquet reader saw in %s: %v\n%.2000s", path, err, out)
	}
	return &layer
}
