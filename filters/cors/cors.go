// Package cors is Cross-Origin Resource Sharing without the request: a
// Policy compiled from its options (allowed origins, methods, headers,
// exposed headers, credentials, max age), the Origin parser and matcher, and
// the values of the Access-Control-* headers. The request side (which policy
// applies, the preflight answer, the response headers, the counters) is
// filters' (filters/cors.go) and the built-in Go filters' (filters/builtin).
//
// Origins are compared in their serialized form (RFC 6454): scheme, host and
// port, the scheme and host without regard to case, a default port (80 for
// http, 443 for https) the same as none. A pattern is one of:
//
//	https://app.example.com       exactly that origin (any case, :443 or none)
//	http://localhost:3000         a port is part of the origin
//	https://*.example.com         any subdomain, at any depth, of example.com,
//	                              with that scheme and port (not example.com itself)
//	null                          the opaque origin (sandboxed frames, file: pages)
//	*                             any origin but null
//
// Concurrency: a Policy is immutable once New returned it, and safe for every
// event loop at once; Stats are atomic. Matching a request (AllowsOrigin,
// AllowsMethod, AllowsHeaders of usual lengths) does not allocate.
package cors

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Options are a policy as the configuration (cors.NAME) or a Lua filter
// (ctx.cors{...}) states it.
type Options struct {
	AllowOrigins     []string
	AllowMethods     []string
	AllowHeaders     []string
	ExposeHeaders    []string
	AllowCredentials bool
	MaxAge           time.Duration
}

// DefaultMethods are the methods a policy allows when it lists none.
var DefaultMethods = []string{"GET", "HEAD", "POST"}

// Policy is a compiled CORS policy. Immutable.
type Policy struct {
	exact       map[string]struct{} // normalized origins
	wild        []wildcard
	any, null   bool
	methods     map[string]struct{}
	anyMethod   bool // "*" listed: sent as is, the browser decides
	anyHeader   bool
	headers     map[string]struct{} // lower-case
	credentials bool

	// Header values, ready to send.
	MethodsValue string // Access-Control-Allow-Methods
	HeadersValue string // Access-Control-Allow-Headers (when not reflecting, "*" policies reflect)
	ExposeValue  string // Access-Control-Expose-Headers ("" none)
	MaxAgeValue  string // Access-Control-Max-Age in seconds ("" none)
}

type wildcard struct {
	scheme string
	suffix string // ".example.com"
	port   string // "" the scheme's default
}

// New compiles o; the error names the first bad value (and its index).
func New(o Options) (*Policy, error) {
	p := &Policy{exact: map[string]struct{}{}, methods: map[string]struct{}{}, headers: map[string]struct{}{},
		credentials: o.AllowCredentials}
	if len(o.AllowOrigins) == 0 {
		return nil, errors.New("allow_origins: at least one origin is needed (or \"*\")")
	}
	for i, s := range o.AllowOrigins {
		if err := p.addOrigin(s); err != nil {
			return nil, fmt.Errorf("allow_origins[%d]: %w", i, err)
		}
		// With credentials an allowed origin is echoed (a browser refuses "*"
		// then): "*" would let every site read the user's answers, cookies
		// and all, and "null" every sandboxed iframe and file: page.
		if o.AllowCredentials && (s == "*" || s == "null") {
			return nil, fmt.Errorf("allow_origins[%d]: %q with allow_credentials would let any page read credentialed answers; list the pages' origins", i, s)
		}
	}
	methods := o.AllowMethods
	if len(methods) == 0 {
		methods = DefaultMethods
	}
	ms := make([]string, 0, len(methods))
	for i, m := range methods {
		if !isToken(m) {
			return nil, fmt.Errorf("allow_methods[%d]: %q is not a method name", i, m)
		}
		p.methods[m] = struct{}{} // methods are case-sensitive (RFC 9110)
		p.anyMethod = p.anyMethod || m == "*"
		ms = append(ms, m)
	}
	p.MethodsValue = strings.Join(ms, ", ")
	hs := make([]string, 0, len(o.AllowHeaders))
	for i, h := range o.AllowHeaders {
		if h == "*" {
			p.anyHeader = true
			continue
		}
		if !isToken(h) {
			return nil, fmt.Errorf("allow_headers[%d]: %q is not a header name", i, h)
		}
		p.headers[strings.ToLower(h)] = struct{}{}
		hs = append(hs, h)
	}
	p.HeadersValue = strings.Join(hs, ", ")
	for i, h := range o.ExposeHeaders {
		if !isToken(h) {
			return nil, fmt.Errorf("expose_headers[%d]: %q is not a header name", i, h)
		}
	}
	p.ExposeValue = strings.Join(o.ExposeHeaders, ", ")
	if o.MaxAge < 0 {
		return nil, fmt.Errorf("max_age: must not be negative, got %v", o.MaxAge)
	}
	if o.MaxAge > 0 {
		p.MaxAgeValue = strconv.FormatInt(int64(o.MaxAge/time.Second), 10)
	}
	return p, nil
}

