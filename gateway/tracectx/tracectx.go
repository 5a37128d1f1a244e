// Package tracectx is W3C Trace Context (https://www.w3.org/TR/trace-context/)
// as the gateway needs it: it parses the traceparent a client sent, makes the
// ids of new traces and of the gateway's own spans, and writes the
// traceparent the gateway sends on.
//
// A traceparent is version-traceid-parentid-flags:
//
//	00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
//
// Concurrency: Parse and Append are pure functions, safe for any goroutine.
// An IDSource belongs to one goroutine (one event loop's); it is not safe
// for concurrent use.
package tracectx

import (
	"crypto/rand"
	mrand "math/rand/v2"
)

// HeaderLen is the length of a version 00 traceparent.
const HeaderLen = 55

// TraceIDHexLen is the length of a trace id in hex (32 digits).
const TraceIDHexLen = 32

// Parent is what a valid traceparent says: the trace, the caller's span
// (parent-id) and the trace flags.
type Parent struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// FlagSampled is the sampled bit of the trace flags.
const FlagSampled = 0x01

// Parse reads a traceparent header value. It reports false for a value the
// spec says to ignore (the trace restarts then): a wrong length or
// separator, hex that is not lowercase, version ff, an all-zero trace id or
// parent id; version 00 with anything after the flags. A future version
// (01..fe) is read for its first four fields when it is at least 55 bytes
// long and, when longer, a '-' follows the flags; what follows is not kept.
// Flags of version 00 are kept as sent; of a future version, only the bits
// this version knows (sampled, random) are.
func Parse(v []byte) (Parent, bool) {
	var p Parent
	if len(v) < HeaderLen || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return p, false
	}
	ver, ok := hexByte(v[0], v[1])
	if !ok || ver == 0xff {
		return p, false
	}
	if ver == 0 && len(v) != HeaderLen {
		return p, false
	}
	if len(v) > HeaderLen && v[HeaderLen] != '-' {
		return p, false
	}
	if !decodeHex(p.TraceID[:], v[3:35]) || !decodeHex(p.SpanID[:], v[36:52]) {
		return p, false
	}
	if p.Flags, ok = hexByte(v[53], v[54]); !ok {
		return p, false
	}
	if ver != 0 {
		p.Flags &= 0x03
	}
	if isZero(p.TraceID[:]) || isZero(p.SpanID[:]) {
		return p, false
	}
	return p, true
}

// Append appends the version 00 traceparent of a span: trace, span id (the
// parent-id of whoever receives it), flags. 55 bytes.
func Append(dst []byte, trace [16]byte, span [8]byte, flags byte) []byte {
	var b [HeaderLen]byte
	Format(&b, trace, span, flags)
	return append(dst, b[:]...)
}

// Format writes the version 00 traceparent of a span into dst (Append
// without a slice to grow).
func Format(dst *[HeaderLen]byte, trace [16]byte, span [8]byte, flags byte) {
	dst[0], dst[1], dst[2], dst[35], dst[52] = '0', '0', '-', '-', '-'
	for i, c := range trace {
		dst[3+2*i], dst[4+2*i] = hexDigits[c>>4], hexDigits[c&15]
	}
	for i, c := range span {
		dst[36+2*i], dst[37+2*i] = hexDigits[c>>4], hexDigits[c&15]
	}
	dst[53], dst[54] = hexDigits[flags>>4], hexDigits[flags&15]
}

const hexDigits = "0123456789abcdef"

// unhex maps a lowercase hex digit to its value; 0xff for anything else.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < 16; i++ {
		t[hexDigits[i]] = byte(i)
	}
	return t
}()

func hexByte(hi, lo byte) (byte, bool) {
	h, l := unhex[hi], unhex[lo]
	if h > 15 || l > 15 {
		return 0, false
	}
	return h<<4 | l, true
}

// decodeHex fills dst from exactly 2*len(dst) lowercase hex digits.
func decodeHex(dst, src []byte) bool {
	for i := range dst {
		b, ok := hexByte(src[2*i], src[2*i+1])
		if !ok {
			return false
		}
		dst[i] = b
	}
	return true
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// IDSource makes trace and span ids: ChaCha8 (math/rand/v2) seeded from the
// system's random source, so ids are unique across loops, nodes and
// restarts for all practical purposes (128 and 64 random bits) and cannot be
// guessed from earlier ones; a few nanoseconds an id, no allocation, no lock.
// One per event loop: not safe for concurrent use.
type IDSource struct{ r *mrand.ChaCha8 }

// NewIDSource seeds a source from crypto/rand.
func NewIDSource() *IDSource {
	var seed [32]byte
	_, _ = rand.Read(seed[:]) // never fails on supported platforms (Go 1.24+)
	return &IDSource{r: mrand.NewChaCha8(seed)}
}

// TraceID returns a new random trace id, never all zeros.
func (s *IDSource) TraceID() (id [16]byte) {
	for {
		a, b := s.r.Uint64(), s.r.Uint64()
		if a|b == 0 {
			continue
		}
		putUint64(id[:8], a)
		putUint64(id[8:], b)
		return id
	}
}

// SpanID returns a new random span id, never all zeros.
func (s *IDSource) SpanID() (id [8]byte) {
	for {
		if a := s.r.Uint64(); a != 0 {
			putUint64(id[:], a)
			return id
		}
	}
}

// Sample reports true for a share of calls: threshold / 2^64 of them
// (SampleThreshold).
func (s *IDSource) Sample(threshold uint64) bool {
	return threshold != 0 && s.r.Uint64() < threshold
}

// SampleThreshold turns a ratio in [0, 1] into Sample's threshold.
func SampleThreshold(ratio float64) uint64 {
	switch {
	case ratio <= 0:
		return 0
	case ratio >= 1:
		return ^uint64(0)
	}
	return uint64(ratio * (1 << 64))
}

func putUint64(b []byte, v uint64) {
	_ = b[7]
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}
