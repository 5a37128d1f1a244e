//go:build race

package compress

// raceEnabled tells the tests that only document figures to stand aside: under
// the race detector the codecs run an order of magnitude slower.
const raceEnabled = true
