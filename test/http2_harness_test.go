package test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Gozer is a gateway with h2c on its plain listener and an HTTPS listener
// (offering h2) with a certificate of ca for 127.0.0.1, in front of origin.
func h2Gozer(t testing.TB, ca *testCA, origin string, http2Keys map[string]string, server map[string]string) *gozer {
	t.Helper()
	cert, key, _ := ca.issue(t, "h2", false, "127.0.0.1", "localhost")
	cfg := oneOrigin(nil, origin)
	cfg.H2C = true
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key})}
	cfg.HTTP2 = http2Keys
	cfg.Server = server
	return startGozer(t, cfg)
}

// h2cClient is net/http's HTTP/2 client over clear text with prior
// knowledge (Protocols: unencrypted HTTP/2 only).
func h2cClient(t testing.TB) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// h2TLSClient is net/http's client with HTTP/2 over TLS (ALPN h2).
func h2TLSClient(t testing.TB, ca *testCA) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// h2raw is an HTTP/2 client that writes whatever frames a test wants, to
// play the attacker: golang.org/x/net/http2's Framer over a plain socket.
type h2raw struct {
	t   testing.TB
	c   net.Conn
	br  *bufio.Reader // what fr reads: next peeks a whole frame here first
	fr  *http2.Framer
	enc *hpack.Encoder
	eb  bytes.Buffer
}

// dialH2 connects with prior knowledge and sends the preface and settings.
func dialH2(t testing.TB, addr string, settings ...http2.Setting) *h2raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return newH2raw(t, c, settings...)
}

// newH2raw starts HTTP/2 with prior knowledge on c: the preface and settings.
func newH2raw(t testing.TB, c net.Conn, settings ...http2.Setting) *h2raw {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	h := &h2raw{t: t, c: c, br: bufio.NewReaderSize(c, 1<<20)}
	h.fr = http2.NewFramer(c, h.br)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.fr.MaxHeaderListSize = 1 << 20
	h.enc = hpack.NewEncoder(&h.eb)
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return h
}

// block encodes a GET of path (and extra name, value pairs) as a header block.
func (h *h2raw) block(method, path string, extra ...string) []byte {
	h.eb.Reset()
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: method}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "gozer.test"}, {Name: ":path", Value: path}} {
		_ = h.enc.WriteField(f)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		_ = h.enc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return append([]byte(nil), h.eb.Bytes()...)
}

// request sends HEADERS for a request of path on stream id.
func (h *h2raw) request(id uint32, method, path string, end bool, extra ...string) error {
	return h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block(method, path, extra...), EndStream: end, EndHeaders: true})
}

// h2event is what a raw client saw happen to the connection or a stream.
type h2event struct {
	status  string        // the response's :status (a MetaHeadersFrame)
	rst     http2.ErrCode // RST_STREAM's code
	reset   bool          // an RST_STREAM came (its code may be NO_ERROR, 0)
	goaway  bool
	code    http2.ErrCode // GOAWAY's code
	data    int           // DATA bytes
	end     bool          // END_STREAM
	stream  uint32
	closed  bool // the connection ended (EOF, reset)
	timeout bool
}

// next reads the next frame that tells something (acks and settings are
// answered or skipped), within timeout.
func (h *h2raw) next(timeout time.Duration) h2event {
	deadline := time.Now().Add(timeout)
	for {
		_ = h.c.SetReadDeadline(deadline)
		err := h.frameBuffered()
		var f http2.Frame
		if err == nil {
			f, err = h.fr.ReadFrame()
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return h2event{timeout: true}
			}
			return h2event{closed: true}
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			return h2event{stream: f.StreamID, status: f.PseudoValue("status"), end: f.StreamEnded()}
		case *http2.DataFrame:
			return h2event{stream: f.StreamID, data: len(f.Data()), end: f.StreamEnded()}
		case *http2.RSTStreamFrame:
			return h2event{stream: f.StreamID, rst: f.ErrCode, reset: true}
		case *http2.GoAwayFrame:
			return h2event{goaway: true, code: f.ErrCode}
		}
	}
}

