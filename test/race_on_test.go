//go:build race

package test

// raceBuild: this test binary has the race detector, and so does the gozer
// binary TestMain builds for the end-to-end tests (goBuild).
const raceBuild = true
