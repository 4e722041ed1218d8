package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"google.golang.org/api/iterator"

	"github.com/calee-data/mspo-spoc/internal/parquettest"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/sink/sinktest"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

const testPrefix = "raw/mspo/api/spoc/get-spoc-list-public"

// runJob runs the job as main does, with env on top of settings that keep
// tests fast (short retry waits) and logs in JSON.
func runJob(t *testing.T, ctx context.Context, env map[string]string, args ...string) (int, string) {
	t.Helper()
	full := map[string]string{
		"SPOC_RETRY_INITIAL": "5ms",
		"SPOC_RETRY_MAX":     "20ms",
		"SPOC_LOG_FORMAT":    "json",
	}
	for k, v := range env {
		full[k] = v
	}
	var stderr bytes.Buffer
	code := run(ctx, args, full, &stderr)
	return code, stderr.String()
}

func today() string {
	loc, _ := time.LoadLocation("Asia/Kuala_Lumpur")
	return time.Now().In(loc).Format(snapshot.DateLayout)
}

// files lists every file below dir, hidden temporary files included.
func files(t testing.TB, dir string) []string { return sinktest.Files(t, dir) }

// readParquet opens a Parquet file and checks what every snapshot must be:
// exactly the tidy schema, every column chunk zstd with statistics.
func readParquet(t *testing.T, data []byte) (arrow.Table, map[string]string) {
	t.Helper()
	md := parquettest.Open(t, data).MetaData()
	for rg := range md.NumRowGroups() {
		rgm := md.RowGroup(rg)
		if n := rgm.NumRows(); n > 128*1024 {
			t.Errorf("row group %d has %d rows, more than 128Ki", rg, n)
		}
		for c := range rgm.NumColumns() {
			cc, err := rgm.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			if cc.Compression() != compress.Codecs.Zstd {
				t.Errorf("row group %d column %s: compression %s, want zstd", rg, cc.PathInSchema(), cc.Compression())
			}
			if ok, _ := cc.StatsSet(); !ok {
				t.Errorf("row group %d column %s: no statistics", rg, cc.PathInSchema())
			}
		}
	}
	kv := map[string]string{}
	for _, k := range md.KeyValueMetadata().Keys() {
		kv[k] = *md.KeyValueMetadata().FindValue(k)
	}
	tbl := parquettest.ReadTable(t, data)
	if !sameFields(tbl.Schema(), spoc.Schema) {
		t.Fatalf("schema\n%s\nwant\n%s", tbl.Schema(), spoc.Schema)
	}
	return tbl, kv
}

func sameFields(a, b *arrow.Schema) bool {
	if len(a.Fields()) != len(b.Fields()) {
		return false
	}
	for i, f := range a.Fields() {
		g := b.Field(i)
		if f.Name != g.Name || !arrow.TypeEqual(f.Type, g.Type) || f.Nullable != g.Nullable {
			return false
		}
	}
	return true
}

func readManifest(t *testing.T, data []byte) snapshot.Manifest {
	t.Helper()
	m, err := snapshot.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	return *m
}

