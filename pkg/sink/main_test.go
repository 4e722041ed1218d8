package sink_test

import (
	"os"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/sink"
)

// TestMain registers the zstd codec, as the job's main does, so that
// the tests and benchmarks run the configuration the job runs.
func TestMain(m *testing.M) {
	sink.RegisterZstdCodec()
	os.Exit(m.Run())
}
