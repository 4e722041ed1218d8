package main

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
)

// exportedMetric is what the job's code says of one metric it exports.
type exportedMetric struct {
	dataset  string
	constant string   // the Metric* constant it is named from
	kind     string   // the instrument: counter, gauge or histogram
	labels   []string // the attribute keys it is recorded with
}

// exportedMetrics reads pkg/snapshot/metrics.go: the Metric* constants,
// the instrument newInstruments creates for each (m.Int64Counter(
// MetricName(ds, MetricRecords), ...) into in.records) and the attribute
// keys every in.records.Add(...) gives it. The names are then the job's
// for every dataset, by MetricName: the charts are checked against what
// the code records, not against a list copied here.
func exportedMetrics(t *testing.T) map[string]exportedMetric {
	t.Helper()
	file := filepath.Join(repoRoot, "pkg", "snapshot", "metrics.go")
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	constants := map[string]string{} // MetricRecords: "spoc.records"
	for _, decl := range f.Decls {
		if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && strings.HasPrefix(n.Name, "Metric") {
						constants[n.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
	}
	if constants["MetricRecords"] != snapshot.MetricRecords || constants["MetricLastSuccess"] != snapshot.MetricLastSuccess {
		t.Fatalf("%s read as %v: not the package's constants", file, constants)
	}
	kinds := map[string]string{"Int64Counter": "counter", "Float64Counter": "counter", "Int64Gauge": "gauge", "Float64Gauge": "gauge",
		"Int64Histogram": "histogram", "Float64Histogram": "histogram"}
	// sel returns x.name for the expression x.name, or "".
	sel := func(e ast.Expr, x string) string {
		if s, ok := e.(*ast.SelectorExpr); ok {
			if id, ok := s.X.(*ast.Ident); ok && id.Name == x {
				return s.Sel.Name
			}
		}
		return ""
	}
	byField := map[string]*exportedMetric{} // in.records: its metric
	ast.Inspect(f, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok || len(as.Rhs) != 1 {
			return true
		}
		call, ok := as.Rhs[0].(*ast.CallExpr)
		if !ok || kinds[sel(call.Fun, "m")] == "" || len(call.Args) == 0 {
			return true
		}
		name, ok := call.Args[0].(*ast.CallExpr)
		if !ok || name.Fun.(*ast.Ident).Name != "MetricName" || len(name.Args) != 2 {
			t.Fatalf("%s: an instrument not named by MetricName(ds, Metric...)", file)
		}
		c := name.Args[1].(*ast.Ident).Name
		if _, ok := constants[c]; !ok {
			t.Fatalf("%s: instrument named by %s, which is no Metric* constant", file, c)
		}
		byField[sel(as.Lhs[0], "in")] = &exportedMetric{constant: c, kind: kinds[sel(call.Fun, "m")]}
		return true
	})
	// in.records.Add(ctx, n, metric.WithAttributes(attribute.String("outcome", ...), ...))
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		s, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (s.Sel.Name != "Add" && s.Sel.Name != "Record") {
			return true
		}
		m := byField[sel(s.X, "in")]
		if m == nil {
			return true
		}
		ast.Inspect(call, func(n ast.Node) bool {
			if a, ok := n.(*ast.CallExpr); ok && sel(a.Fun, "attribute") != "" && len(a.Args) == 2 {
				if lit, ok := a.Args[0].(*ast.BasicLit); ok {
					key, _ := strconv.Unquote(lit.Value)
					if !slices.Contains(m.labels, key) {
						m.labels = append(m.labels, key)
					}
				}
			}
			return true
		})
		return true
	})
	if len(byField) == 0 {
		t.Fatalf("%s: no instrument found", file)
	}
	out := map[string]exportedMetric{}
	for name, ds := range spoc.Datasets() {
		for _, m := range byField {
			m := *m
			m.dataset = name
			out[snapshot.MetricName(ds, constants[m.constant])] = m
		}
	}
	return out
}

