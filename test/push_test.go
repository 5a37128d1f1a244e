package test

// Push connections through the real gozer binary: the websocket handshake, the
// shipped token auth filter, the push API on the admin listener (one id, several
// devices, binary messages, broadcasts, 404/413/429) and device messages over
// push.max_message.

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"gozer/gateway/push"
)

// dialRefused dials a websocket that must be refused and returns the answer's
// status, headers and body.
func dialRefused(t testing.TB, u string, hdr http.Header) (int, http.Header, string) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(u, hdr)
	if err == nil {
		c.Close()
		t.Fatalf("websocket dial %s was upgraded, want it refused", u)
	}
	if resp == nil {
		t.Fatalf("websocket dial %s: %v without an HTTP answer", u, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestPushHandshake: a good websocket handshake is upgraded (gorilla checks
// Sec-WebSocket-Accept) and the device then gets what is pushed; a handshake
// without Sec-WebSocket-Key is 400, version 12 is 426 with Sec-WebSocket-Version:
// 13, POST is 400, each with FAILURE_CLIENT_BAD_HANDSHAKE; with no filter that
// accepts push connections, both websocket and SSE get 403
// FAILURE_CLIENT_PUSH_NOT_ACCEPTED.
func TestPushHandshake(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, nil)
	tok := g.pushToken(t, "hs-1", "1h")

	dev := dialWS(t, g, "hs-1", tok)
	g.push(t, "hs-1", "hello", 200)
	dev.expectText(t, "hello")

	path := "/push/ws?token=" + url.QueryEscape(tok)
	bad := []struct {
		name, req string
		status    int
		check     func(t *testing.T, resp *http.Response, body string)
	}{
		{"missing Sec-WebSocket-Key", wsRequest("GET", path, g.ProxyAddr, "", "key"), 400,
			func(t *testing.T, _ *http.Response, body string) {
				if !strings.Contains(body, "sec-websocket-key") {
					t.Errorf("body %q does not name the missing key", body)
				}
			}},
		{"version 12", wsRequest("GET", path, g.ProxyAddr, "Sec-WebSocket-Version: 12\r\n", "version"), 426,
			func(t *testing.T, resp *http.Response, _ string) {
				if v := resp.Header.Get("Sec-WebSocket-Version"); v != "13" {
					t.Errorf("Sec-WebSocket-Version %q, want 13", v)
				}
				// RFC 9110 15.5.22: a 426 MUST carry Upgrade.
				if v := resp.Header.Get("Upgrade"); !strings.EqualFold(v, "websocket") {
					t.Errorf("Upgrade %q on the 426, want websocket", v)
				}
			}},
		{"plain GET", "GET " + path + " HTTP/1.1\r\nHost: " + g.ProxyAddr + "\r\n\r\n", 400, nil},
		{"POST", wsRequest("POST", path, g.ProxyAddr, ""), 400,
			func(t *testing.T, _ *http.Response, body string) {
				if !strings.Contains(body, "GET") {
					t.Errorf("body %q does not say GET is needed", body)
				}
			}},
		{"POST with empty body", wsRequest("POST", path, g.ProxyAddr, "Content-Length: 0\r\n"), 400, nil},
		{"POST with body", wsRequest("POST", path, g.ProxyAddr, "Content-Length: 5\r\n") + "hello", 400, nil},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawExchange(t, g.ProxyAddr, tc.req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (body %q), want %d", resp.StatusCode, body, tc.status)
			}
			checkGozerStatus(t, resp, "FAILURE_CLIENT_BAD_HANDSHAKE")
			if tc.check != nil {
				tc.check(t, resp, body)
			}
		})
	}
	t.Run("SSE POST", func(t *testing.T) {
		resp, body := rawExchange(t, g.ProxyAddr, "POST /push/sse?token="+url.QueryEscape(tok)+" HTTP/1.1\r\nHost: "+g.ProxyAddr+"\r\n\r\n")
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" {
			t.Errorf("status %d Allow %q (body %q), want 405 with Allow: GET", resp.StatusCode, resp.Header.Get("Allow"), body)
		}
	})
	// Every refused handshake counts: the websocket ones and the SSE POST.
	if got, want := g.pushCounter(t, "refused_total"), int64(len(bad)+1); got != want {
		t.Errorf("/admin/push refused_total = %d after %d refused handshakes", got, want)
	}

	t.Run("no accepting filter", func(t *testing.T) {
		cfg := oneOrigin(nil, closedPort(t))
		cfg.Filters = &filtersConfig{Dir: string(newScriptDir(t))} // no script at all
		cfg.Push = map[string]string{"token_secret": strconv.Quote(pushSecret)}
		g2 := startGozer(t, cfg)
		tok2 := g2.pushToken(t, "hs-2", "1h")
		status, hdr, body := dialRefused(t, g2.wsURL(tok2), nil)
		if status != 403 || hdr.Get("X-Gozer-Status") != "FAILURE_CLIENT_PUSH_NOT_ACCEPTED" {
			t.Errorf("websocket: status %d, X-Gozer-Status %q (body %q), want 403 FAILURE_CLIENT_PUSH_NOT_ACCEPTED",
				status, hdr.Get("X-Gozer-Status"), body)
		}
		resp, b := fetch(t, newClient(t, 10*time.Second), "GET", g2.URL("/push/sse?token="+url.QueryEscape(tok2)), nil,
			map[string]string{"Accept": "text/event-stream"})
		if resp.StatusCode != 403 {
			t.Errorf("SSE: status %d (body %q), want 403", resp.StatusCode, b)
		}
		checkGozerStatus(t, resp, "FAILURE_CLIENT_PUSH_NOT_ACCEPTED")
		if a := g2.pushStatus(t, "hs-2"); a.Connected {
			t.Errorf("GET /push/hs-2: %+v, want not connected", a)
		}
	})
}

