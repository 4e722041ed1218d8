package sink

import (
	"sync"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// zstdWindow bounds how far back a match may reach. Parquet pages are
// compressed one by one and are about a data page (1 MiB) long, so a
// larger window finds nothing more; arrow-go's encoders use the 8 MiB
// default, and each then holds a 16 MiB history buffer.
const zstdWindow = 1 << 20

// zstdCodec is arrow-go's zstd codec with bounded encoder memory. arrow-go
// keeps a sync.Pool of encoders per level, which on a 2-core machine holds
// two or more of each (about 50 MiB at the best level) and rebuilds them
// after garbage collections. Here each level has at most one idle encoder,
// kept for the life of the process: the writer of one file compresses one
// page at a time. Decoding and streaming stay arrow-go's.
type zstdCodec struct {
	compress.Codec

	mu   sync.Mutex
	idle map[zstd.EncoderLevel]*zstd.Encoder
}

var registerZstd sync.Once

// RegisterZstdCodec puts the zstd codec with bounded encoder memory in
// place of arrow-go's in arrow-go's codec registry, for every Parquet
// writer of the process. The registry is process-wide and not
// synchronised: call it once, at the start of main (or of TestMain),
// before any Parquet file is written or read. Later calls do nothing.
// Without it, files are the same; their encoders hold more memory.
func RegisterZstdCodec() {
	registerZstd.Do(func() {
		arrowZstd, err := compress.GetCodec(compress.Codecs.Zstd)
		if err != nil {
			panic("sink: arrow-go has no zstd codec: " + err.Error())
		}
		compress.RegisterCodec(compress.Codecs.Zstd, newZstdCodec(arrowZstd))
	})
}

func newZstdCodec(decoder compress.Codec) *zstdCodec {
	return &zstdCodec{Codec: decoder, idle: make(map[zstd.EncoderLevel]*zstd.Encoder)}
}

// Encode compresses src at the default level.
func (c *zstdCodec) Encode(dst, src []byte) []byte {
	return c.EncodeLevel(dst, src, compress.DefaultCompressionLevel)
}

// EncodeLevel compresses src at a zstd level (1-22, mapped to the four
// speeds of klauspost/compress as arrow-go maps them).
func (c *zstdCodec) EncodeLevel(dst, src []byte, level int) []byte {
	speed := zstd.SpeedDefault
	if level != compress.DefaultCompressionLevel {
		speed = zstd.EncoderLevelFromZstd(level)
	}
	enc := c.take(speed)
	out := enc.EncodeAll(src, dst[:0])
	c.put(speed, enc)
	return out
}

func (c *zstdCodec) take(speed zstd.EncoderLevel) *zstd.Encoder {
	c.mu.Lock()
	enc := c.idle[speed]
	delete(c.idle, speed)
	c.mu.Unlock()
	if enc != nil {
		return enc
	}
	// The options are arrow-go's (frames without content for empty input,
	// entropy coding of all literals), with the bounded window.
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(speed),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithZeroFrames(true),
		zstd.WithAllLitEntropyCompression(true))
	if err != nil {
		panic("sink: zstd encoder options: " + err.Error()) // constant options
	}
	return enc
}

func (c *zstdCodec) put(speed zstd.EncoderLevel, enc *zstd.Encoder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle[speed] == nil {
		c.idle[speed] = enc
	}
}
