package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/calee-data/mspo-spoc/pkg/fetch"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

func TestConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"SPOC_URL", cfg.URL, "https://api.mspots.org.my/api/spoc/get-spoc-list-public"},
		{"SPOC_OUTPUT", cfg.Output, "./data"},
		{"SPOC_PREFIX", cfg.Prefix, "raw/mspo/api/spoc/get-spoc-list-public"},
		{"SPOC_TIMEZONE", cfg.Timezone, "Asia/Kuala_Lumpur"},
		{"SPOC_MAX_BODY_BYTES", cfg.MaxBodyBytes, ByteSize(2 << 30)},
		{"SPOC_MAX_STRING_BYTES", cfg.MaxStringBytes, ByteSize(1 << 20)},
		{"SPOC_BATCH_SIZE", cfg.BatchSize, 16384},
		{"SPOC_ROW_GROUP_ROWS", cfg.RowGroupRows, 131072},
		{"SPOC_ZSTD_LEVEL", cfg.ZstdLevel, 3},
		{"SPOC_ZSTD_LEVEL_COORDINATES", cfg.CoordinateZstdLevel, 3},
		{"SPOC_ATTEMPTS", cfg.Attempts, 4},
		{"SPOC_MIN_RECORDS", cfg.lists[0].MinRecords, int64(1)},
		{"SPOC_MAX_DROPPED_PERCENT", cfg.MaxDroppedPercent, 1.0},
		{"SPOC_INSECURE_SKIP_VERIFY", cfg.InsecureSkipVerify, false},
		{"SPOC_PROGRESS_INTERVAL", cfg.ProgressInterval, 10 * time.Second},
		{"SPOC_TELEMETRY_TIMEOUT", cfg.TelemetryTimeout, 10 * time.Second},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s default %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"2GiB", 2 << 30, true},
		{"512 MiB", 512 << 20, true},
		{"100KB", 100_000, true},
		{"7B", 7, true},
		{"-1", 0, false},
		{"2 GB of data", 0, false},
		{"lots", 0, false},
		{"99999999999GiB", 0, false},
	}
	for _, tt := range tests {
		var b ByteSize
		err := b.EnvDecode(tt.in)
		if (err == nil) != tt.ok || (tt.ok && b != tt.want) {
			t.Errorf("EnvDecode(%q) = %d, %v; want %d, ok=%v", tt.in, b, err, tt.want, tt.ok)
		}
	}
}

