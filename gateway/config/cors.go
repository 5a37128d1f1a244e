package config

import (
	"fmt"
	"slices"
	"time"

	"gozer/filters/cors"
)

// CORSPolicy is one named CORS policy (cors.NAME), used by routes
// (routes[].cors) and the push paths (push.cors). See filters/cors for the
// origin patterns.
type CORSPolicy struct {
	// AllowOrigins: exact origins (https://app.example.com, a port when not
	// the scheme's default), wildcard subdomains (https://*.example.com),
	// "null", or "*" (any origin but null).
	AllowOrigins []string `yaml:"allow_origins"`
	// AllowMethods a preflight may ask for; empty: GET, HEAD, POST.
	AllowMethods []string `yaml:"allow_methods"`
	// AllowHeaders a preflight may ask for (any case; "*": whatever is asked).
	AllowHeaders []string `yaml:"allow_headers"`
	// ExposeHeaders are the response headers a page's script may read beyond
	// the CORS-safelisted ones.
	ExposeHeaders []string `yaml:"expose_headers"`
	// AllowCredentials lets pages send cookies and HTTP authentication: the
	// origin is reflected, never "*".
	AllowCredentials bool `yaml:"allow_credentials"`
	// MaxAge is how long a browser may cache a preflight's answer (0: not sent).
	MaxAge time.Duration `yaml:"max_age"`
}

// Options is the policy as filters/cors compiles it.
func (p *CORSPolicy) Options() cors.Options {
	return cors.Options{AllowOrigins: p.AllowOrigins, AllowMethods: p.AllowMethods, AllowHeaders: p.AllowHeaders,
		ExposeHeaders: p.ExposeHeaders, AllowCredentials: p.AllowCredentials, MaxAge: p.MaxAge}
}

// CORSPolicies compiles every policy of c (already validated: an invalid one
// is left out).
func (c *Config) CORSPolicies() map[string]*cors.Policy {
	m := make(map[string]*cors.Policy, len(c.CORS))
	for name, p := range c.CORS {
		if p == nil {
			continue
		}
		if cp, err := cors.New(p.Options()); err == nil {
			m[name] = cp
		}
	}
	return m
}

// validateCORS checks the policies and the keys that name one.
func (c *Config) validateCORS(bad reporter) {
	names := make([]string, 0, len(c.CORS))
	for name := range c.CORS {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := c.CORS[name]
		if p == nil {
			bad("cors."+name, "is empty: a policy needs allow_origins")
			continue
		}
		if _, err := cors.New(p.Options()); err != nil {
			bad("cors."+name, "%v", err)
		}
	}
	ref := func(key, name string) {
		if _, ok := c.CORS[name]; name != "" && !ok {
			bad(key, "names unknown CORS policy %q (define it under cors:)", name)
		}
	}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d].cors", i)
		ref(key, r.CORS)
		if r.CORS != "" && c.Filters.Dir == "" {
			// The preflights and the headers are the built-in Go filters', which
			// run in the filter chain: no chain without a filters directory.
			bad(key, "needs filters.dir (CORS runs in the filter chain, which filters.dir \"\" turns off)")
		}
	}
	ref("push.cors", c.Push.CORS)
}
