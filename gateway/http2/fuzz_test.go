package http2

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"gozer/filters"
	"gozer/gateway/config"
	"gozer/gateway/exchange"
	"gozer/gateway/loop"
	"gozer/gateway/origin"
	"gozer/gateway/telemetry"
)

// The connection's frame handling without sockets: a fake gnet connection
// holds what the client sent and takes what Gozer writes; requests go to an
// exchange whose routes match nothing (a local 404) but /never-, routed to an
// origin the loop has no connections for (exchange.Config.Origins nil): such
// a request waits for its body, then fails with a 500 (testdata/fuzz/FuzzConn
// holds the two inputs that found the nil dereference this was).

// noLoop is a gnet.EventLoop for a Loop that never leaves the test's goroutine.
// Tasks given to Execute run at once, or wait in *tasks when it is set (the
// end of gnet's batch of events, for the test to run).
type noLoop struct {
	closed func(gnet.Conn)
	tasks  *[]gnet.Runnable
}

func (noLoop) Register(context.Context, net.Addr) (<-chan gnet.RegisteredResult, error) {
	return nil, nil
}

// Enroll refuses: a loop.Turn then runs through Execute (and leaks no
// socket pair, nor a goroutine waiting on a channel that never answers).
func (noLoop) Enroll(context.Context, net.Conn) (<-chan gnet.RegisteredResult, error) {
	return nil, errors.New("test loop: no enrollment")
}
func (n noLoop) Execute(ctx context.Context, r gnet.Runnable) error {
	if n.tasks != nil {
		*n.tasks = append(*n.tasks, r)
		return nil
	}
	return r.Run(ctx)
}
func (noLoop) Schedule(context.Context, gnet.Runnable, time.Duration) error { return nil }
func (n noLoop) Close(c gnet.Conn) error                                    { n.closed(c); return nil }

// fakeConn is the client's socket: in is what it sent, out what it got.
type fakeConn struct {
	gnet.Conn
	in, out []byte
	writes  int
	ctx     any
	closed  bool
}

func (f *fakeConn) Peek(int) ([]byte, error) { return f.in, nil }
func (f *fakeConn) Discard(n int) (int, error) {
	if n < 0 || n > len(f.in) {
		n = len(f.in)
	}
	f.in = f.in[n:]
	return n, nil
}
func (f *fakeConn) InboundBuffered() int  { return len(f.in) }
func (f *fakeConn) OutboundBuffered() int { return 0 }
func (f *fakeConn) Write(b []byte) (int, error) {
	f.writes++
	f.out = append(f.out, b...)
	return len(b), nil
}
func (f *fakeConn) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		m, _ := f.Write(b)
		n += m
	}
	return n, nil
}
func (f *fakeConn) Fd() int              { return -1 }
func (f *fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1234} }
func (f *fakeConn) Context() any         { return f.ctx }
func (f *fakeConn) SetContext(c any)     { f.ctx = c }

// newTestConn is an HTTP/2 connection over a fakeConn on a loop of its own.
func newTestConn(t testing.TB) (*Conn, *fakeConn, *loop.Loop) {
	return newTestConnTasks(t, nil)
}

// newTestConnTasks is newTestConn whose loop's tasks wait in *tasks (nil:
// they run at once).
func newTestConnTasks(t testing.TB, tasks *[]gnet.Runnable) (*Conn, *fakeConn, *loop.Loop) {
	return newTestConnConfig(t, tasks, "")
}

// newTestConnConfig is newTestConnTasks with more configuration (YAML
// lines added to the test's).
func newTestConnConfig(t testing.TB, tasks *[]gnet.Runnable, more string) (*Conn, *fakeConn, *loop.Loop) {
	cfg, err := config.Parse([]byte("http2: {max_resets: 20, max_control_frames: 50}\norigins:\n  api:\n    servers: [\"127.0.0.1:1\"]\nroutes:\n  - {path_prefix: /never-, origin: api}\n"+more), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tab, err := origin.Build(cfg.Origins)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tab.Close)
	snap := loop.NewSnapshot(cfg, tab, filters.NewRouteTable(cfg.Routes))
	shared := loop.NewShared(snap, zerolog.Nop(), telemetry.NewAccessLog(nil), nil)
	fc := &fakeConn{}
	var c *Conn
	l := loop.New(noLoop{closed: func(gnet.Conn) {
		fc.closed = true
		c.OnClose(nil)
	}, tasks: tasks}, -1, shared)
	lp := NewLoop(l, exchange.NewLoop(exchange.Config{Loop: l}))
	shared.Clients.Add(1)
	l.Enter()
	lp.Accept(fc, nil)
	l.Leave()
	c = fc.ctx.(*Conn)
	return c, fc, l
}