// checkSnapshot checks a published snapshot against the fake upstream.
func checkSnapshot(t *testing.T, parquetData, manifestData []byte, up *spoctest.Server) {
	t.Helper()
	planted := up.Planted()
	want := int64(planted.Records - planted.Dropped)
	tbl, kv := readParquet(t, parquetData)
	if tbl.NumRows() != want {
		t.Errorf("Parquet has %d rows, want %d", tbl.NumRows(), want)
	}
	var idSum int64
	for _, chunk := range tbl.Column(0).Data().Chunks() {
		for _, id := range chunk.(*array.Int64).Int64Values() {
			idSum += id
		}
	}
	if idSum != planted.IDSum {
		t.Errorf("sum of ids %d, planted %d", idSum, planted.IDSum)
	}
	if kv["spoc.record_count"] != strconv.FormatInt(want, 10) || !strings.HasPrefix(kv["spoc.source_url"], up.URL) || kv["spoc.job_version"] == "" {
		t.Errorf("key-value metadata %v", kv)
	}

	m := readManifest(t, manifestData)
	if m.Snapshot != today() || m.Parquet.Rows != want || m.Stats.RecordsWritten != want {
		t.Errorf("manifest snapshot %s rows %d written %d; want %s and %d", m.Snapshot, m.Parquet.Rows, m.Stats.RecordsWritten, today(), want)
	}
	if m.Parquet.Size != int64(len(parquetData)) || m.Parquet.CRC32C != crc32.Checksum(parquetData, crc32.MakeTable(crc32.Castagnoli)) {
		t.Errorf("manifest size %d crc %08x do not describe the %d-byte object", m.Parquet.Size, m.Parquet.CRC32C, len(parquetData))
	}
	if m.Source.BodyBytes != up.Size() || m.Source.HTTPStatus != 200 || m.Source.ETag == "" {
		t.Errorf("manifest source %+v, body is %d bytes", m.Source, up.Size())
	}
	if m.Stats.DuplicateIDs != int64(planted.DuplicateIDs) || m.Stats.MPOBWithSeveralPlots != int64(planted.MPOBWithSeveralPlots) {
		t.Errorf("manifest duplicates %d / MPOB %d, planted %d / %d", m.Stats.DuplicateIDs, m.Stats.MPOBWithSeveralPlots, planted.DuplicateIDs, planted.MPOBWithSeveralPlots)
	}
	for reason, n := range planted.Invalid["gps_coordinate_lat"] {
		if got := m.Stats.Columns["gps_coordinate_lat"].Invalid[reason]; got != int64(n) {
			t.Errorf("manifest gps_coordinate_lat %s = %d, planted %d", reason, got, n)
		}
	}
	if !m.FinishedAt.After(m.StartedAt) || m.JobVersion == "" || m.Attempts < 1 {
		t.Errorf("manifest times %s..%s version %q attempts %d", m.StartedAt, m.FinishedAt, m.JobVersion, m.Attempts)
	}
}

func TestJobPublishesLocally(t *testing.T) {
	up := spoctest.NewServer(spoctest.WithRecords(70_000), spoctest.WithSeed(11), spoctest.WithGzip())
	defer up.Close()
	out := t.TempDir()
	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out})
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, logs)
	}
	dir := testPrefix + "/" + today()
	if got, want := files(t, out), []string{dir + "/changes/spoc-list-public.changes.parquet", dir + "/geo/spoc-list-public.geo.parquet", dir + "/history/spoc-list-public.versions.parquet", dir + "/spoc-list-public.digest", dir + "/spoc-list-public.json.gz", dir + "/spoc-list-public.manifest.json", dir + "/spoc-list-public.parquet"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("files %v, want %v", got, want)
	}
	pq, _ := os.ReadFile(filepath.Join(out, dir, "spoc-list-public.parquet"))
	mf, _ := os.ReadFile(filepath.Join(out, dir, "spoc-list-public.manifest.json"))
	checkSnapshot(t, pq, mf, up)

	lines := strings.Split(strings.TrimSpace(logs), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("last log line is not JSON: %v", err)
	}
	if last["severity"] != "INFO" || last["message"] != "snapshot published" || last["records"] != float64(70_000) || last["url"] == nil {
		t.Errorf("summary line %v", last)
	}
}

