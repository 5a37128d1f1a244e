package push

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gozer/gateway/internal/fuzzseed"
)

const fuzzMax = 512

// frameSeeds are decoder inputs: good traffic and every protocol error of the
// table tests. Committed under testdata/fuzz/FuzzFrameDecoder (regenerate with
// GOZER_WRITE_CORPUS=1).
func frameSeeds() [][2][]byte {
	long := strings.Repeat("z", 300)
	return [][2][]byte{
		{cf(OpText, true, "hello"), []byte{0}},
		{cat(cf(OpText, false, "he"), cf(OpPing, true, "p"), cf(OpContinuation, true, "llo")), []byte{2, 5, 1}},
		{cat(cf(OpBinary, true, long), cf(OpPong, true, "")), []byte{130, 7}},
		{cat(cf(OpText, false, "a\xf0\x9d"), cf(OpContinuation, false, "\x84"), cf(OpContinuation, true, "\x9e")), []byte{1}},
		{cat(cf(OpText, true, "x"), cf(OpClose, true, "\x03\xe8bye"), cf(OpText, true, "after")), []byte{3, 3}},
		{cf(OpClose, true, ""), nil},
		{cf(OpClose, true, "\x03"), nil},
		{cf(OpClose, true, "\x13\x88"), nil},
		{cf(OpClose, true, "\x03\xe8\xff"), nil},
		{raw(0x81, 0x02, nil, "hi"), nil},
		{raw(0xC1, 0x82, nil, "hi"), nil},
		{raw(0x83, 0x80, nil, ""), nil},
		{raw(0x09, 0x80, nil, ""), nil},
		{cf(OpPing, true, strings.Repeat("p", 126)), nil},
		{cf(OpContinuation, true, "x"), nil},
		{cat(cf(OpText, false, "a"), cf(OpText, true, "b")), nil},
		{raw(0x82, 0x80|127, []byte{0x80, 0, 0, 0, 0, 0, 0, 1}, ""), nil},
		{raw(0x82, 0x80|127, []byte{0, 0, 0, 0, 0, 0, 2, 1}, ""), nil},
		{cf(OpText, true, "a\xffb"), []byte{0, 0}},
		{cat(cf(OpText, false, "ok\xc0\xaf"), cf(OpPing, true, "never")), nil},
		{cf(OpBinary, true, strings.Repeat("b", fuzzMax+1)), []byte{200}},
		{[]byte("GET / HTTP/1.1\r\n\r\n"), nil},
	}
}

// checkEvents asserts what any decoder output must satisfy.
func checkEvents(t *testing.T, evs []event) {
	t.Helper()
	for i, e := range evs {
		switch e.op {
		case OpText:
			if !utf8.ValidString(e.payload) {
				t.Fatalf("event %d: invalid utf-8 text delivered", i)
			}
		case OpBinary:
		case OpPing, OpPong:
			if len(e.payload) > MaxControlPayload {
				t.Fatalf("event %d: control payload of %d", i, len(e.payload))
			}
		case OpClose:
			if i != len(evs)-1 {
				t.Fatalf("event %d: events after close", i)
			}
			if e.code != CloseNoStatus && !e.code.Valid() {
				t.Fatalf("close code %d delivered", e.code)
			}
		default:
			t.Fatalf("event %d: opcode %v delivered", i, e.op)
		}
		if len(e.payload) > fuzzMax {
			t.Fatalf("event %d: %d bytes over the maximum", i, len(e.payload))
		}
	}
}

func chunker(splits []byte) func(int) int {
	if len(splits) == 0 {
		return func(int) int { return 1 }
	}
	return func(i int) int { return int(splits[i%len(splits)]) + 1 }
}

