package test

// Regression tests of the push review fixes, end to end through the real gozer
// binary: upstream backpressure stops decoding a connection's buffer at once; a
// device paused by that backpressure is not closed as a ping timeout; a connection
// that got its go-away no longer takes pushes nor counts as connected; a protocol
// error (1009) ends with the close frame and a FIN, not a reset.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"gozer/gateway/push"
)

// heldOrigin is a push origin whose handler holds every request until release:
// it records, per X-Push-Client-Id, how many requests are at it at once (the
// most ever) and the bodies of the requests it answered.
type heldOrigin struct {
	released chan struct{}
	once     sync.Once

	mu       sync.Mutex
	inflight map[string]int
	most     map[string]int
	bodies   map[string][]string // answered, in the order they were answered
	total    atomic.Int64        // requests answered
	waiting  atomic.Int64        // requests held right now
}

func newHeldOrigin() *heldOrigin {
	return &heldOrigin{
		released: make(chan struct{}),
		inflight: map[string]int{}, most: map[string]int{}, bodies: map[string][]string{},
	}
}

func (o *heldOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Push-Client-Id")
	body, _ := io.ReadAll(r.Body)
	o.mu.Lock()
	o.inflight[id]++
	o.most[id] = max(o.most[id], o.inflight[id])
	o.mu.Unlock()
	o.waiting.Add(1)
	select {
	case <-o.released:
	case <-r.Context().Done():
	}
	o.waiting.Add(-1)
	o.mu.Lock()
	o.inflight[id]--
	o.bodies[id] = append(o.bodies[id], string(body))
	o.mu.Unlock()
	o.total.Add(1)
	w.WriteHeader(204)
}

func (o *heldOrigin) release() { o.once.Do(func() { close(o.released) }) }

// mostInflight is the most requests of id that were at the origin at once.
func (o *heldOrigin) mostInflight(id string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.most[id]
}

// got is the bodies of id's answered requests, sorted.
func (o *heldOrigin) got(id string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := append([]string(nil), o.bodies[id]...)
	sort.Strings(b)
	return b
}

// heldOriginGozer starts a held origin and a gozer whose push.upstream_origin it
// is, with the push.* keys of extra. At cleanup the origin is released first: a
// held request would hold up gozer's exit (its upstream senders wait for their
// answers) and httptest's Close.
func heldOriginGozer(t *testing.T, extra map[string]string) (*gozer, *heldOrigin) {
	t.Helper()
	o := newHeldOrigin()
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	p := map[string]string{"upstream_origin": "pushorigin", "upstream_path": `"/device/messages"`}
	for k, v := range extra {
		p[k] = v
	}
	cfg := pushConfig(t, p)
	cfg.Origins = map[string]originConfig{"pushorigin": {Servers: []string{strings.TrimPrefix(srv.URL, "http://")}}}
	cfg.Routes = []route{{PathPrefix: "/", Origin: "pushorigin"}}
	g := startGozer(t, cfg)
	t.Cleanup(o.release) // runs before gozer is stopped and srv.Close
	return g, o
}

// dialRawWS opens a websocket push connection on a raw socket: the handshake
// (with the RFC 6455 sample key) is checked, and the returned connection's br
// holds whatever came behind the 101.
func dialRawWS(t testing.TB, g *gozer, token string) *rawConn {
	t.Helper()
	c := dialRaw(t, g.ProxyAddr)
	resp, body := c.roundTrip(wsRequest("GET", "/push/ws?token="+url.QueryEscape(token), g.ProxyAddr, ""))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("websocket handshake: status %d, Sec-WebSocket-Accept %q, body %q; want 101 with the RFC 6455 accept key",
			resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"), body)
	}
	return c
}

// wsFrame is one frame the gateway sent (never masked).
type wsFrame struct {
	op      push.Opcode
	payload []byte
}

// closeCode is the status code of a close frame (0 when it has none).
func (f wsFrame) closeCode() int {
	if len(f.payload) < 2 {
		return 0
	}
	return int(binary.BigEndian.Uint16(f.payload))
}