func TestJobPublishesToGCS(t *testing.T) {
	startFakeGCS(t, "calee-test")
	up := spoctest.NewServer(spoctest.WithRecords(20_000), spoctest.WithSeed(5))
	defer up.Close()

	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": "gs://calee-test"})
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, logs)
	}
	client := gcsClient(t)
	dir := testPrefix + "/" + today()
	if got := bucketObjects(t, client, "calee-test"); strings.Join(got, ",") != dir+"/changes/spoc-list-public.changes.parquet,"+dir+"/geo/spoc-list-public.geo.parquet,"+dir+"/history/spoc-list-public.versions.parquet,"+dir+"/spoc-list-public.digest,"+dir+"/spoc-list-public.json.gz,"+dir+"/spoc-list-public.manifest.json,"+dir+"/spoc-list-public.parquet" {
		t.Fatalf("objects %v", got)
	}
	pq := readObject(t, client, "calee-test", dir+"/spoc-list-public.parquet")
	mf := readObject(t, client, "calee-test", dir+"/spoc-list-public.manifest.json")
	checkSnapshot(t, pq, mf, up)
	attrs, err := client.Bucket("calee-test").Object(dir + "/spoc-list-public.parquet").Attrs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if attrs.ContentType != "application/vnd.apache.parquet" {
		t.Errorf("content type %q", attrs.ContentType)
	}
	m := readManifest(t, mf)
	if !strings.HasPrefix(m.Parquet.URL, "gs://calee-test/"+dir) || m.Parquet.Generation == 0 {
		t.Errorf("manifest Parquet %+v", m.Parquet)
	}

	// The raw archive replays straight from the bucket.
	out := t.TempDir()
	archive := "gs://calee-test/" + dir + "/spoc-list-public.json.gz"
	code, logs = runJob(t, context.Background(), map[string]string{"SPOC_URL": archive, "SPOC_OUTPUT": out, "SPOC_DATE": "20250101"})
	if code != exitOK {
		t.Fatalf("replay from %s: exit %d\n%s", archive, code, logs)
	}
	replayed, _ := os.ReadFile(filepath.Join(out, testPrefix, "20250101", "spoc-list-public.manifest.json"))
	r := readManifest(t, replayed)
	if r.Source.URL != archive || r.Source.SHA256 != m.Source.SHA256 || r.Stats.RecordsWritten != m.Stats.RecordsWritten || r.Parquet.Rows != m.Parquet.Rows {
		t.Errorf("replay manifest: source %+v, %d records; original %+v, %d records", r.Source, r.Stats.RecordsWritten, m.Source, m.Stats.RecordsWritten)
	}
	code, logs = runJob(t, context.Background(), map[string]string{"SPOC_URL": "gs://calee-test/missing.json.gz", "SPOC_OUTPUT": out, "SPOC_DATE": "20250102", "SPOC_ATTEMPTS": "1"})
	if code == exitOK || !strings.Contains(logs, "missing.json.gz") {
		t.Errorf("replay of a missing object: exit %d\n%s", code, logs)
	}
}

// startFakeGCS starts fake-gcs-server on loopback with one bucket and
// points the job's GCS client at it through STORAGE_EMULATOR_HOST.
func startFakeGCS(t *testing.T, bucket string) {
	t.Helper()
	t.Setenv("STORAGE_EMULATOR_HOST", sinktest.NewEmulator(t, bucket).Host())
}

// gcsClient reads through STORAGE_EMULATOR_HOST, as the job writes; the
// emulator serves downloads on the JSON API only.
func gcsClient(t *testing.T) *storage.Client {
	t.Helper()
	client, err := storage.NewClient(context.Background(), storage.WithJSONReads())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func bucketObjects(t *testing.T, c *storage.Client, bucket string) []string {
	t.Helper()
	var names []string
	it := c.Bucket(bucket).Objects(context.Background(), nil)
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, a.Name)
	}
	sort.Strings(names)
	return names
}

func readObject(t *testing.T, c *storage.Client, bucket, name string) []byte {
	t.Helper()
	return sinktest.ReadAll(t, sink.NewGCS(c, bucket, ""), name)
}