// A bad setting exits 2 with a one-line reason naming the variable, before
// any request reaches the upstream.
func TestBadConfigurationExits2(t *testing.T) {
	up := spoctest.NewServer(spoctest.WithRecords(10))
	defer up.Close()
	aFile := filepath.Join(t.TempDir(), "file")
	os.WriteFile(aFile, []byte("x"), 0o644)
	tests := []struct {
		name, variable, value string
	}{
		{"source URL without host", "SPOC_URL", "https:///x"},
		{"unsupported source scheme", "SPOC_URL", "ftp://example.org/list.json"},
		{"missing saved body", "SPOC_URL", filepath.Join(t.TempDir(), "missing.json")},
		{"source bucket without object", "SPOC_URL", "gs://calee-test/"},
		{"source bucket name invalid", "SPOC_URL", "gs://Not_A_Bucket!/x.json.gz"},
		{"output bucket name invalid", "SPOC_OUTPUT", "gs://Not_A_Bucket!"},
		{"output scheme unsupported", "SPOC_OUTPUT", "s3://bucket"},
		{"output is a file", "SPOC_OUTPUT", aFile},
		{"prefix escapes the output", "SPOC_PREFIX", "../elsewhere"},
		{"unknown time zone", "SPOC_TIMEZONE", "Mars/Olympus_Mons"},
		{"batch size zero", "SPOC_BATCH_SIZE", "0"},
		{"batch size not a number", "SPOC_BATCH_SIZE", "many"},
		{"zstd level out of range", "SPOC_ZSTD_LEVEL", "30"},
		{"coordinate zstd level out of range", "SPOC_ZSTD_LEVEL_COORDINATES", "0"},
		{"row groups too large", "SPOC_ROW_GROUP_ROWS", "99999999"},
		{"negative progress interval", "SPOC_PROGRESS_INTERVAL", "-1s"},
		{"negative lock wait", "SPOC_LOCK_WAIT", "-1s"},
		{"zero telemetry timeout", "SPOC_TELEMETRY_TIMEOUT", "0s"},
		{"body cap not a size", "SPOC_MAX_BODY_BYTES", "big"},
		{"dropped percent above 100", "SPOC_MAX_DROPPED_PERCENT", "150"},
		{"dropped percent not a number", "SPOC_MAX_DROPPED_PERCENT", "NaN"},
		{"collapse percent not a number", "SPOC_COLLAPSE_WAS_PERCENT", "NaN"},
		{"drop guard percent negative", "SPOC_MAX_DROP_PERCENT", "-5"},
		{"date not YYYYMMDD", "SPOC_DATE", "2025-01-01"},
		{"negative minimum", "SPOC_MIN_RECORDS", "-1"},
		{"no attempts", "SPOC_ATTEMPTS", "0"},
		{"bad duration", "SPOC_DEADLINE", "soon"},
		{"zero deadline", "SPOC_DEADLINE", "0s"},
		{"retry max below initial", "SPOC_RETRY_MAX", "1ms"},
		{"missing CA file", "SPOC_CA_FILE", filepath.Join(t.TempDir(), "ca.pem")},
		{"CA file without certificates", "SPOC_CA_FILE", aFile},
		{"bad boolean", "SPOC_INSECURE_SKIP_VERIFY", "perhaps"},
		{"pin not a SHA-256 digest", "SPOC_TLS_PIN_SHA256", "sha256/abc"},
		{"blank pin", "SPOC_TLS_PIN_SHA256", " "},
		{"bad log format", "SPOC_LOG_FORMAT", "xml"},
		{"bad log level", "SPOC_LOG_LEVEL", "loud"},
		{"no records allowed", "SPOC_MAX_RECORDS", "0"},
		{"empty collapse guard", "SPOC_COLLAPSE_BELOW_PERCENT", ""},
		{"empty collapse reference", "SPOC_COLLAPSE_WAS_PERCENT", ""},
		{"empty drop guard", "SPOC_MAX_DROP_PERCENT", ""},
		{"blank batch size", "SPOC_BATCH_SIZE", "  "},
		{"empty duration", "SPOC_DEADLINE", ""},
		{"empty boolean", "SPOC_FORCE", ""},
		{"empty size", "SPOC_MAX_BODY_BYTES", ""},
		{"empty time zone", "SPOC_TIMEZONE", ""},
		{"empty dataset", "SPOC_DATASET", ""},
		{"empty source", "SPOC_URL", " "},
		{"hex float", "SPOC_MAX_DROP_PERCENT", "0x1p-2"},
		{"underscore in a float", "SPOC_MAX_DROPPED_PERCENT", "1_0"},
		{"underscore in an integer", "SPOC_BATCH_SIZE", "1_0"},
		{"hex integer", "SPOC_ZSTD_LEVEL", "0x3"},
		{"binary integer", "SPOC_ATTEMPTS", "0b11"},
		{"floor of a list not in the run", "SPOC_MIN_RECORDS", "states=13"},
		{"floor of a misspelt list", "SPOC_MIN_RECORDS", "spco=13"},
		{"floor given twice", "SPOC_MIN_RECORDS", "spoc=5,spoc=6"},
		{"two floors for the lists not named", "SPOC_MIN_RECORDS", "5,7"},
		{"floor not a whole number", "SPOC_MIN_RECORDS", "spoc=1.5"},
		{"negative floor of a list", "SPOC_MIN_RECORDS", "spoc=-1"},
		{"floor above the most records", "SPOC_MIN_RECORDS", "spoc=3000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out, tt.variable: tt.value})
			if code != exitConfig {
				t.Fatalf("exit %d, want %d\n%s", code, exitConfig, logs)
			}
			if lines := strings.Count(strings.TrimSpace(logs), "\n") + 1; lines != 1 || strings.Count(logs, tt.variable) != 1 {
				t.Errorf("output %q: want one line naming %s once", logs, tt.variable)
			}
			for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
				if strings.Contains(logs, ": "+f.Name+":") {
					t.Errorf("output %q names the Go field %s", logs, f.Name)
				}
			}
			if up.Requests() != 0 {
				t.Errorf("the upstream got %d requests despite the bad configuration", up.Requests())
			}
			if got := files(t, out); len(got) != 0 {
				t.Errorf("files %v", got)
			}
		})
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	code, out := runJob(t, context.Background(), nil, "-help")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, s := range settings() {
		if s.Help == "" {
			t.Errorf("%s has no help text", s.Var)
		}
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), s.Var+" ") {
				line = l
			}
		}
		if line == "" || (s.Default != "" && !strings.Contains(line, s.Default)) {
			t.Errorf("-help has no line for %s with its default %q", s.Var, s.Default)
		}
	}
	if len(settings()) < 20 {
		t.Errorf("only %d settings found by reflection", len(settings()))
	}
	if code, out := runJob(t, context.Background(), nil, "-version"); code != exitOK || !strings.Contains(out, version+" "+commit) {
		t.Errorf("-version: exit %d, %q", code, out)
	}
	if code, _ := runJob(t, context.Background(), nil, "-no-such-flag"); code != exitConfig {
		t.Errorf("unknown flag: exit %d, want %d", code, exitConfig)
	}
}

// The README's configuration table lists every variable with its default,
// so the documentation cannot fall behind the code.
func TestReadmeListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings() {
		row := fmt.Sprintf("| `%s` | ", s.Var)
		i := strings.Index(string(readme), row)
		if i < 0 {
			t.Errorf("README has no table row for %s", s.Var)
			continue
		}
		line, _, _ := strings.Cut(string(readme[i:]), "\n")
		if s.Default != "" && !strings.Contains(line, "`"+s.Default+"`") {
			t.Errorf("README row for %s does not give the default %q: %s", s.Var, s.Default, line)
		}
	}
}

