package main

// The deployment files are checked here, beside the Config struct, because
// the main thing to check is that they agree with it: Terraform providers
// cannot be downloaded and Docker has no engine on the CI machines, so
// these tests parse the files instead of applying or building them.

import (
	"context"
	"fmt"
	"maps"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/sethvargo/go-envconfig"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"go.yaml.in/yaml/v3"

	"github.com/calee-data/mspo-spoc/pkg/geo"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

const repoRoot = "../.."

// configEnv returns the environment variables Config reads, with their
// defaults ("" when there is none), as settings() reads them from the
// struct's env tags.
func configEnv(t *testing.T) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for _, s := range settings() {
		if s.Var == "" {
			t.Fatalf("a Config field has no env tag: %+v", s)
		}
		vars[s.Var] = s.Default
	}
	return vars
}

// nameDiff says which names are in want and not in got, and the reverse.
func nameDiff(want, got []string) error {
	var missing, extra []string
	for _, n := range want {
		if !slices.Contains(got, n) {
			missing = append(missing, n)
		}
	}
	for _, n := range got {
		if !slices.Contains(want, n) {
			extra = append(extra, n)
		}
	}
	if len(missing)+len(extra) == 0 {
		return nil
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return fmt.Errorf("missing %v, unknown %v", missing, extra)
}

func TestNameDiff(t *testing.T) {
	tests := []struct {
		name      string
		want, got []string
		err       string
	}{
		{"same names in another order", []string{"A", "B"}, []string{"B", "A"}, ""},
		{"one missing", []string{"A", "B"}, []string{"A"}, "missing [B], unknown []"},
		{"one unknown", []string{"A"}, []string{"A", "C"}, "missing [], unknown [C]"},
		{"renamed", []string{"SPOC_X"}, []string{"SPOC_Y"}, "missing [SPOC_X], unknown [SPOC_Y]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := nameDiff(tt.want, tt.got)
			if got := fmt.Sprint(err); (err == nil) != (tt.err == "") || (err != nil && got != tt.err) {
				t.Errorf("nameDiff = %v, want %q", err, tt.err)
			}
		})
	}
}

// terraform is the parsed deploy/ folder.
type terraform struct {
	blocks []*hclsyntax.Block // every top-level block of every file
	locals map[string]hcl.Expression
}