func TestJobRetriesTransientFailures(t *testing.T) {
	tests := []struct {
		name     string
		opts     []spoctest.Option
		requests int
	}{
		{"two 503s then success", []spoctest.Option{spoctest.FailFirst(2, 503)}, 3},
		{"429 with Retry-After then success", []spoctest.Option{spoctest.FailFirst(1, 429), spoctest.WithRetryAfter("0")}, 2},
		{"a body cut mid-stream then success", []spoctest.Option{spoctest.CutFirst(1, 300_000)}, 2},
		{"a gzip body cut mid-stream then success", []spoctest.Option{spoctest.WithGzip(), spoctest.CutFirst(2, 50_000)}, 3},
		{"a body ended cleanly mid-JSON then success", []spoctest.Option{spoctest.EndFirst(1, 300_000)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := spoctest.NewServer(append([]spoctest.Option{spoctest.WithRecords(5000)}, tt.opts...)...)
			defer up.Close()
			out := t.TempDir()
			code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out})
			if code != exitOK {
				t.Fatalf("exit %d\n%s", code, logs)
			}
			if up.Requests() != tt.requests {
				t.Errorf("%d requests, want %d", up.Requests(), tt.requests)
			}
			if n := strings.Count(logs, "attempt failed, retrying"); n != tt.requests-1 {
				t.Errorf("%d retry warnings, want %d\n%s", n, tt.requests-1, logs)
			}
			dir := filepath.Join(out, testPrefix, today())
			pq, _ := os.ReadFile(filepath.Join(dir, "spoc-list-public.parquet"))
			mf, _ := os.ReadFile(filepath.Join(dir, "spoc-list-public.manifest.json"))
			checkSnapshot(t, pq, mf, up)
			if m := readManifest(t, mf); m.Attempts != tt.requests {
				t.Errorf("manifest attempts %d, want %d", m.Attempts, tt.requests)
			}
			if got := files(t, out); len(got) != 7 {
				t.Errorf("files %v: a failed attempt left something behind", got)
			}
		})
	}
}

// Every failure exits 1 with a one-line reason and publishes nothing.
func TestJobFailuresPublishNothing(t *testing.T) {
	var full bytes.Buffer
	spoctest.Generate(&full, spoctest.GenOptions{Records: 3000, Seed: 2})
	truncated := full.Bytes()[:full.Len()*2/3]
	tests := []struct {
		name     string
		opts     []spoctest.Option
		env      map[string]string
		requests int    // requests the job should have made
		reason   string // in the error line
	}{
		{"truncated JSON on every attempt (retried like a cut body)", []spoctest.Option{spoctest.WithBody(truncated)}, nil, 4, "unexpected end of input"},
		{"malformed JSON", []spoctest.Option{spoctest.WithBody([]byte(`{"data":{"results":[{"entity_smallholder_id":1}}}`))}, nil, 1, "invalid JSON"},
		{"HTML page with 200", []spoctest.Option{spoctest.ServeHTML()}, nil, 1, "text/html"},
		{"503 on every attempt", []spoctest.Option{spoctest.FailFirst(100, 503)}, nil, 4, "503 Service Unavailable"},
		{"404 is not retried", []spoctest.Option{spoctest.FailFirst(100, 404)}, nil, 1, "404"},
		{"cut on every attempt", []spoctest.Option{spoctest.CutFirst(100, 10_000)}, map[string]string{"SPOC_ATTEMPTS": "2"}, 2, "unexpected EOF"},
		{"empty list", []spoctest.Option{spoctest.WithRecords(0)}, nil, 1, "too few records"},
		{"fewer records than SPOC_MIN_RECORDS", []spoctest.Option{spoctest.WithRecords(100)}, map[string]string{"SPOC_MIN_RECORDS": "101"}, 1, "too few records"},
		{"more than 1% of records without id", []spoctest.Option{spoctest.WithRecords(2000), spoctest.WithDropEvery(50)}, nil, 1, "too many records dropped"},
		{"body over SPOC_MAX_BODY_BYTES", []spoctest.Option{spoctest.WithRecords(2000)}, map[string]string{"SPOC_MAX_BODY_BYTES": "100KiB"}, 1, "too large"},
		{"no data.results", []spoctest.Option{spoctest.WithBody([]byte(`{"data":{"message":"no list today"}}`))}, nil, 1, "no data.results"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := spoctest.NewServer(append([]spoctest.Option{spoctest.WithRecords(3000)}, tt.opts...)...)
			defer up.Close()
			out := t.TempDir()
			env := map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out}
			maps.Copy(env, tt.env)
			code, logs := runJob(t, context.Background(), env)
			if code != exitFailed {
				t.Fatalf("exit %d, want %d\n%s", code, exitFailed, logs)
			}
			// A refused body is kept for inspection, only under rejected/.
			for _, name := range files(t, out) {
				if !strings.Contains(name, "/rejected/") {
					t.Errorf("file left at a final name after a failed run: %s", name)
				}
			}
			if up.Requests() != tt.requests {
				t.Errorf("%d requests, want %d", up.Requests(), tt.requests)
			}
			lines := strings.Split(strings.TrimSpace(logs), "\n")
			var last map[string]any
			json.Unmarshal([]byte(lines[len(lines)-1]), &last)
			if last["severity"] != "ERROR" || !strings.Contains(last["error"].(string), tt.reason) {
				t.Errorf("last log line %v: want an ERROR whose error mentions %q", lines[len(lines)-1], tt.reason)
			}
		})
	}
}