func TestInsecureSkipVerifyWarnsEveryRun(t *testing.T) {
	up := spoctest.NewServer(spoctest.WithRecords(10))
	defer up.Close()
	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": t.TempDir(), "SPOC_INSECURE_SKIP_VERIFY": "true"})
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, logs)
	}
	if !strings.Contains(logs, `"severity":"WARNING"`) || !strings.Contains(logs, "verification") {
		t.Errorf("no warning about TLS verification:\n%s", logs)
	}
}

func TestMemoryLimit(t *testing.T) {
	env := func(vars map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	}
	cgroup := func(limit uint64, err error) func() (uint64, error) {
		return func() (uint64, error) { return limit, err }
	}
	for _, tc := range []struct {
		name   string
		env    map[string]string
		cgroup func() (uint64, error)
		limit  int64
		source string
	}{
		{"Cloud Run, 512 MiB", nil, cgroup(512<<20, nil), 483183820, "cgroup"},
		{"GOMEMLIMIT wins", map[string]string{"GOMEMLIMIT": "100MiB"}, cgroup(512<<20, nil), -1, "GOMEMLIMIT"},
		{"an empty GOMEMLIMIT does not", map[string]string{"GOMEMLIMIT": ""}, cgroup(1<<30, nil), 966367641, "cgroup"},
		{"no cgroup limit", nil, cgroup(0, memlimit.ErrNoLimit), fallbackMemoryLimit, "default"},
		{"no cgroups at all", nil, cgroup(0, memlimit.ErrNoCgroup), fallbackMemoryLimit, "default"},
		{"cgroup v1's 'unlimited'", nil, cgroup(1<<63-4096, nil), fallbackMemoryLimit, "default"},
	} {
		limit, source := memoryLimit(env(tc.env), tc.cgroup)
		if limit != tc.limit || source != tc.source {
			t.Errorf("%s: %d from %s, want %d from %s", tc.name, limit, source, tc.limit, tc.source)
		}
	}
}

// The endpoint is the source package's knowledge; the job's default is it.
func TestDefaultURLIsTheEndpoint(t *testing.T) {
	cfg, err := LoadConfig(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URL != spoc.SPOC.URL {
		t.Errorf("SPOC_URL defaults to %s, the endpoint is %s", cfg.URL, spoc.SPOC.URL)
	}
}

func TestFixNamesTheSetting(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("attempt 1: %w", snapshot.ErrRecordsFell), "SPOC_FORCE=true"},
		{fmt.Errorf("attempt 1: %w", &snapshot.CollapsedError{Previous: "20261201"}), "SPOC_COLLAPSE_BELOW_PERCENT"},
		{fmt.Errorf("attempt 1: %w", &snapshot.CollapsedError{}), "SPOC_URL"},
		{snapshot.ErrTooFewRecords, "SPOC_MIN_RECORDS"},
		{fmt.Errorf("attempt 1: %w", &snapshot.NoKeyError{Guard: snapshot.ErrTooFewRecords}), "SPOC_URL"},
		{&snapshot.NoKeyError{Guard: snapshot.ErrTooManyDropped}, "declaration"},
		{snapshot.ErrTooManyDropped, "SPOC_MAX_DROPPED_PERCENT"},
		{fmt.Errorf("decode: %w", spoc.ErrBodyTooLarge), "SPOC_MAX_BODY_BYTES"},
		{spoc.ErrValueTooLong, "SPOC_MAX_STRING_BYTES"},
		{fmt.Errorf("decode: %w: more than 2", spoc.ErrTooManyRecords), "SPOC_MAX_RECORDS"},
		{fmt.Errorf("%w: held by other/1", snapshot.ErrBusy), "SPOC_LOCK_WAIT"},
		{&fetch.CertificateError{Check: fetch.CheckExpired, Pin: "abc="}, "SPOC_TLS_PIN_SHA256=abc="},
		{errors.New("quota exceeded"), ""},
	} {
		if got := fixFor(tc.err); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("fixFor(%v) = %q, want it to name %q", tc.err, got, tc.want)
		}
	}
}

// Every numeric setting refuses the spellings strconv accepts for numbers
// that are not finite: a NaN limit compares false with everything, so a
// guard set to NaN would never refuse a body.
func TestNonFiniteNumbersRefused(t *testing.T) {
	numeric := 0
	for _, s := range settings() {
		switch f := reflect.TypeFor[Config]().Field(s.field).Type; {
		case f.Kind() == reflect.Int, f.Kind() == reflect.Int64, f.Kind() == reflect.Float64, f == reflect.TypeFor[RecordFloors]():
		default:
			continue
		}
		numeric++
		for _, v := range []string{"NaN", "nan", "Inf", "+Inf", "-Inf", "Infinity", "1e400"} {
			_, err := LoadConfig(context.Background(), map[string]string{s.Var: v})
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Var != s.Var {
				t.Errorf("%s=%s: error %v, want a ConfigError naming %s", s.Var, v, err, s.Var)
			}
		}
	}
	if numeric < 15 {
		t.Errorf("only %d numeric settings found", numeric)
	}
}

