package ratelimit

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// KeyKind is what a limit counts requests by.
type KeyKind uint8

// The kinds of keys.
const (
	KeyIP     KeyKind = iota + 1 // the client's address, masked to a prefix
	KeyHeader                    // a request header's value (an API key, a device id)
	KeyOrigin                    // the origin the request was routed to
	KeyGlobal                    // one bucket for every request the limit matches
)

// KeySpec is a parsed limit key: "ip", "ip/24", "ip/24/48" (an IPv4 prefix
// length, then an IPv6 one; IPv6 defaults to /64), "header:X-Api-Key",
// "origin", "global".
type KeySpec struct {
	Kind   KeyKind
	Bits4  int    // KeyIP: IPv4 prefix length (32 when not given)
	Bits6  int    // KeyIP: IPv6 prefix length (64 when not given)
	Header string // KeyHeader: the header's name
}

// ParseKey parses a limit's key spec.
func ParseKey(s string) (KeySpec, error) {
	switch {
	case s == "origin":
		return KeySpec{Kind: KeyOrigin}, nil
	case s == "global":
		return KeySpec{Kind: KeyGlobal}, nil
	case strings.HasPrefix(s, "header:"):
		h := s[len("header:"):]
		if h == "" || !validToken(h) {
			return KeySpec{}, fmt.Errorf("key %q: header name must be a non-empty HTTP token", s)
		}
		return KeySpec{Kind: KeyHeader, Header: h}, nil
	case s == "ip" || strings.HasPrefix(s, "ip/"):
		k := KeySpec{Kind: KeyIP, Bits4: 32, Bits6: 64}
		if s == "ip" {
			return k, nil
		}
		rest := s[len("ip/"):]
		v4, v6, two := strings.Cut(rest, "/")
		var err error
		if k.Bits4, err = prefixLen(v4, 32); err != nil {
			return KeySpec{}, fmt.Errorf("key %q: ipv4 prefix: %w", s, err)
		}
		if two {
			if k.Bits6, err = prefixLen(v6, 128); err != nil {
				return KeySpec{}, fmt.Errorf("key %q: ipv6 prefix: %w", s, err)
			}
		}
		return k, nil
	}
	return KeySpec{}, fmt.Errorf("key %q: want ip, ip/N, ip/N/M, header:NAME, origin or global", s)
}

func prefixLen(s string, most int) (int, error) {
	if s == "" || len(s) > 3 {
		return 0, errors.New("want a prefix length")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > most || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%q is not a prefix length from 0 to %d", s, most)
	}
	return n, nil
}

func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// String is the spec as the config writes it.
func (k KeySpec) String() string {
	switch k.Kind {
	case KeyOrigin:
		return "origin"
	case KeyGlobal:
		return "global"
	case KeyHeader:
		return "header:" + k.Header
	case KeyIP:
		if k.Bits6 != 64 {
			return fmt.Sprintf("ip/%d/%d", k.Bits4, k.Bits6)
		}
		if k.Bits4 != 32 {
			return fmt.Sprintf("ip/%d", k.Bits4)
		}
		return "ip"
	}
	return ""
}

// AppendIP appends a's key under k (the address masked to the spec's prefix,
// in 17 bytes) to dst.
func (k KeySpec) AppendIP(dst []byte, a netip.Addr) []byte {
	a = a.Unmap()
	bits := k.Bits4
	if a.Is6() {
		bits = k.Bits6
	}
	if p, err := a.Prefix(bits); err == nil {
		a = p.Addr()
	}
	b := a.As16()
	return append(append(dst, b[:]...), byte(bits))
}

// MaxKeyPart is the longest key value (a header's, a Lua key) kept as it is;
// a longer one is kept as its SHA-256 (16 bytes), so that a bucket costs a
// bounded size whatever a client sends: limits.max_keys bounds the memory.
const MaxKeyPart = 64

// AppendKeyPart appends v to dst, or "#" and v's truncated SHA-256 when v is
// longer than MaxKeyPart. The same value gives the same key on every node.
func AppendKeyPart(dst, v []byte) []byte {
	if len(v) <= MaxKeyPart {
		return append(dst, v...)
	}
	sum := sha256.Sum256(v)
	return append(append(dst, '#'), sum[:16]...)
}
