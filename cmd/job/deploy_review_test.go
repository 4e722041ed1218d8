package main

// The deployment's least-privilege grants and limits checked against what
// the job and the tools it runs with actually do: the runtime account's
// list binding against the job's own list calls, the build runner's
// staging-bucket roles, the BigQuery readers' grants, the quota project,
// the build command, the CPU and memory limits and the scheduler's role.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/zclconf/go-cty/cty"
	"go.yaml.in/yaml/v3"

	"github.com/calee-data/mspo-spoc/pkg/sink/sinktest"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// The runtime account may list object names only under the datasets'
// prefixes: its list binding is one per list, conditioned on the prefix
// the objects.list request asks for.
func TestTerraformRuntimeListsOnlyItsPrefixes(t *testing.T) {
	tf := parseTerraform(t)
	list := tf.resources("google_storage_bucket_iam_member")["runtime_list"]
	if list == nil {
		t.Fatal("no google_storage_bucket_iam_member.runtime_list")
	}
	if got := source(list, "for_each"); got != "local.datasets" {
		t.Errorf("runtime_list for_each = %q, want one binding per list (local.datasets)", got)
	}
	if got := literal(t, list, "role").AsString(); got != "roles/storage.objectViewer" {
		t.Errorf("runtime_list role %s", got)
	}
	expr := source(path(t, list, "condition"), "expression")
	for _, want := range []string{
		`resource.type == \"storage.googleapis.com/Bucket\"`,
		`api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${each.value.output_prefix}/\")`,
	} {
		if !strings.Contains(expr, want) {
			t.Errorf("runtime_list condition %s: no %s", expr, want)
		}
	}
	if strings.Contains(expr, "||") {
		t.Errorf("runtime_list condition %s: an alternative would widen the list", expr)
	}
}