// SPOC_MIN_RECORDS is one floor for every list, or each list's own
// (NAME=N) with a bare N for the lists not named, 1 without one. A
// name that is no list of the run, a list named twice, two bare numbers,
// or a number that is not a whole one at least 0, is a *ConfigError on
// SPOC_MIN_RECORDS alone.
func TestMinRecordsPerList(t *testing.T) {
	const refs = "references"
	for _, tc := range []struct {
		name, dataset, value string
		want                 map[string]int64 // each list's floor; nil: refused
		err                  string           // the whole message, or words of it
	}{
		{"unset", refs, "", map[string]int64{"states": 1, "zones": 1}, ""},
		{"one for every list", refs, "13", map[string]int64{"states": 13, "zones": 13}, ""},
		{"one, one list", "spoc", "250000", map[string]int64{"spoc": 250000}, ""},
		{"one, leading zero", "spoc", "007", map[string]int64{"spoc": 7}, ""},
		{"zero", "spoc", "0", map[string]int64{"spoc": 0}, ""},
		{"each its own", refs, "states=13,zones=9", map[string]int64{"states": 13, "zones": 9}, ""},
		{"spaces around parts", refs, " states = 13 , zones=9", map[string]int64{"states": 13, "zones": 9}, ""},
		{"spaces around a bare part", refs, "zones=9,  13 ", map[string]int64{"states": 13, "zones": 9}, ""},
		{"one named, the other 1", refs, "states=13", map[string]int64{"states": 13, "zones": 1}, ""},
		{"a bare number for the others", "spoc,osh,gm", "1,spoc=250000", map[string]int64{"spoc": 250000, "osh": 1, "gm": 1}, ""},
		{"the bare number after", refs, "zones=9,13", map[string]int64{"states": 13, "zones": 9}, ""},
		{"the only list named", "spoc", "spoc=5", map[string]int64{"spoc": 5}, ""},
		{"one negative", "spoc", "-1", nil, "SPOC_MIN_RECORDS: -1 is negative"},
		{"one not whole", refs, "1.5", nil, `SPOC_MIN_RECORDS: "1.5" is not a whole number in decimal within 64 bits`},
		{"one, a space before", "spoc", " 5", map[string]int64{"spoc": 5}, ""},
		{"one, spaces after", refs, "5  ", map[string]int64{"states": 5, "zones": 5}, ""},
		{"one, spaces inside", "spoc", "5 0", nil, `SPOC_MIN_RECORDS: "5 0" is not a whole number in decimal within 64 bits`},
		{"a misspelt list", refs, "stats=13,zones=9", nil, "SPOC_MIN_RECORDS: stats=13: stats is not one of this run's lists (states, zones); did you mean states?"},
		{"a list not selected", refs, "states=13,spoc=250000", nil, "SPOC_MIN_RECORDS: spoc=250000: spoc is not one of this run's lists (states, zones): the lists SPOC_DATASET or -dataset selects do not include it"},
		{"a group", refs, "references=9", nil, "names the group references, not a list"},
		{"a name in capitals", refs, "States=13", nil, "did you mean states?"},
		{"a list twice", refs, "states=13,zones=9,states=14", nil, `SPOC_MIN_RECORDS: "states=13,zones=9,states=14" gives states a floor twice`},
		{"two bare numbers", refs, "5,states=13,7", nil, `SPOC_MIN_RECORDS: "5,states=13,7" gives two floors to the lists not named, 5 and 7: give one bare number at most`},
		{"a negative floor", refs, "states=-1", nil, `SPOC_MIN_RECORDS: "states=-1": the floor of states, -1, is negative`},
		{"a negative bare floor", refs, "-1,states=13", nil, "the floor of the lists not named, -1, is negative"},
		{"a fraction", refs, "states=13.5", nil, `the floor of states, "13.5", is not a whole number`},
		{"a hex floor", refs, "states=0xd", nil, `the floor of states, "0xd", is not a whole number`},
		{"no floor", refs, "states=,zones=9", nil, `the floor of states, "", is not a whole number`},
		{"no name", refs, "=13", nil, "gives the floor 13 to no list name"},
		{"an empty part", refs, "states=13,", nil, "holds an empty part"},
		{"too large", refs, "states=99999999999999999999", nil, "is not a whole number in decimal within 64 bits"},
		{"at SPOC_MAX_RECORDS", "spoc", "2000000", map[string]int64{"spoc": 2000000}, ""},
		{"above SPOC_MAX_RECORDS", "spoc", "2000001", nil, "SPOC_MIN_RECORDS: the floor of spoc, 2000001, is above SPOC_MAX_RECORDS, 2000000, the most records a body may hold: no body could meet it"},
		{"one list's above SPOC_MAX_RECORDS", refs, "zones=9,states=3000000", nil, "the floor of states, 3000000, is above SPOC_MAX_RECORDS, 2000000"},
		{"the others' above SPOC_MAX_RECORDS", refs, "states=13,3000000", nil, "the floor of zones, 3000000, is above SPOC_MAX_RECORDS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"SPOC_DATASET": tc.dataset}
			if tc.value != "" {
				env["SPOC_MIN_RECORDS"] = tc.value
			}
			cfg, err := LoadConfig(context.Background(), env)
			if tc.want == nil {
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Var != "SPOC_MIN_RECORDS" || strings.Count(err.Error(), "SPOC_MIN_RECORDS") != 1 || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want a ConfigError on SPOC_MIN_RECORDS, naming it once, that says %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			for _, l := range cfg.lists {
				got[l.Dataset.Name] = l.MinRecords
				if g := cfg.guards(l); g.MinRecords != l.MinRecords {
					t.Errorf("%s: guards hold the floor %d, the list %d", l.Dataset.Name, g.MinRecords, l.MinRecords)
				}
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("floors %v, want %v", got, tc.want)
			}
		})
	}
}

