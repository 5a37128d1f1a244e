package push

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
)

// These tests prove the wire format against a real websocket implementation:
// gorilla/websocket as the client, and a tiny server made of this package's
// handshake check, decoder and encoder on a plain net.Conn. The server plays
// the event loop: it appends what it reads to an inbound buffer, decodes,
// and discards what was consumed.

type wireServer struct {
	ln     net.Listener
	max    int
	events chan string // what the server saw, for the test to check
	wg     sync.WaitGroup
}

func startWireServer(t *testing.T, maxMessage int) *wireServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &wireServer{ln: ln, max: maxMessage, events: make(chan string, 100)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *wireServer) url() string { return "ws://" + s.ln.Addr().String() + "/push/ws" }

func (s *wireServer) saw(e string) { s.events <- e }

// next returns the next server event, failing after a timeout.
func (s *wireServer) next(t *testing.T) string {
	t.Helper()
	select {
	case e := <-s.events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no server event")
		return ""
	}
}

func (s *wireServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	key, err := CheckHandshake([]byte(req.Method), []byte(req.Proto), mapHeaders(req.Header))
	if err != nil {
		var he *HandshakeError
		errors.As(err, &he)
		_, _ = c.Write(he.AppendResponse(nil))
		s.saw("refused " + fmt.Sprint(he.Status))
		return
	}
	if _, err := c.Write(AppendAccept(nil, key)); err != nil {
		return
	}
	pool := NewBufferPool(1)
	d := NewDecoder(s.max, pool)
	defer d.Release()
	inbuf := make([]byte, 0, 4096)
	out := make([]byte, 0, 4096)
	tmp := make([]byte, 1500)
	closing := false // we sent a close frame and wait for the echo
	for {
		n, err := br.Read(tmp)
		if err != nil {
			return
		}
		inbuf = append(inbuf, tmp[:n]...)
		buf, consumed := inbuf, 0
		out = out[:0]
		done := false
		for !done {
			k, m, derr := d.Decode(buf)
			buf, consumed = buf[k:], consumed+k
			if derr != nil {
				var ce *CloseError
				errors.As(derr, &ce)
				s.saw(fmt.Sprint("error ", ce.Code))
				out = AppendClose(out, ce.Code, ce.Reason)
				_, _ = c.Write(out)
				lingerClose(c)
				return
			}
			if !m.Ok() {
				break
			}
			switch m.Op {
			case OpText, OpBinary:
				switch string(m.Payload) {
				case "ping-me":
					out = AppendPing(out, []byte("srv"))
				case "close-me":
					out = AppendClose(out, CloseGoingAway, "going away")
					closing = true
				default:
					s.saw(fmt.Sprintf("%v %d", m.Op, len(m.Payload)))
					out = AppendFrame(out, m.Op, m.Payload) // echo
				}
			case OpPing:
				s.saw("ping " + string(m.Payload))
				out = AppendPong(out, m.Payload)
			case OpPong:
				s.saw("pong " + string(m.Payload))
				out = AppendText(out, "pong:"+string(m.Payload))
			case OpClose:
				s.saw(fmt.Sprintf("close %d %s", m.Code, m.Payload))
				if !closing {
					out = AppendClose(out, m.Code, string(m.Payload)) // echo
				}
				done = true
			}
		}
		inbuf = append(inbuf[:0], inbuf[consumed:]...) // Discard(consumed)
		if _, err := c.Write(out); err != nil {
			return
		}
		if d.Closed() {
			lingerClose(c)
			return
		}
	}
}

// lingerClose shuts the write side and waits for the client to close, so the
// close frame is read rather than lost to a reset.
func lingerClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = io.Copy(io.Discard, c)
}

// recorder keeps what the client wrote, to show its framing.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.out.Write(p)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

// frames parses the client's frames (after its HTTP request) with gobwas.
func (r *recorder) frames(t *testing.T) []ws.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.out.Bytes()
	i := bytes.Index(b, []byte("\r\n\r\n"))
	rd := bytes.NewReader(b[i+4:])
	var hs []ws.Header
	for rd.Len() > 0 {
		f, err := readFrame(rd)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, f.Header)
	}
	return hs
}