// TestPushAuth: the shipped scripts/inbound/05_push_auth.lua admits a valid token
// in ?token= or in Authorization: Bearer, and answers 401 with a reason (and a
// Bearer challenge) for a missing, malformed, wrongly signed or expired one.
func TestPushAuth(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, nil)

	t.Run("valid token in the query", func(t *testing.T) {
		dev := dialWS(t, g, "auth-q", g.pushToken(t, "auth-q", "1h"))
		g.waitConnected(t, "auth-q", true, 5*time.Second)
		g.push(t, "auth-q", "q", 200)
		dev.expectText(t, "q")
	})
	t.Run("valid token as Bearer", func(t *testing.T) {
		tok := g.pushToken(t, "auth-b", "1h")
		c := dialWSConn(t, g.wsURL(""), http.Header{"Authorization": {"Bearer " + tok}})
		dev := readWS("auth-b", c)
		g.push(t, "auth-b", "b", 200)
		dev.expectText(t, "b")
	})

	otherSecret, err := push.Sign([]byte("another-secret-9876543210"), "auth-x", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name, url string
		hdr       http.Header
		reason    string
	}{
		{"missing", g.wsURL(""), nil, "missing"},
		{"Authorization without Bearer", g.wsURL(""), http.Header{"Authorization": {"Basic dXNlcjpwdw=="}}, "missing"},
		{"malformed", g.wsURL("not-a-token"), nil, "malformed"},
		{"bad signature", g.wsURL(otherSecret), nil, "bad signature"},
		{"bad signature as Bearer", g.wsURL(""), http.Header{"Authorization": {"Bearer " + otherSecret}}, "bad signature"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := dialRefused(t, tc.url, tc.hdr)
			if status != 401 || !strings.Contains(body, tc.reason) {
				t.Errorf("status %d body %q, want 401 mentioning %q", status, body, tc.reason)
			}
			if ch := hdr.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer") {
				t.Errorf("WWW-Authenticate %q, want a Bearer challenge", ch)
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		// push-token signs now+ttl to the second, so a 1s token has expired once
		// the clock's second is past the one push-token returned in.
		tok := g.pushToken(t, "auth-e", "1s")
		issued := time.Now().Unix()
		waitFor(t, 3*time.Second, "the 1s token expires", func() bool { return time.Now().Unix() >= issued+1 })
		status, _, body := dialRefused(t, g.wsURL(tok), nil)
		if status != 401 || !strings.Contains(body, "expired") {
			t.Errorf("status %d body %q, want 401 mentioning expired", status, body)
		}
		// Signed already expired, with the gateway's secret: the signature is
		// good, the expiry is not.
		old, err := push.Sign([]byte(pushSecret), "auth-e", time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		status, _, body = dialRefused(t, g.wsURL(old), nil)
		if status != 401 || !strings.Contains(body, "expired") {
			t.Errorf("status %d body %q, want 401 mentioning expired", status, body)
		}
	})
	for _, id := range []string{"auth-x", "auth-e"} {
		if a := g.pushStatus(t, id); a.Connected {
			t.Errorf("GET /push/%s: %+v: a refused device is registered", id, a)
		}
	}
}

