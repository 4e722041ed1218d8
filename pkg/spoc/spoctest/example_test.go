package spoctest_test

import (
	"fmt"
	"io"
	"net/http"

	"github.com/calee-data/mspo-spoc/pkg/spoc/spoctest"
)

func ExampleNewServer() {
	srv := spoctest.NewServer(spoctest.WithRecords(100), spoctest.FailFirst(1, http.StatusServiceUnavailable))
	defer srv.Close()
	for range 2 {
		resp, err := http.Get(srv.URL)
		if err != nil {
			panic(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Status, n == srv.Size())
	}
	fmt.Println("records:", srv.Planted().Records, "requests:", srv.Requests())
	// Output:
	// 503 Service Unavailable false
	// 200 OK true
	// records: 100 requests: 2
}