func TestJobFailureOnGCSPublishesNothing(t *testing.T) {
	startFakeGCS(t, "calee-test")
	up := spoctest.NewServer(spoctest.WithRecords(80_000), spoctest.CutFirst(100, 30_000_000))
	defer up.Close()
	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": "gs://calee-test", "SPOC_ATTEMPTS": "2", "SPOC_BATCH_SIZE": "8192"})
	if code != exitFailed {
		t.Fatalf("exit %d\n%s", code, logs)
	}
	if got := bucketObjects(t, gcsClient(t), "calee-test"); len(got) != 0 {
		t.Errorf("objects after a failed run: %v", got)
	}
}

func TestJobCancelledMidRun(t *testing.T) {
	up := spoctest.NewServer(spoctest.WithRecords(100_000), spoctest.WithThrottle(2<<20))
	defer up.Close()
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the download is under way and a batch has been
		// written (the throttled body takes half a minute).
		time.Sleep(1500 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	code, logs := runJob(t, ctx, map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out, "SPOC_BATCH_SIZE": "1000"})
	if code != exitFailed {
		t.Fatalf("exit %d\n%s", code, logs)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("the run went on for %s after cancellation", time.Since(start))
	}
	if got := files(t, out); len(got) != 0 {
		t.Errorf("files left after cancellation: %v", got)
	}
	if !strings.Contains(logs, "context canceled") {
		t.Errorf("the error does not say the run was cancelled:\n%s", logs)
	}
}

func TestJobRerunReplacesTheSnapshot(t *testing.T) {
	out := t.TempDir()
	for _, records := range []int{1000, 1500} {
		up := spoctest.NewServer(spoctest.WithRecords(records))
		code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out})
		up.Close()
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, logs)
		}
	}
	mf, _ := os.ReadFile(filepath.Join(out, testPrefix, today(), "spoc-list-public.manifest.json"))
	if m := readManifest(t, mf); m.Parquet.Rows != 1500 {
		t.Errorf("after a rerun the manifest says %d rows, want the second run's 1500", m.Parquet.Rows)
	}
	if got := files(t, out); len(got) != 7 {
		t.Errorf("files %v", got)
	}

	// The same body again: nothing is rewritten, exit 0.
	up := spoctest.NewServer(spoctest.WithRecords(1500))
	defer up.Close()
	before, _ := os.Stat(filepath.Join(out, testPrefix, today(), "spoc-list-public.parquet"))
	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out})
	if code != exitOK || !strings.Contains(logs, "snapshot unchanged, nothing published") {
		t.Fatalf("rerun with the same body: exit %d\n%s", code, logs)
	}
	if after, _ := os.Stat(filepath.Join(out, testPrefix, today(), "spoc-list-public.parquet")); !after.ModTime().Equal(before.ModTime()) {
		t.Error("the unchanged rerun rewrote the Parquet file")
	}
}