func FuzzFrameDecoder(f *testing.F) {
	for _, s := range frameSeeds() {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, data, splits []byte) {
		// 1. Arbitrary input: never panics, and any split gives what one shot gives.
		pool := NewBufferPool(1)
		d1, d2 := NewDecoder(fuzzMax, pool), NewDecoder(fuzzMax, pool)
		evs1, err1 := feed(&d1, data, nil)
		evs2, err2 := feed(&d2, data, chunker(splits))
		if err1 != err2 || fmt.Sprint(evs1) != fmt.Sprint(evs2) {
			t.Fatalf("one shot: %v %v\nsplit:    %v %v", evs1, err1, evs2, err2)
		}
		checkEvents(t, evs1)

		// 2. Round trip: data as one message, fragmented where splits say, with
		// pings between fragments, masked as a client would.
		op := OpBinary
		if len(splits) > 0 && splits[0]&1 == 1 {
			op = OpText
		}
		mask := [4]byte{byte(len(data)), 0x5a, byte(len(splits)), 0xc3}
		var wire []byte
		var wantEvs []event
		rest, frameOp, total := data, op, 0
		wantCode := CloseCode(0)
		for i := 1; ; i++ {
			k := len(rest)
			if i < min(len(splits), 64) { // at most 64 fragments: keeps runs fast
				k = min(k, int(splits[i]))
			}
			fin := k == len(rest)
			wire = AppendMaskedFrame(wire, frameOp, fin, mask, rest[:k])
			total += k
			switch {
			case wantCode != 0:
			case total > fuzzMax:
				wantCode = CloseMessageTooBig
			case op == OpText && fin && !utf8.Valid(data):
				wantCode = CloseInvalidPayload
			case op == OpText && !fin && !validUTF8Prefix(data[:total]):
				wantCode = CloseInvalidPayload // fragments fail fast
			}
			rest, frameOp = rest[k:], OpContinuation
			if fin {
				break
			}
			if splits[i]&0x80 != 0 {
				ping := fmt.Sprint("p", i)
				wire = AppendMaskedFrame(wire, OpPing, true, mask, []byte(ping))
				if wantCode == 0 {
					wantEvs = append(wantEvs, event{OpPing, ping, 0})
				}
			}
		}
		if wantCode == 0 {
			wantEvs = append(wantEvs, event{op, string(data), 0})
		}
		for _, chunk := range []func(int) int{nil, chunker(splits)} {
			d := NewDecoder(fuzzMax, pool)
			evs, err := feed(&d, wire, chunk)
			if code := closeCode(err); code != wantCode {
				t.Fatalf("round trip: error %v, want code %d", err, wantCode)
			}
			if fmt.Sprint(evs) != fmt.Sprint(wantEvs) {
				t.Fatalf("round trip: %v, want %v", evs, wantEvs)
			}
		}
	})
}

// validUTF8Prefix reports whether some bytes appended to p make it valid
// UTF-8, by trying completions of its last bytes: an oracle independent of the
// decoder's.
func validUTF8Prefix(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	for j := 1; j <= 3 && j <= len(p); j++ {
		head, tail := p[:len(p)-j], p[len(p)-j:]
		if !utf8.Valid(head) {
			continue
		}
		for n := 1; n <= 4-j; n++ {
			for c := byte(0x80); c <= 0xBF; c++ {
				q := append(append([]byte(nil), tail...), c)
				for k := 1; k < n; k++ {
					q = append(q, 0x80)
				}
				if utf8.Valid(q) {
					return true
				}
			}
		}
	}
	return false
}

// handshakeSeeds: method, protocol, header block ("Name: value" lines).
var handshakeSeeds = [][3]string{
	{"GET", "HTTP/1.1", "Host: a\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: " + rfcKey + "\nSec-WebSocket-Version: 13"},
	{"GET", "HTTP/1.1", "Upgrade: WebSocket\nConnection: keep-alive, upgrade\nSec-WebSocket-Key:  " + rfcKey + " \nSec-WebSocket-Version: 13"},
	{"GET", "HTTP/1.1", "Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: " + rfcKey + "\nSec-WebSocket-Version: 8"},
	{"GET", "HTTP/1.1", "Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: " + rfcKey + "\nSec-WebSocket-Key: " + rfcKey + "\nSec-WebSocket-Version: 13"},
	{"GET", "HTTP/1.1", "Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZQ==\nSec-WebSocket-Version: 13"},
	{"POST", "HTTP/1.0", "Upgrade: websocket"},
	{"GET", "HTTP/1.1", ""},
}

func parseHeaderBlock(block string) mapHeaders {
	h := http.Header{}
	for _, line := range strings.Split(block, "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok {
			h[http.CanonicalHeaderKey(strings.TrimSpace(name))] = append(h[http.CanonicalHeaderKey(strings.TrimSpace(name))], strings.TrimLeft(value, " "))
		}
	}
	return mapHeaders(h)
}

