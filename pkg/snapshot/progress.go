package snapshot

import (
	"sync/atomic"

	"github.com/calee-data/mspo-spoc/pkg/fetch"
)

// Progress is a live view of a run for a progress bar or a periodic log
// line. Its methods are safe to call from any goroutine while Run runs.
type Progress struct {
	attempt atomic.Int64
	body    atomic.Pointer[fetch.Body]
	records atomic.Int64 // rows handed to the Parquet writer
}

// ProgressSnapshot is the state of a run at one moment.
type ProgressSnapshot struct {
	Attempt       int
	WireBytes     int64 // received so far, before decompression
	ContentLength int64 // of the response on the wire, -1 if unknown
	BodyBytes     int64 // JSON bytes decoded
	Records       int64 // rows written
}

// Snapshot returns the current state. Before the first response it is
// all zeroes, with ContentLength -1.
func (p *Progress) Snapshot() ProgressSnapshot {
	s := ProgressSnapshot{
		Attempt:       int(p.attempt.Load()),
		ContentLength: -1,
		Records:       p.records.Load(),
	}
	if b := p.body.Load(); b != nil {
		s.WireBytes, s.BodyBytes = b.WireBytes(), b.BodyBytes()
		s.ContentLength = b.ContentLength
	}
	return s
}

// The run updates a Progress through these three methods only; each does
// nothing on a nil Progress.

// attemptStarted starts the figures of attempt n over.
func (p *Progress) attemptStarted(n int) {
	if p == nil {
		return
	}
	p.attempt.Store(int64(n))
	p.body.Store(nil)
	p.records.Store(0)
}

// bodyOpened shows the bytes received and decoded of body from now on.
func (p *Progress) bodyOpened(body *fetch.Body) {
	if p != nil {
		p.body.Store(body)
	}
}

// wrote counts rows handed to the Parquet writer.
func (p *Progress) wrote(rows int64) {
	if p != nil {
		p.records.Add(rows)
	}
}