// readFrame reads one frame within timeout.
func readFrame(c *rawConn, timeout time.Duration) (wsFrame, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return wsFrame{}, err
	}
	if h[1]&0x80 != 0 {
		return wsFrame{}, fmt.Errorf("the gateway sent a masked frame (header % x)", h)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return wsFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return wsFrame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return wsFrame{}, fmt.Errorf("frame of %d bytes announced", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return wsFrame{}, err
	}
	return wsFrame{op: push.Opcode(h[0] & 0x0F), payload: p}, nil
}

var regressMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// TestPushRegressUpstreamBackpressurePerConnection: devices that each send a
// burst of 200 one-byte text messages in one TCP write, while the push origin
// holds every request, get no more than upstreamInflight (4) messages each handed
// upstream: the rest waits in the gateway's read buffer, so the node-wide
// upstream queue (8192) does not overflow even when 45 devices × 200 messages
// would fill it, nothing is dropped while the origin is stuck, at most 4 of a
// device's requests are at the origin at once, and once the origin answers every
// message of every device arrives.
//
// (Before the fix the decode loop went on queueing every frame of the buffer
// after the connection paused: 45 bursts put 9000 messages on the 8192 queue and
// about 800 were dropped. One device alone cannot show it: there are only 4
// upstream senders, so never more than 4 requests of anyone are at the origin.)
func TestPushRegressUpstreamBackpressurePerConnection(t *testing.T) {
	t.Parallel()
	g, o := heldOriginGozer(t, nil)
	const devices, burst = 45, 200

	conns := make([]*rawConn, devices)
	for i := range conns {
		tok, err := push.Sign([]byte(pushSecret), fmt.Sprintf("burst-%02d", i), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = dialRawWS(t, g, tok)
	}
	want := make([]string, burst)
	var frames []byte
	for j := range burst {
		want[j] = string(rune('a' + j%26))
		frames = push.AppendMaskedFrame(frames, push.OpText, true, regressMask, []byte(want[j]))
	}
	sort.Strings(want)
	for i, c := range conns {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Write(frames); err != nil || n != len(frames) {
			t.Fatalf("device %d: writing its burst of %d frames (%d bytes) in one write: %d, %v", i, burst, len(frames), n, err)
		}
	}

	// The origin holds the upstream senders' requests: every sender is stuck.
	waitFor(t, 5*time.Second, "4 upstream requests held at the push origin", func() bool { return o.waiting.Load() >= 4 })
	// While it is stuck, no message is shed: over a second (the bursts took well
	// under a millisecond each to decode), upstream_dropped_total stays 0.
	if eventually(time.Second, func() bool { return g.pushCounter(t, "upstream_dropped_total") > 0 }) {
		t.Fatalf("upstream_dropped_total = %d while the push origin was held: the bursts overran the node-wide upstream queue",
			g.pushCounter(t, "upstream_dropped_total"))
	}
	for i := range devices {
		if id := fmt.Sprintf("burst-%02d", i); o.mostInflight(id) > 4 {
			t.Errorf("device %s had %d requests at the push origin at once while it was held, want <= 4", id, o.mostInflight(id))
		}
	}

	o.release()
	waitFor(t, 10*time.Second, fmt.Sprintf("all %d device messages reach the push origin", devices*burst), func() bool {
		return o.total.Load() >= devices*burst
	})
	for i := range devices {
		id := fmt.Sprintf("burst-%02d", i)
		if got := o.got(id); strings.Join(got, "") != strings.Join(want, "") {
			t.Errorf("device %s: the push origin got %d messages %q, want the %d of its burst", id, len(got), tail(strings.Join(got, ""), 60), burst)
		}
		if m := o.mostInflight(id); m > 4 {
			t.Errorf("device %s had %d requests at the push origin at once, want <= 4", id, m)
		}
	}
	m := g.adminPush(t)
	if m["upstream_dropped_total"] != float64(0) || m["upstream_failed_total"] != float64(0) || m["upstream_sent_total"] != float64(devices*burst) {
		t.Errorf("/admin/push upstream_sent_total %v, upstream_dropped_total %v, upstream_failed_total %v; want %d, 0, 0",
			m["upstream_sent_total"], m["upstream_dropped_total"], m["upstream_failed_total"], devices*burst)
	}
	// The devices are still connected and reading resumed.
	g.push(t, "burst-00", "after the burst", 200)
	f, err := readFrame(conns[0], 5*time.Second)
	if err != nil || f.op != push.OpText || string(f.payload) != "after the burst" {
		t.Errorf("device burst-00 read %v %q (%v), want the text push", f.op, f.payload, err)
	}
}

// TestPushRegressPausedNotPingTimedOut: with ping_interval 1s and the push origin
// holding every request, a device that sent 5 messages is paused (4 are at the
// origin, gozer reads no more of it, its pongs included); it answers every ping
// it gets, so after three pings while paused it is still connected, GET
// /push/{id} says so, a push reaches it and ping_timeout_closed_total is 0. Once
// the origin answers, its 5 messages arrive.
func TestPushRegressPausedNotPingTimedOut(t *testing.T) {
	t.Parallel()
	g, o := heldOriginGozer(t, map[string]string{"ping_interval": "1s"})
	conn := dialWSConn(t, g.wsURL(g.pushToken(t, "paused", "1h")), nil)
	var pings atomic.Int32
	conn.SetPingHandler(func(data string) error {
		pings.Add(1)
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	dev := readWS("paused", conn)
	want := []string{"m0", "m1", "m2", "m3", "m4"}
	for _, m := range want {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "4 of the device's messages held at the push origin (the device is paused)",
		func() bool { return o.waiting.Load() >= 4 })
	paused, before := time.Now(), pings.Load()

	// Two pings without an answer read would have closed it at the third ping
	// time: wait for three pings while paused (the wheel fires up to a second late,
	// a loaded machine later still), then it must still be open.
	waitFor(t, 15*time.Second, "three pings while the device is paused", func() bool {
		select {
		case m, ok := <-dev.msgs:
			if ok {
				t.Fatalf("device got message %q while paused, want none", tail(string(m.data), 100))
			}
			t.Fatalf("device connection ended while paused (%v), want it open", dev.err)
		default:
		}
		return pings.Load() >= before+3
	})
	if st := g.pushStatus(t, "paused"); !st.Connected {
		t.Errorf("GET /push/paused %v after it was paused: %+v, want connected", time.Since(paused).Round(time.Millisecond), st)
	}
	if a := g.push(t, "paused", "still here", 200); a.Reached != 1 {
		t.Errorf("push to the paused device reached %d, want 1", a.Reached)
	}
	dev.expectText(t, "still here")
	if n := g.pushCounter(t, "ping_timeout_closed_total"); n != 0 {
		t.Errorf("ping_timeout_closed_total = %d, want 0: the device answered every ping", n)
	}

	o.release()
	waitFor(t, 5*time.Second, "the device's 5 messages reach the push origin", func() bool { return o.total.Load() >= int64(len(want)) })
	if got := o.got("paused"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("the push origin got %q, want %q", got, want)
	}
	if n := g.pushCounter(t, "upstream_dropped_total"); n != 0 {
		t.Errorf("upstream_dropped_total = %d, want 0", n)
	}
	g.push(t, "paused", "resumed", 200)
	dev.expectText(t, "resumed")
}

// TestPushRegressGoAwayRefusesPushes: with max_lifetime 2s and no dither, a
// device that reads but does not echo the close gets its 1001; from that moment,
// while its TCP connection is still open (the gateway waits closeGrace, 5 s, for
// the echo), POST /push/{id} answers 202 reached 0 stored (kept for its
// reconnect, not written to it), GET /push/{id} says
// connected=false, and nothing more is written to it. Its late echo then ends the
// connection.
func TestPushRegressGoAwayRefusesPushes(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, map[string]string{"max_lifetime": "2s", "lifetime_dither": "0"})
	c := dialRawWS(t, g, g.pushToken(t, "leaving", "1h"))
	g.waitConnected(t, "leaving", true, 5*time.Second)

	f, err := readFrame(c, 6*time.Second)
	if err != nil {
		t.Fatalf("waiting for the go-away: %v", err)
	}
	arrived := time.Now()
	if f.op != push.OpClose || f.closeCode() != 1001 {
		t.Fatalf("got frame %v %q, want a close 1001", f.op, f.payload)
	}
	// Not written to the leaving connection, but kept in the history for the
	// device's reconnect: 202 stored.
	resp, a := pushAPI(t, g.AdminAddr, "POST", "/push/leaving", []byte("too late"), nil)
	if resp.StatusCode != 202 || a.Reached != 0 || !a.Stored {
		t.Errorf("POST /push/leaving right after its go-away: %d %+v, want 202 reached 0 stored", resp.StatusCode, a)
	}
	if st := g.pushStatus(t, "leaving"); st.Connected || st.Local != 0 {
		t.Errorf("GET /push/leaving right after its go-away: %+v, want connected=false", st)
	}
	// The connection is still open: no byte, no EOF within 300 ms (and the push
	// was not written to it).
	if _, err := readFrame(c, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("reading the leaving connection: %v, want it open and silent", err)
	}
	if since := time.Since(arrived); since > 4*time.Second {
		t.Fatalf("the checks took %v: not within the 5 s close grace, the test proves nothing", since)
	}
	// The late echo: the gateway closes.
	var echo []byte
	echo = push.AppendMaskedFrame(echo, push.OpClose, true, regressMask, []byte{0x03, 0xe9})
	if _, err := c.Write(echo); err != nil {
		t.Fatal(err)
	}
	c.mustClose("after the device echoed the go-away")
}

// TestPushRegressTooBigClosesWithFIN: a device announces a 4 MiB message against
// push.max_message 1KiB and sends 256 KiB of it in one write; it reads the close
// frame 1009 and then end of stream (a FIN): not a connection reset, which on the
// device's side may destroy the close frame before it is read. Its write is not
// cut off either: the gateway reads and drops what the device still sends.
func TestPushRegressTooBigClosesWithFIN(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, map[string]string{"max_message": "1KiB"})
	c := dialRawWS(t, g, g.pushToken(t, "toobig", "1h"))

	msg := []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0x40, 0, 0} // text, fin, masked, 4 MiB
	msg = append(msg, regressMask[:]...)
	msg = append(msg, make([]byte, 256<<10)...)
	wrote := make(chan error, 1)
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Write(msg)
		wrote <- err
	}()

	f, err := readFrame(c, 5*time.Second)
	if err != nil {
		t.Fatalf("reading the close frame: %v", err)
	}
	if f.op != push.OpClose || f.closeCode() != 1009 {
		t.Fatalf("got frame %v %q, want a close 1009", f.op, f.payload)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [64]byte
	n, err := c.br.Read(b[:])
	switch {
	case n > 0:
		t.Errorf("after the close frame: %d more bytes %q, want end of stream", n, b[:n])
	case errors.Is(err, syscall.ECONNRESET):
		t.Errorf("after the close frame: %v, want a FIN (io.EOF), not a reset", err)
	case err != io.EOF:
		t.Errorf("after the close frame: %v, want io.EOF", err)
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Errorf("the device's 256 KiB write: %v, want it read (and dropped) by the gateway", err)
		}
	case <-time.After(6 * time.Second):
		t.Errorf("the device's 256 KiB write still blocks")
	}
	if n := g.pushCounter(t, "protocol_error_closed_total"); n != 1 {
		t.Errorf("protocol_error_closed_total = %d, want 1", n)
	}
	g.waitConnected(t, "toobig", false, time.Second)
}