// terraformFunctions are the Terraform functions deploy/'s locals use,
// as go-cty and HCL implement them (Terraform's own are these).
func terraformFunctions() map[string]function.Function {
	return map[string]function.Function{
		"ceil": stdlib.CeilFunc, "coalesce": stdlib.CoalesceFunc, "concat": stdlib.ConcatFunc, "contains": stdlib.ContainsFunc, "distinct": stdlib.DistinctFunc,
		"flatten": stdlib.FlattenFunc, "floor": stdlib.FloorFunc, "jsondecode": stdlib.JSONDecodeFunc, "jsonencode": stdlib.JSONEncodeFunc,
		"join": stdlib.JoinFunc, "keys": stdlib.KeysFunc, "length": stdlib.LengthFunc, "lower": stdlib.LowerFunc, "max": stdlib.MaxFunc,
		"merge": stdlib.MergeFunc, "min": stdlib.MinFunc, "replace": stdlib.ReplaceFunc, "setintersection": stdlib.SetIntersectionFunc,
		"setsubtract": stdlib.SetSubtractFunc, "setunion": stdlib.SetUnionFunc, "sort": stdlib.SortFunc, "trim": stdlib.TrimFunc,
		"trimprefix": stdlib.TrimPrefixFunc, "trimsuffix": stdlib.TrimSuffixFunc, "values": stdlib.ValuesFunc, "format": stdlib.FormatFunc,
		"try": tryfunc.TryFunc, "can": tryfunc.CanFunc,
		"tostring": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType, AllowNull: true}},
			Type:   function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				return convert.Convert(args[0], cty.String)
			},
		}),
		"file": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "path", Type: cty.String}},
			Type:   function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				b, err := os.ReadFile(args[0].AsString())
				return cty.StringVal(string(b)), err
			},
		}),
	}
}

// tfLocals evaluates deploy/'s locals as a plan would, from the
// variables' defaults and the values given: the locals that refer to
// variables, other locals and path.module only (no resource).
type tfLocals struct {
	t    *testing.T
	tf   *terraform
	vars map[string]cty.Value
	done map[string]cty.Value
	busy map[string]bool
}

func newTFLocals(t *testing.T, tf *terraform, vars map[string]cty.Value) *tfLocals {
	return &tfLocals{t: t, tf: tf, vars: vars, done: map[string]cty.Value{}, busy: map[string]bool{}}
}

func (e *tfLocals) variable(name string) cty.Value {
	if v, ok := e.vars[name]; ok {
		return v
	}
	b := e.tf.block("variable", name)
	if b == nil {
		e.t.Fatalf("no variable %q", name)
	}
	return literal(e.t, b, "default")
}

func (e *tfLocals) local(name string) cty.Value {
	e.t.Helper()
	if v, ok := e.done[name]; ok {
		return v
	}
	expr, ok := e.tf.locals[name]
	if !ok {
		e.t.Fatalf("no local.%s", name)
	}
	if e.busy[name] {
		e.t.Fatalf("local.%s refers to itself", name)
	}
	e.busy[name] = true
	locals, vars := map[string]cty.Value{}, map[string]cty.Value{}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{}, Functions: terraformFunctions()}
	for _, tr := range expr.Variables() {
		attr, _ := tr[1].(hcl.TraverseAttr)
		switch tr.RootName() {
		case "local":
			locals[attr.Name] = e.local(attr.Name)
		case "var":
			vars[attr.Name] = e.variable(attr.Name)
		case "path":
			ctx.Variables["path"] = cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(filepath.Join(repoRoot, "deploy"))})
		default:
			e.t.Fatalf("local.%s refers to %s, which this test cannot evaluate", name, tr.RootName())
		}
	}
	ctx.Variables["local"] = cty.ObjectVal(locals)
	ctx.Variables["var"] = cty.ObjectVal(vars)
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		e.t.Fatalf("local.%s: %s", name, diags.Error())
	}
	e.done[name] = v
	return v
}

