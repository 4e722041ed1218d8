package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// newLogger logs JSON with Cloud Logging's keys ("severity", "message")
// when not on a terminal, so Cloud Run's log agent parses levels, and
// plain text on a terminal.
func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(cfg.LogLevel) // validated
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: cloudLoggingKeys}))
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
	return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
