//go:build !race

package httpcodec

const raceEnabled = false
