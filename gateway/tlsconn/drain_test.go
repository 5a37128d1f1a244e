package tlsconn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// switchConn is the server's transport in these tests: the handshake runs
// over a pipe (as the handshake goroutine reads what the loop feeds it);
// afterwards reads come from the loop-mode wire, as on an event loop.
type switchConn struct {
	net.Conn
	w    *wire
	loop bool
}

func (s *switchConn) Read(p []byte) (int, error) {
	if s.loop {
		return s.w.Read(p)
	}
	return s.Conn.Read(p)
}

var testCert = sync.OnceValue(func() tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
})

// session shakes hands over a pipe, then returns the server side switched to
// loop mode and the ciphertext of payload as the client sent it (in records
// of the client's choosing, then its close_notify).
func session(t testing.TB, version uint16, payload []byte, writes int) (*tls.Conn, *wire, []byte) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	w := &wire{}
	sc := &switchConn{Conn: b, w: w}
	srv := tls.Server(sc, &tls.Config{Certificates: []tls.Certificate{testCert()}, SessionTicketsDisabled: true,
		MinVersion: version, MaxVersion: version})
	cli := tls.Client(a, &tls.Config{InsecureSkipVerify: true, MinVersion: version, MaxVersion: version})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	sc.loop = true
	go func() {
		// The client writes payload in `writes` pieces (a record or more each),
		// then says goodbye.
		step := max(1, len(payload)/max(writes, 1))
		for off := 0; off < len(payload); off += step {
			_, _ = cli.Write(payload[off:min(off+step, len(payload))])
		}
		_ = cli.Close()
	}()
	ct, err := io.ReadAll(b)
	if err != nil && !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("reading the client's records: %v", err)
	}
	return srv, w, ct
}

// feed offers ct to drain in pieces of the sizes splits names (cycled), with a
// plaintext buffer of plainCap bytes that "the kind" empties after each call,
// keeping what crypto/tls did not take for the next call, as gnet's buffer
// does. It returns the plaintext and the error drain ended on.
func feed(srv *tls.Conn, w *wire, ct []byte, splits []byte, plainCap int) ([]byte, error) {
	var got, buffered []byte
	plain := make([]byte, 0, plainCap)
	for i := 0; ; i++ {
		if len(ct) > 0 {
			n := 1
			if len(splits) > 0 {
				n = 1 + int(splits[i%len(splits)])*7
			}
			n = min(n, len(ct))
			buffered = append(buffered, ct[:n]...)
			ct = ct[n:]
		}
		out, used, full, err := drain(srv, w, buffered, plain[:0])
		got = append(got, out...)
		buffered = buffered[used:]
		if err != nil {
			return got, err
		}
		if len(ct) == 0 && !full && used == 0 && len(out) == 0 {
			return got, nil // nothing more will come
		}
	}
}

// TestDrainSplits: every way of cutting the client's records into reads
// delivers the plaintext whole and in order, then the close_notify.
func TestDrainSplits(t *testing.T) {
	payload := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog. "), 2000) // 90 KB: records of 16 KiB
	for _, tc := range []struct {
		name     string
		version  uint16
		splits   []byte
		plainCap int
		writes   int
	}{
		{"1.3 byte by byte", tls.VersionTLS13, nil, 64 << 10, 3},
		{"1.3 odd pieces, small plaintext buffer", tls.VersionTLS13, []byte{0, 200, 3, 255, 17}, 100, 50},
		{"1.2 pieces spanning records", tls.VersionTLS12, []byte{255, 255, 255, 1}, 16 << 10, 7},
		{"1.2 one plaintext byte at a time", tls.VersionTLS12, []byte{100}, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, w, ct := session(t, tc.version, payload, tc.writes)
			got, err := feed(srv, w, ct, tc.splits, tc.plainCap)
			if !bytes.Equal(got, payload) {
				t.Fatalf("got %d bytes of %d (equal prefix: %v)", len(got), len(payload), bytes.HasPrefix(payload, got))
			}
			if !errors.Is(err, io.EOF) {
				t.Fatalf("ended on %v, want io.EOF (the client's close_notify)", err)
			}
		})
	}
}

// TestDrainRefusesTampering: a flipped bit anywhere in a record ends the
// connection with an error, never with wrong plaintext.
func TestDrainRefusesTampering(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), 5000)
	srv, w, ct := session(t, tls.VersionTLS13, payload, 1)
	ct[len(ct)/2] ^= 0x40
	got, err := feed(srv, w, ct, []byte{30}, 4096)
	if err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("a tampered record: error %v, want a record error", err)
	}
	if !bytes.HasPrefix(payload, got) {
		t.Fatalf("a tampered record produced plaintext that was not sent")
	}
}

// FuzzDrain: any split points and buffer size, TLS 1.2 or 1.3: the
// plaintext arrives whole, in order, then io.EOF.
func FuzzDrain(f *testing.F) {
	f.Add([]byte("hello"), []byte{0}, uint8(0), false, uint8(1))
	f.Add(bytes.Repeat([]byte("ab"), 9000), []byte{255, 0, 37}, uint8(3), true, uint8(5))
	f.Add(bytes.Repeat([]byte{0}, 40000), []byte{1, 2, 3}, uint8(255), false, uint8(20))
	f.Fuzz(func(t *testing.T, payload, splits []byte, capSel uint8, tls12 bool, writes uint8) {
		if len(payload) == 0 || len(payload) > 64<<10 {
			return
		}
		version := uint16(tls.VersionTLS13)
		if tls12 {
			version = tls.VersionTLS12
		}
		srv, w, ct := session(t, version, payload, int(writes))
		got, err := feed(srv, w, ct, splits, 1+int(capSel)*97)
		if !bytes.Equal(got, payload) || !errors.Is(err, io.EOF) {
			t.Fatalf("got %d of %d bytes (equal: %v), ended on %v", len(got), len(payload), bytes.Equal(got, payload), err)
		}
	})
}