// A floor above SPOC_MAX_RECORDS can never be met: a body with more
// records fails too_large. It exits 2, naming both settings, whichever
// of the two was set.
func TestFloorAboveTheMostRecords(t *testing.T) {
	for _, tc := range []struct {
		env   map[string]string
		floor string // "": accepted
	}{
		{map[string]string{"SPOC_MIN_RECORDS": "states=3000000", "SPOC_MAX_RECORDS": "100", "SPOC_DATASET": "references"}, "the floor of states, 3000000"},
		{map[string]string{"SPOC_MIN_RECORDS": "101", "SPOC_MAX_RECORDS": "100"}, "the floor of spoc, 101"},
		{map[string]string{"SPOC_MIN_RECORDS": "100", "SPOC_MAX_RECORDS": "100"}, ""},
		{map[string]string{"SPOC_MIN_RECORDS": "states=13,zones=9", "SPOC_MAX_RECORDS": "10", "SPOC_DATASET": "references"}, "the floor of states, 13, is above SPOC_MAX_RECORDS, 10"},
	} {
		_, err := LoadConfig(context.Background(), tc.env)
		if tc.floor == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.env, err)
			}
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Var != "SPOC_MIN_RECORDS" || !strings.Contains(err.Error(), tc.floor) || !strings.Contains(err.Error(), "SPOC_MAX_RECORDS") {
			t.Errorf("%v: error %v, want a ConfigError on SPOC_MIN_RECORDS that names SPOC_MAX_RECORDS and says %s", tc.env, err, tc.floor)
		}
	}
}

// A floor of a list that -dataset, not SPOC_DATASET, left out of the
// run exits 2 naming both ways of selecting the lists: the user who set
// the flag may have no SPOC_DATASET at all.
func TestFloorOfAListTheFlagLeavesOut(t *testing.T) {
	code, logs := runJob(t, context.Background(), map[string]string{"SPOC_OUTPUT": t.TempDir(), "SPOC_MIN_RECORDS": "spoc=5"}, "-dataset", "references")
	if code != exitConfig {
		t.Fatalf("exit %d, want %d\n%s", code, exitConfig, logs)
	}
	if want := "spoc is not one of this run's lists (states, zones): the lists SPOC_DATASET or -dataset selects do not include it"; !strings.Contains(logs, want) {
		t.Errorf("output %q, want it to say %s", logs, want)
	}
}

