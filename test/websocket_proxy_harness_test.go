package test

// Helpers of the websocket proxy tests (websocket_proxy_test.go): a real
// websocket origin on loopback (gorilla/websocket behind net/http), a Gozer
// that proxies websocket upgrades to it, clients, and what each side saw
// when its websocket ended.

import (
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsOrigin is a websocket origin on loopback: /ws upgrades and runs handle;
// /forbidden answers 403 instead of 101.
type wsOrigin struct {
	Addr string
	// ends gets the error that ended each server-side read loop (a
	// *websocket.CloseError when the peer sent a close frame).
	ends chan error
	// upgrades counts the upgrade requests that reached the origin.
	upgrades atomic.Int64
	// lastUpgrade is the Upgrade/Connection headers of the last upgrade.
	lastUpgrade atomic.Value // string
}

// startWSOrigin starts a websocket origin whose connections run handle (nil:
// echo every message back as it came).
func startWSOrigin(t testing.TB, handle func(o *wsOrigin, c *websocket.Conn)) *wsOrigin {
	t.Helper()
	return startWSOriginTLS(t, handle, "", "")
}

// startWSOriginTLS is startWSOrigin speaking TLS with certFile and keyFile
// (both "": plain).
func startWSOriginTLS(t testing.TB, handle func(o *wsOrigin, c *websocket.Conn), certFile, keyFile string) *wsOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &wsOrigin{Addr: ln.Addr().String(), ends: make(chan error, 64)}
	if handle == nil {
		handle = (*wsOrigin).echo
	}
	up := websocket.Upgrader{ReadBufferSize: 32 << 10, WriteBufferSize: 32 << 10}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", o.serve(&up, handle))
	mux.HandleFunc("/ws/", o.serve(&up, handle))
	mux.HandleFunc("/forbidden", func(w http.ResponseWriter, r *http.Request) {
		o.upgrades.Add(1)
		http.Error(w, "not you", http.StatusForbidden)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if certFile != "" {
			_ = srv.ServeTLS(ln, certFile, keyFile)
			return
		}
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() { _ = srv.Close() })
	return o
}

// serve upgrades a request and runs handle on the websocket.
func (o *wsOrigin) serve(up *websocket.Upgrader, handle func(o *wsOrigin, c *websocket.Conn)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o.upgrades.Add(1)
		o.lastUpgrade.Store(r.Header.Get("Connection") + "|" + r.Header.Get("Upgrade"))
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		handle(o, c)
	}
}

// echo sends every message back as it came, until the read fails.
func (o *wsOrigin) echo(c *websocket.Conn) {
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			o.ends <- err
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			o.ends <- err
			return
		}
	}
}

// waitEnd returns the error that ended the origin's next read loop.
func (o *wsOrigin) waitEnd(t testing.TB) error {
	t.Helper()
	select {
	case err := <-o.ends:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("the origin's websocket did not end within 15s")
		return nil
	}
}

// wsGozer starts Gozer with one origin "demo" at addr whose websocket
// settings are ws (YAML flow, e.g. "{enabled: true}"); more origin keys in opts.
func wsGozer(t testing.TB, addr, ws string, opts map[string]string) *gozer {
	t.Helper()
	o := map[string]string{"websocket": ws}
	for k, v := range opts {
		o[k] = v
	}
	return startGozer(t, oneOrigin(o, addr))
}

// dialTunnel opens a websocket to Gozer's proxy port at path.
func dialTunnel(t testing.TB, g *gozer, path string) *websocket.Conn {
	t.Helper()
	c, resp, err := wsDialer().Dial("ws://"+g.ProxyAddr+path, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial ws://%s%s: %v (status %d)", g.ProxyAddr, path, err, status)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dialTunnelRefused dials a websocket that Gozer (or the origin) must refuse, and
// returns the refusal's response.
func dialTunnelRefused(t testing.TB, g *gozer, path string) *http.Response {
	t.Helper()
	c, resp, err := wsDialer().Dial("ws://"+g.ProxyAddr+path, nil)
	if err == nil {
		c.Close()
		t.Fatalf("dial ws://%s%s: upgraded; want a refusal", g.ProxyAddr, path)
	}
	if resp == nil {
		t.Fatalf("dial ws://%s%s: %v; want an HTTP answer", g.ProxyAddr, path, err)
	}
	return resp
}

func wsDialer() *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 32 << 10, WriteBufferSize: 32 << 10}
}

// closeCode is the code of the close frame err reports (-1: err is no close).
func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// readUntilClose reads c until its read fails and returns the error; every
// message read is dropped. The deadline only keeps a broken test from
// hanging.
func readUntilClose(t testing.TB, c *websocket.Conn) error {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return err
		}
	}
}

// tunnelLine waits for the access-log line of the tunnel to path (status
// 101) and returns it with its websocket object.
func tunnelLine(t testing.TB, g *gozer, path string) (accessLine, map[string]any) {
	t.Helper()
	lines := g.waitAccessLog(t, "the tunnel to "+path, func(l accessLine) bool {
		n, _ := l.num("status")
		return n == 101 && l.str("path") == path
	})
	if len(lines) != 1 {
		t.Fatalf("%d access-log lines for the tunnel to %s; want 1: %v", len(lines), path, lines)
	}
	ws, _ := lines[0]["websocket"].(map[string]any)
	if ws == nil {
		t.Fatalf("tunnel line without websocket object: %v", lines[0])
	}
	return lines[0], ws
}
