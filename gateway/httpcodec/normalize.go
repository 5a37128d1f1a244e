package httpcodec

import "bytes"

// Path normalisation: the one path that routes match, filters judge, the
// access log records and the origin is sent.
//
// Why: a route for "/api/" and a filter that denies "/admin/" compare bytes,
// and origins do not: most merge "//" (nginx, Spring, Go's ServeMux by a
// redirect) and every one decodes "%61" as "a" (RFC 3986 2.3 and 6.2.2.2: a
// percent-encoded unreserved character is the character). Without this,
// "//admin/" and "/%61dmin/" pass a filter's deny rule and reach what it
// guards. Dot-segments need no rewriting here: Parse refuses them
// (checkPath). The normal form is sent on, as Envoy's normalize_path and
// merge_slashes do, so the origin serves exactly what the filters judged.

// PathPolicy says which rewrites NormalizePath makes
// (server.normalize_path, server.merge_slashes).
type PathPolicy struct {
	// DecodeUnreserved decodes percent-encoded unreserved characters (ALPHA,
	// DIGIT, "-", ".", "_", "~") in the path: "/%61pi" is "/api"; and writes
	// the hex digits of the escapes it keeps in upper case (RFC 3986
	// 6.2.2.1): "/a%2fb" is "/a%2Fb", so one filter rule matches both.
	DecodeUnreserved bool
	// MergeSlashes merges each run of "/" in the path into one: "//api///v1"
	// is "/api/v1". Off for origins whose names hold "//" (S3 keys).
	MergeSlashes bool
}

// NormalizePath rewrites the request target's path (not its query) to its
// normal form under p, and reports whether it changed. It does nothing unless
// Parse set PathToNormalize (a "%" or "//" in the target). The target stays
// one valid request-target: bytes are only dropped or decoded to unreserved
// characters, so checkPath's verdict cannot change (no "." or ".." segment
// appears: Parse judged "%2e" as a dot already). Runs on the request's loop;
// after warm-up it does not allocate.
func (r *Request) NormalizePath(p PathPolicy) bool {
	if !r.PathToNormalize || !p.DecodeUnreserved && !p.MergeSlashes {
		return false
	}
	out, changed := appendNormalPath(r.uriBuf[:0], r.Header.RequestURI(), p)
	r.uriBuf = out
	if changed {
		r.Header.SetRequestURIBytes(out)
	}
	return changed
}

// appendNormalPath appends target (origin-form "/p?q" or absolute-form
// "http://a/p?q") to dst with its path normalised under p, and reports
// whether that changed a byte.
func appendNormalPath(dst, target []byte, p PathPolicy) ([]byte, bool) {
	start := 0 // where the path starts
	if len(target) > 0 && target[0] != '/' {
		i := bytes.Index(target, []byte("://"))
		if i < 0 {
			return append(dst, target...), false // "*"
		}
		start = i + 3
		for start < len(target) && target[start] != '/' && target[start] != '?' {
			start++
		}
	}
	end := start + pathLen(target[start:])
	dst = append(dst, target[:start]...)
	p0 := len(dst)
	changed := false
	path := target[start:end]
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '/' && p.MergeSlashes && i > 0 && path[i-1] == '/':
			changed = true
			continue
		case c == '%' && p.DecodeUnreserved && i+2 < len(path):
			d, ok := unhex(path[i+1], path[i+2])
			if !ok {
				break // a broken escape is passed, not guessed at
			}
			if isUnreserved(d) && !formsEscape(dst[p0:], d) {
				dst = append(dst, d)
				i += 2
				changed = true
				continue
			}
			// Kept escaped: only its case changes (a triplet stays one).
			hi, lo := upperHex(path[i+1]), upperHex(path[i+2])
			changed = changed || hi != path[i+1] || lo != path[i+2]
			dst = append(dst, '%', hi, lo)
			i += 2
			continue
		}
		dst = append(dst, c)
	}
	return append(dst, target[end:]...), changed
}

// formsEscape reports whether appending the decoded d to path would make a
// new escape with a stray "%" before it: "/%%410" is "%", "A", "0" to an
// origin, and "/%A0" would be one byte.
func formsEscape(path []byte, d byte) bool {
	if class[d]&classHexDig == 0 {
		return false
	}
	n := len(path)
	return n >= 1 && path[n-1] == '%' || n >= 2 && path[n-2] == '%'
}

// pathLen is the length of the path at the start of t: up to its "?".
func pathLen(t []byte) int {
	if q := bytes.IndexByte(t, '?'); q >= 0 {
		return q
	}
	return len(t)
}

// unhex decodes two hex digits.
func unhex(a, b byte) (byte, bool) {
	if class[a]&classHexDig == 0 || class[b]&classHexDig == 0 {
		return 0, false
	}
	return hexVal(a)<<4 | hexVal(b), true
}

// upperHex is the hex digit c in upper case.
func upperHex(c byte) byte {
	if c >= 'a' && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

// isUnreserved reports whether c is an RFC 3986 unreserved character.
func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
