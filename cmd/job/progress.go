package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/snapshot"
)

// barRedraw is how often the terminal bar is redrawn.
const barRedraw = 250 * time.Millisecond

// startProgress reports the run's state (state is
// snapshot.Progress.Snapshot) until the returned stop is called: on a
// terminal as a bar on w, redrawn in place, otherwise as a log line every
// interval (none if interval is 0); nothing before the first attempt of
// the download starts. stop waits for the last report.
func startProgress(ctx context.Context, state func() snapshot.ProgressSnapshot, w io.Writer, terminal bool, interval time.Duration, log *slog.Logger) (stop func()) {
	if terminal {
		interval = barRedraw
	}
	if interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	started := time.Now()
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				if terminal {
					fmt.Fprint(w, "\r\033[K") // the bar gives way to the final log line
				}
				return
			case <-t.C:
				s := state()
				if s.Attempt == 0 {
					continue // no download yet: the run is at its store (the day's lock, the previous snapshot)
				}
				if terminal {
					fmt.Fprint(w, "\r"+progressBar(s, 30)+"\033[K")
					continue
				}
				elapsed := time.Since(started).Seconds()
				log.InfoContext(ctx, "progress",
					"attempt", s.Attempt,
					"wire_bytes", s.WireBytes,
					"content_length", s.ContentLength,
					"body_bytes", s.BodyBytes,
					"records", s.Records,
					"body_mb_per_s", float64(int(float64(s.BodyBytes)/1e6/elapsed*10))/10,
				)
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// progressBar draws s in one line: a bar of width cells when the size on
// the wire is known, the counts in any case.
func progressBar(s snapshot.ProgressSnapshot, width int) string {
	var b strings.Builder
	if s.ContentLength > 0 {
		done := min(int(int64(width)*s.WireBytes/s.ContentLength), width)
		b.WriteString("[" + strings.Repeat("=", done) + strings.Repeat(" ", width-done) + "] ")
		fmt.Fprintf(&b, "%.1f/%.1f MB", float64(s.WireBytes)/1e6, float64(s.ContentLength)/1e6)
	} else {
		fmt.Fprintf(&b, "%.1f MB", float64(s.WireBytes)/1e6)
	}
	fmt.Fprintf(&b, " received, %d records", s.Records)
	if s.Attempt > 1 {
		fmt.Fprintf(&b, " (attempt %d)", s.Attempt)
	}
	return b.String()
}
