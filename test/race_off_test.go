//go:build !race

package test

// raceBuild: this test binary has no race detector (see race_on_test.go).
const raceBuild = false