func TestJobPublishesUnderSPOCDate(t *testing.T) {
	up := spoctest.NewServer(spoctest.WithRecords(500))
	defer up.Close()
	out := t.TempDir()
	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out, "SPOC_DATE": "20250101", "SPOC_ARCHIVE_RAW": "false", "SPOC_DETECT_CHANGES": "false"})
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, logs)
	}
	dir := testPrefix + "/20250101"
	if got, want := files(t, out), []string{dir + "/geo/spoc-list-public.geo.parquet", dir + "/spoc-list-public.manifest.json", dir + "/spoc-list-public.parquet"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("files %v, want %v", got, want)
	}
}

func TestJobFromSavedBody(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spoc-list-public.json")
	f, _ := os.Create(path)
	spoctest.Generate(f, spoctest.GenOptions{Records: 1234, Seed: 4})
	f.Close()
	out := t.TempDir()
	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": path, "SPOC_OUTPUT": out})
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, logs)
	}
	mf, _ := os.ReadFile(filepath.Join(out, testPrefix, today(), "spoc-list-public.manifest.json"))
	if m := readManifest(t, mf); m.Parquet.Rows != 1234 || m.Source.URL != "file://"+path {
		t.Errorf("manifest rows %d source %q", m.Parquet.Rows, m.Source.URL)
	}
}

// A day whose records fell by more than SPOC_MAX_DROP_PERCENT fails, and
// its error line names the job's settings, not the library's options.
func TestJobRecordsFellNamesTheSettings(t *testing.T) {
	out := t.TempDir()
	for _, day := range []struct {
		date    string
		records int
		code    int
	}{{"20261201", 800, exitOK}, {"20261202", 500, exitFailed}} {
		up := spoctest.NewServer(spoctest.WithRecords(day.records))
		code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out, "SPOC_DATE": day.date})
		up.Close()
		if code != day.code {
			t.Fatalf("%s: exit %d, want %d\n%s", day.date, code, day.code, logs)
		}
		if day.code == exitOK {
			continue
		}
		var failed map[string]any
		last := strings.TrimSpace(logs)
		if err := json.Unmarshal([]byte(last[strings.LastIndex(last, "\n")+1:]), &failed); err != nil {
			t.Fatalf("last log line: %v\n%s", err, logs)
		}
		msg, _ := failed["error"].(string)
		if !strings.Contains(msg, "fewer") || strings.Contains(msg, "Options.") || !strings.Contains(msg, "SPOC_FORCE=true publishes anyway") {
			t.Errorf("error %q: want the fall, naming SPOC_FORCE and no library option", msg)
		}
		if fix, _ := failed["fix"].(string); !strings.Contains(fix, "SPOC_FORCE=true") {
			t.Errorf("fix %q does not name SPOC_FORCE", fix)
		}
		// The log's reason is the outcome the attempts metric records.
		if reason := failed["reason"]; reason != snapshot.OutcomeRejected {
			t.Errorf("reason %v, want %q", reason, snapshot.OutcomeRejected)
		}
	}
}