// pausedDevice connects a raw device whose five text messages fill its four
// upstream slots at a held origin, so that gozer has paused reading it.
func pausedDevice(t *testing.T, g *gozer, o *heldOrigin, id string) *rawConn {
	t.Helper()
	c := dialRawWS(t, g, g.pushToken(t, id, "1h"))
	var frames []byte
	for _, m := range []string{"a", "b", "c", "d", "e"} {
		frames = push.AppendMaskedFrame(frames, push.OpText, true, regressMask, []byte(m))
	}
	if _, err := c.Write(frames); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "four messages held at the origin", func() bool { return o.waiting.Load() >= 4 })
	return c
}

// echoThenEOF answers the 1001 gozer sent with a close frame and wants a clean
// end (EOF) soon after: a device paused by upstream backpressure must still have
// its close echo read, not be reset when the close grace runs out.
func echoThenEOF(t *testing.T, c *rawConn) {
	t.Helper()
	f, err := readFrame(c, 6*time.Second)
	if err != nil || f.op != push.OpClose || len(f.payload) < 2 || int(f.payload[0])<<8|int(f.payload[1]) != 1001 {
		t.Fatalf("want a close 1001, got op %v payload %q err %v", f.op, f.payload, err)
	}
	if _, err := c.Write(push.AppendMaskedFrame(nil, push.OpClose, true, regressMask, []byte{0x03, 0xe9})); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = readFrame(c, 3*time.Second)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("after echoing the close: %v after %v, want EOF at once", err, time.Since(start))
	}
}

