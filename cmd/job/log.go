package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// newLogger logs JSON with Cloud Logging's keys ("severity", "message")
// when not on a terminal, so Cloud Run's log agent parses levels, and
// plain text on a terminal. A record logged with a context that holds a
// span carries the span's trace: Cloud Logging's
// "logging.googleapis.com/trace" (as projects/PROJECT/traces/ID when
// project is known) and "logging.googleapis.com/spanId" in JSON, trace_id
// and span_id in text.
func newLogger(cfg *Config, w io.Writer, project string) *slog.Logger {
	level, _ := parseLevel(cfg.LogLevel) // validated
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(&traceHandler{Handler: slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}), traceKey: "trace_id", spanKey: "span_id"})
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: cloudLoggingKeys})
	th := &traceHandler{Handler: h, traceKey: "logging.googleapis.com/trace", spanKey: "logging.googleapis.com/spanId", sampledKey: "logging.googleapis.com/trace_sampled"}
	if project != "" {
		th.tracePrefix = "projects/" + project + "/traces/"
	}
	return slog.New(th)
}

// traceHandler adds the trace and span IDs of the record's context.
type traceHandler struct {
	slog.Handler
	traceKey, spanKey, sampledKey string
	tracePrefix                   string
}

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String(h.traceKey, h.tracePrefix+sc.TraceID().String()), slog.String(h.spanKey, sc.SpanID().String()))
		if h.sampledKey != "" {
			r.AddAttrs(slog.Bool(h.sampledKey, sc.IsSampled()))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h *traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithAttrs(attrs)
	return &c
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithGroup(name)
	return &c
}

// cloudLoggingKeys renames slog's keys to those of Cloud Logging's
// structured logs: level becomes severity (with WARNING for WARN), msg
// becomes message.
func cloudLoggingKeys(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		a.Key = "severity"
		if lvl, ok := a.Value.Any().(slog.Level); ok {
			switch {
			case lvl >= slog.LevelError:
				a.Value = slog.StringValue("ERROR")
			case lvl >= slog.LevelWarn:
				a.Value = slog.StringValue("WARNING")
			case lvl >= slog.LevelInfo:
				a.Value = slog.StringValue("INFO")
			default:
				a.Value = slog.StringValue("DEBUG")
			}
		}
	case slog.MessageKey:
		a.Key = "message"
	}
	return a
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%s is not debug, info, warn or error", quote(s))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
