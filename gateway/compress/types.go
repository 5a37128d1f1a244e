package compress

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultTypes returns the media types compressed when the configuration names
// none: text formats that browsers and apps fetch often and that shrink well. Images,
// video, fonts in woff2 and archives are left out because they are compressed
// already; compressing them again burns CPU for nothing. The slice is new on every
// call, so a caller may keep and change it.
func DefaultTypes() []string {
	return []string{
		"text/*",
		"application/javascript",
		"application/json",
		"application/manifest+json",
		"application/problem+json",
		"application/xml",
		"application/rss+xml",
		"application/atom+xml",
		"application/wasm",
		"image/svg+xml",
	}
}

// CheckType validates one entry of the configured media types, for the
// configuration's validation: a bare media type ("text/html") or a type with a
// wildcard subtype ("text/*"), without parameters. "*/*" is refused: it would
// compress images and video, which are compressed already.
func CheckType(pattern string) error {
	typ, sub, ok := strings.Cut(pattern, "/")
	switch {
	case !ok:
		return fmt.Errorf("media type %q: want type/subtype", pattern)
	case typ == "*":
		return fmt.Errorf("media type %q: a wildcard type would compress images and video", pattern)
	case !isToken(typ):
		return fmt.Errorf("media type %q: bad type %q", pattern, typ)
	case sub == "*" && !strings.Contains(typ, "*"):
		return nil
	case strings.Contains(pattern, "*"):
		return fmt.Errorf("media type %q: a wildcard is only allowed as a whole subtype (type/*)", pattern)
	case !isToken(sub):
		return fmt.Errorf("media type %q: bad subtype %q (no parameters; a wildcard is type/*)", pattern, sub)
	}
	return nil
}

// errNoTypes is returned by CheckTypes for an empty list.
var errNoTypes = errors.New("no media types")

// CheckTypes runs CheckType on each pattern; an empty list is an error too, since
// compression that applies to nothing is a configuration mistake.
func CheckTypes(patterns []string) error {
	if len(patterns) == 0 {
		return errNoTypes
	}
	for _, p := range patterns {
		if err := CheckType(p); err != nil {
			return err
		}
	}
	return nil
}

// Compressible reports whether a response with the given Content-Type field value
// (raw bytes, possibly with parameters such as "; charset=utf-8") should be
// compressed: its media type equals one of types ("text/html") or falls under one
// of its wildcards ("text/*"), compared case-insensitively. A missing or malformed
// Content-Type is not compressible: without knowing what the bytes are, leaving
// them alone is the safe choice.
//
// Compressible does not allocate and keeps no reference to its arguments; any
// goroutine may call it.
func Compressible(contentType []byte, types []string) bool {
	mt := mediaType(contentType)
	if mt == nil {
		return false
	}
	for _, t := range types {
		if prefix, ok := strings.CutSuffix(t, "*"); ok {
			if len(mt) > len(prefix) && equalFold(mt[:len(prefix)], prefix) {
				return true
			}
		} else if equalFold(mt, t) {
			return true
		}
	}
	return false
}

// mediaType returns the "type/subtype" part of a Content-Type value, or nil when
// it has none.
func mediaType(v []byte) []byte {
	v = skipOWS(v)
	typ, rest := cutToken(v)
	if len(typ) == 0 || len(rest) == 0 || rest[0] != '/' {
		return nil
	}
	sub, rest := cutToken(rest[1:])
	if len(sub) == 0 {
		return nil
	}
	if rest = skipOWS(rest); len(rest) > 0 && rest[0] != ';' {
		return nil
	}
	return v[:len(typ)+1+len(sub)]
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}
