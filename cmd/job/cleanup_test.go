package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestFailedRunLeavesOthersFolders: a run that fails takes away the
// empty folders it created, and leaves an empty folder that another
// run made meanwhile beside its own (another day's, not yet written
// into).
func TestFailedRunLeavesOthersFolders(t *testing.T) {
	// An upstream that accepts the connection and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), runAsJob+"=1", "SPOC_LOG_FORMAT=json", "SPOC_URL=http://"+ln.Addr().String()+"/list",
		"SPOC_OUTPUT="+out, "SPOC_DATE=20261206", "SPOC_ATTEMPTS=1", "SPOC_FIRST_BYTE_TIMEOUT=2s",
		"OTEL_METRICS_EXPORTER=none", "OTEL_TRACES_EXPORTER=none")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(out, testPrefix, "20261206")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(own); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the run made no day folder")
		}
	}
	others := filepath.Join(out, testPrefix, "20261207", "changes")
	if err := os.MkdirAll(others, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("the run against an upstream that never answers succeeded")
	}
	if _, err := os.Stat(others); err != nil {
		t.Errorf("the failed run took away another run's folder: %v", err)
	}
	if _, err := os.Stat(own); err == nil {
		t.Errorf("the failed run left its own empty day folder %s", own)
	}
}
