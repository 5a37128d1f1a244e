package proxyproto

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	pp "github.com/pires/go-proxyproto"
)

// The version 2 fixed part (spec §2.2): 12-byte signature, version and
// command, family and protocol, big-endian length of what follows.
const (
	v2FixedLen  = 16
	v2VerCmdAt  = 12
	v2FamilyAt  = 13
	v2LengthAt  = 14
	v2Version   = 0x2
	v2CmdLocal  = 0x0
	v2CmdProxy  = 0x1
	v2AddrLenV4 = 2*4 + 2*2
	v2AddrLenV6 = 2*16 + 2*2
)

// parseV2 frames a version 2 header (buf starts with '\r'): complete at
// 16 + the length field. Each fixed byte is judged as soon as it arrives so
// a bad one fails before the rest comes in.
func parseV2(buf []byte) (int, netip.AddrPort, error) {
	if !hasPrefixSoFar(buf, pp.SIGV2) {
		return 0, netip.AddrPort{}, notProxy(buf)
	}
	var cmd, fam byte
	if len(buf) > v2VerCmdAt {
		verCmd := buf[v2VerCmdAt]
		// The spec: the receiver "must only accept" version 2 and "must drop
		// connections presenting unexpected values" for the command.
		if v := verCmd >> 4; v != v2Version {
			return 0, netip.AddrPort{}, fmt.Errorf("%w: v2: version %d, want 2", ErrUnsupported, v)
		}
		if cmd = verCmd & 0x0f; cmd != v2CmdLocal && cmd != v2CmdProxy {
			return 0, netip.AddrPort{}, fmt.Errorf("%w: v2: unknown command 0x%x", ErrMalformed, cmd)
		}
	}
	if len(buf) > v2FamilyAt {
		// Undefined family or protocol values "must be rejected as invalid by
		// receivers", with LOCAL too. The library would take some of them
		// (0x40, 0x13, …) as a header without addresses.
		if fam = buf[v2FamilyAt]; !v2DefinedFamily(fam) {
			return 0, netip.AddrPort{}, fmt.Errorf("%w: v2: unknown address family and protocol 0x%02x", ErrMalformed, fam)
		}
	}
	if len(buf) < v2FixedLen {
		return 0, netip.AddrPort{}, nil
	}
	length := int(binary.BigEndian.Uint16(buf[v2LengthAt:]))
	n := v2FixedLen + length
	if n > MaxV2HeaderLen {
		return 0, netip.AddrPort{}, fmt.Errorf("%w: v2: length %d, limit %d", ErrTooLong, length, MaxV2HeaderLen-v2FixedLen)
	}

	// Only a PROXY command for TCP over IPv4 or IPv6 names a client the
	// gateway can use. Everything else is LOCAL-like (see below).
	proxied := cmd == v2CmdProxy && (fam == byte(pp.TCPv4) || fam == byte(pp.TCPv6))
	if proxied {
		want := v2AddrLenV4
		if fam == byte(pp.TCPv6) {
			want = v2AddrLenV6
		}
		if length < want {
			return 0, netip.AddrPort{}, fmt.Errorf("%w: v2: length %d is shorter than the %d-byte address block", ErrMalformed, length, want)
		}
	}
	if len(buf) < n {
		return 0, netip.AddrPort{}, nil
	}

	if !proxied {
		// LOCAL: the spec says the receiver "must accept this connection as
		// valid and must use the real connection endpoints and discard the
		// protocol block including the family which is ignored". The library
		// is not asked, because it is stricter than that: it refuses LOCAL
		// with an AF_INET family and a zero length (ErrInvalidLength).
		//
		// PROXY with UNSPEC, UDP or AF_UNIX: spec §2.2 lets a receiver that
		// does not implement a family fall back to UNSPEC mode, and accept
		// UNSPEC with the real endpoints. AF_UNIX has no IP; a UDP source on
		// a TCP listener describes some other flow. HAProxy, as a receiver,
		// also keeps the socket's address for everything but TCP4/TCP6.
		// The library would refuse PROXY+UNSPEC outright.
		return n, netip.AddrPort{}, nil
	}

	h, err := readLib("v2", buf[:n])
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	// The library copies the TLV bytes without looking at them; a TLV that
	// runs past the header means a broken sender (HAProxy drops those too).
	if _, err := h.TLVs(); err != nil {
		return 0, netip.AddrPort{}, wrapLib("v2", err)
	}
	src, err := tcpSource("v2", h)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	return n, src, nil
}

// v2DefinedFamily reports whether fam is one of the seven family/protocol
// bytes the spec defines.
func v2DefinedFamily(fam byte) bool {
	switch pp.AddressFamilyAndProtocol(fam) {
	case pp.UNSPEC, pp.TCPv4, pp.UDPv4, pp.TCPv6, pp.UDPv6, pp.UnixStream, pp.UnixDatagram:
		return true
	}
	return false
}
