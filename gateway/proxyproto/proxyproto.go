// Package proxyproto reads the PROXY protocol header (HAProxy's spec, version 1
// text and version 2 binary) that a load balancer puts in front of a client
// connection's byte stream, so the gateway learns the client's address.
//
// The event loop never blocks on a read: it hands Parse the bytes that arrived
// so far, and Parse says whether they hold a complete header yet. The framing
// (is the header complete, how long is it, may it still become valid) is ours;
// the decoding of a complete header is github.com/pires/go-proxyproto's, fed
// the exact header bytes so that its blocking reader never waits.
//
// A listener that expects the header must not guess (spec §2: a receiver
// "MUST not try to guess whether the protocol header is present"): bytes that
// are not a header are an error, never "no header, carry on", or any client
// could spoof its address by talking to the port directly.
//
// Concurrency: Parse is a pure function of its argument. It keeps no state,
// does not retain buf, and may be called from any goroutine at once.
package proxyproto

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	pp "github.com/pires/go-proxyproto"
)

// Size bounds. The caller can use MaxHeaderLen to cap what it buffers before
// the header is decided: Parse never asks for more bytes than that.
const (
	// MaxV1HeaderLen is the longest version 1 line, CRLF included (spec §2.1:
	// "PROXY UNKNOWN <ipv6> <ipv6> 65535 65535\r\n").
	MaxV1HeaderLen = 107

	// maxV2AddrLen is the largest address block: two AF_UNIX paths of 108
	// bytes each.
	maxV2AddrLen = 216

	// maxV2TLVLen is the room left for TLVs. The spec allows a length field of
	// up to 65535, but the TLVs real load balancers send are small: AWS NLB's
	// VPC endpoint id, GCP's PSC connection id, Azure's link id, HAProxy's
	// ALPN/authority/unique-id/SSL entries are each tens to a few hundred
	// bytes. 4 KiB is an order of magnitude above that and keeps one
	// connection's pre-header buffer small; a header that claims more is
	// refused as soon as its length field arrives instead of making the loop
	// hold up to 64 KiB per unauthenticated connection.
	maxV2TLVLen = 4096

	// MaxV2HeaderLen is the longest version 2 header Parse accepts: the 16
	// fixed bytes, the largest address block and maxV2TLVLen of TLVs.
	MaxV2HeaderLen = v2FixedLen + maxV2AddrLen + maxV2TLVLen

	// MaxHeaderLen is the most bytes Parse may need to see before it either
	// returns a header length or an error.
	MaxHeaderLen = MaxV2HeaderLen
)

// The error kinds a caller counts. Every error Parse returns wraps exactly one
// of them (errors.Is) and adds, lowercase, what was wrong for the log line.
var (
	// ErrNotProxy: the bytes are not a PROXY header at all (for example an
	// HTTP request sent straight to a listener that expects the header).
	ErrNotProxy = errors.New("proxyproto: not a proxy protocol header")
	// ErrMalformed: the signature is there but the header breaks the spec
	// (bad address, port, family, command, missing CRLF, bad TLVs, …).
	ErrMalformed = errors.New("proxyproto: malformed header")
	// ErrTooLong: a version 1 line without CRLF in its first 107 bytes, or a
	// version 2 length field above MaxV2HeaderLen.
	ErrTooLong = errors.New("proxyproto: header too long")
	// ErrUnsupported: a well-formed signature announcing a protocol version
	// other than 2 in the binary format.
	ErrUnsupported = errors.New("proxyproto: unsupported version")
)