// The job lists objects only below its prefix and a slash (the previous
// days, the day's leftovers), which is what runtime_list's condition on
// the listed prefix allows: a list call outside it would fail with 403 in
// production, not here, so the prefixes the job sends are checked at the
// storage emulator's door.
func TestJobListsOnlyUnderItsPrefix(t *testing.T) {
	const bucket = "calee-test"
	emulator := sinktest.NewEmulator(t, bucket)
	target, err := url.Parse(emulator.URL)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		prefixes []string
	)
	proxy := httputil.NewSingleHostReverseProxy(target)
	door := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// objects.list: GET .../b/BUCKET/o, with no object name after it.
		if r.Method == http.MethodGet && strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/b/"+bucket+"/o") {
			mu.Lock()
			prefixes = append(prefixes, r.URL.Query().Get("prefix"))
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	defer door.Close()
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(door.URL, "http://"))

	up := spoctest.NewServer(spoctest.WithRecords(2000), spoctest.WithSeed(3))
	defer up.Close()
	// Two days, so that the second finds the first: a first run, then one
	// with a previous snapshot.
	for _, day := range []string{"20250101", "20250102"} {
		code, logs := runJob(t, context.Background(), map[string]string{
			"SPOC_URL": up.URL, "SPOC_OUTPUT": "gs://" + bucket, "SPOC_DATE": day, "SPOC_MIN_RECORDS": "1",
		})
		if code != exitOK {
			t.Fatalf("day %s: exit %d\n%s", day, code, logs)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(prefixes) == 0 {
		t.Fatal("the job made no objects.list call: the test no longer sees them")
	}
	for _, p := range prefixes {
		if !strings.HasPrefix(p, testPrefix+"/") {
			t.Errorf("the job listed prefix %q, outside %s/", p, testPrefix)
		}
	}
	t.Logf("list prefixes: %q", prefixes)
}

// Whoever runs the build command gets, on the staging bucket only, what
// gcloud builds submit does there: it reads the bucket (buckets.get, a
// 403 ends the command) and uploads the source.
func TestTerraformBuildSubmittersGetTheStagingBucket(t *testing.T) {
	tf := parseTerraform(t)
	role := tf.resources("google_project_iam_custom_role")["build_bucket_get"]
	if role == nil {
		t.Fatal("no google_project_iam_custom_role.build_bucket_get")
	}
	if got := literal(t, role, "permissions"); got.LengthInt() != 1 || got.Index(cty.NumberIntVal(0)).AsString() != "storage.buckets.get" {
		t.Errorf("build_bucket_get permissions %#v, want only storage.buckets.get", got)
	}
	if got := source(role, "count"); !strings.Contains(got, "var.build_submitters") {
		t.Errorf("build_bucket_get count = %q: the role needs Role Administrator, so it exists only with build_submitters", got)
	}
	bindings := tf.resources("google_storage_bucket_iam_member")
	for name, wantRole := range map[string]string{
		"build_submitters_upload":     `"roles/storage.objectAdmin"`,
		"build_submitters_get_bucket": "google_project_iam_custom_role.build_bucket_get[0].name",
	} {
		b := bindings[name]
		if b == nil {
			t.Errorf("no google_storage_bucket_iam_member.%s", name)
			continue
		}
		if got := source(b, "bucket"); got != "google_storage_bucket.build_source.name" {
			t.Errorf("%s is bound on %s, not the staging bucket", name, got)
		}
		if got := source(b, "role"); got != wantRole {
			t.Errorf("%s role %s, want %s", name, got, wantRole)
		}
		if got := source(b, "for_each"); got != "toset(var.build_submitters)" {
			t.Errorf("%s for_each %s", name, got)
		}
	}
	docNames(t, "deploy/README.md", "build_submitters", "storage.buckets.get")
}

// The BigQuery readers get what a query of the tables and views needs:
// the dataset's data, jobs in the project, and, for the external tables,
// the bucket's objects under the datasets' prefixes and its object names.
func TestTerraformBigQueryReaders(t *testing.T) {
	tf := parseTerraform(t)
	if tf.block("variable", "bigquery_readers") == nil {
		t.Fatal(`no variable "bigquery_readers"`)
	}
	type grant struct{ typ, name, role, forEach, member string }
	for _, g := range []grant{
		{"google_bigquery_dataset_iam_member", "readers", "roles/bigquery.dataViewer", "local.bigquery_reader_members", "each.value"},
		{"google_project_iam_member", "bigquery_readers_jobs", "roles/bigquery.jobUser", "local.bigquery_reader_members", "each.value"},
		{"google_storage_bucket_iam_member", "bigquery_readers_objects", "roles/storage.objectViewer", "local.bigquery_reader_lists", "each.value.member"},
		{"google_storage_bucket_iam_member", "bigquery_readers_list", "roles/storage.objectViewer", "local.bigquery_external_reader_members", "each.value"},
	} {
		b := tf.resources(g.typ)[g.name]
		if b == nil {
			t.Errorf("no %s.%s", g.typ, g.name)
			continue
		}
		if got := literal(t, b, "role").AsString(); got != g.role {
			t.Errorf("%s.%s role %s, want %s", g.typ, g.name, got, g.role)
		}
		if got := source(b, "for_each"); got != g.forEach {
			t.Errorf("%s.%s for_each %s, want %s", g.typ, g.name, got, g.forEach)
		}
		if got := source(b, "member"); got != g.member {
			t.Errorf("%s.%s member %s, want %s", g.typ, g.name, got, g.member)
		}
	}
	// Only when BigQuery is on, and object reads only under the prefixes.
	if got := exprSource(tf.locals["bigquery_reader_members"]); !strings.Contains(got, "local.bigquery == 1") {
		t.Errorf("local.bigquery_reader_members = %s: the readers are granted nothing without bigquery_dataset", got)
	}
	if got := exprSource(tf.locals["bigquery_reader_lists"]); !strings.Contains(got, "local.bigquery_external_datasets") {
		t.Errorf("local.bigquery_reader_lists = %s: one binding per list with external tables", got)
	}
	if got := exprSource(tf.locals["bigquery_external_reader_members"]); got != "local.bigquery_native ? toset([]) : local.bigquery_reader_members" {
		t.Errorf("local.bigquery_external_reader_members = %s: the bucket's list binding with external tables only", got)
	}
	objects := tf.resources("google_storage_bucket_iam_member")["bigquery_readers_objects"]
	if objects != nil {
		if expr := source(path(t, objects, "condition"), "expression"); !strings.Contains(expr, `resource.name.startsWith(\"projects/_/buckets/${local.bucket_name}/objects/${local.datasets[each.value.list].output_prefix}/\")`) {
			t.Errorf("the readers' object reads are not limited to the prefix: %s", expr)
		}
	}
	if list := tf.resources("google_storage_bucket_iam_member")["bigquery_readers_list"]; list != nil {
		if expr := source(path(t, list, "condition"), "expression"); expr != `"resource.type == \"storage.googleapis.com/Bucket\""` {
			t.Errorf("the readers' list binding reaches past the bucket's names: %s", expr)
		}
	}
	docNames(t, "deploy/README.md", "bigquery_readers", "roles/storage.objectViewer", "roles/bigquery.dataViewer", "roles/bigquery.jobUser")
}

// A user's application-default credentials may carry no quota project,
// and the provider does not read one from them: billing_project sets the
// provider's own (user_project_override and billing_project), and is
// off by default.
func TestTerraformQuotaProject(t *testing.T) {
	tf := parseTerraform(t)
	v := tf.block("variable", "billing_project")
	if v == nil {
		t.Fatal(`no variable "billing_project"`)
	}
	if got := literal(t, v, "default").AsString(); got != "" {
		t.Errorf("billing_project defaults to %q, want \"\" (the API decides, as before)", got)
	}
	google := tf.block("provider", "google")
	if google == nil {
		t.Fatal(`no provider "google" block`)
	}
	for attr, want := range map[string]string{
		"user_project_override": `var.billing_project != ""`,
		"billing_project":       `var.billing_project != "" ? var.billing_project : null`,
	} {
		if got := source(google, attr); got != want {
			t.Errorf("provider google: %s = %q, want %q", attr, got, want)
		}
	}
	docNames(t, "deploy/README.md", "billing_project", "user_project_override", "requires a quota project", "GOOGLE_BILLING_PROJECT")
}

// docNames fails the test for each of wants that the file (relative to
// the repository's top) does not contain.
func docNames(t *testing.T, rel string, wants ...string) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range wants {
		if !strings.Contains(string(doc), want) {
			t.Errorf("%s does not name %q", rel, want)
		}
	}
}