func dial(t *testing.T, s *wireServer, writeBuf int) (*websocket.Conn, *recorder) {
	t.Helper()
	var rec *recorder
	d := websocket.Dialer{
		WriteBufferSize:  writeBuf,
		HandshakeTimeout: 5 * time.Second,
		NetDial: func(network, addr string) (net.Conn, error) {
			c, err := net.Dial(network, addr)
			if err != nil {
				return nil, err
			}
			rec = &recorder{Conn: c}
			return rec, nil
		},
	}
	c, resp, err := d.Dial(s.url(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c, rec
}

func TestWireEcho(t *testing.T) {
	s := startWireServer(t, 1<<20)
	c, _ := dial(t, s, 0)
	tests := []struct {
		name string
		typ  int
		msg  []byte
	}{
		{"text", websocket.TextMessage, []byte("hello, gozer ✓")},
		{"empty text", websocket.TextMessage, nil},
		{"binary", websocket.BinaryMessage, []byte{0, 1, 2, 0xff}},
		{"16-bit length", websocket.BinaryMessage, bytes.Repeat([]byte{7}, 1000)},
		{"64-bit length", websocket.BinaryMessage, bytes.Repeat([]byte{9}, 200_000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.WriteMessage(tc.typ, tc.msg); err != nil {
				t.Fatal(err)
			}
			typ, got, err := c.ReadMessage()
			if err != nil || typ != tc.typ || !bytes.Equal(got, tc.msg) {
				t.Fatalf("echo: type %d, %d bytes, %v", typ, len(got), err)
			}
		})
	}
}

func TestWireFragmentedWithPing(t *testing.T) {
	s := startWireServer(t, 1<<20)
	c, rec := dial(t, s, 128) // a small write buffer: gorilla flushes fragments
	pongs := make(chan string, 1)
	c.SetPongHandler(func(p string) error { pongs <- p; return nil })

	msg := []byte(strings.Repeat("fragmented ✓ ", 100))
	w, err := c.NextWriter(websocket.TextMessage)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(msg[:700]); err != nil {
		t.Fatal(err)
	}
	// A control frame between the fragments of a message.
	if err := c.WriteControl(websocket.PingMessage, []byte("mid"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(msg[700:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	typ, got, err := c.ReadMessage()
	if err != nil || typ != websocket.TextMessage || !bytes.Equal(got, msg) {
		t.Fatalf("echo of fragmented message: %d bytes, %v", len(got), err)
	}
	select {
	case p := <-pongs:
		if p != "mid" {
			t.Fatalf("pong %q", p)
		}
	default:
		t.Fatal("no pong for the ping between fragments")
	}
	if e := s.next(t); e != "ping mid" {
		t.Fatalf("server saw %q first", e)
	}
	if e := s.next(t); e != fmt.Sprint("text ", len(msg)) {
		t.Fatalf("server saw %q", e)
	}
	// The client really fragmented it, with the ping in between.
	var shape []string
	for _, h := range rec.frames(t) {
		shape = append(shape, fmt.Sprintf("%d/%v", h.OpCode, h.Fin))
	}
	joined := strings.Join(shape, " ")
	if !strings.HasPrefix(joined, "1/false ") || !strings.Contains(joined, " 9/true ") || !strings.HasSuffix(joined, " 0/true") {
		t.Fatalf("client frames: %s", joined)
	}
}

func TestWireServerPing(t *testing.T) {
	s := startWireServer(t, 1<<20)
	c, _ := dial(t, s, 0)
	if err := c.WriteMessage(websocket.TextMessage, []byte("ping-me")); err != nil {
		t.Fatal(err)
	}
	// gorilla answers the server's ping with a pong; the server reports it.
	_, got, err := c.ReadMessage()
	if err != nil || string(got) != "pong:srv" {
		t.Fatalf("%q %v", got, err)
	}
}

func TestWireClose(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		send      func(c *websocket.Conn) error
		wantCode  int
		wantText  string
		serverSaw string
	}{
		{
			name: "client closes with code and reason",
			send: func(c *websocket.Conn) error {
				return c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye now"))
			},
			wantCode:  4001,
			wantText:  "bye now",
			serverSaw: "close 4001 bye now",
		},
		{
			name:      "client closes without code",
			send:      func(c *websocket.Conn) error { return c.WriteMessage(websocket.CloseMessage, nil) },
			wantCode:  websocket.CloseNoStatusReceived,
			serverSaw: "close 1005 ",
		},
		{
			name:      "server goes away",
			send:      func(c *websocket.Conn) error { return c.WriteMessage(websocket.TextMessage, []byte("close-me")) },
			wantCode:  1001,
			wantText:  "going away",
			serverSaw: "close 1001 ", // gorilla echoes the code, without the reason
		},
		{
			name:      "message too big",
			max:       1024,
			send:      func(c *websocket.Conn) error { return c.WriteMessage(websocket.BinaryMessage, make([]byte, 2000)) },
			wantCode:  1009,
			wantText:  "message over the maximum size",
			serverSaw: "error 1009",
		},
		{
			name: "fragmented message too big",
			max:  1024,
			send: func(c *websocket.Conn) error {
				w, _ := c.NextWriter(websocket.BinaryMessage)
				w.Write(make([]byte, 1500))
				return w.Close()
			},
			wantCode:  1009,
			serverSaw: "error 1009",
		},
		{
			name:      "invalid utf-8",
			send:      func(c *websocket.Conn) error { return c.WriteMessage(websocket.TextMessage, []byte("bad \xff")) },
			wantCode:  1007,
			wantText:  "text message not valid utf-8",
			serverSaw: "error 1007",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startWireServer(t, tc.max)
			c, _ := dial(t, s, 512)
			if err := tc.send(c); err != nil {
				t.Fatal(err)
			}
			_, _, err := c.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != tc.wantCode || (tc.wantText != "" && ce.Text != tc.wantText) {
				t.Fatalf("client got %v, want close %d %q", err, tc.wantCode, tc.wantText)
			}
			if e := s.next(t); e != tc.serverSaw {
				t.Fatalf("server saw %q, want %q", e, tc.serverSaw)
			}
		})
	}
}

func TestWireBadHandshake(t *testing.T) {
	s := startWireServer(t, 0)
	tests := []struct {
		name    string
		req     string
		status  int
		version string
	}{
		{"plain get", "GET /push/ws HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"version 8", "GET /push/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + rfcKey + "\r\nSec-WebSocket-Version: 8\r\n\r\n", 426, "13"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", s.ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || resp.Header.Get("Sec-WebSocket-Version") != tc.version {
				t.Fatalf("%d version %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Version"))
			}
			if e := s.next(t); e != fmt.Sprint("refused ", tc.status) {
				t.Fatalf("server saw %q", e)
			}
		})
	}
	// A client asking for permessage-deflate gets plain frames.
	d := websocket.Dialer{EnableCompression: true}
	c, resp, err := d.Dial(s.url(), nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Extensions") != "" {
		t.Fatalf("dial asking for compression: %v", err)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("plain")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.ReadMessage(); err != nil || string(got) != "plain" {
		t.Fatalf("%q %v", got, err)
	}
}
