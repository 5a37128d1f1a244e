package test

// Push history and recovery (push.history): a device that disconnects, misses
// pushes (answered 202 stored, not 404) and reconnects with its last message id
// gets exactly what it missed, in order, once, then live messages; on the same
// node, on another node of a cluster (Redis), and after a node restart. A last
// id older than the history gets the documented resync signal; an id unknown
// beyond push.history.max_age gets 404.

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsHistDevice dials the websocket path with ?last_id=last (ids on).
func wsHistDevice(t testing.TB, g *gozer, name, token, last string) *wsDevice {
	t.Helper()
	return readWS(name, dialWSConn(t, g.wsURL(token)+"&last_id="+url.QueryEscape(last), nil))
}

// nextIDMsg reads the next message of a device that asked for ids and splits
// "<id>\n<payload>".
func (d *wsDevice) nextIDMsg(t testing.TB) (id, payload string) {
	t.Helper()
	m := d.next(t, 5*time.Second)
	head, rest, ok := bytes.Cut(m.data, []byte("\n"))
	if !ok {
		t.Fatalf("device %s: message %q has no id line", d.name, tail(string(m.data), 100))
	}
	return string(head), string(rest)
}

// expectIDMsgs reads len(want) messages and checks their payloads in order;
// it returns the last id.
func (d *wsDevice) expectIDMsgs(t testing.TB, want ...string) string {
	t.Helper()
	var last string
	for i, w := range want {
		id, p := d.nextIDMsg(t)
		if p != w {
			t.Fatalf("device %s message %d: %q (id %s), want %q", d.name, i, p, id, w)
		}
		if last != "" && !idLess(t, last, id) {
			t.Fatalf("device %s: id %s after %s, want increasing", d.name, id, last)
		}
		last = id
	}
	return last
}

func idLess(t testing.TB, a, b string) bool {
	t.Helper()
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("ids %q, %q: not decimal numbers", a, b)
	}
	return x < y
}

// expectEvents reads SSE events and checks their data in order; it returns
// the last event's id.
func (d *sseDevice) expectEvents(t testing.TB, want ...string) string {
	t.Helper()
	var last string
	for i, w := range want {
		ev := d.nextEvent(t, 5*time.Second)
		if ev.data != w || ev.event != "" {
			t.Fatalf("SSE %s event %d: %q %q (id %s), want message %q", d.name, i, ev.event, ev.data, ev.id, w)
		}
		if last != "" && !idLess(t, last, ev.id) {
			t.Fatalf("SSE %s: id %s after %s, want increasing", d.name, ev.id, last)
		}
		last = ev.id
	}
	return last
}

// pushStored pushes each message and checks it was stored for an absent device.
func (g *gozer) pushStored(t testing.TB, id string, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		if a := g.push(t, id, m, 202); a.Reached != 0 || !a.Stored || a.ID == 0 {
			t.Fatalf("POST /push/%s %q while away: %+v, want 202 reached 0 stored with an id", id, m, a)
		}
	}
}

