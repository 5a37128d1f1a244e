package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and commit are set at build time (make build: -ldflags "-X
// main.version=... -X main.commit=..."); without them -version shows what the
// Go toolchain stamped (the module version, the VCS revision), if anything.
var version, commit = "", ""

// mainDeps are the dependencies -version names: the parts Gozer is built on.
var mainDeps = []string{
	"github.com/panjf2000/gnet/v2",
	"github.com/valyala/fasthttp",
	"github.com/yuin/gopher-lua",
	"github.com/afex/hystrix-go",
	"github.com/rs/zerolog",
	"github.com/redis/go-redis/v9",
	"github.com/gobwas/ws",
	"github.com/prometheus/client_golang",
	"gopkg.in/yaml.v3",
}

// printVersion writes the version, the commit (from the build's VCS stamp), the
// Go release and the versions of the main dependencies.
func printVersion(w io.Writer) {
	info, ok := debug.ReadBuildInfo()
	v, rev := version, commit
	deps := map[string]string{}
	if ok {
		if v == "" {
			v = info.Main.Version
		}
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && commit == "" && rev != "" {
			rev += " (modified)"
		}
		for _, d := range info.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			deps[d.Path] = d.Version
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if rev == "" {
		rev = "unknown"
	}
	fmt.Fprintf(w, "gozer %s\ncommit %s\n%s %s/%s\n", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, p := range mainDeps {
		dv, ok := deps[p]
		if !ok {
			dv = "(not in build info)"
		}
		fmt.Fprintf(w, "  %s %s\n", p, dv)
	}
}