// feed gives the connection bytes from the client, as one callback.
func feed(l *loop.Loop, c *Conn, fc *fakeConn, b []byte) {
	fc.in = append(fc.in, b...)
	l.Enter()
	c.OnData()
	l.Leave()
}

// clientFrames is a preface and frames a client writes with x/net's Framer.
func clientFrames(fn func(fr *http2.Framer, enc func(...string) []byte)) []byte {
	var b bytes.Buffer
	b.WriteString(Preface)
	fr := http2.NewFramer(&b, nil)
	var eb bytes.Buffer
	henc := hpack.NewEncoder(&eb)
	enc := func(kv ...string) []byte {
		eb.Reset()
		for i := 0; i+1 < len(kv); i += 2 {
			_ = henc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return append([]byte(nil), eb.Bytes()...)
	}
	_ = fr.WriteSettings()
	fn(fr, enc)
	return b.Bytes()
}

// serverFrames reads what the connection wrote.
func serverFrames(t testing.TB, out []byte) []http2.Frame {
	fr := http2.NewFramer(nil, bytes.NewReader(out))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var fs []http2.Frame
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return fs
		}
		fs = append(fs, f)
	}
}

// TestConnMaxRequests: protect.max_requests_per_connection ends an HTTP/2
// connection gracefully (GOAWAY NO_ERROR after its last stream's id), its
// streams answered.
func TestConnMaxRequests(t *testing.T) {
	c, fc, l := newTestConn(t)
	l.Snapshot().Config.Protect.MaxRequestsPerConnection = 2
	feed(l, c, fc, clientFrames(func(fr *http2.Framer, enc func(...string) []byte) {
		for _, id := range []uint32{1, 3, 5} {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndStream: true, EndHeaders: true,
				BlockFragment: enc(":method", "GET", ":scheme", "http", ":authority", "h", ":path", "/x")})
		}
	}))
	answered, goaway := 0, false
	for _, f := range serverFrames(t, fc.out) {
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			answered++
		case *http2.GoAwayFrame:
			goaway = f.ErrCode == http2.ErrCodeNo && f.LastStreamID == 3
		}
	}
	if answered != 2 || !goaway {
		t.Fatalf("answered %d streams, GOAWAY NO_ERROR last 3: %v", answered, goaway)
	}
}

func TestConnAnswersAStream(t *testing.T) {
	c, fc, l := newTestConn(t)
	feed(l, c, fc, clientFrames(func(fr *http2.Framer, enc func(...string) []byte) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true,
			BlockFragment: enc(":method", "GET", ":scheme", "http", ":authority", "h", ":path", "/x")})
	}))
	var status string
	var ended bool
	for _, f := range serverFrames(t, fc.out) {
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			status = f.PseudoValue("status")
			ended = ended || f.StreamEnded()
		case *http2.DataFrame:
			ended = ended || f.StreamEnded()
		}
	}
	if status != "404" || !ended || fc.closed {
		t.Fatalf("got status %q, ended %v, closed %v", status, ended, fc.closed)
	}
}

// resetMark splits FuzzConn's input into callbacks, between which the open
// streams are reset.
const resetMark = "\xffRESET\xff"