// TestPushOneIDTwoDevices: a message pushed to an id reaches every device of the
// id; a binary message (application/octet-stream) arrives as a binary message.
func TestPushOneIDTwoDevices(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, nil)
	tok := g.pushToken(t, "two", "1h")
	phone, laptop := dialWS(t, g, "phone", tok), dialWS(t, g, "laptop", tok)
	other := dialWS(t, g, "other", g.pushToken(t, "two-other", "1h"))

	a := g.push(t, "two", "for both", 200)
	if a.Reached != 2 || strings.Join(a.nodeList(t), ",") != "local" {
		t.Errorf("POST /push/two: reached %d nodes %s, want 2 on [local]", a.Reached, a.Nodes)
	}
	phone.expectText(t, "for both")
	laptop.expectText(t, "for both")

	bin := []byte{0, 1, 2, 0xff, 0xfe, '\n', 0x80}
	resp, a := pushAPI(t, g.AdminAddr, "POST", "/push/two", bin, map[string]string{"Content-Type": "application/octet-stream"})
	if resp.StatusCode != 200 || a.Reached != 2 {
		t.Fatalf("binary POST /push/two: status %d %+v, want 200 reached 2", resp.StatusCode, a)
	}
	for _, d := range []*wsDevice{phone, laptop} {
		m := d.next(t, 5*time.Second)
		if m.typ != websocket.BinaryMessage || !bytes.Equal(m.data, bin) {
			t.Errorf("device %s got type %d %x, want binary %x", d.name, m.typ, m.data, bin)
		}
	}
	// Not UTF-8 without the binary content type: refused, nobody gets it.
	resp, _ = pushAPI(t, g.AdminAddr, "POST", "/push/two", bin, nil)
	if resp.StatusCode != 400 {
		t.Errorf("POST of invalid UTF-8 as text: status %d, want 400", resp.StatusCode)
	}
	g.push(t, "two-other", "only other", 200)
	other.expectText(t, "only other")
	g.push(t, "two", "third", 200)
	phone.expectText(t, "third") // and not the refused one before it
	laptop.expectText(t, "third")

	st := g.pushStatus(t, "two")
	if !st.Connected || st.Local != 2 {
		t.Errorf("GET /push/two: %+v, want connected with 2 local devices", st)
	}
}

// TestPushBroadcast: a broadcast with ?prefix= reaches the ids with that prefix
// only; one without reaches every device.
func TestPushBroadcast(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, nil)
	a := dialWS(t, g, "room1-a", g.pushToken(t, "room1-a", "1h"))
	b := dialWS(t, g, "room1-b", g.pushToken(t, "room1-b", "1h"))
	c := dialWS(t, g, "room2-c", g.pushToken(t, "room2-c", "1h"))

	resp, ans := pushAPI(t, g.AdminAddr, "POST", "/push/broadcast?prefix=room1-", []byte("to room1"), nil)
	if resp.StatusCode != 200 || ans.Reached != 2 || ans.nodeMap(t)["local"] != 2 {
		t.Fatalf("broadcast prefix room1-: status %d %+v, want 200 reached 2 (local: 2)", resp.StatusCode, ans)
	}
	a.expectText(t, "to room1")
	b.expectText(t, "to room1")
	// c got nothing: the next thing it gets is a message sent to it directly.
	g.push(t, "room2-c", "direct", 200)
	c.expectText(t, "direct")

	resp, ans = pushAPI(t, g.AdminAddr, "POST", "/push/broadcast", []byte("to all"), nil)
	if resp.StatusCode != 200 || ans.Reached != 3 {
		t.Fatalf("broadcast: status %d %+v, want 200 reached 3", resp.StatusCode, ans)
	}
	for _, d := range []*wsDevice{a, b, c} {
		d.expectText(t, "to all")
	}

	resp, ans = pushAPI(t, g.AdminAddr, "POST", "/push/broadcast?prefix=nobody-", []byte("void"), nil)
	if resp.StatusCode != 200 || ans.Reached != 0 {
		t.Errorf("broadcast to a prefix nobody has: status %d %+v, want 200 reached 0", resp.StatusCode, ans)
	}
}

