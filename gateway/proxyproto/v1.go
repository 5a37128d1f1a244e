package proxyproto

import (
	"bytes"
	"fmt"
	"net/netip"
)

// v1Prefix is the version 1 signature with its one space: the spec's
// signature is "PROXY", but a sixth byte other than ' ' cannot start a valid
// line either, and refusing it here keeps "PROXYZ…" out of the library, whose
// own check stops at five bytes.
var v1Prefix = []byte("PROXY ")

// v1Protocols are the ways a valid line continues after "PROXY ". The
// library wants the token exactly ("UNKNOWN" then a space or the CRLF), so a
// line that has left all four is refused without waiting for its CRLF.
var v1Protocols = [...][]byte{
	[]byte("TCP4 "),
	[]byte("TCP6 "),
	[]byte("UNKNOWN "),
	[]byte("UNKNOWN\r"),
}

// parseV1 frames a version 1 line (buf starts with 'P'): it is complete at
// its first LF, which must follow a CR and come within MaxV1HeaderLen bytes.
func parseV1(buf []byte) (int, netip.AddrPort, error) {
	if !hasPrefixSoFar(buf, v1Prefix) {
		return 0, netip.AddrPort{}, notProxy(buf)
	}
	if len(buf) <= len(v1Prefix) {
		return 0, netip.AddrPort{}, nil
	}
	proto := buf[len(v1Prefix):]
	if !v1ProtocolSoFar(proto) {
		return 0, netip.AddrPort{}, fmt.Errorf("%w: v1: unknown protocol %q", ErrMalformed, proto[:min(len(proto), 8)])
	}

	// Only the first 107 bytes may hold the LF: past that the line is invalid
	// whatever follows (spec §2.1), so there is no point waiting for more.
	end := bytes.IndexByte(buf[:min(len(buf), MaxV1HeaderLen)], '\n')
	if end < 0 {
		if len(buf) >= MaxV1HeaderLen {
			return 0, netip.AddrPort{}, fmt.Errorf("%w: v1: no crlf in the first %d bytes", ErrTooLong, MaxV1HeaderLen)
		}
		return 0, netip.AddrPort{}, nil
	}
	// end > len(v1Prefix): the prefix and protocol checks above hold no LF.
	if buf[end-1] != '\r' {
		return 0, netip.AddrPort{}, fmt.Errorf("%w: v1: line ends in a bare lf", ErrMalformed)
	}
	n := end + 1
	line := buf[:n]

	// For UNKNOWN the spec says to ignore the rest of the line, so only the
	// TCP forms get the strict field checks.
	if !bytes.HasPrefix(proto, []byte("UNKNOWN")) {
		if err := checkV1Fields(line[:n-2]); err != nil {
			return 0, netip.AddrPort{}, err
		}
	}
	h, err := readLib("v1", line)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	// The library reports "PROXY UNKNOWN" as the LOCAL command: the sender
	// could not describe the client, so the socket's address stands.
	if h.Command.IsLocal() {
		return n, netip.AddrPort{}, nil
	}
	src, err := tcpSource("v1", h)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	return n, src, nil
}

// v1ProtocolSoFar reports whether the bytes after "PROXY " may still become
// one of the protocol tokens.
func v1ProtocolSoFar(b []byte) bool {
	for _, p := range v1Protocols {
		if hasPrefixSoFar(b, p) {
			return true
		}
	}
	return false
}

// checkV1Fields holds a TCP4/TCP6 line (without its CRLF) to the letter of
// spec §2.1 where the library is lenient: it accepts fields after the
// destination port, ports with a sign or heading zeroes (strconv.Atoi), and
// IPv6 zones (netip.ParseAddr). The spec asks to drop any line that does not
// match exactly, since such a sender is broken or is not the load balancer.
func checkV1Fields(line []byte) error {
	// PROXY, protocol, source, destination, source port, destination port.
	if spaces := bytes.Count(line, []byte{' '}); spaces != 5 {
		return fmt.Errorf("%w: v1: %d fields, want 6", ErrMalformed, spaces+1)
	}
	if bytes.Contains(line, []byte("  ")) {
		return fmt.Errorf("%w: v1: empty field", ErrMalformed)
	}
	if bytes.IndexByte(line, '%') >= 0 {
		return fmt.Errorf("%w: v1: address with a zone", ErrMalformed)
	}
	i := bytes.LastIndexByte(line, ' ')
	dstPort := line[i+1:]
	j := bytes.LastIndexByte(line[:i], ' ')
	srcPort := line[j+1 : i]
	for _, p := range [...][]byte{srcPort, dstPort} {
		if !canonicalPort(p) {
			return fmt.Errorf("%w: v1: port %q is not a plain decimal", ErrMalformed, p)
		}
	}
	return nil
}

// canonicalPort reports whether p is 1 to 5 decimal digits without heading
// zeroes ("0" itself is fine). The range check is the library's.
func canonicalPort(p []byte) bool {
	if len(p) == 0 || len(p) > 5 || (p[0] == '0' && len(p) > 1) {
		return false
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