// TestPushHistorySSE: single node, SSE, Last-Event-ID in the header and in the
// query; a too old id gets event gozer-resync; an unknown id is 404.
func TestPushHistorySSE(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, nil)
	tok := g.pushToken(t, "sse-h", "1h")
	d := dialSSE(t, g, "first", tok, "")
	g.waitConnected(t, "sse-h", true, 5*time.Second)
	g.push(t, "sse-h", "m1", 200)
	last := d.expectEvents(t, "m1")
	d.resp.Body.Close()
	g.waitConnected(t, "sse-h", false, 5*time.Second)

	g.pushStored(t, "sse-h", "m2", "m3", "m4")
	d = dialSSE(t, g, "back", tok, last)
	last = d.expectEvents(t, "m2", "m3", "m4")
	g.push(t, "sse-h", "live", 200)
	d.expectEvents(t, "live") // next after the replay: nothing twice
	d.resp.Body.Close()
	g.waitConnected(t, "sse-h", false, 5*time.Second)

	// ?last_event_id= (EventSource polyfills that cannot set the header).
	g.pushStored(t, "sse-h", "m5")
	req := g.URL("/push/sse?token=" + url.QueryEscape(tok) + "&last_event_id=" + last)
	q := dialSSEURL(t, "query", req, "")
	q.expectEvents(t, "live", "m5")
	q.resp.Body.Close()

	// An id the history does not hold: told to resync, with the newest id.
	r := dialSSE(t, g, "stale", tok, "12345")
	ev := r.nextEvent(t, 5*time.Second)
	if ev.event != "gozer-resync" || ev.id == "" {
		t.Errorf("reconnect with an unknown id: event %q id %q data %q, want event gozer-resync with the newest id", ev.event, ev.id, ev.data)
	}
	if a := g.push(t, "never-seen", "x", 404); a.Stored || a.Reached != 0 {
		t.Errorf("POST /push/never-seen: %+v, want 404 not stored", a)
	}
}

// TestPushHistoryWebSocket: single node, websocket: ?last_id= makes messages
// "<id>\n<payload>"; a device without it gets bare payloads; recovery after a
// disconnect; a too old id gets "resync\n<newest>"; a bad last_id is 400.
func TestPushHistoryWebSocket(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, nil)
	tok := g.pushToken(t, "ws-h", "1h")
	plain := dialWS(t, g, "plain", tok)
	d := wsHistDevice(t, g, "ids", tok, "")
	waitFor(t, 5*time.Second, "two devices of ws-h", func() bool { return g.pushStatus(t, "ws-h").Local == 2 })
	g.push(t, "ws-h", "m1", 200)
	plain.expectText(t, "m1") // the default wire format is unchanged
	last := d.expectIDMsgs(t, "m1")
	plain.conn.Close()
	d.conn.Close()
	g.waitConnected(t, "ws-h", false, 5*time.Second)

	g.pushStored(t, "ws-h", "m2", "m3", "m4")
	if err := g.pushBinary(t, "ws-h", []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	d = wsHistDevice(t, g, "back", tok, last)
	d.expectIDMsgs(t, "m2", "m3", "m4")
	if m := d.next(t, 5*time.Second); m.typ != websocket.BinaryMessage || !bytes.HasSuffix(m.data, []byte("\n\x00\x01\x02")) {
		t.Errorf("replayed binary message: type %d %q, want binary <id>\\n\\x00\\x01\\x02", m.typ, m.data)
	}
	g.push(t, "ws-h", "live", 200)
	d.expectIDMsgs(t, "live")

	stale := wsHistDevice(t, g, "stale", tok, "777")
	m := stale.next(t, 5*time.Second)
	head, newest, _ := bytes.Cut(m.data, []byte("\n"))
	if m.typ != websocket.TextMessage || string(head) != "resync" || len(newest) == 0 {
		t.Errorf("reconnect with an unknown id: %q, want \"resync\\n<newest id>\"", m.data)
	}
	resp, body := rawExchange(t, g.ProxyAddr, wsRequest("GET", "/push/ws?token="+url.QueryEscape(tok)+"&last_id=abc", g.ProxyAddr, ""))
	if resp.StatusCode != 400 {
		t.Errorf("last_id=abc: %d %q, want 400", resp.StatusCode, body)
	}
}

// pushBinary pushes msg as a binary message and expects 202 stored.
func (g *gozer) pushBinary(t testing.TB, id string, msg []byte) error {
	t.Helper()
	resp, a := pushAPI(t, g.AdminAddr, "POST", "/push/"+id, msg, map[string]string{"Content-Type": "application/octet-stream"})
	if resp.StatusCode != 202 || !a.Stored {
		return fmt.Errorf("binary push: %d %+v, want 202 stored", resp.StatusCode, a)
	}
	return nil
}

