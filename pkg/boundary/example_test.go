package boundary_test

import (
	"fmt"

	"github.com/calee-data/mspo-spoc/pkg/boundary"
)

func ExampleInMalaysia() {
	// Longitude first, as in OGC:CRS84.
	fmt.Println(boundary.InMalaysia(101.6869, 3.139))  // Kuala Lumpur
	fmt.Println(boundary.InMalaysia(103.8198, 1.3521)) // Singapore
	// Output:
	// true
	// false
}
