package test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimalCheck = "origins:\n  api:\n    servers: [%s]\nroutes:\n  - { path_prefix: \"/\", origin: api }\n"

// TestConfigCheck: `gozer -check -config FILE` accepts a good file and names the bad
// key of a wrong one, without starting anything.
func TestConfigCheck(t *testing.T) {
	t.Parallel()
	if gozerBuildErr != nil {
		t.Fatalf("gozer does not build: %v", gozerBuildErr)
	}
	// Ports in use: -check must not try to listen on them.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busy2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy2.Close()
	good := oneOrigin(nil, "127.0.0.1:9000").render(busy.Addr().String(), busy2.Addr().String())
	_, port, _ := net.SplitHostPort(busy.Addr().String())
	// What start-up would refuse at bind time: both listeners on one port.
	sameAddr := oneOrigin(nil, "127.0.0.1:9000").render(busy.Addr().String(), busy.Addr().String())
	wildcard := oneOrigin(nil, "127.0.0.1:9000").render(":"+port, busy.Addr().String())
	// What start-up would refuse when building: a server name that does not resolve.
	noName := strings.Replace(minimalCheck, "%s", `"no-such-host.invalid:80"`, 1)
	const minimal = minimalCheck
	tests := []struct {
		name   string
		file   string // a path, or the YAML itself
		wantOK bool
		want   string // in the output when it fails
	}{
		{"default conf/gozer.yaml", filepath.Join(moduleRoot, "conf", "gozer.yaml"), true, ""},
		{"test config, ports in use", good, true, ""},
		{"proxy and admin on the same address", sameAddr, false, "listeners.admin.addr"},
		{"admin on the proxy's port of every interface", wildcard, false, "listeners.admin.addr"},
		{"server name that does not resolve", noName, false, "no-such-host.invalid"},
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

// TestCommandLine: gozer refuses what it does not understand (exit 2, a usage
// message, nothing started), explains itself with -h and help, and tells its
// version and the main dependencies' with -version.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	if gozerBuildErr != nil {
		t.Fatalf("gozer does not build: %v", gozerBuildErr)
	}
	// A config gozer could serve: a refused command line must not start it.
	cfgPath := filepath.Join(t.TempDir(), "gozer.yaml")
	if err := os.WriteFile(cfgPath, []byte(oneOrigin(nil, "127.0.0.1:9000").render(freePort(t), freePort(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		status int
		want   []string // in the output
	}{
		{"unknown word", []string{"bogus"}, 2, []string{`unknown argument "bogus"`, "Usage:", "push-token"}},
		{"stray word after flags", []string{"-config", cfgPath, "serve"}, 2, []string{`unknown argument "serve"`}},
		{"unknown flag", []string{"-nope"}, 2, []string{"-nope", "Usage:"}},
		{"push-token stray word", []string{"push-token", "-config", cfgPath, "-client", "x", "extra"}, 2, []string{`unknown argument "extra"`}},
		{"push-token without client", []string{"push-token", "-config", cfgPath}, 2, []string{"-client ID is required"}},
		{"-h", []string{"-h"}, 0, []string{"Usage:", "push-token", "-version", "-check", "-config"}},
		{"help", []string{"help"}, 0, []string{"Usage:", "push-token"}},
		{"-version", []string{"-version"}, 0, []string{"gozer ", "commit ", "go1.", "github.com/panjf2000/gnet/v2 v", "github.com/valyala/fasthttp v", "github.com/yuin/gopher-lua v"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, gozerBin, tc.args...).CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("gozer %v did not exit within 20s (it serves?); output:\n%s", tc.args, out)
			}
			status := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Errorf("gozer %v: exit %d, want %d; output:\n%s", tc.args, status, tc.status, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("gozer %v: output does not contain %q:\n%s", tc.args, w, out)
				}
			}
			if strings.Contains(string(out), "gozer serving") {
				t.Errorf("gozer %v started serving", tc.args)
			}
		})
	}
}