// cloudbuild.yaml's header sends a build by hand to Terraform's
// build_command, which names everything a bare gcloud builds submit
// would miss: the build's account, its region, the staging bucket, and
// every substitution the file uses with no default of its own (COMMIT_SHA
// and SHORT_SHA, which only a trigger sets) or with deploy/'s defaults,
// which another deployment does not share.
func TestCloudBuildHeaderPointsToBuildCommand(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "cloudbuild.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var header []string
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		header = append(header, line)
	}
	text := strings.Join(header, "\n")
	if !strings.Contains(text, "terraform -chdir=deploy output -raw build_command") {
		t.Errorf("cloudbuild.yaml's header does not point to Terraform's build_command:\n%s", text)
	}
	if strings.Contains(text, "gcloud builds submit --") {
		t.Errorf("cloudbuild.yaml's header still has a command of its own:\n%s", text)
	}

	var cb cloudBuild
	if err := yaml.Unmarshal(raw, &cb); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, used := range regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`).FindAllStringSubmatch(string(raw), -1) {
		if _, hasDefault := cb.Substitutions[used[1]]; !hasDefault && used[1] != "PROJECT_ID" {
			want[used[1]] = true
		}
	}
	for _, sub := range []string{"_REGION", "_REPOSITORY", "_JOBS", "_IMAGE"} {
		want[sub] = true
	}
	if !want["COMMIT_SHA"] || !want["SHORT_SHA"] {
		t.Fatalf("cloudbuild.yaml no longer uses COMMIT_SHA and SHORT_SHA: %v", want)
	}
	command := source(parseTerraform(t).block("output", "build_command"), "value")
	for sub := range want {
		if !strings.Contains(command, sub+"=") {
			t.Errorf("build_command does not set %s: %s", sub, command)
		}
	}
	for _, flag := range []string{"--project ", "--region ${var.build_region}", "--config cloudbuild.yaml", "--service-account ${google_service_account.build.id}", "--gcs-source-staging-dir gs://${google_storage_bucket.build_source.name}/"} {
		if !strings.Contains(command, flag) {
			t.Errorf("build_command has no %s: %s", flag, command)
		}
	}
}

// The job's CPU is one Cloud Run jobs take, and its memory within the
// range Cloud Run gives that many CPUs.
func TestTerraformCPUAndMemory(t *testing.T) {
	tf := parseTerraform(t)
	cpu := tf.block("variable", "cpu")
	validations := child(cpu, "validation")
	if len(validations) != 1 || source(validations[0], "condition") != `contains(["1", "2", "4", "6", "8"], var.cpu)` {
		t.Errorf("variable cpu: want one validation, contains([\"1\", \"2\", \"4\", \"6\", \"8\"], var.cpu) (the provider's and Cloud Run's only values)")
	}
	if len(child(tf.block("variable", "memory"), "validation")) != 1 {
		t.Error("variable memory has no validation of its form")
	}
	ranges, ok := tf.locals["memory_range_mib"]
	if !ok {
		t.Fatal("no local.memory_range_mib")
	}
	got, diags := ranges.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("local.memory_range_mib is not a constant: %s", diags.Error())
	}
	// Cloud Run's "Configure memory limits": 1 vCPU up to 4 GiB, 2 up to
	// 8, 4 from 2 to 16, 6 from 4 to 24, 8 from 4 to 32; at least 512 MiB.
	want := map[string][2]int64{"1": {512, 4096}, "2": {512, 8192}, "4": {2048, 16384}, "6": {4096, 24576}, "8": {4096, 32768}}
	if got.LengthInt() != len(want) {
		t.Errorf("local.memory_range_mib has %d CPU counts, want %d", got.LengthInt(), len(want))
	}
	for cpus, r := range want {
		if !got.Type().HasAttribute(cpus) {
			t.Errorf("local.memory_range_mib has no %s", cpus)
			continue
		}
		v := got.GetAttr(cpus)
		lo, _ := v.Index(cty.NumberIntVal(0)).AsBigFloat().Int64()
		hi, _ := v.Index(cty.NumberIntVal(1)).AsBigFloat().Int64()
		if lo != r[0] || hi != r[1] {
			t.Errorf("local.memory_range_mib[%s] = [%d, %d], want %v", cpus, lo, hi, r)
		}
	}
	job := tf.resources("google_cloud_run_v2_job")["dataset"]
	var checked bool
	for _, p := range child(path(t, job, "lifecycle"), "precondition") {
		c := source(p, "condition")
		if strings.Contains(c, "local.memory_mib") && strings.Contains(c, "local.memory_range_mib[var.cpu]") {
			checked = true
		}
	}
	if !checked {
		t.Error("google_cloud_run_v2_job.dataset has no precondition comparing var.memory with var.cpu's range")
	}
}

// The scheduler's role is Cloud Run Jobs Executor, whose run.jobs.run
// starts an execution as the job is configured: the scheduler's :run
// call has no body, so no overrides, which would need
// run.jobs.runWithOverrides (Jobs Executor With Overrides).
func TestTerraformSchedulerRoleRunsWithoutOverrides(t *testing.T) {
	tf := parseTerraform(t)
	binding := tf.resources("google_cloud_run_v2_job_iam_member")["scheduler_runs_job"]
	if binding == nil {
		t.Fatal("no google_cloud_run_v2_job_iam_member.scheduler_runs_job")
	}
	if got := literal(t, binding, "role").AsString(); got != "roles/run.jobsExecutor" {
		t.Errorf("the scheduler's role is %s, want roles/run.jobsExecutor (run.jobs.run, nothing to change a job)", got)
	}
	for name, s := range tf.resources("google_cloud_scheduler_job") {
		target := path(t, s, "http_target")
		for _, attr := range []string{"body", "headers"} {
			if source(target, attr) != "" {
				t.Errorf("google_cloud_scheduler_job.%s sends a %s: a :run request with overrides needs run.jobs.runWithOverrides, which roles/run.jobsExecutor does not hold", name, attr)
			}
		}
	}
	for _, b := range tf.resources("google_project_iam_member") {
		if strings.Contains(source(b, "member"), "scheduler") {
			t.Errorf("the scheduler account has a project-wide role: %s", source(b, "role"))
		}
	}
}