// With the job's defaults, a day 2 whose cert_status field is renamed
// upstream fails (exit 1), naming both names and the settings, keeping
// its body under rejected/ and publishing nothing; SPOC_FORCE=true then
// publishes it, and the manifest says it was forced. Both datasets.
func TestJobRefusesARenamedField(t *testing.T) {
	for _, dataset := range []string{"spoc", "osh", "gm"} {
		t.Run(dataset, func(t *testing.T) {
			ds := spoc.Datasets()[dataset]
			var day1, day2 bytes.Buffer
			spoctest.Generate(&day1, spoctest.GenOptions{Dataset: ds, Records: 800, Seed: 1})
			spoctest.Generate(&day2, spoctest.GenOptions{Dataset: ds, Records: 800, Seed: 2})
			renamed := bytes.ReplaceAll(day2.Bytes(), []byte(`"cert_status":`), []byte(`"certStatus":`))
			out := t.TempDir()
			run := func(body []byte, date string, extra map[string]string) (int, string) {
				up := spoctest.NewServer(spoctest.WithBody(body))
				defer up.Close()
				env := map[string]string{"SPOC_DATASET": dataset, "SPOC_URL": up.URL, "SPOC_OUTPUT": out, "SPOC_DATE": date}
				maps.Copy(env, extra)
				return runJob(t, context.Background(), env)
			}
			if code, logs := run(day1.Bytes(), "20261201", nil); code != exitOK {
				t.Fatalf("day 1: exit %d\n%s", code, logs)
			}
			code, logs := run(renamed, "20261202", nil)
			if code != exitFailed {
				t.Fatalf("renamed day: exit %d, want %d\n%s", code, exitFailed, logs)
			}
			for _, want := range []string{`likely renamed \"cert_status\" -> \"certStatus\"`, "SPOC_FORCE=true", "SPOC_COLLAPSE_BELOW_PERCENT"} {
				if !strings.Contains(logs, want) {
					t.Errorf("the logs do not say %s:\n%s", want, logs)
				}
			}
			if strings.Contains(logs, "Options.") {
				t.Errorf("the logs name the library's options, not the job's settings:\n%s", logs)
			}
			dir := filepath.Join(out, ds.Prefix, "20261202")
			names := snapshot.NamesOf(ds)
			if got := files(t, dir); !slices.Equal(got, []string{"rejected/" + names.Archive}) {
				t.Errorf("the refused day holds %v, want only its rejected body", got)
			}
			if code, logs := run(renamed, "20261202", map[string]string{"SPOC_FORCE": "true"}); code != exitOK {
				t.Fatalf("forced: exit %d\n%s", code, logs)
			}
			data, err := os.ReadFile(filepath.Join(dir, names.Manifest))
			if err != nil {
				t.Fatal(err)
			}
			if m := readManifest(t, data); !m.Forced || len(m.Stats.UndeclaredFields) == 0 || m.Stats.UndeclaredFields[0].Name != "certStatus" {
				t.Errorf("forced manifest: forced %v, undeclared %+v", m.Forced, m.Stats.UndeclaredFields)
			}
		})
	}
}