func (p *Policy) addOrigin(s string) error {
	switch s {
	case "*":
		p.any = true
		return nil
	case "null":
		p.null = true
		return nil
	}
	scheme, host, port, ok := split(s)
	if !ok {
		return fmt.Errorf("%q is not an origin (scheme://host[:port], https://*.domain, null or *)", s)
	}
	if rest, isWild := strings.CutPrefix(host, "*."); isWild {
		if rest == "" || strings.Contains(rest, "*") {
			return fmt.Errorf("%q: a wildcard is \"*.\" then a domain", s)
		}
		p.wild = append(p.wild, wildcard{scheme: scheme, suffix: "." + rest, port: port})
		return nil
	}
	if strings.Contains(host, "*") {
		return fmt.Errorf("%q: a wildcard is \"*.\" at the start of the host", s)
	}
	p.exact[scheme+"://"+host+portPart(port)] = struct{}{}
	return nil
}

// Credentials reports whether responses allow credentials (cookies, HTTP
// authentication): Access-Control-Allow-Credentials: true, and the origin
// reflected instead of "*".
func (p *Policy) Credentials() bool { return p.credentials }

// AllowsOrigin reports whether origin, the request's Origin header as sent,
// is allowed.
func (p *Policy) AllowsOrigin(origin []byte) bool {
	if string(origin) == "null" {
		return p.null
	}
	var buf [288]byte
	scheme, host, port, ok := Parse(origin, buf[:0])
	if !ok {
		return false
	}
	if p.any {
		return true
	}
	if len(p.exact) > 0 {
		var k [300]byte
		key := append(append(append(append(k[:0], scheme...), "://"...), host...), portPart(port)...)
		if _, ok := p.exact[string(key)]; ok {
			return true
		}
	}
	for _, w := range p.wild {
		if w.scheme == string(scheme) && w.port == string(port) &&
			len(host) > len(w.suffix) && string(host[len(host)-len(w.suffix):]) == w.suffix {
			return true
		}
	}
	return false
}

// AllowOriginValue is Access-Control-Allow-Origin for an allowed origin: "*"
// for a policy of any origin without credentials, the origin itself
// otherwise (then Vary: Origin must go with it).
func (p *Policy) AllowOriginValue(origin []byte) []byte {
	if p.any && !p.credentials && string(origin) != "null" {
		return []byte("*")
	}
	return origin
}

// AllowsMethod reports whether a preflight's Access-Control-Request-Method
// is allowed. A policy that lists "*" allows any: browsers read the "*" of
// Access-Control-Allow-Methods as any method without credentials, and as a
// method named "*" with them, so the browser decides.
func (p *Policy) AllowsMethod(m []byte) bool {
	if p.anyMethod {
		return true
	}
	_, ok := p.methods[string(m)]
	return ok
}

// AllowsHeaders reports whether every header a preflight's
// Access-Control-Request-Headers names (comma-separated, any case) is
// allowed.
func (p *Policy) AllowsHeaders(list []byte) bool {
	if p.anyHeader {
		return true
	}
	var buf [64]byte
	for len(list) > 0 {
		f := list
		if i := indexOf(list, ","); i >= 0 {
			f, list = list[:i], list[i+1:]
		} else {
			list = nil
		}
		for len(f) > 0 && (f[0] == ' ' || f[0] == '\t') {
			f = f[1:]
		}
		for len(f) > 0 && (f[len(f)-1] == ' ' || f[len(f)-1] == '\t') {
			f = f[:len(f)-1]
		}
		if len(f) == 0 {
			continue
		}
		low := append(buf[:0], f...)
		for j, c := range low {
			if 'A' <= c && c <= 'Z' {
				low[j] = c + 'a' - 'A'
			}
		}
		if _, ok := p.headers[string(low)]; !ok {
			return false
		}
	}
	return true
}

