package httpcodec

// Byte classes of RFC 9110 / RFC 9112, as lookup tables.
const (
	classTchar   = 1 << iota // token character
	classVchar               // field-vchar: VCHAR or obs-text
	classHostCh              // byte allowed in a Host value / authority
	classTarget              // byte allowed in a request-target
	classHexDig              // HEXDIG
	classPathOdd             // '#', '\\', '.', '%': a target checkPath must look at
	classPct                 // '%': a target NormalizePath may decode
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		isAlnum := (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
		if isAlnum {
			t[c] |= classTchar | classHostCh
		}
		switch b {
		case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
			t[c] |= classTchar
		}
		switch b {
		// unreserved, pct-encoded, sub-delims, ":" for the port and "[" "]" for IP literals.
		case '-', '.', '_', '~', '%', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '[', ']':
			t[c] |= classHostCh
		}
		if (b >= 0x21 && b <= 0x7e) || b >= 0x80 {
			t[c] |= classVchar | classTarget
		}
		if (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F') {
			t[c] |= classHexDig
		}
		switch b {
		case '#', '\\', '.', '%':
			t[c] |= classPathOdd
		}
		if b == '%' {
			t[c] |= classPct
		}
	}
	return t
}()

var lowerTable = func() (t [256]byte) {
	for c := 0; c < 256; c++ {
		t[c] = byte(c)
		if c >= 'A' && c <= 'Z' {
			t[c] = byte(c) + 'a' - 'A'
		}
	}
	return t
}()

func isTchar(c byte) bool { return class[c]&classTchar != 0 }

// eqFold reports whether b equals lower ASCII-case-insensitively. lower must
// be lower case.
func eqFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lowerTable[b[i]] != lower[i] {
			return false
		}
	}
	return true
}

// eqFoldString reports whether b and s are equal ASCII-case-insensitively.
func eqFoldString(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lowerTable[b[i]] != lowerTable[s[i]] {
			return false
		}
	}
	return true
}

// eqFoldBytes reports whether a and b are equal ASCII-case-insensitively.
func eqFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerTable[a[i]] != lowerTable[b[i]] {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether b starts with lower, case-insensitively.
func hasPrefixFold(b []byte, lower string) bool {
	return len(b) >= len(lower) && eqFold(b[:len(lower)], lower)
}

// trimOWS trims leading and trailing SP and HTAB.
// TrimOWS removes optional whitespace (SP, HTAB) around a header value.
func TrimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// nextToken returns the first element of a comma-separated list and the rest,
// with OWS trimmed from the element. Empty elements are returned as empty.
func nextToken(list []byte) (tok, rest []byte) {
	for i := 0; i < len(list); i++ {
		if list[i] == ',' {
			return TrimOWS(list[:i]), list[i+1:]
		}
	}
	return TrimOWS(list), nil
}

// listHasToken reports whether the comma-separated list contains tok
// (lower case), case-insensitively.
func listHasToken(list []byte, tok string) bool {
	for len(list) > 0 {
		var t []byte
		t, list = nextToken(list)
		if eqFold(t, tok) {
			return true
		}
	}
	return false
}

// parseDecimal parses a non-empty run of ASCII digits as an int64. ok is false
// for an empty string, any non-digit (including a sign or whitespace) or an
// overflow.
func parseDecimal(b []byte) (n int64, ok bool) {
	if len(b) == 0 {
		return 0, false
	}
	const maxDiv10 = (1<<63 - 1) / 10
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > maxDiv10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
		if n < 0 {
			return 0, false
		}
	}
	return n, true
}
