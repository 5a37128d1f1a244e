package config

import (
	"strings"
	"testing"
)

// TestForwardEarlyHints: server.forward_early_hints is on when left out,
// false turns it off, and a value that is not a boolean is refused naming
// the key.
func TestForwardEarlyHints(t *testing.T) {
	base := "origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\n"
	for _, tc := range []struct {
		name, yaml string
		want       bool
	}{
		{"left out", base, true},
		{"false", base + "server: {forward_early_hints: false}\n", false},
		{"true", base + "server: {forward_early_hints: true}\n", true},
	} {
		c, err := Parse([]byte(tc.yaml), "t.yaml")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.Server.ForwardEarlyHints != tc.want {
			t.Errorf("%s: forward_early_hints %v, want %v", tc.name, c.Server.ForwardEarlyHints, tc.want)
		}
	}
	_, err := Parse([]byte(base+"server: {forward_early_hints: sometimes}\n"), "t.yaml")
	if err == nil || !strings.Contains(err.Error(), "server.forward_early_hints") {
		t.Fatalf("forward_early_hints: sometimes: %v, want an error naming the key", err)
	}
}