// dashboardJSON is the part of the Dashboard resource of Cloud
// Monitoring's API (projects.dashboards) that deploy/ writes; decoding
// refuses any other field, so a misspelt one fails here, not at apply.
type dashboardJSON struct {
	DisplayName  string `json:"displayName"`
	MosaicLayout struct {
		Columns int `json:"columns"`
		Tiles   []struct {
			XPos   int `json:"xPos"`
			YPos   int `json:"yPos"`
			Width  int `json:"width"`
			Height int `json:"height"`
			Widget struct {
				Title string `json:"title"`
				Text  *struct {
					Content string `json:"content"`
					Format  string `json:"format"`
				} `json:"text"`
				XyChart *struct {
					ChartOptions struct {
						Mode string `json:"mode"`
					} `json:"chartOptions"`
					DataSets []struct {
						PlotType        string `json:"plotType"`
						TargetAxis      string `json:"targetAxis"`
						TimeSeriesQuery struct {
							TimeSeriesFilter *struct {
								Filter      string `json:"filter"`
								Aggregation struct {
									AlignmentPeriod    string   `json:"alignmentPeriod"`
									PerSeriesAligner   string   `json:"perSeriesAligner"`
									CrossSeriesReducer string   `json:"crossSeriesReducer"`
									GroupByFields      []string `json:"groupByFields"`
								} `json:"aggregation"`
							} `json:"timeSeriesFilter"`
							PrometheusQuery string `json:"prometheusQuery"`
							UnitOverride    string `json:"unitOverride"`
						} `json:"timeSeriesQuery"`
					} `json:"dataSets"`
					Thresholds []struct {
						Label      string  `json:"label"`
						Value      float64 `json:"value"`
						TargetAxis string  `json:"targetAxis"`
					} `json:"thresholds"`
				} `json:"xyChart"`
			} `json:"widget"`
		} `json:"tiles"`
	} `json:"mosaicLayout"`
}

// deployedJobName is the Cloud Run job deploy/main.tf makes for a
// dataset, with var.datasets enabling enabled: job_name for the job's
// default dataset, JOB_NAME-GROUP for a list whose group is enabled
// (JOB_NAME-references publishes states and zones), JOB_NAME-DATASET for
// another.
func deployedJobName(t *testing.T, tf *terraform, dataset string, enabled []string) string {
	t.Helper()
	jobName := literal(t, tf.block("variable", "job_name"), "default").AsString()
	if dataset == configEnv(t)["SPOC_DATASET"] {
		return jobName
	}
	if ds := spoc.Datasets()[dataset]; ds != nil && ds.Group != "" && slices.Contains(enabled, ds.Group) {
		return jobName + "-" + ds.Group
	}
	return jobName + "-" + dataset
}