// TestPushAPIErrors: 404 for an id connected nowhere, 413 for a body over
// push.max_message, 429 with Retry-After over push.rate/burst; none of the refused
// messages reaches the device.
func TestPushAPIErrors(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, map[string]string{"max_message": "1KiB", "rate": "1", "burst": "2"})
	dev := dialWS(t, g, "lim", g.pushToken(t, "lim", "1h"))

	a := g.push(t, "nobody-here", "x", 404)
	if a.Reached != 0 || !strings.Contains(a.Error, "not connected") {
		t.Errorf("404 answer %+v, want reached 0 and 'client not connected'", a)
	}

	big := strings.Repeat("x", 1025)
	resp, a := pushAPI(t, g.AdminAddr, "POST", "/push/lim", []byte(big), nil)
	if resp.StatusCode != 413 {
		t.Errorf("POST of 1025 bytes with max_message 1KiB: status %d %+v, want 413", resp.StatusCode, a)
	}
	// The same, chunked (no Content-Length): refused while reading.
	req, _ := http.NewRequest("POST", "http://"+g.AdminAddr+"/push/lim", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	cresp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, cresp.Body)
	cresp.Body.Close()
	if cresp.StatusCode != 413 {
		t.Errorf("chunked POST of 1025 bytes: status %d, want 413", cresp.StatusCode)
	}

	// Exactly max_message is fine. The 413s took no token.
	exact := strings.Repeat("y", 1024)
	g.push(t, "lim", exact, 200)
	g.push(t, "lim", "second", 200)
	resp, a = pushAPI(t, g.AdminAddr, "POST", "/push/lim", []byte("third"), nil)
	if resp.StatusCode != 429 {
		t.Fatalf("third POST within a second with rate 1 burst 2: status %d %+v, want 429", resp.StatusCode, a)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("429 Retry-After %q, want a positive number of seconds", resp.Header.Get("Retry-After"))
	}
	dev.expectText(t, exact)
	dev.expectText(t, "second")
	dev.silent(t, 300*time.Millisecond)

	for k, min := range map[string]int64{"api.rate_limited_total": 1, "api.too_large_total": 2, "api.not_found_total": 1} {
		if v := g.pushCounter(t, k); v < min {
			t.Errorf("/admin/push %s = %v, want >= %v", k, v, min)
		}
	}
}

// TestPushDeviceMessageTooLarge: a device that sends a message over
// push.max_message is closed with 1009; one under it is not.
func TestPushDeviceMessageTooLarge(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, map[string]string{"max_message": "1KiB"})
	dev := dialWS(t, g, "big", g.pushToken(t, "big", "1h"))

	if err := dev.conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("s", 1000))); err != nil {
		t.Fatal(err)
	}
	g.waitPushCounter(t, "upstream_dropped_total", 1, 5*time.Second) // no upstream origin: dropped
	g.push(t, "big", "still here", 200)
	dev.expectText(t, "still here")

	if err := dev.conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("L", 2048))); err != nil {
		t.Fatal(err)
	}
	ce := dev.expectClose(t, 5*time.Second)
	if ce.Code != websocket.CloseMessageTooBig {
		t.Errorf("close code %d (%q), want 1009", ce.Code, ce.Text)
	}
	g.waitConnected(t, "big", false, 5*time.Second)
	if n := g.pushCounter(t, "protocol_error_closed_total"); n < 1 {
		t.Errorf("/admin/push protocol_error_closed_total = %d, want >= 1", n)
	}
	// The access log says why, as the process log does, with the close code.
	l := g.pushClosedLine(t, "big")
	if l["closed_by"] != "protocol_error" || l["reason"] != "message over the maximum size" || l["close_code"] != 1009.0 {
		t.Errorf("access-log line %v, want closed_by protocol_error, reason \"message over the maximum size\", close_code 1009", l)
	}
}