// A refused value of any length gives a short line: a message quotes at
// most the first 64 bytes of a value, so that a 100 KB value (a file's
// contents in the wrong variable) does not bury the reason in a line of
// 200 KB.
func TestLongValuesShownShort(t *testing.T) {
	const maxLine = 1024
	long := strings.Repeat("a", 100<<10)
	digits := strings.Repeat("7", 100<<10)
	for _, s := range settings() {
		for _, v := range []string{long, digits, "é" + long} {
			if _, err := LoadConfig(context.Background(), map[string]string{s.Var: v}); err != nil && len(err.Error()) > maxLine {
				t.Errorf("%s=%.10q…: a message of %d bytes: %.200s", s.Var, v, len(err.Error()), err)
			}
		}
	}
	for _, tc := range []struct{ variable, value string }{
		{"SPOC_MIN_RECORDS", long},
		{"SPOC_MIN_RECORDS", digits},
		{"SPOC_MIN_RECORDS", "spoc=" + long},
		{"SPOC_MIN_RECORDS", long + "=5"},
		{"SPOC_MIN_RECORDS", "=" + long},
		{"SPOC_MIN_RECORDS", "5," + long},
		{"SPOC_MIN_RECORDS", "5,spoc=5," + long + "=5"},
		{"SPOC_MIN_RECORDS", "spoc=5," + long + "=5,spoc=5"},
		{"SPOC_DATASET", long},
		{"SPOC_DATASET", "spoc," + long},
		{"SPOC_DATASET", long + ","},
		{"SPOC_URL", "https:///" + long},
		{"SPOC_URL", "ftp://example.org/" + long},
		{"SPOC_URL", "gs://" + long},
		{"SPOC_URL", "/" + long},
		{"SPOC_API_BASE", "https://example.org/" + long},
		{"SPOC_API_BASE", "https://example.org:" + digits},
		{"SPOC_API_BASE", "ftp://" + long},
		{"SPOC_OUTPUT", "s3://" + long},
		{"SPOC_OUTPUT", "gs://" + long},
		{"SPOC_PREFIX", "../" + long},
		{"SPOC_TIMEZONE", long},
		{"SPOC_DATE", digits},
		{"SPOC_CA_FILE", "/" + long},
		{"SPOC_TLS_PIN_SHA256", "sha256/" + long},
		{"SPOC_TLS_PIN_SHA256", long + ", "},
		{"SPOC_LOG_FORMAT", long},
		{"SPOC_LOG_LEVEL", long},
		{"SPOC_BATCH_SIZE", digits},
		{"SPOC_MAX_DROP_PERCENT", digits + "x"},
		{"SPOC_MAX_BODY_BYTES", long},
		{"SPOC_DEADLINE", long},
		{"SPOC_FORCE", long},
		{"SPOC_" + strings.ToUpper(long), "1"},
	} {
		env := map[string]string{tc.variable: tc.value}
		name := fmt.Sprintf("%s=%.20q", tc.variable[:min(len(tc.variable), 24)], tc.value)
		if _, err := LoadConfig(context.Background(), env); err == nil {
			t.Errorf("%s: accepted", name) // and not run: it would fetch the default URL
			continue
		}
		if tc.variable != "SPOC_OUTPUT" {
			env["SPOC_OUTPUT"] = t.TempDir()
		}
		code, logs := runJob(t, context.Background(), env)
		if code != exitConfig || len(logs) > maxLine || strings.Count(strings.TrimSpace(logs), "\n") != 0 {
			t.Errorf("%s: exit %d, want %d, and %d bytes of output, want one line of at most %d: %.300s", name, code, exitConfig, len(logs), maxLine, logs)
		}
	}
}

// A misspelt variable is refused, naming the setting it was likely meant
// to be, instead of being ignored while its default applies.
func TestUnknownSettingRefused(t *testing.T) {
	up := spoctest.NewServer(spoctest.WithRecords(10))
	defer up.Close()
	for _, tc := range []struct{ variable, want string }{
		{"SPOC_MIN_RECORD", "SPOC_MIN_RECORDS"},
		{"SPOC_MAX_DROP_PERCENTS", "SPOC_MAX_DROP_PERCENT"},
		{"SPOC_MAXDROPPED_PERCENT", "SPOC_MAX_DROPPED_PERCENT"},
		{"SPOC_ZSTD_LEVEL_COORDINATE", "SPOC_ZSTD_LEVEL_COORDINATES"},
		{"SPOC_TIMEZON", "SPOC_TIMEZONE"},
		{"SPOC_FORCED", "SPOC_FORCE"},
	} {
		out := t.TempDir()
		code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": out, tc.variable: "1"})
		if code != exitConfig {
			t.Errorf("%s: exit %d, want %d\n%s", tc.variable, code, exitConfig, logs)
			continue
		}
		if want := tc.variable + ": not a setting; did you mean " + tc.want + "?"; !strings.Contains(logs, want) {
			t.Errorf("%s: output %q, want %q", tc.variable, logs, want)
		}
	}
	if up.Requests() != 0 {
		t.Errorf("the upstream got %d requests", up.Requests())
	}
	// Variables of other programs are not the job's business.
	if code, logs := runJob(t, context.Background(), map[string]string{"SPOC_URL": up.URL, "SPOC_OUTPUT": t.TempDir(), "SPOCK": "1", "OTEL_FOO": "x"}); code != exitOK {
		t.Errorf("other variables: exit %d\n%s", code, logs)
	}
}