func TestPushRegressPausedDeviceGoAwayEndsCleanly(t *testing.T) {
	t.Parallel()
	g, o := heldOriginGozer(t, map[string]string{"max_lifetime": "2s", "lifetime_dither": "0"})
	echoThenEOF(t, pausedDevice(t, g, o, "paused-goaway"))
}

func TestPushRegressPausedDeviceDrainEndsCleanly(t *testing.T) {
	t.Parallel()
	g, o := heldOriginGozer(t, nil)
	c := pausedDevice(t, g, o, "paused-drain")
	start := time.Now()
	if err := g.cmd.Process.Signal(terminate); err != nil {
		t.Fatal(err)
	}
	echoThenEOF(t, c)
	// The push origin still holds four requests (read_timeout 15s): shutdown must
	// not wait for them much past the drain.
	if _, ok := g.exitCode(8 * time.Second); !ok {
		t.Fatalf("gozer did not exit within 8s of SIGTERM (drain_timeout 2s) with upstream requests held")
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	if strings.Contains(g.output(), "drain deadline reached") {
		t.Fatalf("the paused device held the drain to its deadline:\n%s", tail(g.output(), 2000))
	}
}

// TestPushFrameInPieces: a device's frame that reaches Gozer in several reads
// (a slow link, a frame bigger than a segment) is decoded whole. Gozer once
// dropped an incomplete frame at the end of each read (gnet reads Discard(0)
// as "everything") and closed the device with 1002.
func TestPushFrameInPieces(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, nil)
	tok := g.pushToken(t, "pieces", "1h")
	c, err := net.Dial("tcp", g.ProxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	br := wsHandshakeRaw(t, g, c, tok, 4096)
	g.waitConnected(t, "pieces", true, 5*time.Second)
	// A masked PING "abcd" in three reads: its header, its mask, its payload.
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{0x89, 0x84, mask[0], mask[1], mask[2], mask[3]}
	for i, b := range []byte("abcd") {
		frame = append(frame, b^mask[i%4])
	}
	for _, p := range [][]byte{frame[:2], frame[2:6], frame[6:]} {
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond) // each piece in a read of its own
	}
	pong := make([]byte, 6)
	if _, err := io.ReadFull(br, pong); err != nil {
		t.Fatalf("no answer to a PING sent in pieces: %v", err)
	}
	if string(pong) != "\x8a\x04abcd" {
		t.Fatalf("answer %q, want the PONG \"\\x8a\\x04abcd\"", pong)
	}
}
