package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	pp "github.com/pires/go-proxyproto"
)

// request is what a client sends behind the header; Parse must leave it.
const request = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"

var sigV2 = string(pp.SIGV2)

// v2 writes a version 2 header by hand from the spec §2.2 layout.
func v2(verCmd, fam byte, body string) []byte {
	b := append([]byte(sigV2), verCmd, fam, 0, 0)
	binary.BigEndian.PutUint16(b[14:], uint16(len(body)))
	return append(b, body...)
}

func tcp(s string) *net.TCPAddr {
	return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s))
}

// format renders h with the library's own writer, TLVs set first.
func format(t testing.TB, h *pp.Header, tlvs ...pp.TLV) []byte {
	t.Helper()
	if len(tlvs) > 0 {
		if err := h.SetTLVs(tlvs); err != nil {
			t.Fatal(err)
		}
	}
	b, err := h.Format()
	if err != nil {
		t.Fatalf("format %+v: %v", h, err)
	}
	return b
}

type okCase struct {
	name string
	hdr  []byte
	src  string // "" for LOCAL-like (invalid src)
}

// libraryCases are headers produced by the library's writer.
func libraryCases(t testing.TB) []okCase {
	proxy := func(v byte, fam pp.AddressFamilyAndProtocol, src, dst net.Addr) *pp.Header {
		return &pp.Header{Version: v, Command: pp.PROXY, TransportProtocol: fam, SourceAddr: src, DestinationAddr: dst}
	}
	tlvs := []pp.TLV{
		{Type: pp.PP2_TYPE_ALPN, Value: []byte("h2")},
		{Type: pp.PP2_TYPE_AUTHORITY, Value: []byte("api.example.com")},
		{Type: pp.PP2_TYPE_NOOP, Value: make([]byte, 5)},
		// AWS NLB: PP2_TYPE_AWS (0xEA), subtype VPCE_ID (0x01), endpoint id.
		{Type: 0xEA, Value: append([]byte{0x01}, "vpce-08d2bf15fac5001c9"...)},
		{Type: pp.PP2_TYPE_UNIQUE_ID, Value: bytes.Repeat([]byte{0xab}, 128)},
	}
	unix := func(name string) *net.UnixAddr { return &net.UnixAddr{Net: "unix", Name: name} }
	udp := func(s string) *net.UDPAddr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	max6 := "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
	return []okCase{
		{"v1 tcp4", format(t, proxy(1, pp.TCPv4, tcp("192.168.0.1:56324"), tcp("192.168.0.11:443"))), "192.168.0.1:56324"},
		{"v1 tcp6", format(t, proxy(1, pp.TCPv6, tcp("[2001:db8::1]:1234"), tcp("[2001:db8::2]:443"))), "[2001:db8::1]:1234"},
		{"v1 tcp6 longest", format(t, proxy(1, pp.TCPv6, tcp(max6), tcp(max6))), max6},
		{"v1 tcp4 port 0", format(t, proxy(1, pp.TCPv4, tcp("10.0.0.1:0"), tcp("10.0.0.2:80"))), "10.0.0.1:0"},
		{"v1 unknown", format(t, &pp.Header{Version: 1, Command: pp.LOCAL, TransportProtocol: pp.UNSPEC}), ""},
		{"v2 tcp4", format(t, proxy(2, pp.TCPv4, tcp("192.168.0.1:56324"), tcp("192.168.0.11:443"))), "192.168.0.1:56324"},
		{"v2 tcp6", format(t, proxy(2, pp.TCPv6, tcp("[2001:db8::1]:1234"), tcp("[2001:db8::2]:443"))), "[2001:db8::1]:1234"},
		{"v2 tcp6 v4-mapped", format(t, proxy(2, pp.TCPv6, tcp("[::ffff:10.1.2.3]:40000"), tcp("[2001:db8::2]:443"))), "10.1.2.3:40000"},
		{"v2 tcp4 tlvs", format(t, proxy(2, pp.TCPv4, tcp("203.0.113.7:5555"), tcp("10.0.0.1:80")), tlvs...), "203.0.113.7:5555"},
		{"v2 tcp6 tlvs", format(t, proxy(2, pp.TCPv6, tcp("[2001:db8::7]:5555"), tcp("[2001:db8::1]:80")), tlvs...), "[2001:db8::7]:5555"},
		{"v2 local", format(t, &pp.Header{Version: 2, Command: pp.LOCAL, TransportProtocol: pp.UNSPEC}), ""},
		{"v2 local tlvs", format(t, &pp.Header{Version: 2, Command: pp.LOCAL, TransportProtocol: pp.UNSPEC}, tlvs...), ""},
		{"v2 local tcp4 addresses", format(t, &pp.Header{Version: 2, Command: pp.LOCAL, TransportProtocol: pp.TCPv4,
			SourceAddr: tcp("10.0.0.9:1"), DestinationAddr: tcp("10.0.0.1:80")}), ""},
		{"v2 proxy udp4", format(t, proxy(2, pp.UDPv4, udp("198.51.100.1:53"), udp("10.0.0.1:53"))), ""},
		{"v2 proxy udp6", format(t, proxy(2, pp.UDPv6, udp("[2001:db8::1]:53"), udp("[2001:db8::2]:53"))), ""},
		{"v2 proxy unix stream", format(t, proxy(2, pp.UnixStream, unix("/run/lb.sock"), unix("/run/gozer.sock"))), ""},
	}
}