func TestClosestSetting(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SPOC_MIN_RECORD", "SPOC_MIN_RECORDS"},
		{"SPOC_URI", "SPOC_URL"},
		{"SPOC_LOCKWAIT", "SPOC_LOCK_WAIT"},
		{"SPOC_OUTPUTS", "SPOC_OUTPUT"},
		{"SPOC_DEADLIEN", "SPOC_DEADLINE"},
		{"SPOC_SOMETHING_ELSE", ""},
	} {
		if got := closest(tc.in, settingVars()); got != tc.want {
			t.Errorf("closest(%s, settings) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A misspelt name, in SPOC_DATASET, in SPOC_MIN_RECORDS or as a SPOC_*
// variable, is told the name it likely meant, a slip of a letter or two
// (two swapped letters count as one); a name close to none is not told
// one, which would only mislead.
func TestSuggestionsOnlyWhenClose(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // "": no suggestion
	}{
		{"dataset, two letters swapped", map[string]string{"SPOC_DATASET": "sopc"}, "did you mean spoc?"},
		{"dataset, a letter missing", map[string]string{"SPOC_DATASET": "state"}, "did you mean states?"},
		{"dataset, unrelated", map[string]string{"SPOC_DATASET": "qqqqqqqq"}, ""},
		{"dataset, short and unrelated", map[string]string{"SPOC_DATASET": "xy"}, ""},
		{"floor, two letters swapped", map[string]string{"SPOC_MIN_RECORDS": "spco=5"}, "did you mean spoc?"},
		{"floor, unrelated", map[string]string{"SPOC_MIN_RECORDS": "qqqqqqqq=5"}, ""},
		{"floor, unrelated, several lists", map[string]string{"SPOC_DATASET": "references", "SPOC_MIN_RECORDS": "qqqqqqqq=5"}, ""},
		{"setting, two letters swapped", map[string]string{"SPOC_TIMEZOEN": "UTC"}, "did you mean SPOC_TIMEZONE?"},
		{"setting, unrelated", map[string]string{"SPOC_QQQQQQQQ": "1"}, ""},
		{"setting, another program's", map[string]string{"SPOC_BUCKET": "b"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(context.Background(), tc.env)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want a ConfigError", err)
			}
			if tc.want == "" && strings.Contains(err.Error(), "did you mean") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to suggest %q", err, cmp.Or(tc.want, "nothing"))
			}
		})
	}
}

// -help lists every flag, and every dataset with its defaults and object
// names; the settings' table shows the defaults of the dataset selected
// (-dataset or SPOC_DATASET), wherever -dataset stands.
func TestHelpListsEveryDataset(t *testing.T) {
	settingLine := func(out, name string) string {
		_, table, _ := strings.Cut(out, "\nSettings (")
		for l := range strings.Lines(table) {
			if strings.HasPrefix(strings.TrimSpace(l), name+" ") {
				return l
			}
		}
		return ""
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want *spoc.Dataset
	}{
		{"default", nil, []string{"-help"}, spoc.SPOC},
		{"flag before", nil, []string{"-dataset", "osh", "-help"}, spoc.OSH},
		{"flag after", nil, []string{"-help", "-dataset", "osh"}, spoc.OSH},
		{"env", map[string]string{"SPOC_DATASET": "osh"}, []string{"-h"}, spoc.OSH},
		{"gm by flag", nil, []string{"-dataset", "gm", "-help"}, spoc.GM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runJob(t, context.Background(), tc.env, tc.args...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s", code, out)
			}
			fs, _ := jobFlags(io.Discard)
			fs.VisitAll(func(f *flag.Flag) {
				if _, usage := flag.UnquoteUsage(f); !strings.Contains(out, "  -"+f.Name) || !strings.Contains(out, usage) {
					t.Errorf("-help does not list the flag -%s", f.Name)
				}
			})
			for _, ds := range spoc.Datasets() {
				n := snapshot.NamesOf(ds)
				for _, want := range []string{ds.Name, ds.URL, ds.Prefix, n.Parquet, n.Manifest, n.Archive, n.Changes, n.Digest} {
					if !strings.Contains(out, want) {
						t.Errorf("-help does not show dataset %s's %s", ds.Name, want)
					}
				}
			}
			if l := settingLine(out, "SPOC_URL"); !strings.Contains(l, tc.want.URL+" ") {
				t.Errorf("SPOC_URL line %q, want the default %s", l, tc.want.URL)
			}
			if l := settingLine(out, "SPOC_PREFIX"); !strings.Contains(l, tc.want.Prefix+" ") {
				t.Errorf("SPOC_PREFIX line %q, want the default %s", l, tc.want.Prefix)
			}
		})
	}
}

// Every library option that an error message of package snapshot or
// transaction names is rewritten into the job's setting, so no error line
// of the job names an option its user cannot set.
func TestErrorsNameNoLibraryOption(t *testing.T) {
	var sources []string
	for _, pkg := range []string{"snapshot", "transaction"} {
		files, err := filepath.Glob("../../pkg/" + pkg + "/*.go")
		if err != nil || len(files) == 0 {
			t.Fatalf("no sources of %s (%v)", pkg, err)
		}
		sources = append(sources, files...)
	}
	option := regexp.MustCompile(`Options(\.[A-Z]\w*)+`)
	found := 0
	for _, name := range sources {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			code := strings.TrimSpace(line)
			if strings.HasPrefix(code, "//") || !strings.Contains(code, `"`) {
				continue
			}
			for _, opt := range option.FindAllString(code, -1) {
				found++
				if got := settingNames.Replace(opt); got == opt || !strings.HasPrefix(got, "SPOC_") {
					t.Errorf("%s: %s in a message is not rewritten into a setting: %s", filepath.Base(name), opt, code)
				}
			}
		}
	}
	if found == 0 {
		t.Error("no option named in any message: the scan is broken")
	}
}

