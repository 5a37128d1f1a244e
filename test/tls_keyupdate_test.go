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
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// tls13Writer seals TLS 1.3 application records (TLS_AES_128_GCM_SHA256)
// with a client's traffic secret, to send what crypto/tls's client cannot:
// KeyUpdate messages, as many as a test wants, in one write.
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
	nonce := append([]byte(nil), w.iv...)
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], w.seq)
	for i := range s {
		nonce[4+i] ^= s[i]
	}
	w.seq++
	hdr := []byte{23, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(hdr[3:], uint16(len(inner)+w.aead.Overhead()))
	dst = append(dst, hdr...)
	return w.aead.Seal(dst, nonce, inner, hdr)
}

// keyUpdate appends a KeyUpdate asking the peer to update too, then moves
// to the next secret (RFC 8446 4.6.3, 7.2).
func (w *tls13Writer) keyUpdate(dst []byte) []byte {
	dst = w.seal(dst, 22, []byte{24, 0, 0, 1, kuRequested})
	w.setSecret(hkdfLabel(w.secret, "traffic upd", 32))
	return dst
}

// dialTLS13Raw makes a TLS 1.3 connection to g's HTTPS listener (HTTP/1.1)
// and returns the socket, with no application data sent yet, and a writer
// that seals records with the client's traffic secret.
func dialTLS13Raw(t *testing.T, g *gozer, ca *testCA) (net.Conn, *tls13Writer) {
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
	for _, line := range strings.Split(keys.String(), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "CLIENT_TRAFFIC_SECRET_0" {
			secret, _ := hex.DecodeString(f[2])
			return raw, newTLS13Writer(secret)
		}
	}
	t.Fatal("no client traffic secret in the key log")
	return nil, nil
}

func TestDebugKeyUpdateFlood(t *testing.T) {
	o := startOrigin(t, "ku")
	cfg := oneOrigin(nil, o.Addr)
	ca := withHTTPS(t, &cfg)
	cfg.Server = map[string]string{"event_loops": "1"}
	g := startGozer(t, cfg)
	raw, w := dialTLS13Raw(t, g, ca)
	req := strings.Repeat("GET /x HTTP/1.1\r\nHost: a\r\n\r\n", 40)
	var wire []byte
	for i := range len(req) {
		for range 15 {
			wire = w.keyUpdate(wire)
		}
		wire = w.seal(wire, 23, []byte{req[i]})
	}
	fmt.Printf("DEBUG %d bytes, %d key updates\n", len(wire), 15*len(req))
	t0 := time.Now()
	done := make(chan struct{})
	var got int64
	go func() {
		defer close(done)
		_ = raw.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, _ = io.Copy(io.Discard, raw)
	}()
	go func() { _, _ = raw.Write(wire) }()
	b := dialRaw(t, g.ProxyAddr)
	served, worst := 0, time.Duration(0)
	for time.Since(t0) < 3*time.Second {
		t1 := time.Now()
		resp, _ := b.roundTrip("GET /x HTTP/1.1\r\nHost: b\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		worst = max(worst, time.Since(t1))
		served++
	}
	raw.Close()
	<-done
	fmt.Printf("DEBUG other served %d worst %v; flood conn got %d bytes\n", served, worst, got)
}

var kuRequested byte = 0
