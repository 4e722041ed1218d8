package changes

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// ErrDigest means a digest cannot stand for its snapshot: it is cut or
// malformed, or it is the digest of another snapshot or of another
// schema. The snapshot's Parquet file can still be read (ReadBaseline).
var ErrDigest = errors.New("unusable digest")

// Digester builds the digest of the snapshot being written, batch by
// batch: per row, its id and the hash of the rest of the row, and the
// keys of the hash function. Written beside the snapshot (WriteDigest),
// it is the next day's Baseline (ReadDigest), which then needs no
// reading of this snapshot's Parquet file; Comparison.Finish still reads
// the file for the before-values of the plots that changed or went.
//
// A Digester keeps 16 bytes a row. It is not safe for concurrent use.
type Digester struct {
	h      hasher
	hashes rowHashes // of the last batch; a Comparison reads them too
	rows   []entry   // every row added, in the order added
	sorted bool      // rows are by id, the first of each id only
	dups   int64     // rows dropped by sorting
	// first tells the first row of each id from its repeats, and isFirst
	// says which rows of the last batch are firsts: for Versions, on a
	// first day (nil in a Comparison's Digester).
	first   *firstRows
	isFirst []bool
}

// NewDigester starts the digest of a snapshot of ds with fresh keys: for
// a run that has no Baseline to compare with. Comparison.Digester is the
// one of a run that has.
func NewDigester(ds *spoc.Dataset) (*Digester, error) {
	h, err := newHasher(ds)
	if err != nil {
		return nil, err
	}
	return &Digester{h: h, first: &firstRows{key: h.key}}, nil
}

// Add hashes the rows of rec, a batch of the snapshot, in the order the
// snapshot holds them.
func (d *Digester) Add(rec arrow.RecordBatch) error {
	ids, err := idColumn(rec, d.h.id)
	if err != nil {
		return err
	}
	return d.add(rec, ids)
}

func (d *Digester) add(rec arrow.RecordBatch, ids []int64) error {
	if d.sorted {
		return errors.New("digest: Add after WriteDigest")
	}
	if err := d.hashes.compute(d.h, rec); err != nil {
		return err
	}
	for i, id := range ids {
		d.rows = append(d.rows, entry{id, d.hashes.row[i]})
	}
	if d.first == nil {
		return nil
	}
	d.isFirst = slices.Grow(d.isFirst[:0], len(ids))[:len(ids)]
	idAt := func(pos int) int64 { return d.rows[pos].id }
	start := len(d.rows) - len(ids)
	for i, id := range ids {
		first, err := d.first.add(id, start+i, idAt)
		if err != nil {
			return err
		}
		d.isFirst[i] = first
	}
	return nil
}

// Versions are the rows of the batch last added that begin a version of
// their plot in a snapshot that has nothing to compare with (the first
// under its prefix): the first row of each id, every one Added. A
// Comparison's Digester has the Comparison's Versions instead.
func (d *Digester) Versions() []Version {
	var out []Version
	for i, first := range d.isFirst {
		if first {
			out = append(out, Version{Row: i, Change: Added})
		}
	}
	return out
}

// The digest's layout, little-endian:
//
//	magic        8 bytes, digestMagic
//	header size  uint32
//	header       JSON, digestHeader
//	rows         header.Rows times: id int64, hash uint64; ascending ids
//
// The header names the snapshot and the compared columns with their
// types, so that a digest is never read for another day or schema.
const (
	digestMagic     = "SPOCDG1\n"
	maxDigestHeader = 64 << 10
	digestEntrySize = 16
)

type digestHeader struct {
	Snapshot   string         `json:"snapshot"`
	Columns    []digestColumn `json:"columns"`
	Seed       uint64         `json:"seed"`
	Key        uint64         `json:"key"`
	Rows       int64          `json:"rows"`
	Duplicates int64          `json:"duplicates"`
}

type digestColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func (h hasher) digestColumns() []digestColumn {
	cols := make([]digestColumn, len(h.names))
	for k, name := range h.names {
		cols[k] = digestColumn{Name: name, Type: h.types[k].String()}
	}
	return cols
}

