package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// Errors of a run that publishes nothing on purpose.
var (
	// ErrRecordsFell is a publish guard: the body holds far fewer records
	// than the previous snapshot. Options.Force overrides it.
	ErrRecordsFell = errors.New("record count fell against the previous snapshot")
	// ErrUnchanged means the day's snapshot was already published from
	// the same body bytes (Options.SkipIfUnchanged): nothing was written.
	// It is not a failure.
	ErrUnchanged = errors.New("snapshot unchanged")
)

// Previous is the snapshot a run is compared with: the newest earlier day
// under the same prefix that has a manifest.
type Previous struct {
	Snapshot string `json:"snapshot"` // YYYYMMDD
	Records  int64  `json:"records"`
	SHA256   string `json:"sha256,omitempty"`
}

// manifestPath matches "{prefix}/{YYYYMMDD}/{ManifestName}" and captures
// the date.
func manifestPath(prefix string) *regexp.Regexp {
	p := regexp.QuoteMeta(prefix)
	if prefix != "" {
		p += "/"
	}
	return regexp.MustCompile(`^` + p + `(\d{8})/` + regexp.QuoteMeta(ManifestName) + `$`)
}

// findPrevious returns the newest manifest of a day before day under
// prefix, or nil when there is none (the first run ever).
func findPrevious(ctx context.Context, store sink.Store, prefix string, day time.Time) (*Manifest, error) {
	list := prefix
	if list != "" {
		list += "/"
	}
	names, err := store.List(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("look for the previous snapshot: %w", err)
	}
	re, today := manifestPath(prefix), day.Format(DateLayout)
	newest := ""
	for _, name := range names {
		// Names are sorted, so the last match before today is the newest.
		if m := re.FindStringSubmatch(name); m != nil && m[1] < today {
			newest = name
		}
	}
	if newest == "" {
		return nil, nil
	}
	return ReadManifest(ctx, store, newest)
}

// ReadManifest reads the manifest at name in store, such as
// path.Join(Dir(prefix, day), ManifestName); a missing one is nil, nil:
// that day has no complete snapshot.
func ReadManifest(ctx context.Context, store sink.Store, name string) (*Manifest, error) {
	r, err := store.NewReader(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", store.URL(name), err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", store.URL(name), err)
	}
	return m, nil
}

// ParseManifest decodes a manifest.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return &m, nil
}

// checkHistory applies the checks that compare this run with earlier ones:
// an unchanged rerun of the day, and the fall of the record count against
// the previous day. forced reports a fall that opts.Force let through.
func checkHistory(opts Options, records int64, sum string, sameDay, previous *Manifest) (forced bool, err error) {
	if opts.SkipIfUnchanged && sameDay != nil && sameDay.Source.SHA256 != "" && sameDay.Source.SHA256 == sum {
		return false, fmt.Errorf("%w: %s was published from the same body (SHA-256 %s)", ErrUnchanged, sameDay.Snapshot, sum)
	}
	if previous == nil || previous.Stats.RecordsWritten == 0 {
		return false, nil
	}
	before := previous.Stats.RecordsWritten
	fell := 100 * float64(before-records) / float64(before)
	switch {
	case fell <= opts.MaxDropPercent:
		return false, nil
	case opts.Force:
		return true, nil
	}
	return false, fmt.Errorf("%w: %d records, %d in %s (%.1f%% fewer, the limit is %g%%; Options.Force publishes anyway)",
		ErrRecordsFell, records, before, previous.Snapshot, fell, opts.MaxDropPercent)
}

// rawArchive is the gzip copy of the body, written while the body streams
// into the decoder. It goes to a hidden staging name first: whether it
// ends as the day's archive or under rejected/ is known only at the end
// of the body.
type rawArchive struct {
	store   sink.Store
	staging string
	obj     *sink.Object
	gz      *gzip.Writer
	async   *asyncWriter // feeds gz on a goroutine of its own
}

func newRawArchive(ctx context.Context, store sink.Store, dir string) (*rawArchive, error) {
	var id [8]byte
	rand.Read(id[:])
	// Hidden and not ending in .json.gz, like the local store's temporary
	// files, so globs over the snapshots never pick it up.
	staging := path.Join(dir, "."+ArchiveName+".tmp-"+hex.EncodeToString(id[:]))
	obj, err := store.NewObject(ctx, staging, "application/gzip")
	if err != nil {
		return nil, err
	}
	// Fastest level: compressing 200 MB takes tens of CPU seconds on a
	// small machine even so, and this JSON still shrinks fivefold.
	gz, err := gzip.NewWriterLevel(obj, gzip.BestSpeed)
	if err != nil {
		obj.Abort()
		return nil, err
	}
	// 4 x 256 KiB: the decoder's reads are 64 KiB.
	return &rawArchive{store: store, staging: staging, obj: obj, gz: gz, async: newAsyncWriter(gz, 4, 256<<10)}, nil
}

func (a *rawArchive) Write(p []byte) (int, error) { return a.async.Write(p) }

// publish finishes the archive and moves it to name.
func (a *rawArchive) publish(ctx context.Context, name string) (sink.ObjectInfo, error) {
	if err := a.async.Close(); err != nil {
		a.obj.Abort()
		return sink.ObjectInfo{}, fmt.Errorf("write %s: %w", a.obj.URL(), err)
	}
	if err := a.gz.Close(); err != nil {
		a.obj.Abort()
		return sink.ObjectInfo{}, fmt.Errorf("write %s: %w", a.obj.URL(), err)
	}
	info, err := a.obj.Commit()
	if err != nil {
		return sink.ObjectInfo{}, err
	}
	if err := a.store.Rename(ctx, a.staging, name); err != nil {
		return sink.ObjectInfo{}, errors.Join(err, removeAll(ctx, a.store, []string{a.staging}))
	}
	info.URL, info.Generation = a.store.URL(name), 0
	return info, nil
}

// abort drops an archive that was not published.
func (a *rawArchive) abort() {
	a.async.Close()
	a.obj.Abort()
}
