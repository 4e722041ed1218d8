package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/calee-data/mspo-spoc/pkg/snapshot"
)

func TestProgressBar(t *testing.T) {
	for _, tc := range []struct {
		s    snapshot.ProgressSnapshot
		want string
	}{
		{snapshot.ProgressSnapshot{Attempt: 1, WireBytes: 50e6, ContentLength: 200e6, Records: 1234},
			"[==        ] 50.0/200.0 MB received, 1234 records"},
		{snapshot.ProgressSnapshot{Attempt: 1, WireBytes: 3e6, ContentLength: -1, Records: 7},
			"3.0 MB received, 7 records"},
		{snapshot.ProgressSnapshot{Attempt: 2, WireBytes: 250e6, ContentLength: 200e6},
			"[==========] 250.0/200.0 MB received, 0 records (attempt 2)"},
	} {
		if got := progressBar(tc.s, 10); got != tc.want {
			t.Errorf("progressBar(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

// TestProgressLogLines: off a terminal, progress is a log line per
// interval once a download started, none before (the run is at its store:
// the day's lock, the previous snapshot), and stop ends them.
func TestProgressLogLines(t *testing.T) {
	for _, tc := range []struct {
		name    string
		state   snapshot.ProgressSnapshot
		atLeast int // lines logged once three reports were drawn
	}{
		{"not started", snapshot.ProgressSnapshot{ContentLength: -1}, 0},
		{"downloading", snapshot.ProgressSnapshot{Attempt: 1, WireBytes: 1e6, ContentLength: -1, Records: 5}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			// buf is read only once stop has returned, when nothing writes to it.
			log := slog.New(slog.NewJSONHandler(&buf, nil))
			drawn := make(chan struct{}, 100)
			state := func() snapshot.ProgressSnapshot {
				drawn <- struct{}{}
				return tc.state
			}
			stop := startProgress(context.Background(), state, &buf, false, time.Millisecond, log)
			for range 3 {
				<-drawn
			}
			stop()
			n := strings.Count(buf.String(), `"msg":"progress"`)
			if tc.atLeast == 0 && n != 0 || n < tc.atLeast {
				t.Fatalf("%d progress lines, want at least %d and none before a download:\n%s", n, tc.atLeast, buf.String())
			}
			if n > 0 && !strings.Contains(buf.String(), `"content_length":-1`) {
				t.Errorf("no content length in %s", buf.String())
			}
		})
	}
	if stop := startProgress(context.Background(), (&snapshot.Progress{}).Snapshot, io.Discard, false, 0, slog.Default()); stop == nil {
		t.Error("nil stop for a zero interval")
	}
}

// TestLogLinesCarryTheTrace: a line logged with a span in its context has
// Cloud Logging's trace keys, with the project when known.
func TestLogLinesCarryTheTrace(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&Config{LogFormat: "json", LogLevel: "info"}, &buf, "my-project")
	ctx, span := sdktrace.NewTracerProvider().Tracer("test").Start(context.Background(), "run")
	log.InfoContext(ctx, "with span")
	span.End()
	log.Info("without span")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var with, without map[string]any
	json.Unmarshal([]byte(lines[0]), &with)
	json.Unmarshal([]byte(lines[1]), &without)
	sc := span.SpanContext()
	if with["logging.googleapis.com/trace"] != "projects/my-project/traces/"+sc.TraceID().String() ||
		with["logging.googleapis.com/spanId"] != sc.SpanID().String() || with["severity"] != "INFO" || with["message"] != "with span" {
		t.Errorf("line with a span: %s", lines[0])
	}
	if _, ok := without["logging.googleapis.com/trace"]; ok {
		t.Errorf("line without a span has a trace: %s", lines[1])
	}
}
