package test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigCheck: `gozer -check -config FILE` accepts a good file and names the bad
// key of a wrong one, without starting anything.
func TestConfigCheck(t *testing.T) {
	t.Parallel()
	if gozerBuildErr != nil {
		t.Fatalf("gozer does not build: %v", gozerBuildErr)
	}
	// A port in use: -check must not try to listen on it.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	good := oneOrigin(nil, "127.0.0.1:9000").render(busy.Addr().String(), busy.Addr().String())
	const minimal = "origins:\n  api:\n    servers: [%s]\nroutes:\n  - { path_prefix: \"/\", origin: api }\n"
	tests := []struct {
		name   string
		file   string // a path, or the YAML itself
		wantOK bool
		want   string // in the output when it fails
	}{
		{"default conf/gozer.yaml", filepath.Join(moduleRoot, "conf", "gozer.yaml"), true, ""},
		{"test config, ports in use", good, true, ""},
		{"bad server address", strings.Replace(minimal, "%s", `"not-an-address"`, 1), false, "origins.api.servers[0]"},
		{"server port out of range", strings.Replace(minimal, "%s", `"127.0.0.1:99999"`, 1), false, "origins.api.servers[0]"},
		{"second server bad", strings.Replace(minimal, "%s", `"127.0.0.1:9000", "nope"`, 1), false, "origins.api.servers[1]"},
		{"unknown key", strings.Replace(minimal, "%s", `"127.0.0.1:9000"`, 1) + "server:\n  bogus_key: 1\n", false, "bogus_key"},
		{"route to unknown origin", "origins:\n  api:\n    servers: [\"127.0.0.1:9000\"]\nroutes:\n  - { path_prefix: \"/\", origin: nope }\n",
			false, "routes[0].origin"},
		{"bad duration", strings.Replace(minimal, "%s", `"127.0.0.1:9000"`, 1) + "server:\n  idle_timeout: soon\n", false, "idle_timeout"},
		{"no origins", "routes: []\n", false, "origins"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.file
			if !strings.HasSuffix(path, ".yaml") {
				path = filepath.Join(t.TempDir(), "gozer.yaml")
				if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, gozerBin, "-check", "-config", path).CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("gozer -check did not exit within 20s; output:\n%s", out)
			}
			switch {
			case tc.wantOK && err != nil:
				t.Errorf("gozer -check failed on a good config: %v\n%s", err, out)
			case !tc.wantOK && err == nil:
				t.Errorf("gozer -check accepted a bad config (want a message naming %q); output:\n%s", tc.want, out)
			case !tc.wantOK && !strings.Contains(string(out), tc.want):
				t.Errorf("gozer -check output does not name %q:\n%s", tc.want, out)
			}
		})
	}
}
