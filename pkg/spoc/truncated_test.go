package spoc_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/calee-data/mspo-spoc/pkg/fetch"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// A body that ends cleanly (the chunked response terminated) before the
// JSON does is only seen by the decoder, and is retried like a reset.
func TestBodyEndedEarlyIsRetryable(t *testing.T) {
	srv := spoctest.NewServer(spoctest.WithRecords(5000), spoctest.EndFirst(1, 100_000))
	defer srv.Close()
	c, err := fetch.NewClient(fetch.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	decode := func() error {
		b, err := c.Open(context.Background(), srv.URL)
		if err != nil {
			return err
		}
		defer b.Close()
		dec := spoc.NewDecoder(b)
		defer dec.Release()
		for dec.Next() {
		}
		return dec.Err()
	}
	err = decode()
	var se *spoc.SyntaxError
	if !errors.As(err, &se) || !se.Truncated {
		t.Fatalf("error %v: want a truncated *SyntaxError", err)
	}
	if f := fetch.Classify(err); f.Kind != fetch.FailureReset || !f.Retryable {
		t.Errorf("Classify = %+v, want a retryable %s", f, fetch.FailureReset)
	}
	if err := decode(); err != nil {
		t.Fatalf("second request: %v", err)
	}
}

// The decoder's errors carry their failure kind, which fetch.Classify
// reads: a cut body is retried, malformed JSON and a body past the
// limits are not.
func TestDecoderErrorsClassify(t *testing.T) {
	for _, tc := range []struct {
		err       error
		kind      string
		retryable bool
	}{
		{&spoc.SyntaxError{Msg: "unexpected end", Truncated: true}, fetch.FailureReset, true},
		{&spoc.SyntaxError{Msg: "invalid character"}, fetch.FailureBadJSON, false},
		{spoc.ErrBodyTooLarge, fetch.FailureTooLarge, false},
		{spoc.ErrValueTooLong, fetch.FailureTooLarge, false},
		{spoc.ErrNoResults, fetch.FailureNoResults, false},
	} {
		wrapped := fmt.Errorf("decode: %w", tc.err)
		if got := fetch.Classify(wrapped); got.Kind != tc.kind || got.Retryable != tc.retryable {
			t.Errorf("Classify(%v) = %+v, want {Kind:%s Retryable:%v}", wrapped, got, tc.kind, tc.retryable)
		}
	}
}