func parseTerraform(t *testing.T) *terraform {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy", "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no deploy/*.tf files (%v)", err)
	}
	parser := hclparse.NewParser()
	tf := &terraform{locals: map[string]hcl.Expression{}}
	for _, name := range files {
		f, diags := parser.ParseHCLFile(name)
		if diags.HasErrors() {
			t.Fatalf("parse %s: %s", name, diags.Error())
		}
		body := f.Body.(*hclsyntax.Body)
		if len(body.Attributes) > 0 {
			t.Errorf("%s: top-level attributes are not Terraform", name)
		}
		for _, b := range body.Blocks {
			tf.blocks = append(tf.blocks, b)
			if b.Type == "locals" {
				for n, a := range b.Body.Attributes {
					if _, dup := tf.locals[n]; dup {
						t.Errorf("local.%s defined twice", n)
					}
					tf.locals[n] = a.Expr
				}
			}
		}
	}
	return tf
}

// block returns the top-level block of that type and labels, or nil.
func (tf *terraform) block(typ string, labels ...string) *hclsyntax.Block {
	for _, b := range tf.blocks {
		if b.Type == typ && slices.Equal(b.Labels, labels) {
			return b
		}
	}
	return nil
}

// resources returns the resources of one type, by name.
func (tf *terraform) resources(typ string) map[string]*hclsyntax.Block {
	out := map[string]*hclsyntax.Block{}
	for _, b := range tf.blocks {
		if b.Type == "resource" && b.Labels[0] == typ {
			out[b.Labels[1]] = b
		}
	}
	return out
}

// child returns the nested blocks of that type, dynamic ones included
// under the name "dynamic <type>".
func child(b *hclsyntax.Block, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, c := range b.Body.Blocks {
		if c.Type == typ || (typ == "dynamic "+firstLabel(c) && c.Type == "dynamic") {
			out = append(out, c)
		}
	}
	return out
}

func firstLabel(b *hclsyntax.Block) string {
	if len(b.Labels) == 0 {
		return ""
	}
	return b.Labels[0]
}

// path follows nested blocks, one of each type, failing the test when one
// is missing.
func path(t *testing.T, b *hclsyntax.Block, types ...string) *hclsyntax.Block {
	t.Helper()
	for _, typ := range types {
		c := child(b, typ)
		if len(c) != 1 {
			t.Fatalf("%s %v: want one %q block, have %d", b.Type, b.Labels, typ, len(c))
		}
		b = c[0]
	}
	return b
}

// source is the text of an attribute's expression as written, or "" when
// the attribute is absent.
func source(b *hclsyntax.Block, attr string) string {
	a, ok := b.Body.Attributes[attr]
	if !ok {
		return ""
	}
	return exprSource(a.Expr)
}

// exprSource is an expression's text as written.
func exprSource(e hcl.Expression) string {
	r := e.Range()
	src, err := os.ReadFile(r.Filename)
	if err != nil {
		return ""
	}
	return string(src[r.Start.Byte:r.End.Byte])
}

// literal evaluates an attribute that must be a constant.
func literal(t *testing.T, b *hclsyntax.Block, attr string) cty.Value {
	t.Helper()
	a, ok := b.Body.Attributes[attr]
	if !ok {
		t.Fatalf("%s %v: no attribute %s", b.Type, b.Labels, attr)
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("%s %v: %s is not a constant: %s", b.Type, b.Labels, attr, diags.Error())
	}
	return v
}

// objectKeys returns the keys of an object written as { KEY = ... }.
func objectKeys(t *testing.T, name string, e hcl.Expression) []string {
	t.Helper()
	obj, ok := e.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("%s is not an object literal", name)
	}
	var keys []string
	for _, item := range obj.Items {
		k := hcl.ExprAsKeyword(item.KeyExpr)
		if k == "" {
			t.Fatalf("%s has a key that is not a bare name", name)
		}
		// Terraform keeps the last of a repeated key without a word:
		// an edit of the first would do nothing.
		if slices.Contains(keys, k) {
			t.Errorf("%s sets %s twice", name, k)
		}
		keys = append(keys, k)
	}
	return keys
}

func TestTerraformResources(t *testing.T) {
	tf := parseTerraform(t)
	want := map[string]int{ // resource type: how many at least
		"google_project_service":              1,
		"google_artifact_registry_repository": 1,
		"google_storage_bucket":               1,
		"google_service_account":              2,
		"google_storage_bucket_iam_member":    1,
		"google_project_iam_member":           2,
		"google_cloud_run_v2_job":             1,
		"google_cloud_run_v2_job_iam_member":  1,
		"google_cloud_scheduler_job":          1,
		"google_monitoring_alert_policy":      2,
		"google_bigquery_table":               1,
	}
	for typ, n := range want {
		if got := len(tf.resources(typ)); got < n {
			t.Errorf("resource %s: %d, want at least %d", typ, got, n)
		}
	}
	for _, name := range []string{"project_id", "region", "datasets", "dataset_settings", "bucket_name", "create_bucket", "output_prefix", "schedule", "time_zone", "image", "notification_channels", "bigquery_dataset", "job_settings"} {
		if tf.block("variable", name) == nil {
			t.Errorf("no variable %q", name)
		}
	}
	for _, name := range []string{"jobs", "job_name", "bucket", "image_repository", "execute_command"} {
		if tf.block("output", name) == nil {
			t.Errorf("no output %q", name)
		}
	}
	defaults := []struct{ variable, want string }{
		{"schedule", "0 3 * * *"},
		{"time_zone", "Asia/Kuala_Lumpur"},
		{"output_prefix", configEnv(t)["SPOC_PREFIX"]},
	}
	// The datasets enabled by default: the job's default one only.
	if got := literal(t, tf.block("variable", "datasets"), "default"); got.LengthInt() != 1 || got.Index(cty.NumberIntVal(0)).AsString() != configEnv(t)["SPOC_DATASET"] {
		t.Errorf("variable datasets defaults to %#v, want [%q] only", got, configEnv(t)["SPOC_DATASET"])
	}
	for _, d := range defaults {
		if v := tf.block("variable", d.variable); v != nil {
			if got := literal(t, v, "default").AsString(); got != d.want {
				t.Errorf("variable %s defaults to %q, want %q", d.variable, got, d.want)
			}
		}
	}
	if _, err := time.LoadLocation(literal(t, tf.block("variable", "time_zone"), "default").AsString()); err != nil {
		t.Errorf("time_zone default: %v", err)
	}

	enabled := enabledAPIs(t, tf)
	for _, api := range []string{"run.googleapis.com", "cloudscheduler.googleapis.com", "artifactregistry.googleapis.com", "monitoring.googleapis.com", "cloudtrace.googleapis.com", "storage.googleapis.com"} {
		if !slices.Contains(enabled, api) {
			t.Errorf("API %s is not enabled by local.services", api)
		}
	}
}

// enabledAPIs is local.services: the APIs the deployment enables.
func enabledAPIs(t *testing.T, tf *terraform) []string {
	t.Helper()
	services, ok := tf.locals["services"]
	if !ok {
		t.Fatal("no local.services (the APIs to enable)")
	}
	v, diags := services.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("local.services: %s", diags.Error())
	}
	var enabled []string
	for _, s := range v.AsValueSlice() {
		enabled = append(enabled, s.AsString())
	}
	return enabled
}

// The google provider is pinned to its current major, at or above the
// release deploy/ was checked against (v7.45.0: its schemas, validators
// and docs); so is the time provider (time_static, time_sleep).
func TestTerraformProvidersPinned(t *testing.T) {
	tf := parseTerraform(t)
	block := tf.block("terraform")
	if block == nil {
		t.Fatal("no terraform block")
	}
	for _, p := range []struct {
		name, source    string
		major, minMinor int
	}{
		{"google", "hashicorp/google", 7, 45},
		{"time", "hashicorp/time", 0, 12},
	} {
		provider := literal(t, path(t, block, "required_providers"), p.name)
		if src := provider.GetAttr("source").AsString(); src != p.source {
			t.Errorf("%s provider source %q, want %s", p.name, src, p.source)
		}
		v := provider.GetAttr("version").AsString()
		m := regexp.MustCompile(`^~> (\d+)\.(\d+)$`).FindStringSubmatch(v)
		if m == nil {
			t.Errorf("%s provider version %q: want a pin like \"~> %d.%d\" (this major, at least this minor)", p.name, v, p.major, p.minMinor)
			continue
		}
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		if major != p.major || minor < p.minMinor {
			t.Errorf("%s provider version %q admits releases without the attributes used: want \"~> %d.%d\" or a later minor", p.name, v, p.major, p.minMinor)
		}
	}
}

// On an empty project nothing may race the enabling of the APIs it calls:
// the resources of these types wait for time_sleep.apis_ready, which waits
// for google_project_service.required and then lets the activation settle
// (it is eventually consistent), and the APIs that IAM and the project
// calls go through are enabled.
func TestTerraformWaitsForTheAPIs(t *testing.T) {
	tf := parseTerraform(t)
	pause := tf.resources("time_sleep")["apis_ready"]
	if pause == nil {
		t.Fatal("no time_sleep.apis_ready")
	}
	if !strings.Contains(source(pause, "depends_on"), "google_project_service.required") {
		t.Error("time_sleep.apis_ready does not wait for google_project_service.required")
	}
	if d, err := time.ParseDuration(literal(t, pause, "create_duration").AsString()); err != nil || d < 30*time.Second {
		t.Errorf("time_sleep.apis_ready create_duration %v (%v): want at least the guide's 30s", d, err)
	}
	if got := source(pause, "triggers"); !strings.Contains(got, "local.services") {
		t.Errorf("time_sleep.apis_ready triggers %s: want it to wait again when local.services changes", got)
	}
	for _, typ := range []string{"google_service_account", "google_project_iam_member", "google_storage_bucket_iam_member",
		"google_storage_bucket", "google_artifact_registry_repository", "google_cloud_run_v2_job", "google_cloud_scheduler_job",
		"google_monitoring_alert_policy", "google_monitoring_dashboard", "google_bigquery_dataset"} {
		for name, b := range tf.resources(typ) {
			if !strings.Contains(source(b, "depends_on"), "time_sleep.apis_ready") {
				t.Errorf("%s.%s does not depend on time_sleep.apis_ready", typ, name)
			}
		}
	}
	if existing := tf.block("data", "google_storage_bucket", "existing"); existing == nil || !strings.Contains(source(existing, "depends_on"), "time_sleep.apis_ready") {
		t.Error("data.google_storage_bucket.existing does not depend on time_sleep.apis_ready")
	}
	enabled := enabledAPIs(t, tf)
	for _, api := range []string{"iam.googleapis.com", "cloudresourcemanager.googleapis.com", "serviceusage.googleapis.com", "cloudbuild.googleapis.com", "bigquery.googleapis.com"} {
		if !slices.Contains(enabled, api) {
			t.Errorf("API %s is not enabled by local.services", api)
		}
	}
}

// The "no snapshot" alert can be created before its metric exists, and
// does not fire on a new deployment before the job could have published.
func TestTerraformStalenessAlert(t *testing.T) {
	tf := parseTerraform(t)
	policy := tf.resources("google_monitoring_alert_policy")["stale_snapshot"]
	if policy == nil {
		t.Fatal("no google_monitoring_alert_policy.stale_snapshot")
	}
	promql := path(t, policy, "conditions", "condition_prometheus_query_language")
	if !literal(t, promql, "disable_metric_validation").True() {
		t.Error("disable_metric_validation is not true: Cloud Monitoring refuses a PromQL condition on a metric that does not exist yet")
	}
	query := source(promql, "query")
	if !strings.Contains(query, "absent_over_time(workload_googleapis_com:${each.value.last_success}") || !strings.Contains(query, "time_static.deployed[each.key].unix") {
		t.Errorf("query %s: want absent_over_time of the dataset's last_success metric, only once the dataset's own deployment is older than the window", query)
	}
	// One deployment time per dataset, new when its job is (a dataset
	// enabled later, a job renamed): one time for all, kept from the
	// first apply, would start a later dataset's alert past its grace
	// period, firing before its first run.
	deployed := tf.resources("time_static")["deployed"]
	if deployed == nil {
		t.Fatal("no time_static.deployed")
	}
	if got := source(deployed, "for_each"); got != "local.datasets" {
		t.Errorf("time_static.deployed for_each = %q, want local.datasets", got)
	}
	if got := source(deployed, "triggers"); !strings.Contains(got, "google_cloud_run_v2_job.dataset[each.value.job].name") {
		t.Errorf("time_static.deployed triggers = %q, want the dataset's job's name among them", got)
	}
}

// A failed execution is one job's, whichever of its lists failed: a
// references deployment has exactly one "execution failed" policy for its
// one job, whose documentation names the lists it publishes and points
// at their staleness alerts, one per list, which tell which one stopped.
// A single list's job is keyed by its dataset's name, so each dataset's
// policy keeps the address it had (execution_failed["spoc"], ["osh"]...).
func TestTerraformOneFailureAlertPerJob(t *testing.T) {
	tf := parseTerraform(t)
	policies := tf.resources("google_monitoring_alert_policy")
	failed, stale := policies["execution_failed"], policies["stale_snapshot"]
	if failed == nil || stale == nil {
		t.Fatal("no google_monitoring_alert_policy.execution_failed or .stale_snapshot")
	}
	if got := source(failed, "for_each"); got != "local.jobs" {
		t.Errorf("execution_failed for_each = %s, want local.jobs: one per job", got)
	}
	if got := source(stale, "for_each"); got != "local.datasets" {
		t.Errorf("stale_snapshot for_each = %s, want local.datasets: one per list", got)
	}
	filter := source(path(t, failed, "conditions", "condition_threshold"), "filter")
	if !strings.Contains(filter, "google_cloud_run_v2_job.dataset[each.key].name") {
		t.Errorf("execution_failed's filter %s does not select its own job, google_cloud_run_v2_job.dataset[each.key]", filter)
	}
	content := path(t, failed, "documentation").Body.Attributes["content"]
	staleName := stale.Body.Attributes["display_name"]
	if content == nil || staleName == nil {
		t.Fatal("execution_failed has no documentation content, or stale_snapshot no display_name")
	}
	for _, tc := range []struct {
		name           string
		datasets       []string
		failed, staled []string // the policies' keys
	}{
		{"references beside spoc", []string{"spoc", "references"}, []string{"references", "spoc"}, []string{"spoc", "states", "zones"}},
		{"every dataset alone", slices.Sorted(maps.Keys(spoc.Datasets())), slices.Sorted(maps.Keys(spoc.Datasets())), slices.Sorted(maps.Keys(spoc.Datasets()))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var names []cty.Value
			for _, n := range tc.datasets {
				names = append(names, cty.StringVal(n))
			}
			ev := newTFLocals(t, tf, map[string]cty.Value{"datasets": cty.SetVal(names)})
			jobs, datasets := ev.local("jobs").AsValueMap(), ev.local("datasets").AsValueMap()
			if got := slices.Sorted(maps.Keys(jobs)); !slices.Equal(got, tc.failed) {
				t.Errorf("execution_failed policies %v, want %v", got, tc.failed)
			}
			if got := slices.Sorted(maps.Keys(datasets)); !slices.Equal(got, tc.staled) {
				t.Errorf("stale_snapshot policies %v, want %v", got, tc.staled)
			}
			// Each policy's text as a plan renders it.
			render := func(e hcl.Expression, key string, value cty.Value) string {
				t.Helper()
				ctx := &hcl.EvalContext{Functions: terraformFunctions(), Variables: map[string]cty.Value{
					"each": cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(key), "value": value}),
					"var":  cty.ObjectVal(map[string]cty.Value{"staleness_hours": ev.variable("staleness_hours"), "region": ev.variable("region")}),
				}}
				v, diags := e.Value(ctx)
				if diags.HasErrors() {
					t.Fatalf("%s: %s", key, diags.Error())
				}
				return v.AsString()
			}
			for key, job := range jobs {
				var lists []string
				for _, l := range job.GetAttr("lists").AsValueSlice() {
					lists = append(lists, l.AsString())
				}
				doc := render(content.Expr, key, job)
				if !strings.Contains(doc, "publishes "+strings.Join(lists, ", ")+",") || !strings.Contains(doc, `"no snapshot" alert tells which list stopped`) {
					t.Errorf("%s: the documentation does not name the lists %v and their staleness alerts:\n%s", key, lists, doc)
				}
			}
			// The staleness alerts of one job's lists are told apart by
			// their names; a single list's keeps the one it had.
			seen := map[string]string{}
			for key, ds := range datasets {
				name := render(staleName.Expr, key, ds)
				if other, dup := seen[name]; dup {
					t.Errorf("stale_snapshot[%q] and [%q] are both named %q", key, other, name)
				}
				seen[name] = key
				hours, _ := convert.Convert(ev.variable("staleness_hours"), cty.String)
				if want := ds.GetAttr("job_name").AsString() + ": no snapshot for " + hours.AsString() + " h"; ds.GetAttr("job").AsString() == key && name != want {
					t.Errorf("stale_snapshot[%q] is named %q, want %q as before there were groups", key, name, want)
				}
			}
		})
	}
}

// TestStalenessAlertIsThisJobs evaluates the alert's series selector on
// the labels the job's metrics get: generic_task, with the job label set
// to the job's service.name. Only this job's series may satisfy it, or a
// second deployment's successes in the same project would hide this one's
// silence.
func TestStalenessAlertIsThisJobs(t *testing.T) {
	tf := parseTerraform(t)
	promql := path(t, tf.resources("google_monitoring_alert_policy")["stale_snapshot"], "conditions", "condition_prometheus_query_language")
	datasets := deployDatasets()
	jobOf := func(dataset string) string { return deployedJobName(t, tf, dataset, nil) }
	for dataset, d := range datasets {
		t.Run(dataset, func(t *testing.T) {
			// The query as Cloud Monitoring gets it: HCL's escapes undone,
			// the dataset's metric and job in place of their references.
			query := strings.ReplaceAll(source(promql, "query"), `\"`, `"`)
			query = strings.ReplaceAll(query, "${each.value.last_success}", d.LastSuccessMetric)
			query = strings.ReplaceAll(query, "${google_cloud_run_v2_job.dataset[each.value.job].name}", jobOf(dataset))
			selector := regexp.MustCompile(`workload_googleapis_com:` + d.LastSuccessMetric + `\{([^}]*)\}`).FindStringSubmatch(query)
			if selector == nil {
				t.Fatalf("query %s has no %s{...} selector", query, d.LastSuccessMetric)
			}
			matchers := regexp.MustCompile(`\s*(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)"\s*(,|$)`).FindAllStringSubmatch(selector[1], -1)
			if len(matchers) == 0 {
				t.Fatalf("selector {%s}: no label matchers", selector[1])
			}
			matches := func(labels map[string]string) bool {
				for _, m := range matchers {
					name, op, value := m[1], m[2], m[3]
					re := regexp.MustCompile("^(?:" + value + ")$")
					ok := map[string]bool{"=": labels[name] == value, "!=": labels[name] != value, "=~": re.MatchString(labels[name]), "!~": !re.MatchString(labels[name])}[op]
					if !ok {
						return false
					}
				}
				return true
			}
			series := func(resource string, env map[string]string) map[string]string {
				return map[string]string{"monitored_resource": resource, "job": serviceName(envconfig.MapLookuper(env)), "namespace": "mspo"}
			}
			cases := []struct {
				name   string
				labels map[string]string
				want   bool
			}{
				{"this dataset's Cloud Run job", series("generic_task", map[string]string{"CLOUD_RUN_JOB": jobOf(dataset)}), true},
				{"another job in the project", series("generic_task", map[string]string{"CLOUD_RUN_JOB": jobOf(dataset) + "-staging"}), false},
				{"this job's name on another resource type", series("global", map[string]string{"CLOUD_RUN_JOB": jobOf(dataset)}), false},
			}
			for other := range datasets {
				if other != dataset {
					cases = append(cases, struct {
						name   string
						labels map[string]string
						want   bool
					}{"the " + other + " dataset's job", series("generic_task", map[string]string{"CLOUD_RUN_JOB": jobOf(other)}), false})
				}
			}
			for _, tc := range cases {
				if got := matches(tc.labels); got != tc.want {
					t.Errorf("%s: selector {%s} on %v: %v, want %v", tc.name, selector[1], tc.labels, got, tc.want)
				}
			}
		})
	}
}

func TestServiceName(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CLOUD_RUN_JOB": "mspo-spoc-staging"}, "mspo-spoc-staging"},
		{map[string]string{"CLOUD_RUN_JOB": ""}, "mspo-spoc"},
		{nil, "mspo-spoc"},
	} {
		if got := serviceName(envconfig.MapLookuper(tc.env)); got != tc.want {
			t.Errorf("serviceName(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

// Cloud Build runs in a region of its own, from the list that projects
// restricted by Google may use; the image and the job stay in var.region.
func TestTerraformBuildRegion(t *testing.T) {
	tf := parseTerraform(t)
	v := tf.block("variable", "build_region")
	if v == nil {
		t.Fatal("no variable build_region")
	}
	restricted := []string{"us-central1", "us-west2", "europe-west1", "asia-east1", "australia-southeast1", "southamerica-east1"}
	if def := literal(t, v, "default").AsString(); !slices.Contains(restricted, def) {
		t.Errorf("build_region defaults to %q, not one of %v", def, restricted)
	}
	cmd := source(tf.block("output", "build_command"), "value")
	if !strings.Contains(cmd, "--region ${var.build_region}") || !strings.Contains(cmd, "_REGION=${var.region}") {
		t.Errorf("build_command %s: want the build in var.build_region and _REGION=${var.region}", cmd)
	}
	for _, sub := range []string{"_REPOSITORY=", "_JOBS=", "_IMAGE="} {
		if !strings.Contains(cmd, sub) {
			t.Errorf("build_command does not pass %s", sub)
		}
	}
}

// The image cleanup bounds tagged versions too: a DELETE for any tag
// state, a KEEP for the newest few.
func TestTerraformImageCleanup(t *testing.T) {
	tf := parseTerraform(t)
	repo := tf.resources("google_artifact_registry_repository")["images"]
	if repo == nil {
		t.Fatal("no google_artifact_registry_repository.images")
	}
	var deletesTagged, keepsNewest bool
	for _, p := range child(repo, "cleanup_policies") {
		action := literal(t, p, "action").AsString()
		if c := child(p, "condition"); action == "DELETE" && len(c) == 1 && source(c[0], "older_than") != "" {
			if state := source(c[0], "tag_state"); state == `"ANY"` || state == `"TAGGED"` {
				deletesTagged = true
			}
		}
		if action == "KEEP" && len(child(p, "most_recent_versions")) == 1 {
			keepsNewest = true
		}
	}
	if !deletesTagged || !keepsNewest {
		t.Errorf("cleanup policies: DELETE of tagged versions by age %v, KEEP of the newest %v; want both", deletesTagged, keepsNewest)
	}
}

// The BigQuery tables take their schema from the reference files that
// TestBigQuerySchemaFiles keeps equal to the job's, uploaded by Terraform,
// so that they can be created on an empty bucket.
func TestTerraformBigQuerySchemas(t *testing.T) {
	tf := parseTerraform(t)
	for table, object := range map[string]string{"snapshots": "snapshots_schema", "changes": "changes_schema", "versions": "versions_schema", "geo": "geo_schema"} {
		b := tf.resources("google_bigquery_table")[table]
		if b == nil {
			t.Fatalf("no google_bigquery_table.%s", table)
		}
		ext := path(t, b, "external_data_configuration")
		if literal(t, ext, "autodetect").True() {
			t.Errorf("%s: autodetect needs a Parquet file, which an empty bucket does not have", table)
		}
		ref := "google_storage_bucket_object." + object + "[each.key]"
		if got := source(ext, "reference_file_schema_uri"); !strings.Contains(got, ref+".name") {
			t.Errorf("%s: reference_file_schema_uri = %s, want the dataset's uploaded schema file %s", table, got, ref)
		}
		// BigQuery reads the reference file only when it creates the
		// table, and the provider updates the URI in place.
		if got := strings.Join(strings.Fields(source(path(t, b, "lifecycle"), "replace_triggered_by")), ""); got != "["+ref+"]" {
			t.Errorf("%s: replace_triggered_by = %s, want the table replaced with its schema object", table, got)
		}
		// Each object uploads the file deploy/datasets.json names for
		// the dataset (TestBigQuerySchemaFiles checks the files).
		obj := tf.resources("google_storage_bucket_object")[object]
		if obj == nil {
			t.Fatalf("no google_storage_bucket_object.%s", object)
		}
		if got := source(obj, "source"); got != `"${path.module}/schema/${each.value.schema_files.`+table+`}"` {
			t.Errorf("google_storage_bucket_object.%s uploads %s, not the dataset's %s schema file", object, got, table)
		}
	}
	// changed_columns is a LIST: BigQuery makes it an ARRAY only with
	// list inference.
	changes := path(t, tf.resources("google_bigquery_table")["changes"], "external_data_configuration", "parquet_options")
	if !literal(t, changes, "enable_list_inference").True() {
		t.Error("the change table does not set parquet_options.enable_list_inference")
	}
}

func TestTerraformBucketIsPrivate(t *testing.T) {
	tf := parseTerraform(t)
	buckets := tf.resources("google_storage_bucket")
	if buckets["snapshots"] == nil {
		t.Fatal("no google_storage_bucket.snapshots")
	}
	for name, bucket := range buckets {
		if !literal(t, bucket, "uniform_bucket_level_access").True() {
			t.Errorf("bucket %s: uniform_bucket_level_access is not true", name)
		}
		if got := literal(t, bucket, "public_access_prevention").AsString(); got != "enforced" {
			t.Errorf("bucket %s: public_access_prevention = %q", name, got)
		}
	}
	if tf.block("data", "google_storage_bucket", "existing") == nil {
		t.Error("no data source for an existing bucket (create_bucket = false)")
	}
}

func TestTerraformLeastPrivilege(t *testing.T) {
	tf := parseTerraform(t)
	// Project-wide grants are only the telemetry and log writers, and
	// (with native BigQuery tables) running load jobs, which reads no
	// table (TestTerraformBigQueryNativeLoads).
	projectWide := map[string]string{
		"roles/monitoring.metricWriter": "google_service_account.runtime.member",
		"roles/cloudtrace.agent":        "google_service_account.runtime.member",
		"roles/logging.logWriter":       "google_service_account.build.member",
		"roles/bigquery.jobUser":        "google_service_account.runtime.member",
	}
	for name, b := range tf.resources("google_project_iam_member") {
		if name == "bigquery_readers_jobs" {
			continue // the BigQuery readers' own: TestTerraformBigQueryReaders
		}
		role, member := literal(t, b, "role").AsString(), source(b, "member")
		if want, ok := projectWide[role]; !ok || member != want {
			t.Errorf("google_project_iam_member.%s grants %s project-wide to %s", name, role, member)
		}
	}
	// Object access only under the prefix.
	objects := tf.resources("google_storage_bucket_iam_member")["runtime_objects"]
	if objects == nil {
		t.Fatal("no google_storage_bucket_iam_member.runtime_objects")
	}
	cond := path(t, objects, "condition")
	if expr := source(cond, "expression"); !strings.Contains(expr, "resource.name.startsWith") || !strings.Contains(expr, "${each.value.output_prefix}/") {
		t.Errorf("runtime object access is not limited to the prefix: %s", expr)
	}
	// The scheduler may run the datasets' jobs, each bound on its own.
	run := tf.resources("google_cloud_run_v2_job_iam_member")["scheduler_runs_job"]
	if run == nil {
		t.Fatal("no google_cloud_run_v2_job_iam_member.scheduler_runs_job")
	}
	if role := literal(t, run, "role").AsString(); role != "roles/run.jobsExecutor" {
		t.Errorf("scheduler role %s, want roles/run.jobsExecutor", role)
	}
	if got := source(run, "name"); got != "google_cloud_run_v2_job.dataset[each.key].name" {
		t.Errorf("scheduler's role is bound on %s, not the job", got)
	}
	if got := source(run, "member"); got != "google_service_account.scheduler.member" {
		t.Errorf("job executor is %s, not the scheduler account", got)
	}
}

func TestTerraformSchedulerRunsJob(t *testing.T) {
	tf := parseTerraform(t)
	jobs := tf.resources("google_cloud_scheduler_job")
	if len(jobs) != 1 {
		t.Fatalf("%d scheduler jobs, want 1", len(jobs))
	}
	for _, s := range jobs {
		if got := source(s, "schedule"); got != "each.value.schedule" {
			t.Errorf("schedule = %s", got)
		}
		if got := source(s, "time_zone"); got != "var.time_zone" {
			t.Errorf("time_zone = %s", got)
		}
		if source(s, "attempt_deadline") == "" {
			t.Error("no attempt_deadline")
		}
		path(t, s, "retry_config")
		target := path(t, s, "http_target")
		if got := literal(t, target, "http_method").AsString(); got != "POST" {
			t.Errorf("http_method %s", got)
		}
		uri := source(target, "uri")
		if !regexp.MustCompile(`^"https://run\.googleapis\.com/v2/projects/\$\{var\.project_id\}/locations/\$\{var\.region\}/jobs/\$\{google_cloud_run_v2_job\.dataset\[each\.key\]\.name\}:run"$`).MatchString(uri) {
			t.Errorf("uri %s is not the job's :run URL", uri)
		}
		token := path(t, target, "oauth_token")
		if got := source(token, "service_account_email"); got != "google_service_account.scheduler.email" {
			t.Errorf("oauth_token account %s", got)
		}
		if len(child(target, "oidc_token")) > 0 {
			t.Error("oidc_token: the target is a Google API, it takes an OAuth token")
		}
	}
}

func TestTerraformJobEnvMatchesConfig(t *testing.T) {
	tf := parseTerraform(t)
	want := configEnv(t)
	job := tf.resources("google_cloud_run_v2_job")["dataset"]
	if job == nil {
		t.Fatal("no google_cloud_run_v2_job.dataset")
	}
	if got := source(job, "for_each"); got != "local.jobs" {
		t.Errorf("the job's for_each = %s, want one job per entry of var.datasets (local.jobs)", got)
	}
	container := path(t, job, "template", "template", "containers")
	if got := source(path(t, job, "template", "template"), "service_account"); got != "google_service_account.runtime.email" {
		t.Errorf("job runs as %s, not the runtime account", got)
	}
	if envs := child(container, "env"); len(envs) > 0 {
		t.Fatalf("%d static env blocks: the job's env must all come from local.job_env", len(envs))
	}
	env := path(t, container, "dynamic env")
	if got := source(env, "for_each"); got != "local.job_env[each.key]" {
		t.Fatalf("env for_each = %s, want local.job_env[each.key]", got)
	}
	if tf.locals["job_env"] == nil {
		t.Fatal("no local.job_env")
	}
	// The job's defaults, the dataset's URL, the settings for every job,
	// then for this dataset, and last what the deployment decides; a
	// null (a group's URL and prefix) leaves the setting out.
	const wantEnv = "{ for name, j in local.jobs : name => { for k, v in merge( local.job_defaults, { SPOC_URL = j.url }, var.job_settings, j.job_settings, local.job_fixed[name], ) : k => v if v != null } }"
	if got := strings.Join(strings.Fields(exprSource(tf.locals["job_env"])), " "); got != wantEnv {
		t.Fatalf("local.job_env = %s\nwant %s", got, wantEnv)
	}

	defaults := tf.locals["job_defaults"]
	names := objectKeys(t, "local.job_defaults", defaults)
	if err := nameDiff(slices.Collect(maps.Keys(want)), names); err != nil {
		t.Errorf("local.job_defaults against Config's env tags: %v", err)
	}
	values, diags := defaults.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("local.job_defaults is not constant: %s", diags.Error())
	}
	for name, v := range values.AsValueMap() {
		if def, ok := want[name]; ok && v.AsString() != def {
			t.Errorf("local.job_defaults.%s = %q, the job's default is %q", name, v.AsString(), def)
		}
	}
	perDataset, ok := tf.locals["job_fixed"].(*hclsyntax.ForExpr)
	if !ok || exprSource(perDataset.CollExpr) != "local.jobs" {
		t.Fatalf("local.job_fixed = %s, want { for name, j in local.jobs : name => {...} }", exprSource(tf.locals["job_fixed"]))
	}
	fixed := objectKeys(t, "local.job_fixed's value", perDataset.ValExpr)
	for _, name := range fixed {
		if _, ok := want[name]; !ok {
			t.Errorf("local.job_fixed sets %s, which the job does not read", name)
		}
	}
	// The deployed job refuses a first day far below the list's ~306,000
	// plots: the floor comes from var.min_records, whose default is
	// realistic, not from the job's laptop default of 1.
	for _, name := range []string{"SPOC_MIN_RECORDS", "SPOC_DATASET", "SPOC_PREFIX", "SPOC_OUTPUT"} {
		if !slices.Contains(fixed, name) {
			t.Errorf("local.job_fixed does not set %s", name)
		}
	}
	if floor := literal(t, tf.block("variable", "min_records"), "default"); floor.AsBigFloat().Cmp(big.NewFloat(200000)) < 0 || floor.AsBigFloat().Cmp(big.NewFloat(306000)) > 0 {
		t.Errorf("min_records defaults to %s: want a floor a little below the list's ~306,000 plots", floor.AsBigFloat())
	}

	// The task must outlive the job's own deadline, so the job ends itself
	// (and flushes its telemetry) before Cloud Run kills it.
	timeout, err := time.ParseDuration(literal(t, tf.block("variable", "task_timeout"), "default").AsString())
	if err != nil {
		t.Fatal(err)
	}
	deadline, _ := time.ParseDuration(want["SPOC_DEADLINE"])
	flush, _ := time.ParseDuration(want["SPOC_TELEMETRY_TIMEOUT"])
	if timeout <= deadline+flush {
		t.Errorf("task_timeout %s is not above SPOC_DEADLINE %s + SPOC_TELEMETRY_TIMEOUT %s", timeout, deadline, flush)
	}
}

// TestTerraformJobEnvIsAccepted evaluates each job's env as a plan would
// and loads it as the job would: a group's job (SPOC_DATASET=references)
// publishes several lists, with which the job refuses SPOC_URL and
// SPOC_PREFIX (exit 2), so Terraform must set neither; and each list's
// floor, as the job reads SPOC_MIN_RECORDS, must be the list's own (its
// declared Floor), or the one dataset_settings gives its job.
func TestTerraformJobEnvIsAccepted(t *testing.T) {
	tf := parseTerraform(t)
	for _, tc := range []struct {
		name     string
		datasets []string
		floors   map[string]int64 // dataset_settings' min_records, by job
	}{
		{"spoc alone", []string{"spoc"}, nil},
		{"references beside spoc", []string{"spoc", "references"}, nil},
		{"every dataset alone", slices.Sorted(maps.Keys(spoc.Datasets())), nil},
		{"one floor for the references", []string{"spoc", "references"}, map[string]int64{"references": 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var names []cty.Value
			for _, n := range tc.datasets {
				names = append(names, cty.StringVal(n))
			}
			vars := map[string]cty.Value{"datasets": cty.SetVal(names), "project_id": cty.StringVal(testProject)}
			if len(tc.floors) > 0 {
				settings := map[string]cty.Value{}
				for job, floor := range tc.floors {
					settings[job] = cty.ObjectVal(map[string]cty.Value{"min_records": cty.NumberIntVal(floor)})
				}
				vars["dataset_settings"] = cty.MapVal(settings)
			}
			ev := newTFLocals(t, tf, vars)
			ev.done["bucket_name"] = cty.StringVal("my-bucket") // a resource's attribute
			jobs := ev.local("job_env").AsValueMap()
			if len(jobs) != len(tc.datasets) {
				t.Fatalf("%d jobs for datasets %v, want one each", len(jobs), tc.datasets)
			}
			for _, name := range tc.datasets {
				envVal, ok := jobs[name]
				if !ok {
					t.Fatalf("no job for %s", name)
				}
				env := map[string]string{}
				for k, v := range envVal.AsValueMap() {
					if v.IsNull() {
						t.Errorf("%s: %s is null", name, k)
						continue
					}
					env[k] = v.AsString()
				}
				if env["SPOC_DATASET"] != name {
					t.Errorf("%s: SPOC_DATASET=%q", name, env["SPOC_DATASET"])
				}
				lists, isGroup := spoc.InGroup(name)
				if isGroup {
					for _, k := range []string{"SPOC_URL", "SPOC_PREFIX"} {
						if v, ok := env[k]; ok {
							t.Errorf("%s: %s=%q: each of the group's lists has its own", name, k, v)
						}
					}
				} else {
					lists = []*spoc.Dataset{spoc.Datasets()[name]}
				}
				cfg, err := LoadConfig(context.Background(), env)
				if err != nil {
					t.Errorf("%s: the job refuses its env (exit 2): %v", name, err)
					continue
				}
				if len(cfg.lists) != len(lists) {
					t.Fatalf("%s: %d lists, want %d", name, len(cfg.lists), len(lists))
				}
				for i, l := range cfg.lists {
					want, one := tc.floors[name]
					if !one {
						want = lists[i].Floor
					}
					if l.Dataset != lists[i] || l.MinRecords != want {
						t.Errorf("%s: SPOC_MIN_RECORDS=%s gives %s the floor %d, want %d", name, env["SPOC_MIN_RECORDS"], l.Dataset.Name, l.MinRecords, want)
					}
				}
				if _, one := tc.floors[name]; one && env["SPOC_MIN_RECORDS"] != strconv.FormatInt(tc.floors[name], 10) {
					t.Errorf("%s: SPOC_MIN_RECORDS=%s, want one number, %d, for every list", name, env["SPOC_MIN_RECORDS"], tc.floors[name])
				}
			}
		})
	}
}

// cloudBuild is the part of a Cloud Build config the tests read.
type cloudBuild struct {
	Substitutions map[string]string `yaml:"substitutions"`
	Options       map[string]any    `yaml:"options"`
	Steps         []struct {
		ID         string   `yaml:"id"`
		Name       string   `yaml:"name"`
		Entrypoint string   `yaml:"entrypoint"`
		Args       []string `yaml:"args"`
		Env        []string `yaml:"env"`
	} `yaml:"steps"`
	Images []string `yaml:"images"`
}

func TestCloudBuild(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "cloudbuild.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cb cloudBuild
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&cb); err != nil {
		t.Fatalf("cloudbuild.yaml: %v", err)
	}

	var ids []string
	for _, s := range cb.Steps {
		ids = append(ids, s.ID)
	}
	if !slices.Equal(ids, []string{"test", "build", "push", "deploy"}) {
		t.Fatalf("steps %v, want test, build, push, deploy", ids)
	}
	const image = "${_REGION}-docker.pkg.dev/${PROJECT_ID}/${_REPOSITORY}/${_IMAGE}:${COMMIT_SHA}"
	test, build, push, deploy := cb.Steps[0], cb.Steps[1], cb.Steps[2], cb.Steps[3]
	if script := strings.Join(test.Args, " "); !strings.Contains(script, "go test ./...") {
		t.Errorf("test step runs %q, not the README's go test ./...", script)
	}
	if !slices.Contains(test.Env, "CGO_ENABLED=0") {
		t.Errorf("test step env %v: not the image's CGO_ENABLED=0", test.Env)
	}
	if build.Args[0] != "build" || !slices.Contains(build.Args, "--tag="+image) || build.Args[len(build.Args)-1] != "." {
		t.Errorf("build step %v does not build . tagged %s", build.Args, image)
	}
	for _, arg := range []string{"--build-arg=COMMIT=${COMMIT_SHA}", "--build-arg=VERSION=${SHORT_SHA}"} {
		if !slices.Contains(build.Args, arg) {
			t.Errorf("build step does not pass %s", arg)
		}
	}
	if !slices.Equal(push.Args, []string{"push", image}) {
		t.Errorf("push step %v", push.Args)
	}
	// Every job in _JOBS is updated to the image, and a failed update
	// fails the build.
	if script := strings.Join(deploy.Args, " "); deploy.Entrypoint != "bash" || !strings.Contains(script, "set -eu") ||
		!strings.Contains(script, "for job in ${_JOBS}; do") ||
		!strings.Contains(script, `gcloud run jobs update "$$job" --image=`+image+" --region=${_REGION} --quiet") {
		t.Errorf("deploy step: %s %s", deploy.Entrypoint, script)
	}
	if !slices.Equal(cb.Images, []string{image}) {
		t.Errorf("images %v", cb.Images)
	}

	// Every user substitution used is declared with a default, and the
	// defaults are the ones deploy/ creates.
	for _, used := range regexp.MustCompile(`\$\{(_[A-Z0-9_]+)\}`).FindAllStringSubmatch(string(raw), -1) {
		if cb.Substitutions[used[1]] == "" {
			t.Errorf("substitution %s is used but has no default", used[1])
		}
	}
	tf := parseTerraform(t)
	for sub, variable := range map[string]string{"_REGION": "region", "_REPOSITORY": "repository_id", "_JOBS": "job_name"} {
		if want := literal(t, tf.block("variable", variable), "default").AsString(); cb.Substitutions[sub] != want {
			t.Errorf("substitution %s = %q, Terraform's %s defaults to %q", sub, cb.Substitutions[sub], variable, want)
		}
	}
	if cb.Options["dynamicSubstitutions"] != true {
		t.Error("dynamicSubstitutions is off: ${_REGION} inside longer strings would not expand")
	}
	if goImage, from := cb.Substitutions["_GO_IMAGE"], dockerfileStages(t)[0].image; goImage != from {
		t.Errorf("tests run on %s, the image is built on %s", goImage, from)
	}
}

type dockerStage struct {
	image, name string
	lines       []string // instructions of the stage, continuation lines joined
}

func dockerfileStages(t *testing.T) []dockerStage {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	var stages []dockerStage
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Fields(line); f[0] == "FROM" {
			s := dockerStage{image: f[1]}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				s.name = f[3]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if !strings.HasPrefix(line, "ARG ") {
				t.Fatalf("Dockerfile: %q before the first FROM", line)
			}
			continue
		}
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
	}
	if len(stages) != 2 {
		t.Fatalf("Dockerfile has %d stages, want a builder and the final image", len(stages))
	}
	return stages
}

func TestDockerfile(t *testing.T) {
	stages := dockerfileStages(t)
	build, final := stages[0], stages[1]

	goMod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
	if goVersion == nil {
		t.Fatal("no go line in go.mod")
	}
	if !regexp.MustCompile(`^golang:` + regexp.QuoteMeta(string(goVersion[1])) + `\.\d+(-[a-z]+)?(@sha256:[0-9a-f]{64})?$`).MatchString(build.image) {
		t.Errorf("builder %s is not Go %s pinned to a patch release", build.image, goVersion[1])
	}

	index := func(s dockerStage, prefix string) int {
		return slices.IndexFunc(s.lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
	}
	modules, download, source := index(build, "COPY go.mod go.sum"), index(build, "RUN go mod download"), index(build, "COPY . .")
	if modules < 0 || download < modules || source < download {
		t.Errorf("builder does not download modules in a layer before copying the source: %q", build.lines)
	}
	if index(build, "ENV CGO_ENABLED=0") < 0 {
		t.Error("builder does not set CGO_ENABLED=0")
	}
	for _, arg := range []string{"ARG VERSION", "ARG COMMIT"} {
		if index(build, arg) < 0 {
			t.Errorf("no %s", arg)
		}
	}
	var goBuild []string
	for _, l := range build.lines {
		if strings.HasPrefix(l, "RUN go build ") {
			goBuild = append(goBuild, l)
		}
	}
	// .ci/run runs this line: one line, so its sed finds it whole.
	if len(goBuild) != 1 {
		t.Fatalf("%d 'RUN go build' lines, want 1", len(goBuild))
	}
	for _, flag := range []string{"-trimpath", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "-o /out/job", "./cmd/job"} {
		if !strings.Contains(goBuild[0], flag) {
			t.Errorf("go build line lacks %q: %s", flag, goBuild[0])
		}
	}
	// The -X targets must exist, or the linker drops them silently.
	_, _ = version, commit

	if !regexp.MustCompile(`^gcr\.io/distroless/static-debian\d+:nonroot(@sha256:[0-9a-f]{64})?$`).MatchString(final.image) {
		t.Errorf("final image %s is not distroless static nonroot", final.image)
	}
	want := []string{"COPY --from=" + build.name + " /out/job /job", "USER nonroot:nonroot", `ENTRYPOINT ["/job"]`}
	if !slices.Equal(final.lines, want) {
		t.Errorf("final stage\n%q\nwant\n%q", final.lines, want)
	}

	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, entry := range []string{".git", "data/"} {
		if !slices.Contains(strings.Fields(string(ignore)), entry) {
			t.Errorf(".dockerignore does not leave out %s", entry)
		}
	}
}

// TestBigQueryTablesMatchOneTableEach reads the BigQuery external tables'
// source URIs as BigQuery does (one "*" that also matches "/") and checks
// that the snapshot table reads the snapshots only, the change table
// the change tables only, the versions table the versions only and the
// geo table the geolocation layers only.
func TestBigQueryTablesMatchOneTableEach(t *testing.T) {
	tf := parseTerraform(t)
	for name, ds := range spoc.Datasets() {
		prefix, names := ds.Prefix, snapshot.NamesOf(ds)
		objects := map[string]string{
			"snapshot": prefix + "/20261127/" + names.Parquet,
			"changes":  prefix + "/20261127/" + names.Changes,
			"versions": prefix + "/20261127/" + names.Versions,
			"archive":  prefix + "/20261127/" + names.Archive,
			"manifest": prefix + "/20261127/" + names.Manifest,
			"rejected": prefix + "/20261127/" + snapshot.RejectedDir + "/" + names.Archive,
		}
		tables := map[string]string{"snapshots": "snapshot", "changes": "changes", "versions": "versions"}
		if geo.HasLayer(ds) {
			objects["geo"] = prefix + "/20261127/" + snapshot.NamesOf(ds).Geo
			tables["geo"] = "geo"
		}
		for kind, file := range deployDatasets()[name].SchemaFiles {
			objects["schema of the "+kind] = prefix + "/_schema/0123456789ab/" + file
		}
		for table, want := range tables {
			b := tf.resources("google_bigquery_table")[table]
			if b == nil {
				t.Errorf("no google_bigquery_table.%s", table)
				continue
			}
			uris := source(path(t, b, "external_data_configuration"), "source_uris")
			uri := strings.ReplaceAll(strings.Trim(uris, `[]" `), "${each.value.object}", ds.Object)
			if strings.Count(uri, "*") != 1 {
				t.Errorf("%s: %s: BigQuery allows one wildcard", table, uri)
			}
			glob := strings.TrimPrefix(uri, "gs://${local.bucket_name}/${each.value.output_prefix}/")
			star := strings.Index(glob, "*")
			re := regexp.MustCompile("^" + regexp.QuoteMeta(prefix+"/"+glob[:star]) + ".*" + regexp.QuoteMeta(glob[star+1:]) + "$")
			for kind, object := range objects {
				if got := re.MatchString(object); got != (kind == want) {
					t.Errorf("%s: %s table: %s matches %s (%s): %v", name, table, uri, object, kind, got)
				}
			}
		}
	}
}

// TestIgnoreFiles checks, with git's own matcher, that neither `gcloud
// builds submit` (.gcloudignore, gitignore syntax) nor git (.gitignore)
// takes Terraform's providers, state, plans or variable files, and that
// the build still gets what it needs, the files its tests read included:
// cloudbuild.yaml runs them on the upload (.ci/run too).
func TestIgnoreFiles(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	secret := []string{"deploy/.terraform/providers/registry.terraform.io/hashicorp/google/6.50.0/linux_amd64/terraform-provider-google",
		"deploy/terraform.tfvars", "deploy/prod.auto.tfvars", "deploy/terraform.tfvars.json", "deploy/prod.auto.tfvars.json",
		"deploy/plan.tfplan", "deploy/terraform.tfstate", "deploy/terraform.tfstate.backup"}
	needed := []string{"go.mod", "go.sum", "Dockerfile", "cloudbuild.yaml", "cmd/job/main.go", "deploy/main.tf", "deploy/datasets.json", "deploy/schema/spoc-list-public.schema.parquet", "deploy/schema/osh-all-smallholder.schema.parquet", "deploy/schema/groupmanager-list-public.schema.parquet", "deploy/schema/spoc-list-public.geo.schema.parquet", "deploy/tests/before_datasets/main.tf",
		"deploy/terraform.tfvars.example", "deploy/tests/defaults.tftest.hcl", "pkg/fetch/testdata/issuers.p7c", "pkg/snapshot/testdata/small.json", "pkg/boundary/data/malaysia.bin",
		// Read by cmd/job's tests, which Cloud Build runs on the upload.
		".gcloudignore", ".gitignore", ".dockerignore", "README.md", "docs/schema.md", "deploy/README.md"}
	for _, ignoreFile := range []string{".gcloudignore", ".gitignore"} {
		t.Run(ignoreFile, func(t *testing.T) {
			rules, err := os.ReadFile(filepath.Join(repoRoot, ignoreFile))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if out, err := exec.Command(git, "init", "-q", dir).CombinedOutput(); err != nil {
				t.Fatalf("git init: %v\n%s", err, out)
			}
			if err := os.WriteFile(filepath.Join(dir, ".gitignore"), rules, 0o644); err != nil {
				t.Fatal(err)
			}
			ignored := func(p string) bool {
				cmd := exec.Command(git, "-C", dir, "check-ignore", "-q", "--no-index", p)
				return cmd.Run() == nil
			}
			for _, p := range secret {
				if !ignored(p) {
					t.Errorf("%s does not ignore %s", ignoreFile, p)
				}
			}
			for _, p := range needed {
				if ignored(p) {
					t.Errorf("%s ignores %s", ignoreFile, p)
				}
			}
		})
	}
}

// TestTerraformRetentionKeepsTheHistory: snapshot_retention_days deletes
// a day's objects of every list once old (its geolocation layer with its
// snapshot, which it is made of), and never a version (the list as of a
// later day needs each plot's newest one) or a BigQuery schema file.
func TestTerraformRetentionKeepsTheHistory(t *testing.T) {
	tf := parseTerraform(t)
	bucket := tf.block("resource", "google_storage_bucket", "snapshots")
	if bucket == nil {
		t.Fatal("no google_storage_bucket.snapshots")
	}
	rule := path(t, bucket, "dynamic", "content", "condition")
	if got := source(rule, "matches_suffix"); got != "local.retention_suffixes" {
		t.Fatalf("the retention rule matches %q, want local.retention_suffixes", got)
	}
	ev := newTFLocals(t, tf, map[string]cty.Value{})
	var suffixes []string
	for _, v := range ev.local("retention_suffixes").AsValueSlice() {
		suffixes = append(suffixes, v.AsString())
	}
	deleted := func(name string) bool {
		return slices.ContainsFunc(suffixes, func(s string) bool { return strings.HasSuffix(name, s) })
	}
	for _, ds := range spoc.Datasets() {
		n := snapshot.NamesOf(ds)
		day := ds.Prefix + "/20250101/"
		names := []string{n.Parquet, n.Manifest, n.Archive, n.Changes, n.Digest, n.Lock, snapshot.RejectedDir + "/" + n.Archive}
		if geo.HasLayer(ds) {
			names = append(names, snapshot.NamesOf(ds).Geo)
		}
		for _, name := range names {
			if !deleted(day + name) {
				t.Errorf("%s: %s is kept forever", ds.Name, day+name)
			}
		}
		if deleted(day + n.Versions) {
			t.Errorf("%s: the versions %s would be deleted", ds.Name, day+n.Versions)
		}
	}
	schemas, err := filepath.Glob("../../deploy/schema/*.parquet")
	if err != nil || len(schemas) == 0 {
		t.Fatalf("no schema files (%v)", err)
	}
	for _, f := range schemas {
		if name := "raw/x/_schema/0123456789ab/" + filepath.Base(f); deleted(name) {
			t.Errorf("the schema file %s would be deleted", name)
		}
	}
}