// specCases are written by hand from the HAProxy spec (doc/proxy-protocol.txt),
// not by the library: its §2.1 example and longest lines, and §2.2 layouts.
var specCases = []okCase{
	// §2.1, the example line in front of an HTTP request.
	{"spec v1 example", []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"), "192.168.0.1:56324"},
	// §2.1, the longest lines a receiver must support: 56, 104, 15, 107.
	{"spec v1 tcp4 longest", []byte("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"), "255.255.255.255:65535"},
	{"spec v1 tcp6 longest", []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
		"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"},
	{"spec v1 unknown short", []byte("PROXY UNKNOWN\r\n"), ""},
	{"spec v1 unknown worst case", []byte("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"), ""},
	// What a dual-stack sender (inet_ntop) writes for an IPv4 client on a v6 socket.
	{"v1 tcp6 v4-mapped", []byte("PROXY TCP6 ::ffff:192.0.2.5 2001:db8::1 1024 443\r\n"), "192.0.2.5:1024"},
	// §2.2: TCP over IPv4, the same connection as the §2.1 example
	// (c0a80001 c0a8000b, ports 56324 = dc04 and 443 = 01bb).
	{"spec v2 tcp4", v2(0x21, 0x11, "\xc0\xa8\x00\x01\xc0\xa8\x00\x0b\xdc\x04\x01\xbb"), "192.168.0.1:56324"},
	// §2.2: TCP over IPv6, 2001:db8::1 → 2001:db8::2, 1234 → 443.
	{"spec v2 tcp6", v2(0x21, 0x21,
		"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"+
			"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x04\xd2\x01\xbb"), "[2001:db8::1]:1234"},
	// §2.2: HAProxy's health check, LOCAL with UNSPEC and no address.
	{"spec v2 local", v2(0x20, 0x00, ""), ""},
	// §2.2: LOCAL "must" be accepted and its family ignored, even when the
	// length does not fit that family (the library alone would refuse it).
	{"spec v2 local tcp4 empty", v2(0x20, 0x11, ""), ""},
	// §2.2: PROXY with UNSPEC; the receiver may accept it with the real
	// endpoints, and does.
	{"spec v2 proxy unspec", v2(0x21, 0x00, ""), ""},
	// §2.2: address block followed by a TLV (ALPN "h2").
	{"spec v2 tcp4 alpn", v2(0x21, 0x11, "\x0a\x00\x00\x01\x0a\x00\x00\x02\x00\x50\x00\x51"+"\x01\x00\x02h2"), "10.0.0.1:80"},
}

// check feeds hdr to Parse in every way the loop can: each proper prefix,
// the exact header, and the header with the request behind it.
func check(t *testing.T, c okCase) {
	t.Helper()
	var want netip.AddrPort
	if c.src != "" {
		want = netip.MustParseAddrPort(c.src)
	}
	for i := range len(c.hdr) {
		n, src, err := Parse(c.hdr[:i])
		if n != 0 || src.IsValid() || err != nil {
			t.Fatalf("prefix of %d/%d bytes: got (%d, %v, %v), want (0, invalid, nil)", i, len(c.hdr), n, src, err)
		}
	}
	buf := append(bytes.Clone(c.hdr), request...)
	for _, b := range [][]byte{c.hdr, buf} {
		n, src, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(%q): %v", b, err)
		}
		if n != len(c.hdr) || src != want {
			t.Fatalf("Parse(%q) = (%d, %v), want (%d, %v)", b, n, src, len(c.hdr), want)
		}
		if src.IsValid() && (src.Addr().Is4In6() || src.Addr().Zone() != "") {
			t.Fatalf("src %v is not in plain form", src)
		}
		if rest := string(b[n:]); rest != "" && rest != request {
			t.Fatalf("rest %q", rest)
		}
	}
}

