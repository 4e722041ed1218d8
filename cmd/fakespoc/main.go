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
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	records := flag.Int("records", 306_000, "records in the body")
	seed := flag.Uint64("seed", 1, "generator seed: the same seed serves the same body")
	gzip := flag.Bool("gzip", false, "compress the body when the client accepts gzip")
	failFirst := flag.Int("fail-first", 0, "answer the first N requests with -fail-status")
	failStatus := flag.Int("fail-status", http.StatusServiceUnavailable, "status of the failed requests")
	throttle := flag.Int64("throttle", 0, "limit the body to this many bytes per second (0: no limit)")
	html := flag.Bool("html", false, "serve an HTML maintenance page with status 200")
	out := flag.String("o", "", "write the body to this file and exit instead of serving")
	bodyFile := flag.String("body", "", "serve this file as the body instead of a generated one")
	dataset := flag.String("dataset", "spoc", "the list imitated: spoc, or osh (the organised smallholders, under data.data)")
	var next spoctest.Changes
	flag.IntVar(&next.RemoveEvery, "remove-every", 0, "a next day's body (with -o): every N-th record removed")
	flag.IntVar(&next.StatusEvery, "status-every", 0, "a next day's body (with -o): every N-th record's cert_status changed")
	flag.IntVar(&next.AreaEvery, "area-every", 0, "a next day's body (with -o): every N-th record's certified_area changed")
	flag.IntVar(&next.Added, "add", 0, "a next day's body (with -o): this many records with new ids added")
	flag.Parse()

	gen := spoctest.GenOptions{Records: *records, Seed: *seed, NextDay: next, Dataset: *dataset}
	if *out != "" {
		f, err := os.Create(*out)
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

	opts := []spoctest.Option{spoctest.WithRecords(*records), spoctest.WithSeed(*seed), spoctest.WithDataset(*dataset), spoctest.WithContentLength()}
	if *bodyFile != "" {
		// Served from memory: generating on every request would take CPU
		// from the client being measured.
		body, err := os.ReadFile(*bodyFile)
		if err != nil {
			log.Fatal(err)
		}
		opts = append(opts, spoctest.WithBody(body))
	}
	if *gzip {
		opts = append(opts, spoctest.WithGzip())
	}
	if *failFirst > 0 {
		opts = append(opts, spoctest.FailFirst(*failFirst, *failStatus))
	}
	if *throttle > 0 {
		opts = append(opts, spoctest.WithThrottle(*throttle))
	}
	if *html {
		opts = append(opts, spoctest.ServeHTML())
	}
	handler := spoctest.NewHandler(opts...)
	ln, err := net.Listen("tcp", *addr)
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
