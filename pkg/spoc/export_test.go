package spoc

// DecodeAll lets the external tests, which generate bodies with
// spoctest (itself built on this package), decode them as the
// internal ones do.
var DecodeAll = decodeAll