// On a first day, with the job's defaults, a GM body served at SPOC's
// URL fails (exit 1), naming spoc_code and gm_code, keeping its body
// under rejected/ and publishing nothing in the day; SPOC_FORCE=true
// then publishes it, and the manifest says it was forced.
func TestJobRefusesAnotherListOnTheFirstDay(t *testing.T) {
	var body bytes.Buffer
	if _, err := spoctest.Generate(&body, spoctest.GenOptions{Dataset: spoc.GM, Records: 800, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	up := spoctest.NewServer(spoctest.WithBody(body.Bytes()))
	defer up.Close()
	out := t.TempDir()
	env := map[string]string{"SPOC_DATASET": "spoc", "SPOC_URL": up.URL, "SPOC_OUTPUT": out, "SPOC_DATE": "20261201"}
	code, logs := runJob(t, context.Background(), env)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s", code, exitFailed, logs)
	}
	for _, want := range []string{`spoc_code (field \"spoc_code\") is in none of the 800 records written`, `likely renamed \"spoc_code\" -> \"gm_code\"`, "SPOC_FORCE=true", "SPOC_COLLAPSE_BELOW_PERCENT"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs do not say %s:\n%s", want, logs)
		}
	}
	dir := filepath.Join(out, spoc.SPOC.Prefix, "20261201")
	names := snapshot.NamesOf(spoc.SPOC)
	if got := files(t, dir); !slices.Equal(got, []string{"rejected/" + names.Archive}) {
		t.Errorf("the refused day holds %v, want only its rejected body", got)
	}
	env["SPOC_FORCE"] = "true"
	if code, logs := runJob(t, context.Background(), env); code != exitOK {
		t.Fatalf("forced: exit %d\n%s", code, logs)
	}
	data, err := os.ReadFile(filepath.Join(dir, names.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	if m := readManifest(t, data); !m.Forced || !slices.Equal(m.Stats.MissingFields, []string{"spoc_code"}) {
		t.Errorf("forced manifest: forced %v, missing fields %v", m.Forced, m.Stats.MissingFields)
	}
}

// A body whose records lack the list's key field (the zones served at
// the states' URL, or the key renamed) writes no row. The run fails
// saying that no record holds the key field and naming the field likely
// in its place, and the fix points at the URL and the dataset's
// declaration, not at SPOC_MIN_RECORDS, which is not what is wrong.
func TestJobNoRecordHoldsTheKey(t *testing.T) {
	generate := func(ds *spoc.Dataset) []byte {
		var b bytes.Buffer
		if _, err := spoctest.Generate(&b, spoctest.GenOptions{Dataset: ds, Records: 100}); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	for _, tc := range []struct {
		name, rename string
		body         []byte
	}{
		{"zones at the states URL", "zoneId", generate(spoc.Zones)},
		{"the key renamed", "StateId", bytes.ReplaceAll(generate(spoc.States), []byte(`"stateId":`), []byte(`"StateId":`))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := spoctest.NewServer(spoctest.WithBody(tc.body))
			defer up.Close()
			code, logs := runJob(t, context.Background(), map[string]string{"SPOC_DATASET": "states", "SPOC_URL": up.URL, "SPOC_OUTPUT": t.TempDir(), "SPOC_DATE": "20261201"})
			if code != exitFailed {
				t.Fatalf("exit %d, want %d\n%s", code, exitFailed, logs)
			}
			var failed map[string]any
			last := strings.TrimSpace(logs)
			if err := json.Unmarshal([]byte(last[strings.LastIndex(last, "\n")+1:]), &failed); err != nil {
				t.Fatalf("last log line: %v\n%s", err, logs)
			}
			msg, _ := failed["error"].(string)
			for _, want := range []string{`holds the key field "stateId"`, `likely renamed "stateId" -> "` + tc.rename + `"`} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %s", msg, want)
				}
			}
			fix, _ := failed["fix"].(string)
			if !strings.Contains(fix, "SPOC_URL") || !strings.Contains(fix, "SPOC_API_BASE") || !strings.Contains(fix, "declar") || strings.Contains(fix, "SPOC_MIN_RECORDS") {
				t.Errorf("fix %q: want the URL and the declaration, not the minimum", fix)
			}
			if reason := failed["reason"]; reason != snapshot.OutcomeRejected {
				t.Errorf("reason %v, want %q", reason, snapshot.OutcomeRejected)
			}
		})
	}
}

// An output bucket that cannot be connected to (here a closed port on
// loopback) fails the run with a line that says GCS could not be reached,
// for how long the run tried, and what to check; and no progress is
// logged for a download that never started.
func TestJobGCSUnreachable(t *testing.T) {
	t.Setenv("STORAGE_EMULATOR_HOST", sinktest.ClosedAddr(t))
	up := spoctest.NewServer(spoctest.WithRecords(10))
	defer up.Close()
	code, logs := runJob(t, context.Background(), map[string]string{
		"SPOC_URL": up.URL, "SPOC_OUTPUT": "gs://spoc-test", "SPOC_DEADLINE": "2s", "SPOC_PROGRESS_INTERVAL": "10ms",
	})
	if code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s", code, exitFailed, logs)
	}
	if strings.Contains(logs, `"message":"progress"`) {
		t.Errorf("progress logged before any download:\n%s", logs)
	}
	last := strings.TrimSpace(logs)
	var failed map[string]any
	if err := json.Unmarshal([]byte(last[strings.LastIndex(last, "\n")+1:]), &failed); err != nil {
		t.Fatalf("last log line: %v\n%s", err, logs)
	}
	msg, _ := failed["error"].(string)
	duration, _ := failed["duration"].(string)
	if !strings.HasPrefix(msg, "GCS could not be reached: no connection in "+duration+" of tries") || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want it to say GCS could not be reached in %s, on one line", msg, duration)
	}
	if fix, _ := failed["fix"].(string); !strings.Contains(fix, "STORAGE_EMULATOR_HOST") || !strings.Contains(fix, "network") {
		t.Errorf("fix %q: want what to check", fix)
	}
	if up.Requests() != 0 {
		t.Errorf("the source was fetched %d times with no store to write to", up.Requests())
	}
}