func TestParseLibraryHeaders(t *testing.T) {
	for _, c := range libraryCases(t) {
		t.Run(c.name, func(t *testing.T) { check(t, c) })
	}
}

func TestParseSpecHeaders(t *testing.T) {
	for _, c := range specCases {
		t.Run(c.name, func(t *testing.T) { check(t, c) })
	}
	// The spec's §2.1 example as it arrives: header and request together.
	in := "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n"
	n, src, err := Parse([]byte(in))
	if err != nil || n != 47 || src != netip.MustParseAddrPort("192.168.0.1:56324") || in[n:] != "GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n" {
		t.Fatalf("got (%d, %v, %v)", n, src, err)
	}
	if l := len(specCases[4].hdr); l != MaxV1HeaderLen {
		t.Fatalf("worst-case v1 line is %d bytes, want %d", l, MaxV1HeaderLen)
	}
}

// TestParseAgreesWithLibrary: for what both accept, the library reading a
// connection the blocking way sees the same client and stops at the same byte.
func TestParseAgreesWithLibrary(t *testing.T) {
	for _, c := range append(libraryCases(t), specCases...) {
		buf := append(bytes.Clone(c.hdr), request...)
		n, src, err := Parse(buf)
		if err != nil || !src.IsValid() {
			continue
		}
		br := bufio.NewReader(bytes.NewReader(buf))
		h, err := pp.Read(br)
		if err != nil {
			t.Fatalf("%s: library: %v", c.name, err)
		}
		lib := h.SourceAddr.(*net.TCPAddr).AddrPort()
		if lib.Addr().Unmap() != src.Addr() || lib.Port() != src.Port() {
			t.Fatalf("%s: library src %v, ours %v", c.name, lib, src)
		}
		if used := len(buf) - br.Buffered(); used != n {
			t.Fatalf("%s: library used %d bytes, ours %d", c.name, used, n)
		}
	}
}

// TestParseLargestV2: a header of exactly MaxV2HeaderLen is read; one byte
// more is refused as soon as its length field arrives.
func TestParseLargestV2(t *testing.T) {
	addr := "\x0a\x00\x00\x01\x0a\x00\x00\x02\x00\x50\x00\x51"
	tlv := func(total int) string {
		v := total - 16 - len(addr) - 3
		return string([]byte{0xe0, byte(v >> 8), byte(v)}) + strings.Repeat("x", v)
	}
	hdr := v2(0x21, 0x11, addr+tlv(MaxV2HeaderLen))
	if len(hdr) != MaxV2HeaderLen {
		t.Fatalf("built %d bytes", len(hdr))
	}
	check(t, okCase{"largest", hdr, "10.0.0.1:80"})

	over := v2(0x21, 0x11, addr+tlv(MaxV2HeaderLen+1))
	n, _, err := Parse(over[:16])
	if n != 0 || !errors.Is(err, ErrTooLong) {
		t.Fatalf("one byte over the cap: got (%d, %v), want ErrTooLong at 16 bytes", n, err)
	}
}

// quoted matches the client's bytes an error quotes (%q), which keep their case.
var quoted = regexp.MustCompile(`"(\\.|[^"\\])*"`)

type badCase struct {
	name string
	in   string
	kind error
	lib  error // the library's sentinel the error also matches, if any
}