// AllowHeadersValue is Access-Control-Allow-Headers for a preflight that
// asked for requested: the listed headers, or what was asked when the policy
// allows any ("*" is not honoured by browsers with credentials).
func (p *Policy) AllowHeadersValue(requested []byte) string {
	if p.anyHeader {
		return string(requested)
	}
	return p.HeadersValue
}

// Parse splits a serialized origin (scheme://host[:port]) into its scheme
// and host, lower-cased into buf, and its port ("" for none or the scheme's
// default). It refuses anything else: a path, a query, user info, spaces,
// an empty host, a port out of range, a trailing dot or slash.
func Parse(origin []byte, buf []byte) (scheme, host, port []byte, ok bool) {
	return parse(origin, buf, false)
}

// parse is Parse; a pattern may have '*' in its host (addOrigin checks where).
func parse(origin []byte, buf []byte, pattern bool) (scheme, host, port []byte, ok bool) {
	if len(origin) == 0 || len(origin) > 253+32 {
		return nil, nil, nil, false
	}
	i := indexOf(origin, "://")
	if i <= 0 {
		return nil, nil, nil, false
	}
	buf = append(buf[:0], origin...)
	for j, c := range buf {
		if 'A' <= c && c <= 'Z' {
			buf[j] = c + 'a' - 'A'
		}
	}
	scheme, rest := buf[:i], buf[i+3:]
	for j, c := range scheme {
		if !('a' <= c && c <= 'z' || j > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return nil, nil, nil, false
		}
	}
	host = rest
	if len(rest) > 0 && rest[0] == '[' { // IPv6 literal
		end := indexOf(rest, "]")
		if end < 0 {
			return nil, nil, nil, false
		}
		host, rest = rest[:end+1], rest[end+1:]
		for _, c := range host[1 : len(host)-1] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || c == ':' || c == '.') {
				return nil, nil, nil, false
			}
		}
		if len(rest) > 0 && rest[0] != ':' {
			return nil, nil, nil, false
		}
	} else {
		if k := lastIndexByte(rest, ':'); k >= 0 {
			host, rest = rest[:k], rest[k:]
		} else {
			rest = nil
		}
		for _, c := range host {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || pattern && c == '*') {
				return nil, nil, nil, false
			}
		}
		if len(host) == 0 || host[len(host)-1] == '.' || host[0] == '.' || indexOf(host, "..") >= 0 {
			return nil, nil, nil, false
		}
	}
	if len(host) == 0 {
		return nil, nil, nil, false
	}
	if len(rest) > 0 { // ":port"
		p := rest[1:]
		if len(p) == 0 || len(p) > 5 {
			return nil, nil, nil, false
		}
		n := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				return nil, nil, nil, false
			}
			n = n*10 + int(c-'0')
		}
		if n == 0 || n > 65535 || p[0] == '0' {
			return nil, nil, nil, false
		}
		port = p
		if string(scheme) == "http" && n == 80 || string(scheme) == "https" && n == 443 {
			port = nil
		}
	}
	return scheme, host, port, true
}

// split parses a pattern with Parse.
func split(s string) (scheme, host, port string, ok bool) {
	sc, h, p, ok := parse([]byte(s), nil, true)
	return string(sc), string(h), string(p), ok
}

func portPart[T string | []byte](port T) string {
	if len(port) == 0 {
		return ""
	}
	return ":" + string(port)
}

func indexOf(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

func lastIndexByte(b []byte, c byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// isToken reports whether s is an HTTP token (a method or header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// Stats count what CORS refused, node-wide. Atomic: any goroutine.
type Stats struct {
	// Preflights answered by the gateway (allowed ones).
	Preflights atomic.Int64
	// Refused by kind: a preflight from an origin not allowed (403), an
	// actual request from one (served, without CORS headers: the browser
	// blocks it), a push upgrade from one (403).
	RefusedPreflight atomic.Int64
	RefusedRequest   atomic.Int64
	RefusedPush      atomic.Int64
}
