// Command fakespoc serves a fake SPOC endpoint on loopback, so the job can
// be tried and measured without the real upstream:
//
//	go run ./cmd/fakespoc -records 306000 &
//	SPOC_URL=http://127.0.0.1:8080/api/spoc/get-spoc-list-public go run ./cmd/job
//
// The body is generated on every request from the seed (see package
// spoctest), with the quirks of the real data.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

// options are fakespoc's flags.
type options struct {
	addr, out, bodyFile, dataset   string
	records, failFirst, failStatus int
	seed                           uint64
	gzip, html                     bool
	throttle                       int64
	next                           spoctest.Changes
}

// defineFlags defines fakespoc's flags on fs.
func defineFlags(fs *flag.FlagSet) *options {
	var o options
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.IntVar(&o.records, "records", 306_000, "records in the body")
	fs.Uint64Var(&o.seed, "seed", 1, "generator seed: the same seed serves the same body")
	fs.BoolVar(&o.gzip, "gzip", false, "compress the body when the client accepts gzip")
	fs.IntVar(&o.failFirst, "fail-first", 0, "answer the first N requests with -fail-status")
	fs.IntVar(&o.failStatus, "fail-status", http.StatusServiceUnavailable, "status of the failed requests")
	fs.Int64Var(&o.throttle, "throttle", 0, "limit the body to this many bytes per second (0: no limit)")
	fs.BoolVar(&o.html, "html", false, "serve an HTML maintenance page with status 200")
	fs.StringVar(&o.out, "o", "", "write the body to this file and exit instead of serving")
	fs.StringVar(&o.bodyFile, "body", "", "serve this file as the body instead of a generated one")
	fs.StringVar(&o.dataset, "dataset", "spoc", "the list imitated: spoc, osh (the organised smallholders, under data.data) or gm (the group managers' smallholders)")
	fs.IntVar(&o.next.RemoveEvery, "remove-every", 0, "a next day's body: every N-th record removed")
	fs.IntVar(&o.next.StatusEvery, "status-every", 0, "a next day's body: every N-th record's cert_status changed")
	fs.IntVar(&o.next.AreaEvery, "area-every", 0, "a next day's body: every N-th record's certified_area changed")
	fs.IntVar(&o.next.Added, "add", 0, "a next day's body: this many records with new ids added")
	return &o
}

func main() {
	o := defineFlags(flag.CommandLine)
	flag.Parse()

	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			log.Fatal(err)
		}
		gen, err := o.gen()
		if err != nil {
			log.Fatal(err)
		}
		if _, err := spoctest.Generate(f, gen); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
		return
	}
	opts, err := serverOptions(o)
	if err != nil {
		log.Fatal(err)
	}
	handler := spoctest.NewHandler(opts...)
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "fakespoc: serving %d bytes on http://%s/api/spoc/get-spoc-list-public\n", handler.Size(), ln.Addr())
	srv := &http.Server{Handler: handler}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// gen is the generator's options for o.
func (o *options) gen() (spoctest.GenOptions, error) {
	ds, ok := spoc.Datasets()[o.dataset]
	if !ok {
		return spoctest.GenOptions{}, fmt.Errorf("-dataset %q: no such list (%s)", o.dataset, strings.Join(slices.Sorted(maps.Keys(spoc.Datasets())), ", "))
	}
	return spoctest.GenOptions{Records: o.records, Seed: o.seed, NextDay: o.next, Dataset: ds}, nil
}

// serverOptions are the fake upstream's options for o. A next day's body
// is generated once, into memory, as the server's generator makes only
// a first day's.
func serverOptions(o *options) ([]spoctest.Option, error) {
	gen, err := o.gen()
	if err != nil {
		return nil, err
	}
	opts := []spoctest.Option{spoctest.WithRecords(gen.Records), spoctest.WithSeed(gen.Seed), spoctest.WithDataset(gen.Dataset), spoctest.WithContentLength()}
	switch {
	case o.bodyFile != "" && o.next != (spoctest.Changes{}):
		return nil, errors.New("-body serves a file as it is: the next day's flags do not apply to it")
	case o.bodyFile != "":
		// Served from memory: generating on every request would take CPU
		// from the client being measured.
		body, err := os.ReadFile(o.bodyFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, spoctest.WithBody(body))
	case o.next != (spoctest.Changes{}):
		var body bytes.Buffer
		if _, err := spoctest.Generate(&body, gen); err != nil {
			return nil, err
		}
		opts = append(opts, spoctest.WithBody(body.Bytes()))
	}
	if o.gzip {
		opts = append(opts, spoctest.WithGzip())
	}
	if o.failFirst > 0 {
		opts = append(opts, spoctest.FailFirst(o.failFirst, o.failStatus))
	}
	if o.throttle > 0 {
		opts = append(opts, spoctest.WithThrottle(o.throttle))
	}
	if o.html {
		opts = append(opts, spoctest.ServeHTML())
	}
	return opts, nil
}
