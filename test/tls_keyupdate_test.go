package test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// tls13Writer seals (and opens) TLS 1.3 application records
// (TLS_AES_128_GCM_SHA256) with a traffic secret, to send what crypto/tls's
// client cannot: KeyUpdate messages, as many as a test wants, in one write;
// and to read the server's answers across its own key updates.
type tls13Writer struct {
	secret []byte
	aead   cipher.AEAD
	iv     []byte
	seq    uint64
}

// hkdfLabel is HKDF-Expand-Label (RFC 8446 7.1) over SHA-256.
func hkdfLabel(secret []byte, label string, n int) []byte {
	full := "tls13 " + label
	info := []byte{byte(n >> 8), byte(n), byte(len(full))}
	info = append(append(info, full...), 0)
	out, err := hkdf.Expand(sha256.New, secret, string(info), n)
	if err != nil {
		panic(err)
	}
	return out
}

func newTLS13Writer(secret []byte) *tls13Writer {
	w := &tls13Writer{}
	w.setSecret(secret)
	return w
}

func (w *tls13Writer) setSecret(secret []byte) {
	w.secret = secret
	block, err := aes.NewCipher(hkdfLabel(secret, "key", 16))
	if err != nil {
		panic(err)
	}
	w.aead, _ = cipher.NewGCM(block)
	w.iv, w.seq = hkdfLabel(secret, "iv", 12), 0
}

// seal appends a record of content (of TLS content type typ) to dst.
func (w *tls13Writer) seal(dst []byte, typ byte, content []byte) []byte {
	inner := append(append([]byte(nil), content...), typ)
	nonce := w.nonce()
	hdr := []byte{23, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(hdr[3:], uint16(len(inner)+w.aead.Overhead()))
	dst = append(dst, hdr...)
	return w.aead.Seal(dst, nonce, inner, hdr)
}

// nonce is the next record's nonce (RFC 8446 5.3).
func (w *tls13Writer) nonce() []byte {
	nonce := append([]byte(nil), w.iv...)
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], w.seq)
	for i := range s {
		nonce[4+i] ^= s[i]
	}
	w.seq++
	return nonce
}

// open reads one record from r and returns its content type and content,
// following the peer's KeyUpdates (which it returns too, as type 22).
func (w *tls13Writer) open(r io.Reader) (byte, []byte, error) {
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return 0, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[3:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	inner, err := w.aead.Open(nil, w.nonce(), body, hdr)
	if err != nil {
		return 0, nil, err
	}
	end := len(inner) - 1
	for end > 0 && inner[end] == 0 { // padding
		end--
	}
	typ, content := inner[end], inner[:end]
	if typ == 22 && len(content) > 0 && content[0] == 24 { // the peer's KeyUpdate
		w.setSecret(hkdfLabel(w.secret, "traffic upd", 32))
	}
	return typ, content, nil
}

// keyUpdate appends a KeyUpdate asking the peer to update too, then moves
// to the next secret (RFC 8446 4.6.3, 7.2).
func (w *tls13Writer) keyUpdate(dst []byte) []byte { return w.keyUpdateAsking(dst, 1) }

// keyUpdateAsking is keyUpdate with its request_update field: 1 asks the
// peer to update too, 0 does not.
func (w *tls13Writer) keyUpdateAsking(dst []byte, ask byte) []byte {
	dst = w.seal(dst, 22, []byte{24, 0, 0, 1, ask})
	w.setSecret(hkdfLabel(w.secret, "traffic upd", 32))
	return dst
}

// dialTLS13Raw makes a TLS 1.3 connection to g's HTTPS listener (HTTP/1.1)
// and returns the socket, with no application data sent yet, a writer that
// seals records with the client's traffic secret and one that opens the
// server's.
func dialTLS13Raw(t *testing.T, g *gozer, ca *testCA) (net.Conn, *tls13Writer, *tls13Writer) {
	t.Helper()
	raw, err := net.Dial("tcp", g.HTTPSAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	var keys bytes.Buffer
	tc := tls.Client(raw, &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS13, KeyLogWriter: &keys})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if cs := tc.ConnectionState().CipherSuite; cs != tls.TLS_AES_128_GCM_SHA256 {
		t.Fatalf("cipher suite %s: the test seals TLS_AES_128_GCM_SHA256 only", tls.CipherSuiteName(cs))
	}
	secrets := map[string][]byte{}
	for _, line := range strings.Split(keys.String(), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			secrets[f[0]], _ = hex.DecodeString(f[2])
		}
	}
	cs, ss := secrets["CLIENT_TRAFFIC_SECRET_0"], secrets["SERVER_TRAFFIC_SECRET_0"]
	if cs == nil || ss == nil {
		t.Fatal("no traffic secrets in the key log")
	}
	return raw, newTLS13Writer(cs), newTLS13Writer(ss)
}