// FuzzConn: whatever a client sends after the preface, the connection
// answers with frames that parse, never panics, and holds no more request
// body than its windows allow.
func FuzzConn(f *testing.F) {
	f.Add(clientFrames(func(fr *http2.Framer, enc func(...string) []byte) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true,
			BlockFragment: enc(":method", "POST", ":scheme", "http", ":authority", "h", ":path", "/", "content-length", "3")})
		_ = fr.WriteData(1, true, []byte("abc"))
		_ = fr.WritePing(false, [8]byte{1})
		_ = fr.WriteWindowUpdate(0, 100)
		_ = fr.WriteRSTStream(1, http2.ErrCodeCancel)
	})[len(Preface):])
	f.Add(clientFrames(func(fr *http2.Framer, enc func(...string) []byte) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndHeaders: false,
			BlockFragment: enc(":method", "GET", ":scheme", "http")})
		_ = fr.WriteContinuation(3, true, enc(":path", "/", "cookie", "a", "cookie", "b"))
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		_ = fr.WritePriority(3, http2.PriorityParam{StreamDep: 3})
		_ = fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	})[len(Preface):])
	// Trailers: kept, malformed (upper case, a connection field), without
	// END_STREAM, after END_STREAM, in CONTINUATION.
	f.Add(clientFrames(func(fr *http2.Framer, enc func(...string) []byte) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true,
			BlockFragment: enc(":method", "POST", ":scheme", "http", ":authority", "h", ":path", "/")})
		_ = fr.WriteData(1, false, []byte("abc"))
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: false, BlockFragment: enc("grpc-status", "0")})
		_ = fr.WriteContinuation(1, true, enc("x-sum", "abc", "content-length", "9"))
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndHeaders: true,
			BlockFragment: enc(":method", "POST", ":scheme", "http", ":authority", "h", ":path", "/")})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndStream: true, EndHeaders: true, BlockFragment: enc("X-Up", "1", "connection", "x")})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, EndHeaders: true,
			BlockFragment: enc(":method", "POST", ":scheme", "http", ":authority", "h", ":path", "/", "content-length", "1")})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, EndStream: false, EndHeaders: true, BlockFragment: enc("x", "1")})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, EndStream: true, EndHeaders: true, BlockFragment: enc("x", "1")})
	})[len(Preface):])
	// A stream that ends (a reset, in a callback of its own) between its
	// trailing HEADERS and their CONTINUATION; then another request.
	trailing := func(all bool) []byte {
		return clientFrames(func(fr *http2.Framer, enc func(...string) []byte) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true,
				BlockFragment: enc(":method", "POST", ":scheme", "http", ":authority", "h", ":path", "/never-x")})
			blk := enc("X-User", "admin") // invalid: a reset, on whatever stream the block lands
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, BlockFragment: blk[:1]})
			if all {
				_ = fr.WriteContinuation(1, true, blk[1:])
				_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndStream: true, EndHeaders: true,
					BlockFragment: enc(":method", "GET", ":scheme", "http", ":authority", "h", ":path", "/x")})
			}
		})
	}
	first, all := trailing(false), trailing(true)
	f.Add(append(append(first[len(Preface):len(first):len(first)], resetMark...), all[len(first):]...))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, fc, l := newTestConn(t)
		// Each resetMark ends a callback; the streams still open are reset
		// between the two (RST_STREAM CANCEL, as for a slow reader), so a
		// stream can end where the client cannot end it: inside its header
		// block.
		for i, part := range bytes.Split(append([]byte(Preface), in...), []byte(resetMark)) {
			if i > 0 {
				l.Enter()
				for id := range c.streams {
					c.resetStream(id, http2.ErrCodeCancel, telemetry.H2StreamStalled, "fuzz: reset between callbacks")
				}
				c.flush()
				l.Leave()
			}
			feed(l, c, fc, part)
		}
		for _, st := range c.streams {
			if int64(len(st.body)) > int64(c.set.window) {
				t.Fatalf("stream %d holds %d bytes of body, over its window", st.id, len(st.body))
			}
		}
		// Gozer's own frames parse, to the last byte.
		fr := http2.NewFramer(nil, bytes.NewReader(fc.out))
		fr.SetMaxReadFrameSize(1 << 24)
		fr.AllowIllegalReads = true // a GOAWAY may follow a HEADERS cut short by nothing: none is
		read := 0
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				break
			}
			read += 9 + int(f.Header().Length)
		}
		if read != len(fc.out) {
			t.Fatalf("Gozer wrote %d bytes, of which %d parse as frames", len(fc.out), read)
		}
	})
}