var badCases = []badCase{
	// Not a PROXY header: refused as soon as a byte disagrees.
	{"http", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", ErrNotProxy, nil},
	{"http first byte", "G", ErrNotProxy, nil},
	{"put shares the P", "PUT / HTTP/1.1\r\n", ErrNotProxy, nil},
	{"tls client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", ErrNotProxy, nil},
	{"crlf before request", "\r\nGET / HTTP/1.1\r\n", ErrNotProxy, nil},
	{"nul", "\x00", ErrNotProxy, nil},
	{"proxy without space", "PROXYTCP4 ", ErrNotProxy, nil},
	{"proxy tab", "PROXY\t", ErrNotProxy, nil},
	{"lowercase proxy", "proxy TCP4 ", ErrNotProxy, nil},
	{"v2 signature broken at the end", sigV2[:11] + "\x0b", ErrNotProxy, nil},
	{"v2 signature without nul", "\r\n\r\n\x01", ErrNotProxy, nil},

	// v1, refused before the CRLF.
	{"v1 unknown protocol", "PROXY UDP4 ", ErrMalformed, nil},
	{"v1 tcp5", "PROXY TCP5", ErrMalformed, nil},
	{"v1 tcp4 without space", "PROXY TCP4\r\n", ErrMalformed, nil},
	{"v1 unknownx", "PROXY UNKNOWNX\r\n", ErrMalformed, nil},
	{"v1 lowercase protocol", "PROXY tcp4 ", ErrMalformed, nil},
	{"v1 empty protocol", "PROXY \r\n", ErrMalformed, nil},
	{"v1 no crlf in 107 bytes", "PROXY UNKNOWN " + strings.Repeat("f", MaxV1HeaderLen-14), ErrTooLong, nil},
	{"v1 lf at byte 108", "PROXY UNKNOWN " + strings.Repeat("f", MaxV1HeaderLen-15) + "\r\n", ErrTooLong, nil},
	{"v1 tcp4 no crlf in 107 bytes", "PROXY TCP4 " + strings.Repeat("1", 200), ErrTooLong, nil},

	// v1, complete but wrong.
	{"v1 bare lf", "PROXY TCP4 1.2.3.4 5.6.7.8 80 443\n", ErrMalformed, nil},
	{"v1 bare lf unknown", "PROXY UNKNOWN\n", ErrMalformed, nil},
	{"v1 cr cr lf", "PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r\r\n", ErrMalformed, nil},
	{"v1 short ipv4", "PROXY TCP4 1.2.3 5.6.7.8 80 443\r\n", ErrMalformed, pp.ErrInvalidAddress},
	{"v1 ipv4 heading zero", "PROXY TCP4 01.2.3.4 5.6.7.8 80 443\r\n", ErrMalformed, pp.ErrInvalidAddress},
	{"v1 tcp4 with ipv6", "PROXY TCP4 2001:db8::1 5.6.7.8 80 443\r\n", ErrMalformed, pp.ErrInvalidAddress},
	{"v1 tcp6 with ipv4", "PROXY TCP6 1.2.3.4 ::1 80 443\r\n", ErrMalformed, pp.ErrInvalidAddress},
	{"v1 bad destination", "PROXY TCP4 1.2.3.4 host 80 443\r\n", ErrMalformed, pp.ErrInvalidAddress},
	{"v1 ipv6 zone", "PROXY TCP6 fe80::1%eth0 ::1 80 443\r\n", ErrMalformed, nil},
	{"v1 port too large", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 443\r\n", ErrMalformed, pp.ErrInvalidPortNumber},
	{"v1 port with sign", "PROXY TCP4 1.2.3.4 5.6.7.8 +80 443\r\n", ErrMalformed, nil},
	{"v1 port heading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 80 0443\r\n", ErrMalformed, nil},
	{"v1 port empty", "PROXY TCP4 1.2.3.4 5.6.7.8 80 \r\n", ErrMalformed, nil},
	{"v1 extra field", "PROXY TCP4 1.2.3.4 5.6.7.8 80 443 x\r\n", ErrMalformed, nil},
	{"v1 missing field", "PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n", ErrMalformed, nil},
	{"v1 double space", "PROXY TCP4  1.2.3.4 5.6.7.8 80\r\n", ErrMalformed, nil},

	// v2, refused on the fixed bytes.
	{"v2 version 1", sigV2 + "\x11", ErrUnsupported, nil},
	{"v2 version 3", sigV2 + "\x31\x11\x00\x0c", ErrUnsupported, nil},
	{"v2 version 0", sigV2 + "\x01", ErrUnsupported, nil},
	{"v2 command 2", sigV2 + "\x22", ErrMalformed, nil},
	{"v2 command f", sigV2 + "\x2f\x00\x00\x00", ErrMalformed, nil},
	{"v2 family 4", sigV2 + "\x21\x41", ErrMalformed, nil},
	{"v2 protocol 3", sigV2 + "\x21\x13", ErrMalformed, nil},
	{"v2 family without protocol", sigV2 + "\x21\x10", ErrMalformed, nil},
	{"v2 local unknown family", sigV2 + "\x20\x40", ErrMalformed, nil},
	{"v2 length 65535", sigV2 + "\x21\x11\xff\xff", ErrTooLong, nil},
	{"v2 local length too large", sigV2 + "\x20\x00\x20\x00", ErrTooLong, nil},
	{"v2 tcp4 length 11", sigV2 + "\x21\x11\x00\x0b", ErrMalformed, nil},
	{"v2 tcp4 length 0", sigV2 + "\x21\x11\x00\x00", ErrMalformed, nil},
	{"v2 tcp6 length 12", sigV2 + "\x21\x21\x00\x0c", ErrMalformed, nil},

	// v2, complete but wrong TLVs (the library itself does not look).
	{"v2 truncated tlv", string(v2(0x21, 0x11, "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x50\x01\xbb"+"\x01\x00\x09ab")), ErrMalformed, pp.ErrTruncatedTLV},
	{"v2 tlv header cut", string(v2(0x21, 0x21, strings.Repeat("\x00", 36)+"\x01\x00")), ErrMalformed, pp.ErrTruncatedTLV},
}

func TestParseRejects(t *testing.T) {
	kinds := []error{ErrNotProxy, ErrMalformed, ErrTooLong, ErrUnsupported}
	for _, c := range badCases {
		t.Run(c.name, func(t *testing.T) {
			n, src, err := Parse([]byte(c.in))
			if n != 0 || src.IsValid() || !errors.Is(err, c.kind) {
				t.Fatalf("Parse(%q) = (%d, %v, %v), want %v", c.in, n, src, err, c.kind)
			}
			if c.lib != nil && !errors.Is(err, c.lib) {
				t.Fatalf("error %q does not match the library's %q", err, c.lib)
			}
			matched := 0
			for _, k := range kinds {
				if errors.Is(err, k) {
					matched++
				}
			}
			if matched != 1 {
				t.Fatalf("error %q matches %d kinds", err, matched)
			}
			// The log line: our words lowercase, the library's prefix once.
			msg := quoted.ReplaceAllString(err.Error(), "")
			if msg != strings.ToLower(msg) || strings.Count(err.Error(), "proxyproto:") != 1 {
				t.Fatalf("error text %q", err)
			}
			// The same bytes with more behind them fail the same way: the
			// decision did not depend on what was missing.
			n, _, err2 := Parse([]byte(c.in + request))
			if n != 0 || !errors.Is(err2, c.kind) {
				t.Fatalf("with a request behind: (%d, %v)", n, err2)
			}
		})
	}
}

// TestParseWaits: prefixes that may still become a header ask for more.
func TestParseWaits(t *testing.T) {
	for _, in := range []string{
		"", "P", "PROXY", "PROXY ", "PROXY T", "PROXY TCP4", "PROXY UNKNOWN",
		"PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r",
		"PROXY TCP4 garbage that only the crlf will judge",
		"PROXY UNKNOWN " + strings.Repeat("f", MaxV1HeaderLen-15), // 106 bytes: one more may be the LF
		"\r", "\r\n\r\n\x00", sigV2, sigV2 + "\x21", sigV2 + "\x21\x11", sigV2 + "\x21\x11\x00",
		sigV2 + "\x21\x11\x00\x0c\x01\x02\x03",
		string(v2(0x21, 0x11, "")[:14]) + string([]byte{(MaxV2HeaderLen - 16) >> 8, (MaxV2HeaderLen - 16) & 0xff}), // exactly the cap: wait
	} {
		if n, src, err := Parse([]byte(in)); n != 0 || src.IsValid() || err != nil {
			t.Errorf("Parse(%q) = (%d, %v, %v), want (0, invalid, nil)", in, n, src, err)
		}
	}
}

// TestLibraryQuirks pins the library behaviours the framing works around,
// so an upgrade that changes them is noticed.
func TestLibraryQuirks(t *testing.T) {
	read := func(b []byte) (*pp.Header, error) { return pp.Read(bufio.NewReader(bytes.NewReader(b))) }

	// LOCAL with an AF_INET family but no address: the spec says accept.
	if _, err := read(v2(0x20, 0x11, "")); !errors.Is(err, pp.ErrInvalidLength) {
		t.Errorf("library on LOCAL/AF_INET/len 0: %v", err)
	}
	// PROXY with UNSPEC: the spec lets a receiver accept it.
	if _, err := read(v2(0x21, 0x00, "")); !errors.Is(err, pp.ErrUnsupportedAddressFamilyAndProtocol) {
		t.Errorf("library on PROXY/UNSPEC: %v", err)
	}
	// An undefined family byte: the spec says reject; the library accepts.
	if _, err := read(v2(0x21, 0x40, "")); err != nil {
		t.Errorf("library on family 0x40: %v", err)
	}
	// Extra v1 fields and signed ports pass the library.
	if _, err := read([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 +80 443 x\r\n")); err != nil {
		t.Errorf("library on a lenient v1 line: %v", err)
	}
	// Its v1 signature check stops at "PROXY": the sixth byte may be anything.
	if _, err := read([]byte("PROXYx TCP4 1.2.3.4 5.6.7.8 80 443\r\n")); err != nil {
		t.Errorf("library on PROXYx: %v", err)
	}
	// A v2 header past the default bufio size cannot be peeked.
	big := v2(0x21, 0x11, "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x50\x01\xbb\xe0\x10\x00"+strings.Repeat("x", 0x1000))
	if _, err := read(big); !errors.Is(err, pp.ErrInvalidLength) {
		t.Errorf("library on a %d-byte header: %v", len(big), err)
	}
	// Its v1 writer prints a v4-mapped TCP6 source in dotted form, which
	// its own v1 parser then refuses (net.IP.String unmaps).
	h := &pp.Header{Version: 1, Command: pp.PROXY, TransportProtocol: pp.TCPv6,
		SourceAddr: tcp("[::ffff:10.1.2.3]:1"), DestinationAddr: tcp("[2001:db8::1]:2")}
	b := format(t, h)
	if _, err := read(b); !errors.Is(err, pp.ErrInvalidAddress) {
		t.Errorf("library round trip of %q: %v", b, err)
	}
	if _, _, err := Parse(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("Parse(%q): %v", b, err)
	}
	// Its v2 writer leaves the TLVs out of the length for AF_UNIX, so the
	// TLVs land after the header, where the request belongs.
	h = &pp.Header{Version: 2, Command: pp.PROXY, TransportProtocol: pp.UnixStream,
		SourceAddr: &net.UnixAddr{Net: "unix", Name: "/a"}, DestinationAddr: &net.UnixAddr{Net: "unix", Name: "/b"}}
	b = format(t, h, pp.TLV{Type: pp.PP2_TYPE_ALPN, Value: []byte("h2")})
	if n, _, err := Parse(b); err != nil || n != 16+216 || len(b) != n+5 {
		t.Errorf("Parse(unix+tlv, %d bytes) = (%d, %v), want the 232-byte header without the TLV", len(b), n, err)
	}
}

func BenchmarkParse(b *testing.B) {
	for _, c := range []okCase{specCases[0], specCases[6], libraryCases(b)[8]} {
		buf := append(bytes.Clone(c.hdr), request...)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if n, _, err := Parse(buf); err != nil || n != len(c.hdr) {
					b.Fatal(n, err)
				}
			}
		})
	}
}