func FuzzHandshake(f *testing.F) {
	for _, s := range handshakeSeeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, method, proto, block string) {
		h := parseHeaderBlock(block)
		for _, hh := range []Headers{h, HeaderFunc(h.Peek)} {
			key, err := CheckHandshake([]byte(method), []byte(proto), hh)
			if err != nil {
				var he *HandshakeError
				if !errors.As(err, &he) || (he.Status != 400 && he.Status != 426) {
					t.Fatalf("error %v", err)
				}
				resp, perr := http.ReadResponse(bufio.NewReader(bytes.NewReader(he.AppendResponse(nil))), nil)
				if perr != nil || resp.StatusCode != he.Status {
					t.Fatalf("refusal does not parse: %v", perr)
				}
				continue
			}
			if raw, derr := base64.StdEncoding.DecodeString(string(key)); derr != nil || len(raw) != 16 || method != "GET" {
				t.Fatalf("accepted key %q (method %q)", key, method)
			}
			resp, perr := http.ReadResponse(bufio.NewReader(bytes.NewReader(AppendAccept(nil, key))), nil)
			if perr != nil || resp.StatusCode != 101 || len(resp.Header.Get("Sec-WebSocket-Accept")) != 28 {
				t.Fatalf("accept does not parse: %v", perr)
			}
		}
	})
}

func FuzzToken(f *testing.F) {
	good, _ := Sign(secret, "user:42", t0.Add(time.Hour))
	f.Add(good, "user:42", t0.Add(time.Hour).Unix(), uint16(3))
	f.Add("e30.e30", "a", int64(0), uint16(0))
	f.Add("", "a:b@c", int64(-1), uint16(9))
	f.Add(good+"=", "x", int64(1<<62), uint16(60))
	f.Fuzz(func(t *testing.T, token, id string, expiry int64, pos uint16) {
		// Arbitrary tokens: no panic, and only authentic ones pass.
		if got, err := VerifyClaims(secret, token, t0); err == nil {
			// Only what Sign makes passes: re-signing the same claims and
			// expiry gives the very same token.
			payload, _ := base64.RawURLEncoding.DecodeString(token[:strings.IndexByte(token, '.')])
			exp := int64(binary.BigEndian.Uint64(payload[1:9]))
			if again, _ := SignClaims(secret, got, time.Unix(exp, 0)); again != token {
				t.Fatalf("token %q accepted as %+v but SignClaims gives %q", token, got, again)
			}
		} else if !errors.Is(err, ErrTokenMalformed) && !errors.Is(err, ErrTokenSignature) && !errors.Is(err, ErrTokenExpired) {
			t.Fatalf("unexpected error %v", err)
		}
		// Round trip for valid ids, and any change of one character fails.
		if !ValidClientID(id) || expiry <= -1<<62 || expiry >= 1<<62 {
			return
		}
		exp := time.Unix(expiry, 0)
		tok, err := Sign(secret, id, exp)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Verify(secret, tok, exp.Add(-time.Second)); err != nil || got != id {
			t.Fatalf("round trip: %q %v", got, err)
		}
		if _, err := Verify(secret, tok, exp); !errors.Is(err, ErrTokenExpired) {
			t.Fatalf("at expiry: %v", err)
		}
		i := int(pos) % len(tok)
		if tok[i] != '.' {
			if _, err := Verify(secret, flip(tok, i), exp.Add(-time.Second)); err == nil {
				t.Fatalf("tampered byte %d accepted", i)
			}
		}
	})
}

// TestWriteSeedCorpus regenerates testdata/fuzz with GOZER_WRITE_CORPUS=1, in
// the "go test fuzz v1" format.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("GOZER_WRITE_CORPUS") != "1" {
		t.Skip("set GOZER_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	write := func(target string, i int, args ...any) { fuzzseed.Write(t, target, i, args...) }
	for i, s := range frameSeeds() {
		write("FuzzFrameDecoder", i, s[0], s[1])
	}
	for i, s := range handshakeSeeds {
		write("FuzzHandshake", i, s[0], s[1], s[2])
	}
	good, _ := Sign(secret, "user:42", t0.Add(time.Hour))
	write("FuzzToken", 0, good, "user:42", t0.Add(time.Hour).Unix(), uint16(3))
	write("FuzzToken", 1, good[:len(good)-2]+"AA", "device-1", int64(1), uint16(0))
	write("FuzzToken", 2, "x.y", "a", int64(-5), uint16(100))
	for i, s := range controlSeeds {
		write("FuzzParseControl", i, []byte(s))
	}
	for i, s := range claimSeeds() {
		write("FuzzTokenClaims", i, s.token, s.id, s.topics, s.pos)
	}
	for i, e := range entrySeeds() {
		write("FuzzHistoryEntry", i, e)
	}
}