// TestPushHistoryCluster: two nodes sharing Redis. A device on A disconnects;
// pushes at A and at B while it is away are stored; it reconnects to B with its
// last id and recovers all of them in order, while a pusher keeps pushing at A
// (no loss, no duplicate across replay and live). Then B restarts: ids keep
// growing and a device recovers on the new B from Redis.
func TestPushHistoryCluster(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	cluster := map[string]string{"cluster": fmt.Sprintf(`{enabled: true, redis: %q, ttl: 2s, secret: %q}`, rs.Addr, clusterSecret)}
	a, b := pushGozer(t, cluster), pushGozer(t, cluster)
	tok := a.pushToken(t, "roam", "1h")

	d := wsHistDevice(t, a, "on-a", tok, "")
	waitFor(t, 5*time.Second, "B sees roam on A", func() bool {
		st, ok := b.clusterStatus(t, "roam")
		return ok && st.Connected
	})
	b.push(t, "roam", "m1", 200)
	last := d.expectIDMsgs(t, "m1")
	d.conn.Close()
	for _, g := range []*gozer{a, b} {
		waitFor(t, 5*time.Second, "roam gone from the registry", func() bool {
			st, ok := g.clusterStatus(t, "roam")
			return ok && !st.Connected
		})
	}
	a.pushStored(t, "roam", "m2", "m3")
	b.pushStored(t, "roam", "m4")

	// A pusher at A runs while the device reconnects to B.
	var mu sync.Mutex
	var live []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m := fmt.Sprint("live-", i)
			resp, ans := pushAPI(t, a.AdminAddr, "POST", "/push/roam", []byte(m), nil)
			if resp.StatusCode != 200 && resp.StatusCode != 202 {
				t.Errorf("push %s during the reconnect: %d %+v", m, resp.StatusCode, ans)
				return
			}
			mu.Lock()
			live = append(live, m)
			mu.Unlock()
		}
	})
	d = wsHistDevice(t, b, "on-b", tok, last)
	d.expectIDMsgs(t, "m2", "m3", "m4")
	waitFor(t, 10*time.Second, "20 live pushes during and after the reconnect", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(live) >= 20
	})
	close(stop)
	wg.Wait()
	last = d.expectIDMsgs(t, live...) // every one, in order, once

	// B restarts (the device was on B); the history is in Redis.
	d.conn.Close()
	waitFor(t, 5*time.Second, "roam gone from the registry", func() bool {
		st, ok := a.clusterStatus(t, "roam")
		return ok && !st.Connected
	})
	b.stop(10 * time.Second)
	a.pushStored(t, "roam", "after-restart-1")
	b2 := pushGozer(t, cluster)
	b2.pushStored(t, "roam", "after-restart-2")
	d = wsHistDevice(t, b2, "on-b2", tok, last)
	got := d.expectIDMsgs(t, "after-restart-1", "after-restart-2")
	if !idLess(t, last, got) {
		t.Errorf("after the restart ids went from %s to %s, want increasing", last, got)
	}
	// The same over SSE: the websocket device leaves, a push at A is stored, and an
	// SSE device of the id recovers it at B with Last-Event-ID.
	d.conn.Close()
	waitFor(t, 5*time.Second, "roam gone from the registry", func() bool {
		st, ok := a.clusterStatus(t, "roam")
		return ok && !st.Connected
	})
	a.pushStored(t, "roam", "for-sse")
	sse := dialSSE(t, b2, "sse", tok, got)
	sse.expectEvents(t, "for-sse")
	sse.resp.Body.Close()
	// An id older than Redis's history: resync.
	r := wsHistDevice(t, b2, "stale", tok, "5")
	if m := r.next(t, 5*time.Second); !bytes.HasPrefix(m.data, []byte("resync\n")) {
		t.Errorf("stale id on a cluster node: %q, want resync", m.data)
	}
	if ans := b2.push(t, "nobody-ever", "x", 404); ans.Stored {
		t.Errorf("push to an id never seen: %+v, want 404", ans)
	}
}

