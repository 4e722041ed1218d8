package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/changes"
	"github.com/calee-data/mspo-spoc/pkg/geo"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// Manifest describes a published snapshot.
type Manifest struct {
	Snapshot string      `json:"snapshot"` // YYYYMMDD
	Source   Source      `json:"source"`
	Parquet  ParquetInfo `json:"parquet"`
	Stats    spoc.Stats  `json:"stats"`
	// Archive is the raw body (ArchiveName), when Options.Outputs.Archive.
	Archive *sink.ObjectInfo `json:"archive,omitempty"`
	// Changes is the change table (ChangesName) and its summary, and
	// Digest the snapshot's digest (DigestName), when
	// Options.Outputs.Changes.
	Changes *ChangesInfo     `json:"changes,omitempty"`
	Digest  *sink.ObjectInfo `json:"digest,omitempty"`
	// Versions is the versions that begin the day (VersionsName: the
	// plots added, changed and removed, see pkg/history), when
	// Options.Outputs.Changes.
	Versions *VersionsInfo `json:"versions,omitempty"`
	// Geo is the geolocation layer (GeoName) and its account of the
	// plots' points; absent for a dataset without a point.
	Geo *GeoInfo `json:"geo,omitempty"`
	// Previous is the snapshot the publish guards and the change table
	// compared with, the newest earlier day that is whole; nil when there
	// is none. PassedOver are the later days that were not whole, newest
	// first, each with why. Forced says a guard was overridden.
	Previous   *Previous    `json:"previous,omitempty"`
	PassedOver []PassedOver `json:"passed_over,omitempty"`
	Forced     bool         `json:"forced,omitempty"`
	Attempts   int          `json:"attempts"`
	StartedAt  time.Time    `json:"started_at"`
	FinishedAt time.Time    `json:"finished_at"`
	JobVersion string       `json:"job_version"`
}

// Source describes where the body came from.
type Source struct {
	// URL is where the body came from, after redirects, and RequestedURL
	// the URL asked for when a redirect led elsewhere; both with their
	// credentials redacted.
	URL          string `json:"url"`
	RequestedURL string `json:"requested_url,omitempty"`
	HTTPStatus   int    `json:"http_status,omitempty"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	WireBytes    int64  `json:"wire_bytes"` // received, before decompression
	BodyBytes    int64  `json:"body_bytes"` // JSON bytes decoded
	SHA256       string `json:"sha256"`     // of the body bytes, after transfer decoding
}

// ParquetInfo describes the published Parquet object.
type ParquetInfo struct {
	sink.ObjectInfo
	Rows      int64 `json:"rows"`
	RowGroups int   `json:"row_groups"`
}

// ChangesInfo describes the published change table.
type ChangesInfo struct {
	sink.ObjectInfo
	Rows int64 `json:"rows"`
	// BaselineFrom is what the previous snapshot was read from:
	// BaselineFromDigest or BaselineFromParquet; empty on a first run.
	BaselineFrom string `json:"baseline_from,omitempty"`
	changes.Summary
}

// GeoInfo describes the published geolocation layer: its object, its
// rows (the snapshot's) and the count of each of its checks.
type GeoInfo struct {
	sink.ObjectInfo
	Rows    int64       `json:"rows"`
	Account geo.Account `json:"account"`
}

// VersionsInfo describes the published versions object.
type VersionsInfo struct {
	sink.ObjectInfo
	Rows int64 `json:"rows"`
}

// Values of ChangesInfo.BaselineFrom.
const (
	BaselineFromDigest  = "digest"
	BaselineFromParquet = "parquet"
)

// Previous is the snapshot a run is compared with: the newest earlier day
// under the same prefix that is whole.
type Previous struct {
	Snapshot string `json:"snapshot"` // YYYYMMDD
	Records  int64  `json:"records"`
	SHA256   string `json:"sha256,omitempty"`
	// Verified is how its Parquet object was checked against its
	// manifest: VerifiedCRC32C, VerifiedFooter or VerifiedManifest.
	Verified string `json:"verified,omitempty"`
}

// ReadManifest reads the manifest at name in store, such as
// path.Join(Dir(prefix, day), ManifestName); a missing one is nil, nil:
// that day has no complete snapshot.
func ReadManifest(ctx context.Context, store sink.Store, name string) (*Manifest, error) {
	m, err := readManifestData(ctx, store, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", store.URL(name), err)
	}
	return m, nil
}

// errNotManifest is a manifest object that does not decode.
var errNotManifest = errors.New("its manifest does not read")

// maxManifestBytes is the most of a manifest object that is read. The
// manifests this job writes hold about 5 KB (a little more for each day
// passed over); anything bigger than 200 times that was written by
// something else, and reading it whole would put an object of any size
// in memory on every later run that looks back at its day.
const maxManifestBytes = 1 << 20

// readManifestData reads the manifest at name: a missing one wraps
// fs.ErrNotExist, one that does not decode, or is bigger than
// maxManifestBytes, errNotManifest. The size the store gives on opening
// is checked before anything is read.
func readManifestData(ctx context.Context, store sink.Store, name string) (*Manifest, error) {
	r, err := store.NewReader(ctx, name)
	if errors.Is(err, sink.ErrNotObject) {
		return nil, fmt.Errorf("%w: %v", errNotManifest, err)
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if r.Size() > maxManifestBytes {
		return nil, fmt.Errorf("%w: it holds %d bytes, more than a manifest may (%d)", errNotManifest, r.Size(), maxManifestBytes)
	}
	// Limited too, for a store whose size is not the object's.
	data, err := io.ReadAll(io.LimitReader(r, maxManifestBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxManifestBytes {
		return nil, fmt.Errorf("%w: it holds more than the %d bytes a manifest may", errNotManifest, maxManifestBytes)
	}
	m, err := parseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotManifest, err)
	}
	return m, nil
}

// ParseManifest decodes a manifest. JSON null, or anything but an
// object, is not one.
func ParseManifest(data []byte) (*Manifest, error) {
	m, err := parseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return m, nil
}

func parseManifest(data []byte) (*Manifest, error) {
	var m *Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("it is null")
	}
	return m, nil
}