// Parse looks at the start of buf, what the client sent so far.
//
//   - n == 0 && err == nil: the header is not complete yet; call again with
//     more bytes (buf holds fewer than MaxHeaderLen bytes in that case).
//   - n > 0: the header took buf[:n]; what follows (the request) is the
//     caller's. src is the client's address, IPv4-mapped IPv6 unmapped to
//     IPv4. src is invalid (!src.IsValid()) when the header carries no client
//     IP the gateway uses: a v2 LOCAL command or v1 "PROXY UNKNOWN" (a load
//     balancer's own health check), or a v2 PROXY command for a family other
//     than TCP over IPv4/IPv6 (UNSPEC, UDP, AF_UNIX; spec §2.2 lets a receiver
//     fall back to the real endpoints for those). The caller then keeps the
//     socket's peer address.
//   - err != nil: malformed or unsupported; the caller closes the connection.
//     err wraps one of ErrNotProxy, ErrMalformed, ErrTooLong, ErrUnsupported.
//
// Parse decides as early as the bytes allow: bytes that disagree with both
// signatures fail at once, as does a v2 length above the cap or a v1 line
// past 107 bytes without CRLF. A prefix of a valid header always returns
// (0, invalid, nil). Parse does not bound time: a client that sends part of a
// header and stalls is for the caller's handshake deadline.
//
// Pure function; safe from any goroutine; buf is not retained.
func Parse(buf []byte) (n int, src netip.AddrPort, err error) {
	if len(buf) == 0 {
		return 0, netip.AddrPort{}, nil
	}
	// The first byte tells the formats apart ('P' vs '\r'), which is also the
	// earliest an HTTP or TLS client is refused.
	switch buf[0] {
	case v1Prefix[0]:
		return parseV1(buf)
	case pp.SIGV2[0]:
		return parseV2(buf)
	}
	return 0, netip.AddrPort{}, notProxy(buf)
}

// notProxy names what arrived instead of a header, quoting at most a few
// bytes: enough to tell "GET /" from a TLS ClientHello in the log line
// without echoing a client's payload.
func notProxy(buf []byte) error {
	const quote = 8
	return fmt.Errorf("%w: starts with %q", ErrNotProxy, buf[:min(len(buf), quote)])
}

// hasPrefixSoFar reports whether buf and sig agree on their common length:
// buf may still grow into sig (or already starts with it).
func hasPrefixSoFar(buf, sig []byte) bool {
	k := min(len(buf), len(sig))
	return bytes.Equal(buf[:k], sig[:k])
}

// libError is an error from the library under one of our kinds: it prints
// once as "<kind>: <what>" (the library's own "proxyproto: " prefix dropped)
// and still matches both our sentinel and the library's with errors.Is.
type libError struct {
	kind  error
	cause error
	msg   string
}

func (e *libError) Error() string   { return e.msg }
func (e *libError) Unwrap() []error { return []error{e.kind, e.cause} }

// wrapLib puts a library error under the kind that fits it. The pre-checks
// catch almost everything first, so what reaches here is mostly a bad
// address or port.
func wrapLib(version string, err error) error {
	kind := ErrMalformed
	switch {
	case errors.Is(err, pp.ErrVersion1HeaderTooLong):
		kind = ErrTooLong
	case errors.Is(err, pp.ErrNoProxyProtocol):
		kind = ErrNotProxy
	case errors.Is(err, pp.ErrUnknownProxyProtocolVersion):
		kind = ErrUnsupported
	}
	what := strings.ToLower(strings.TrimPrefix(err.Error(), "proxyproto: "))
	return &libError{kind: kind, cause: err, msg: kind.Error() + ": " + version + ": " + what}
}

// readLib runs the library's parser over exactly the header bytes. The
// bufio.Reader is sized to hold the whole header because the library peeks:
// its v1 parser refuses a line that is not already buffered ("can't read
// version 1 header"), and its v2 parser Peeks the address block, which fails
// past the default 4096-byte buffer.
func readLib(version string, hdr []byte) (*pp.Header, error) {
	br := bufio.NewReaderSize(bytes.NewReader(hdr), len(hdr))
	h, err := pp.Read(br)
	if err != nil {
		return nil, wrapLib(version, err)
	}
	// Our framing and the library's must agree to the byte, or the request
	// behind the header would be cut in the wrong place.
	if left := br.Buffered(); left != 0 {
		return nil, fmt.Errorf("%w: %s: parser stopped %d bytes before the framed end", ErrMalformed, version, left)
	}
	return h, nil
}

// tcpSource turns the library's source address into the client's
// netip.AddrPort, IPv4-mapped IPv6 unmapped (a dual-stack LB may send
// "::ffff:a.b.c.d" for an IPv4 client; the gateway keys limits and logs by
// the plain form).
func tcpSource(version string, h *pp.Header) (netip.AddrPort, error) {
	tcp, ok := h.SourceAddr.(*net.TCPAddr)
	if !ok || tcp == nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %s: no tcp source address", ErrMalformed, version)
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	if !ok || tcp.Port < 0 || tcp.Port > 0xffff {
		return netip.AddrPort{}, fmt.Errorf("%w: %s: bad source address %v", ErrMalformed, version, tcp)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(tcp.Port)), nil
}
