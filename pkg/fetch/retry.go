package fetch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff is the retry policy of a fetch: exponential backoff with jitter,
// honouring a server's Retry-After.
type Backoff struct {
	Attempts int           // attempts in all, the first included; at least 1
	Initial  time.Duration // wait before the second attempt, before jitter
	Max      time.Duration // longest wait between two attempts, before Retry-After
}

// Do calls attempt until it succeeds, returns an error that IsRetryable
// rejects, or the attempts run out; it returns the last error. Between
// attempts it waits a random time between half and all of
// Initial·2^(n-1) (capped at Max), or the server's Retry-After if longer,
// and calls notify first (if not nil) with the failed attempt's number,
// its error and the wait. A wait that would pass ctx's deadline is not
// started: Do returns the last error at once.
func (b Backoff) Do(ctx context.Context, attempt func(ctx context.Context, n int) error, notify func(n int, err error, wait time.Duration)) error {
	attempts := max(b.Attempts, 1)
	for n := 1; ; n++ {
		err := attempt(ctx, n)
		if err == nil || n == attempts || !IsRetryable(err) || ctx.Err() != nil {
			if err != nil && n > 1 {
				return fmt.Errorf("attempt %d of %d: %w", n, attempts, err)
			}
			return err
		}
		wait := b.delay(n)
		if ra := retryAfter(err); ra > wait {
			wait = ra
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return fmt.Errorf("attempt %d of %d: %w (no time left to wait %s for another)", n, attempts, err, wait.Round(time.Millisecond))
		}
		if notify != nil {
			notify(n, err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("attempt %d of %d: %w (then %w)", n, attempts, err, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// delay is the jittered wait after failed attempt n (1-based).
func (b Backoff) delay(n int) time.Duration {
	d := b.Initial
	for i := 1; i < n && (b.Max <= 0 || d < b.Max); i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}
