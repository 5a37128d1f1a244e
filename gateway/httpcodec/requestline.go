package httpcodec

import "bytes"

// The request line: the strict parse of a complete one (Parse's first step)
// and the lenient look at a partial one that a log line quotes.

// parseRequestLine validates the request line (without CRLF) and sets HTTP10
// and IsHead. For an absolute-form target it returns its authority (a
// subslice of line).
func (r *Request) parseRequestLine(line []byte) (authority []byte, err error) {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 {
		return nil, errRequestLine
	}
	method := line[:sp1]
	if len(method) == 0 {
		return nil, errRequestLine
	}
	for _, c := range method {
		if !isTchar(c) {
			return nil, errMethod
		}
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 0 {
		return nil, errNoVersion
	}
	target, version := rest[:sp2], rest[sp2+1:]
	switch {
	case string(version) == "HTTP/1.1":
	case string(version) == "HTTP/1.0":
		r.HTTP10 = true
	case len(version) == 8 && string(version[:5]) == "HTTP/" && isDigit(version[5]) &&
		version[6] == '.' && isDigit(version[7]):
		return nil, errVersion
	default:
		return nil, errBadVersion
	}
	if len(target) == 0 {
		return nil, errRequestLine
	}
	var seen uint8 // the classes of the target's bytes, ORed: checkPath only when it can refuse
	for _, c := range target {
		k := class[c]
		if k&classTarget == 0 {
			return nil, errTarget
		}
		seen |= k
	}
	if string(method) == "CONNECT" {
		return nil, errConnect
	}
	r.IsHead = string(method) == "HEAD"
	// Most targets have neither: NormalizePath then costs nothing.
	r.PathToNormalize = seen&classPct != 0 || bytes.Contains(target, slash2)
	switch {
	case target[0] == '/':
		if seen&classPathOdd == 0 {
			return nil, nil
		}
		return nil, checkPath(target)
	case len(target) == 1 && target[0] == '*':
		if string(method) != "OPTIONS" {
			return nil, errAsterisk
		}
		return nil, nil
	}
	authority, rest, ok := splitAbsolute(target)
	if !ok || len(authority) == 0 || !validHost(authority) {
		return nil, errTarget
	}
	return authority, checkPath(rest)
}

// checkPath refuses a target whose path an origin could read otherwise than
// the routes did: with a fragment (none in a request-target, RFC 9112 3.2:
// "/admin#x" is not "/admin" to a deny rule, and is to most origins), with a
// dot-segment, "." or "..", literal or percent-encoded ("%2e", which many
// origins decode first), or with a backslash: "/api/v1/../../internal"
// matches a route for "/api/v1/" and an origin resolves it to "/internal"
// (RFC 3986 5.2.4). What origins resolve differs, so the segments are cut
// where any of them would: at "/", at "%2f" and "%5c" (decoded first by
// some), and a segment's ";parameters" are left out (Tomcat and Jetty read
// "/..;/" as "/../"); a literal "\" (IIS reads it as "/") is refused
// outright. Browsers and curl resolve dot-segments before they send; Go's
// net/http and Java's URI do not, and their users get a 400 here. target is
// the part from the path on ("/p?q", "?q" or "", what splitAbsolute leaves).
func checkPath(target []byte) error {
	if bytes.IndexByte(target, '#') >= 0 {
		return errFragment
	}
	path := target
	if q := bytes.IndexByte(path, '?'); q >= 0 {
		path = path[:q]
	}
	if bytes.IndexByte(path, '\\') >= 0 {
		return errBackslash
	}
	if bytes.IndexByte(path, '.') < 0 && bytes.IndexByte(path, '%') < 0 {
		return nil // the common case: no scan of segments
	}
	seg := 0 // where the current segment starts
	for i := 0; i <= len(path); {
		sep := 0 // the separator's length at i; at the end, the end
		switch {
		case i == len(path):
		case path[i] == '/':
			sep = 1
		case path[i] == '%' && i+2 < len(path) && (path[i+1] == '2' && path[i+2]|0x20 == 'f' || path[i+1] == '5' && path[i+2]|0x20 == 'c'):
			sep = 3
		default:
			i++
			continue
		}
		if isDotSegment(path[seg:i]) {
			return errDotSegment
		}
		if sep == 0 {
			break
		}
		i += sep
		seg = i
	}
	return nil
}

// isDotSegment reports whether seg, without its ";parameters", is "." or
// "..", each dot literal or "%2e" (any case).
func isDotSegment(seg []byte) bool {
	if p := bytes.IndexByte(seg, ';'); p >= 0 {
		seg = seg[:p]
	}
	dots := 0
	for k := 0; k < len(seg); {
		switch {
		case seg[k] == '.':
			k++
		case k+2 < len(seg) && seg[k] == '%' && seg[k+1] == '2' && seg[k+2]|0x20 == 'e':
			k += 3
		default:
			return false
		}
		dots++
	}
	return dots == 1 || dots == 2
}

var slash2 = []byte("//")

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// splitAbsolute splits an absolute-form target "http://authority/path?q"
// (scheme http or https, any case) into its authority and the rest ("/path?q",
// "?q" or ""). ok is false when target is not absolute-form.
func splitAbsolute(target []byte) (authority, rest []byte, ok bool) {
	var after []byte
	switch {
	case hasPrefixFold(target, "http://"):
		after = target[len("http://"):]
	case hasPrefixFold(target, "https://"):
		after = target[len("https://"):]
	default:
		return nil, nil, false
	}
	end := len(after)
	for i, c := range after {
		if c == '/' || c == '?' || c == '#' {
			end = i
			break
		}
	}
	return after[:end], after[end:], true
}

// validHost reports whether b is a non-empty uri-host [":" port]: only
// unreserved, pct-encoded, sub-delims, ":" and "[" "]" characters; no "@",
// "/", whitespace or control characters.
func validHost(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if class[c]&classHostCh == 0 {
			return false
		}
	}
	return true
}

// RequestLineOf returns the method and the request-target at the start of a
// request head that may be incomplete or invalid (refused while scanning or
// parsing), so that a log can say what was received. Each is nil unless it is
// complete (followed by a space, within the first max bytes), the method a
// token, the target free of controls. They alias buf.
func RequestLineOf(buf []byte, max int) (method, target []byte) {
	for i := 0; i < maxLeadingEmpty && len(buf) >= 2 && buf[0] == '\r' && buf[1] == '\n'; i += 2 {
		buf = buf[2:]
	}
	if len(buf) > max {
		buf = buf[:max]
	}
	sp1 := bytes.IndexByte(buf, ' ')
	if sp1 <= 0 {
		return nil, nil
	}
	for _, c := range buf[:sp1] {
		if !isTchar(c) {
			return nil, nil
		}
	}
	method = buf[:sp1]
	rest := buf[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return method, nil
	}
	for _, c := range rest[:sp2] {
		if class[c]&classTarget == 0 {
			return method, nil
		}
	}
	return method, rest[:sp2]
}