// frameBuffered waits until a whole frame is in h.br (or one larger than its
// buffer has begun), so that the deadline of next never falls inside a
// frame: a read that timed out after the frame's header was taken lost it,
// and every frame after it was misread (a status never seen, on a busy
// machine).
func (h *h2raw) frameBuffered() error {
	hdr, err := h.br.Peek(9)
	if err != nil {
		return err
	}
	n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	if _, err := h.br.Peek(9 + n); err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		return err
	}
	return nil
}

// waitGoAway reads until GOAWAY (its code, true) or the connection ended
// without one (false).
func (h *h2raw) waitGoAway(timeout time.Duration) (http2.ErrCode, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ev := h.next(time.Until(deadline))
		if ev.goaway {
			return ev.code, true
		}
		if ev.closed || ev.timeout {
			return 0, false
		}
	}
	return 0, false
}

// waitStream reads until stream id got its status and END_STREAM, or a
// reset; it returns the status (or the reset's code as "RST:CODE") and the
// DATA bytes.
func (h *h2raw) waitStream(id uint32, timeout time.Duration) (string, int) {
	deadline := time.Now().Add(timeout)
	status, n := "", 0
	for time.Now().Before(deadline) {
		ev := h.next(time.Until(deadline))
		switch {
		case ev.closed || ev.timeout:
			return status + " (connection ended)", n
		case ev.goaway:
			return "GOAWAY:" + ev.code.String(), n
		case ev.stream != id:
			continue
		case ev.rst != 0 || ev.stream == id && ev.status == "" && ev.data == 0 && !ev.end:
			return "RST:" + ev.rst.String(), n
		}
		if ev.status != "" && ev.status[0] != '1' {
			status = ev.status
		}
		n += ev.data
		if ev.end {
			return status, n
		}
	}
	return status + " (timeout)", n
}

// servedMeanwhile asserts that an ordinary HTTP/2 client is served.
func servedMeanwhile(t testing.TB, g *gozer) {
	t.Helper()
	resp, err := h2cClient(t).Get(g.URL("/"))
	if err != nil {
		t.Fatalf("an ordinary client meanwhile: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("an ordinary client meanwhile: %d %s", resp.StatusCode, resp.Proto)
	}
}

// toolPath finds a test tool: on PATH, or where `go install` put it
// (make deps installs h2spec there).
func toolPath(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	t.Fatalf("%s is not installed (make deps installs it)", name)
	return ""
}

// h2Ended is /admin/edge's http2.ended_total[reason].
func (g *gozer) h2Ended(t testing.TB, reason string) int64 {
	t.Helper()
	var e struct {
		HTTP2 struct {
			Ended map[string]int64 `json:"ended_total"`
		} `json:"http2"`
	}
	resp, b := fetch(t, g.adminClient, "GET", g.adminURL("/admin/edge"), nil, nil)
	if err := json.Unmarshal(b, &e); resp.StatusCode != 200 || err != nil {
		t.Fatalf("GET /admin/edge: %d %v", resp.StatusCode, err)
	}
	return e.HTTP2.Ended[reason]
}

// h2Streams is /admin/edge's http2.streams_total.
func (g *gozer) h2Streams(t testing.TB) int64 {
	t.Helper()
	var e struct {
		HTTP2 struct {
			Streams int64 `json:"streams_total"`
		} `json:"http2"`
	}
	resp, b := fetch(t, g.adminClient, "GET", g.adminURL("/admin/edge"), nil, nil)
	if err := json.Unmarshal(b, &e); resp.StatusCode != 200 || err != nil {
		t.Fatalf("GET /admin/edge: %d %v", resp.StatusCode, err)
	}
	return e.HTTP2.Streams
}