// TestDashboard builds the dashboard as a plan would, with the default
// datasets and with every dataset the job knows, and checks each chart:
// its metric is one the job exports under that name, of a kind its
// aggregation fits, with the labels it filters and groups by, on the
// job of its dataset; and every enabled dataset has the same charts,
// which show what an operator reads first.
func TestDashboard(t *testing.T) {
	tf := parseTerraform(t)
	res := tf.resources("google_monitoring_dashboard")["spoc"]
	if res == nil {
		t.Fatal("no google_monitoring_dashboard.spoc")
	}
	if got := source(res, "dashboard_json"); got != "jsonencode(local.dashboard)" {
		t.Fatalf("dashboard_json = %s, want jsonencode(local.dashboard)", got)
	}
	if !strings.Contains(source(res, "depends_on"), "time_sleep.apis_ready") {
		t.Error("the dashboard does not wait for time_sleep.apis_ready")
	}
	exported := exportedMetrics(t)
	// The PromQL name of each metric (spoc.last_success:
	// workload_googleapis_com:spoc_last_success).
	promNames := map[string]string{}
	for name := range exported {
		promNames[strings.ReplaceAll(name, ".", "_")] = name
	}
	filterMetric := regexp.MustCompile(`metric\.type="workload\.googleapis\.com/([^"]+)"`)
	filterLabel := regexp.MustCompile(`metric\.labels\.(\w+)\s*=`)
	filterJob := regexp.MustCompile(`resource\.type="generic_task" AND resource\.labels\.job="([^"]+)"`)
	promMetric := regexp.MustCompile(`workload_googleapis_com:(\w+)\{([^}]*)\}`)

	all := slices.Sorted(func(yield func(string) bool) {
		for name := range spoc.Datasets() {
			if !yield(name) {
				return
			}
		}
	})
	for _, tc := range []struct {
		name     string
		datasets []string // nil: the variable's default
		lists    []string // the datasets published, when not datasets
	}{
		{"default datasets", nil, nil},
		{"every dataset", all, nil},
		{"references beside spoc", []string{"references", "spoc"}, []string{"spoc", "states", "zones"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]cty.Value{}
			if tc.datasets != nil {
				var names []cty.Value
				for _, n := range tc.datasets {
					names = append(names, cty.StringVal(n))
				}
				vars["datasets"] = cty.SetVal(names)
			}
			ev := newTFLocals(t, tf, vars)
			enabled := slices.Sorted(func(yield func(string) bool) {
				for name := range ev.local("datasets").AsValueMap() {
					if !yield(name) {
						return
					}
				}
			})
			raw, err := stdlib.JSONEncode(ev.local("dashboard"))
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader([]byte(raw.AsString())))
			dec.DisallowUnknownFields()
			var d dashboardJSON
			if err := dec.Decode(&d); err != nil {
				t.Fatalf("the dashboard has a field deploy/ is not checked against: %v\n%s", err, raw.AsString())
			}
			// The API leaves zeros out of the dashboard it returns: a 0
			// sent would show as a change on every plan.
			if zero := regexp.MustCompile(`"(xPos|yPos)":0[,}]`).FindString(raw.AsString()); zero != "" {
				t.Errorf("the dashboard sends %s", zero)
			}
			if d.DisplayName == "" {
				t.Error("no displayName (required)")
			}
			// The mosaic takes 1 to 12 columns (48 in newer consoles);
			// tiles stay inside and do not overlap.
			if c := d.MosaicLayout.Columns; c < 1 || c > 12 {
				t.Errorf("mosaicLayout.columns = %d", c)
			}
			taken := map[[2]int]int{}
			charts := map[string][]string{} // dataset: the Metric* constants its charts show
			titles := map[string]int{}      // dataset: its charts
			for i, tile := range d.MosaicLayout.Tiles {
				if tile.XPos < 0 || tile.YPos < 0 || tile.Width < 1 || tile.Height < 1 || tile.XPos+tile.Width > d.MosaicLayout.Columns {
					t.Errorf("tile %d at (%d,%d) %dx%d does not fit %d columns", i, tile.XPos, tile.YPos, tile.Width, tile.Height, d.MosaicLayout.Columns)
				}
				for x := tile.XPos; x < tile.XPos+tile.Width; x++ {
					for y := tile.YPos; y < tile.YPos+tile.Height; y++ {
						if j, ok := taken[[2]int{x, y}]; ok {
							t.Errorf("tiles %d and %d overlap at (%d,%d)", j, i, x, y)
						}
						taken[[2]int{x, y}] = i
					}
				}
				w := tile.Widget
				if (w.Text == nil) == (w.XyChart == nil) {
					t.Errorf("tile %d: want one widget, a text or an xyChart", i)
					continue
				}
				if w.Text != nil {
					if w.Text.Format != "MARKDOWN" || w.Text.Content == "" {
						t.Errorf("tile %d: text %+v", i, *w.Text)
					}
					continue
				}
				if w.Title == "" || len(w.XyChart.DataSets) == 0 {
					t.Errorf("tile %d: a chart with no title or no data", i)
					continue
				}
				chartDataset := ""
				for k, ds := range w.XyChart.DataSets {
					where := w.Title + ": data set " + strconv.Itoa(k)
					q := ds.TimeSeriesQuery
					if !slices.Contains([]string{"LINE", "STACKED_AREA", "STACKED_BAR"}, ds.PlotType) || ds.TargetAxis != "Y1" {
						t.Errorf("%s: plotType %q, targetAxis %q", where, ds.PlotType, ds.TargetAxis)
					}
					var metric string
					var labels []string
					var job string
					switch {
					case q.TimeSeriesFilter != nil && q.PrometheusQuery == "":
						f := q.TimeSeriesFilter
						m := filterMetric.FindAllStringSubmatch(f.Filter, -1)
						if len(m) != 1 {
							t.Errorf("%s: filter %s: want one metric.type", where, f.Filter)
							continue
						}
						metric = m[0][1]
						for _, l := range filterLabel.FindAllStringSubmatch(f.Filter, -1) {
							labels = append(labels, l[1])
						}
						for _, g := range f.Aggregation.GroupByFields {
							labels = append(labels, strings.TrimPrefix(g, "metric.label."))
						}
						if j := filterJob.FindStringSubmatch(f.Filter); j != nil {
							job = j[1]
						}
						e, ok := exported[metric]
						if !ok {
							break
						}
						// Counters and histograms are CUMULATIVE: a
						// delta per period, then summed (a histogram:
						// averaged) across the executions' series.
						a := f.Aggregation
						if e.kind == "gauge" || a.PerSeriesAligner != "ALIGN_DELTA" || a.AlignmentPeriod == "" {
							t.Errorf("%s: %s is a %s, aggregated %+v: want ALIGN_DELTA over a period", where, metric, e.kind, a)
						}
						if want := map[string]string{"counter": "REDUCE_SUM", "histogram": "REDUCE_MEAN"}[e.kind]; a.CrossSeriesReducer != want {
							t.Errorf("%s: %s is a %s, reduced by %s: want %s", where, metric, e.kind, a.CrossSeriesReducer, want)
						}
					case q.TimeSeriesFilter == nil && q.PrometheusQuery != "":
						m := promMetric.FindAllStringSubmatch(q.PrometheusQuery, -1)
						if len(m) != 1 {
							t.Errorf("%s: query %s: want one workload_googleapis_com:METRIC{...}", where, q.PrometheusQuery)
							continue
						}
						var ok bool
						if metric, ok = promNames[m[0][1]]; !ok {
							metric = m[0][1]
						}
						if !strings.Contains(m[0][2], `monitored_resource="generic_task"`) {
							t.Errorf("%s: query %s is not on generic_task", where, q.PrometheusQuery)
						}
						if j := regexp.MustCompile(`\bjob="([^"]+)"`).FindStringSubmatch(m[0][2]); j != nil {
							job = j[1]
						}
						if e, ok := exported[metric]; ok && e.kind != "gauge" {
							t.Errorf("%s: %s is a %s, queried as a gauge", where, metric, e.kind)
						}
					default:
						t.Errorf("%s: want a timeSeriesFilter or a prometheusQuery", where)
						continue
					}
					e, ok := exported[metric]
					if !ok {
						t.Errorf("%s: the job exports no metric %q; it exports %v", where, metric, slices.Sorted(func(yield func(string) bool) {
							for n := range exported {
								if !yield(n) {
									return
								}
							}
						}))
						continue
					}
					for _, l := range labels {
						if !slices.Contains(e.labels, l) {
							t.Errorf("%s: %s has no label %q (it has %v)", where, metric, l, e.labels)
						}
					}
					if want := deployedJobName(t, tf, e.dataset, tc.datasets); job != want {
						t.Errorf("%s: %s selects job %q, want the %s dataset's job %q", where, metric, job, e.dataset, want)
					}
					if chartDataset != "" && chartDataset != e.dataset {
						t.Errorf("%s: one chart mixes the %s and %s datasets", where, chartDataset, e.dataset)
					}
					chartDataset = e.dataset
					if !slices.Contains(charts[e.dataset], e.constant) {
						charts[e.dataset] = append(charts[e.dataset], e.constant)
					}
				}
				if chartDataset != "" && !strings.HasPrefix(w.Title, chartDataset+": ") {
					t.Errorf("chart %q does not name its dataset %s first", w.Title, chartDataset)
				}
				titles[chartDataset]++
			}

			// Every enabled dataset has charts, the same ones, among
			// them what the dashboard is for.
			if got := slices.Sorted(func(yield func(string) bool) {
				for n := range charts {
					if !yield(n) {
						return
					}
				}
			}); !slices.Equal(got, enabled) {
				t.Fatalf("datasets with charts %v, enabled %v", got, enabled)
			}
			lists := tc.lists
			if lists == nil {
				lists = tc.datasets
			}
			if lists != nil && !slices.Equal(enabled, lists) {
				t.Errorf("enabled %v, want %v", enabled, lists)
			}
			for _, name := range enabled {
				sort.Strings(charts[name])
				if first := enabled[0]; !slices.Equal(charts[name], charts[first]) || titles[name] != titles[first] {
					t.Errorf("%s has %d charts of %v, %s %d of %v", name, titles[name], charts[name], first, titles[first], charts[first])
				}
			}
			want := []string{"MetricRecords", "MetricChanges", "MetricStatusTransitions", "MetricInvalidValues", "MetricRunDuration", "MetricFetchAttempts", "MetricLastSuccess"}
			for _, c := range want {
				if !slices.Contains(charts[enabled[0]], c) {
					t.Errorf("no chart shows %s", c)
				}
			}
			t.Logf("%d tiles for %v", len(d.MosaicLayout.Tiles), enabled)
		})
	}
}