// TestPushHistoryWindow: with push.history.max_age 3s, an id whose device left
// is stored for a while, then refused with 404 (pushes meanwhile do not
// keep it alive), on a single node and at a node of a cluster that never had it.
func TestPushHistoryWindow(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	cluster := fmt.Sprintf(`{enabled: true, redis: %q, ttl: 2s, secret: %q}`, rs.Addr, clusterSecret)
	for _, push := range []map[string]string{
		{"history": "{max_age: 3s}"},
		{"history": "{max_age: 3s}", "cluster": cluster},
	} {
		g := pushGozer(t, push)
		other := g
		if push["cluster"] != "" {
			other = pushGozer(t, push)
		}
		tok := g.pushToken(t, "brief", "1h")
		d := dialWS(t, g, "brief", tok)
		for _, want := range []bool{true, false} {
			// clusterStatus: a fresh cluster registry answers 503 for a moment.
			waitFor(t, 10*time.Second, fmt.Sprintf("brief connected %v", want), func() bool {
				st, ok := other.clusterStatus(t, "brief")
				return ok && st.Connected == want
			})
			if want {
				d.conn.Close()
			}
		}
		stored := 0
		waitFor(t, 15*time.Second, "a push to the id that left is refused once max_age passed", func() bool {
			resp, a := pushAPI(t, other.AdminAddr, "POST", "/push/brief", []byte("x"), nil)
			switch {
			case resp.StatusCode == 202 && a.Stored:
				stored++
				return false
			case resp.StatusCode == 404 && !a.Stored:
				return true
			}
			t.Fatalf("push to brief: %d %+v, want 202 stored then 404", resp.StatusCode, a)
			return false
		})
		if stored == 0 {
			t.Errorf("the first push after the device left was refused, want it stored (max_age 3s)")
		}
	}
}

// TestPushHistoryRedisDown: a cluster node whose Redis died keeps serving from
// its own history: a device that reconnects with its last id recovers what this
// node kept, and the failure is logged a few times, not once per call.
func TestPushHistoryRedisDown(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	g := pushGozer(t, map[string]string{"cluster": fmt.Sprintf(`{enabled: true, redis: %q, ttl: 2s, secret: %q}`, rs.Addr, clusterSecret)})
	tok := g.pushToken(t, "solo", "1h")
	d := wsHistDevice(t, g, "solo", tok, "")
	waitFor(t, 10*time.Second, "solo registered", func() bool {
		st, ok := g.clusterStatus(t, "solo")
		return ok && st.Connected
	})
	g.push(t, "solo", "m1", 200)
	last := d.expectIDMsgs(t, "m1")
	rs.stop(5 * time.Second)
	for i := range 5 { // reached nobody on this node, registry down: 503, but kept here
		resp, a := pushAPI(t, g.AdminAddr, "POST", "/push/solo", []byte(fmt.Sprint("down-", i)), nil)
		if resp.StatusCode != 200 || a.Reached != 1 {
			t.Fatalf("push with Redis down to a device here: %d %+v, want 200 reached 1", resp.StatusCode, a)
		}
	}
	d.expectIDMsgs(t, "down-0", "down-1", "down-2", "down-3", "down-4")
	d.conn.Close()
	waitFor(t, 10*time.Second, "solo gone locally", func() bool { return jsonPath(g.adminPush(t), "connections") == float64(0) })
	// Reconnect with the id before the outage: recovered from this node's history.
	d = wsHistDevice(t, g, "again", tok, last)
	d.expectIDMsgs(t, "down-0", "down-1", "down-2", "down-3", "down-4")
	if n := strings.Count(g.stderr.String(), "push history: redis failed"); n == 0 || n > 3 {
		t.Errorf("%d log lines of the history's Redis failure, want 1 to 3 (sampled)", n)
	}
}