// A setting with a default that is set but empty, or only spaces, is
// refused, whatever its type: empty would otherwise read as 0 or false
// (SPOC_COLLAPSE_BELOW_PERCENT= turning the guard off). Settings without
// a default (SPOC_DATE, SPOC_CA_FILE...) take empty as unset.
func TestEmptySettingRefused(t *testing.T) {
	refused := 0
	for _, s := range settings() {
		for _, v := range []string{"", "   "} {
			_, err := LoadConfig(context.Background(), map[string]string{s.Var: v})
			if s.Default == "" {
				if v == "" && err != nil {
					t.Errorf("%s=%q: %v, want it read as unset", s.Var, v, err)
				}
				continue
			}
			refused++
			def := s.Default
			switch s.Var {
			case "SPOC_URL":
				def = spoc.SPOC.URL
			case "SPOC_PREFIX":
				def = spoc.SPOC.Prefix
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Var != s.Var || ce.Error() != s.Var+": empty: unset it for the default "+def {
				t.Errorf("%s=%q: error %v, want %s: empty: unset it for the default %s", s.Var, v, err, s.Var, def)
			}
		}
	}
	if refused < 2*30 {
		t.Errorf("only %d empty values refused", refused)
	}
	// An unset SPOC_URL's default is the dataset's.
	_, err := LoadConfig(context.Background(), map[string]string{"SPOC_DATASET": "osh", "SPOC_URL": ""})
	if want := "SPOC_URL: empty: unset it for the default " + spoc.OSH.URL; err == nil || err.Error() != want {
		t.Errorf("osh, empty SPOC_URL: %v, want %s", err, want)
	}
}

// Numbers are plain decimals: an optional sign, digits, and for the
// percentages an optional fraction and exponent. Go's other spellings
// (hex, octal and binary prefixes, hex floats, underscores) are refused,
// and a leading zero is not octal.
func TestNumbersArePlainDecimals(t *testing.T) {
	for _, tc := range []struct {
		variable, value string
		want            any // nil: refused
	}{
		{"SPOC_MAX_DROP_PERCENT", "2.5", 2.5},
		{"SPOC_MAX_DROP_PERCENT", "1e1", 10.0},
		{"SPOC_MAX_DROP_PERCENT", "+5", 5.0},
		{"SPOC_MAX_DROP_PERCENT", "07", 7.0},
		{"SPOC_MAX_DROP_PERCENT", "0x1p-2", nil},
		{"SPOC_MAX_DROP_PERCENT", "0x1", nil},
		{"SPOC_MAX_DROP_PERCENT", "1_0", nil},
		{"SPOC_MAX_DROP_PERCENT", ".5", nil},
		{"SPOC_MAX_DROP_PERCENT", "5.", nil},
		{"SPOC_MAX_DROP_PERCENT", " 5", nil},
		{"SPOC_MAX_DROP_PERCENT", "5%", nil},
		{"SPOC_BATCH_SIZE", "010", 10},
		{"SPOC_BATCH_SIZE", "+8", 8},
		{"SPOC_BATCH_SIZE", "0x10", nil},
		{"SPOC_BATCH_SIZE", "0o10", nil},
		{"SPOC_BATCH_SIZE", "0b10", nil},
		{"SPOC_BATCH_SIZE", "1_0", nil},
		{"SPOC_BATCH_SIZE", "1e3", nil},
		{"SPOC_BATCH_SIZE", "10.0", nil},
		{"SPOC_MAX_RECORDS", "1500000", int64(1500000)},
		{"SPOC_MAX_RECORDS", "99999999999999999999", nil},
	} {
		cfg, err := LoadConfig(context.Background(), map[string]string{tc.variable: tc.value})
		if tc.want == nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Var != tc.variable || strings.Count(err.Error(), tc.variable) != 1 {
				t.Errorf("%s=%q: error %v, want a ConfigError naming %s once", tc.variable, tc.value, err, tc.variable)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s=%q: %v", tc.variable, tc.value, err)
			continue
		}
		v := reflect.ValueOf(*cfg)
		for i, s := range settings() {
			if s.Var == tc.variable && v.Field(i).Interface() != tc.want {
				t.Errorf("%s=%q read as %v, want %v", tc.variable, tc.value, v.Field(i).Interface(), tc.want)
			}
		}
	}
}

// -help for a dataset that is not one exits 2 naming the known ones,
// instead of showing another dataset's defaults as if they were its.
func TestHelpUnknownDataset(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"flag", nil, []string{"-dataset=bogus", "-help"}},
		{"flag after", nil, []string{"-h", "-dataset", "bogus"}},
		{"env", map[string]string{"SPOC_DATASET": "bogus"}, []string{"-help"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runJob(t, context.Background(), tc.env, tc.args...)
			if code != exitConfig {
				t.Fatalf("exit %d, want %d\n%s", code, exitConfig, out)
			}
			if want := `SPOC_DATASET: "bogus" is not a dataset; the known ones are gm, osh, spoc`; !strings.Contains(out, want) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Errorf("output %q, want one line saying %s", out, want)
			}
		})
	}
}