// readTLS13 reads the server's records until the connection ends or the
// application data holds until; it counts the server's KeyUpdates.
func readTLS13(r io.Reader, in *tls13Writer, until string) (data string, keyUpdates int, err error) {
	var b strings.Builder
	for !strings.Contains(b.String(), until) {
		typ, content, err := in.open(r)
		if err != nil {
			return b.String(), keyUpdates, err
		}
		switch {
		case typ == 23:
			b.Write(content)
		case typ == 22 && len(content) > 0 && content[0] == 24:
			keyUpdates++
		}
	}
	return b.String(), keyUpdates, nil
}

// TestTLSKeyUpdateFlood: a client that asks for new keys (a KeyUpdate that
// requests one back) thousands of times in one write, 15 between two
// one-byte application records (crypto/tls allows 16), gets 8 answers, then
// its connection closes, counted and logged; each answer was a write, and
// 16,800 of them held the loop's other clients for up to 360 ms. A client
// that updates its keys a few times is served as usual. KeyUpdates that ask
// for no answer (2.25 million on one connection in a review's test) end the
// connection past 64 records without data a minute.
func TestTLSKeyUpdateFlood(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "ku")
	cfg := oneOrigin(nil, o.Addr)
	ca := withHTTPS(t, &cfg)
	cfg.Server = map[string]string{"event_loops": "1"}
	g := startGozer(t, cfg)

	t.Run("a few key updates", func(t *testing.T) {
		raw, out, in := dialTLS13Raw(t, g, ca)
		var wire []byte
		for range 3 {
			wire = out.keyUpdate(wire)
		}
		wire = out.seal(wire, 23, []byte(keyUpdateRequest+"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
		if _, err := raw.Write(wire); err != nil {
			t.Fatal(err)
		}
		_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
		data, updates, err := readTLS13(raw, in, "never") // to the close the second request asked for
		if !errors.Is(err, io.EOF) || updates != 3 || strings.Count(data, "HTTP/1.1 200 OK") != 2 {
			t.Fatalf("3 key updates and 2 requests: %d key updates back, %q, %v", updates, data, err)
		}
	})

	t.Run("a flood that asks for no answer", func(t *testing.T) {
		// Nothing to count on the way out: the records are counted as they
		// are read (15 without data, then one with a byte).
		before := g.tlsStats(t).Handshakes.ClosedOnRecordError
		data, _ := keyUpdateFlood(t, g, ca, 0)
		if n := strings.Count(data, "HTTP/1.1 200"); n > 0 {
			t.Errorf("%d requests answered: the connection should end within its first request's 64 key updates", n)
		}
		if n := g.tlsStats(t).Handshakes.ClosedOnRecordError; n != before+1 {
			t.Errorf("closed_on_record_error_total %d → %d, want one more", before, n)
		}
		g.waitLog(t, "TLS connection closed on a record error", "records without data past 64 a minute")
	})

	t.Run("a flood", func(t *testing.T) {
		before := g.tlsStats(t).Handshakes.ClosedOnRecordError
		_, updates := keyUpdateFlood(t, g, ca, 1)
		if updates > 8 {
			t.Errorf("%d key updates answered, want 8 at most", updates)
		}
		if n := g.tlsStats(t).Handshakes.ClosedOnRecordError; n != before+1 {
			t.Errorf("closed_on_record_error_total %d → %d, want one more", before, n)
		}
		g.waitLog(t, "TLS connection closed on a record error", "key updates requested past 8 a minute")
		resp, body := fetch(t, newClient(t, 10*time.Second), "GET", g.URL("/x"), nil, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), "hello from demo-origin ku") {
			t.Errorf("another client after the flood: %d %q", resp.StatusCode, body)
		}
	})
}

// keyUpdateRequest is what the key update tests ask.
const keyUpdateRequest = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"

// keyUpdateFlood sends 40 requests a byte per record, each byte behind 15
// KeyUpdates (ask: 1 asks for one back, 0 does not), in one write, and reads
// until the connection ends, which it must: it returns the application data
// and the KeyUpdates that came back.
func keyUpdateFlood(t *testing.T, g *gozer, ca *testCA, ask byte) (string, int) {
	t.Helper()
	raw, out, in := dialTLS13Raw(t, g, ca)
	requests := strings.Repeat(keyUpdateRequest, 40)
	var wire []byte
	for i := range len(requests) {
		for range 15 {
			wire = out.keyUpdateAsking(wire, ask)
		}
		wire = out.seal(wire, 23, []byte{requests[i]})
	}
	go func() { _, _ = raw.Write(wire) }()
	_ = raw.SetReadDeadline(time.Now().Add(30 * time.Second))
	data, updates, err := readTLS13(raw, in, "never")
	t.Logf("%d key updates (request_update %d), %d answered, %d requests answered, then %v",
		15*len(requests), ask, updates, strings.Count(data, "HTTP/1.1 200"), err)
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the flooding connection still open (%v)", err)
	}
	return data, updates
}