// WriteDigest writes the digest of snapshot (its date, YYYYMMDD) to w
// and returns the bytes written. Call it once, after the last Add.
func (d *Digester) WriteDigest(w io.Writer, snapshot string) (int64, error) {
	if !d.sorted {
		d.first = nil
		d.rows, d.dups = firstOfEachID(d.rows, func(e entry) int64 { return e.id })
		d.sorted = true
	}
	header, err := json.Marshal(digestHeader{
		Snapshot: snapshot, Columns: d.h.digestColumns(),
		Seed: d.h.seed, Key: d.h.key,
		Rows: int64(len(d.rows)), Duplicates: d.dups,
	})
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	bw.WriteString(digestMagic)
	bw.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(header))))
	bw.Write(header)
	var buf [digestEntrySize]byte
	for _, e := range d.rows {
		binary.LittleEndian.PutUint64(buf[:8], uint64(e.id))
		binary.LittleEndian.PutUint64(buf[8:], e.hash)
		if _, err := bw.Write(buf[:]); err != nil {
			break // Flush returns it
		}
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return int64(len(digestMagic) + 4 + len(header) + len(d.rows)*digestEntrySize), nil
}

// ReadDigest reads the Baseline of snapshot (YYYYMMDD) from its digest, r
// of size bytes, written by WriteDigest in the run that published it.
// ds is the snapshot's dataset, as for ReadBaseline, and f the snapshot's
// Parquet file, which the Baseline keeps for Comparison.Finish (see
// Baseline). It reads r to its end. A digest that is cut, malformed, or
// of another snapshot or schema is an ErrDigest.
//
// ReadDigest checks the digest's form, not its bytes: the caller checks
// them against what the snapshot's manifest recorded.
func ReadDigest(ctx context.Context, ds *spoc.Dataset, snapshot string, r io.Reader, size int64, f File) (*Baseline, error) {
	b, err := readDigest(ctx, ds, snapshot, r, size, f)
	if err != nil {
		return nil, fmt.Errorf("read the digest of snapshot %s: %w", snapshot, err)
	}
	return b, nil
}

func readDigest(ctx context.Context, ds *spoc.Dataset, snapshot string, r io.Reader, size int64, f File) (*Baseline, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	var fixed [len(digestMagic) + 4]byte
	if _, err := io.ReadFull(br, fixed[:]); err != nil {
		return nil, fmt.Errorf("%w: its header: %w", ErrDigest, err)
	}
	if string(fixed[:len(digestMagic)]) != digestMagic {
		return nil, fmt.Errorf("%w: not a digest (no %q at its start)", ErrDigest, digestMagic)
	}
	n := int64(binary.LittleEndian.Uint32(fixed[len(digestMagic):]))
	if n > maxDigestHeader || n > size-int64(len(fixed)) {
		return nil, fmt.Errorf("%w: a header of %d bytes in %d", ErrDigest, n, size)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(br, raw); err != nil {
		return nil, fmt.Errorf("%w: its header: %w", ErrDigest, err)
	}
	var header digestHeader
	if err := json.Unmarshal(raw, &header); err != nil {
		return nil, fmt.Errorf("%w: its header: %w", ErrDigest, err)
	}
	h, err := hasherWithKeys(ds, header.Seed, header.Key)
	if err != nil {
		return nil, err
	}
	switch rest := size - int64(len(fixed)) - n; {
	case header.Snapshot != snapshot:
		return nil, fmt.Errorf("%w: it is the digest of snapshot %q", ErrDigest, header.Snapshot)
	case !slices.Equal(header.Columns, h.digestColumns()):
		return nil, fmt.Errorf("%w: its columns are not the dataset's", ErrDigest)
	case header.Rows < 0 || rest != header.Rows*digestEntrySize:
		return nil, fmt.Errorf("%w: %d rows in %d bytes", ErrDigest, header.Rows, rest)
	}
	b := &Baseline{snapshot: snapshot, file: f, schema: ds.Schema(), h: h, table: newTable(ds), duplicates: header.Duplicates, entries: make([]entry, header.Rows)}
	var buf [digestEntrySize]byte
	for i := range b.entries {
		if i%(64<<10) == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if _, err := io.ReadFull(br, buf[:]); err != nil {
			return nil, fmt.Errorf("%w: row %d: %w", ErrDigest, i, err)
		}
		e := entry{int64(binary.LittleEndian.Uint64(buf[:8])), binary.LittleEndian.Uint64(buf[8:])}
		if i > 0 && e.id <= b.entries[i-1].id {
			return nil, fmt.Errorf("%w: row %d: id %d after %d", ErrDigest, i, e.id, b.entries[i-1].id)
		}
		b.entries[i] = e
	}
	if n, _ := br.Read(buf[:1]); n > 0 {
		return nil, fmt.Errorf("%w: bytes after its last row", ErrDigest)
	}
	return b, nil
}
