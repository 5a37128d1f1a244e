package compress

// Encoding is a content coding Gozer can produce. The zero value, None, is the
// identity coding: the body goes out as the origin sent it.
type Encoding uint8

// The codings, in no order of preference: the operator's configuration says which
// are offered and in what order.
const (
	None Encoding = iota
	Gzip
	Brotli
	Zstd

	numEncodings // the size of per-coding tables; not a coding
)

// String returns the coding's token as it goes in Content-Encoding and Vary-keyed
// caches: "gzip", "br", "zstd", or "" for None (and for values out of range).
func (e Encoding) String() string {
	switch e {
	case Gzip:
		return "gzip"
	case Brotli:
		return "br"
	case Zstd:
		return "zstd"
	}
	return ""
}

// ParseEncoding returns the coding a configuration names: "gzip", "br" or "zstd",
// exactly as they are spelled in Content-Encoding. It is for validating the
// configuration, so it accepts no aliases ("x-gzip", "brotli") and no other case:
// a config file has one spelling for each coding.
func ParseEncoding(s string) (Encoding, bool) {
	switch s {
	case "gzip":
		return Gzip, true
	case "br":
		return Brotli, true
	case "zstd":
		return Zstd, true
	}
	return None, false
}

// qOne is q=1 in thousandths: q-values have at most three decimals (RFC 9110
// §12.4.2), so they are kept as integers and compared exactly.
const qOne = 1000

// Negotiate picks the coding of a response from the request's Accept-Encoding field
// value (raw bytes; empty when the field is absent or empty) among offered, the
// codings the operator enabled, in the operator's order of preference. It returns
// None when the client accepts none of them, and then the body goes out as is.
//
// The rules (RFC 9110 §12.5.3), and what Gozer decides where the RFC leaves room:
//   - tokens and the "q" parameter name are case-insensitive; optional whitespace is
//     allowed around ",", ";" and "="; empty list elements ("gzip,,br") are skipped;
//   - a coding's weight is that of its own entry, or else that of "*", or else it is
//     not acceptable; q=0 refuses it; an entry without q has q=1;
//   - among the acceptable codings with the highest weight, the earliest in offered
//     wins, so "br;q=1, gzip;q=1" and "gzip, br" both follow the operator's order;
//   - "x-gzip" is gzip (RFC 9110 §8.4.1.3 asks recipients to treat them alike); the
//     response still says "gzip";
//   - a coding listed twice gets its lowest weight: when a client contradicts
//     itself, the refusal is the safe reading;
//   - "identity" entries are ignored: Gozer never refuses to send identity, so
//     "identity;q=0" does not force a coding on anybody;
//   - parameters other than q are allowed and ignored when well-formed;
//   - anything malformed (a bad token, a q out of range or with more than three
//     decimals, stray characters) makes the whole field unusable, and the answer is
//     None: sending identity is never wrong, guessing might be.
//
// Negotiate does not allocate and keeps no reference to its arguments; any
// goroutine may call it.
func Negotiate(acceptEncoding []byte, offered []Encoding) Encoding {
	// weight[e] is the weight of coding e's own entries, -1 when it has none.
	var weight [numEncodings]int
	for i := range weight {
		weight[i] = -1
	}
	star := -1
	s := acceptEncoding
	for {
		s = skipOWS(s)
		if len(s) == 0 {
			break
		}
		if s[0] == ',' {
			s = s[1:]
			continue
		}
		tok, rest := cutToken(s)
		if len(tok) == 0 {
			return None
		}
		q, rest, ok := parseParams(rest)
		if !ok {
			return None
		}
		s = rest
		if len(tok) == 1 && tok[0] == '*' {
			star = lowest(star, q)
			continue
		}
		if e := codingOf(tok); e != None {
			weight[e] = lowest(weight[e], q)
		}
	}
	best, bestQ := None, 0
	for _, e := range offered {
		if e == None || e >= numEncodings {
			continue
		}
		q := weight[e]
		if q < 0 {
			q = star
		}
		// Strictly greater: on a tie the earlier offered coding keeps its place.
		if q > bestQ {
			best, bestQ = e, q
		}
	}
	return best
}

// lowest merges a new weight into one that may be unset (-1).
func lowest(old, q int) int {
	if old < 0 || q < old {
		return q
	}
	return old
}

// parseParams reads the parameters after a coding's token, up to the "," that ends
// the list element or the end of s. It returns the element's weight (q=1 without a
// q parameter), what follows, and false when the parameters are malformed.
func parseParams(s []byte) (q int, rest []byte, ok bool) {
	q = qOne
	for {
		s = skipOWS(s)
		if len(s) == 0 || s[0] == ',' {
			return q, s, true
		}
		if s[0] != ';' {
			return 0, nil, false
		}
		name, r := cutToken(skipOWS(s[1:]))
		if len(name) == 0 {
			return 0, nil, false
		}
		r = skipOWS(r)
		if len(r) == 0 || r[0] != '=' {
			return 0, nil, false
		}
		r = skipOWS(r[1:])
		if len(name) == 1 && (name[0] == 'q' || name[0] == 'Q') {
			q, r, ok = parseQ(r)
		} else {
			r, ok = skipValue(r)
		}
		if !ok {
			return 0, nil, false
		}
		s = r
	}
}

// parseQ reads a qvalue: "0" ["." 0*3DIGIT] or "1" ["." 0*3"0"], in thousandths.
func parseQ(s []byte) (q int, rest []byte, ok bool) {
	if len(s) == 0 || (s[0] != '0' && s[0] != '1') {
		return 0, nil, false
	}
	whole := s[0] == '1'
	s = s[1:]
	if len(s) > 0 && s[0] == '.' {
		s = s[1:]
		scale := 100
		for i := 0; i < 3 && len(s) > 0 && isDigit(s[0]); i++ {
			if whole && s[0] != '0' {
				return 0, nil, false
			}
			q += int(s[0]-'0') * scale
			scale /= 10
			s = s[1:]
		}
	}
	// A fourth decimal, or "0.5x", is not a qvalue; the caller rejects the
	// letter, but a digit would otherwise look like the start of nothing.
	if len(s) > 0 && isDigit(s[0]) {
		return 0, nil, false
	}
	if whole {
		q = qOne
	}
	return q, s, true
}

// skipValue passes a parameter value: a token or a quoted-string.
func skipValue(s []byte) (rest []byte, ok bool) {
	if len(s) > 0 && s[0] == '"' {
		for i := 1; i < len(s); i++ {
			switch c := s[i]; {
			case c == '"':
				return s[i+1:], true
			case c == '\\':
				i++ // quoted-pair: the next byte is literal
			case c < 0x20 && c != '\t', c == 0x7f:
				return nil, false
			}
		}
		return nil, false // unterminated
	}
	tok, rest := cutToken(s)
	return rest, len(tok) > 0
}

// codingOf maps an Accept-Encoding token to a coding Gozer produces, or None.
func codingOf(tok []byte) Encoding {
	switch {
	case equalFold(tok, "gzip"), equalFold(tok, "x-gzip"):
		return Gzip
	case equalFold(tok, "br"):
		return Brotli
	case equalFold(tok, "zstd"):
		return Zstd
	}
	return None
}

// cutToken splits s after its leading run of token characters (RFC 9110 §5.6.2).
func cutToken(s []byte) (tok, rest []byte) {
	i := 0
	for i < len(s) && isTchar(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// skipOWS drops leading spaces and tabs.
func skipOWS(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isTchar reports whether c may appear in a token:
// "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', isDigit(c):
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// equalFold compares ASCII case-insensitively without converting b to a string
// (which could allocate).
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
