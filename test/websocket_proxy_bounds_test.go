package test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestWebSocketProxyGraceBounded: once a tunnel's origin side is gone (the
// origin reset, or the client broke the protocol), Gozer gives the client
// closeClient's grace (5 s) to read what it still holds for it. A client that
// reads nothing and sends as fast as it can meanwhile must not grow Gozer: what
// it sends has nowhere to go and is dropped. gnet's buffer used to keep all of
// it: 234 MiB sent in the grace grew Gozer from 20 MiB to 1.2 GiB.
func TestWebSocketProxyGraceBounded(t *testing.T) {
	t.Parallel()
	plainGozer(t)
	for _, tc := range []struct {
		name string
		// end ends the tunnel's origin side: by the client's protocol error,
		// or by the origin's reset (nil).
		end []byte
	}{
		{"after a protocol error", []byte{0x82, 0x00}}, // unmasked: RFC 6455 forbids it
		{"after the origin reset", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := bytes.Repeat([]byte("x"), 1<<20)
			originGone := make(chan struct{})
			o := startWSOrigin(t, func(o *wsOrigin, c *websocket.Conn) {
				if tc.end == nil { // the origin resets after half a second
					_ = c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
				}
				for c.WriteMessage(websocket.BinaryMessage, msg) == nil {
				}
				// A reset, not a FIN: Gozer, which stopped reading this origin
				// (the client reads nothing), hears of a reset at once.
				_ = c.UnderlyingConn().(*net.TCPConn).SetLinger(0)
				_ = c.UnderlyingConn().Close()
				close(originGone)
			})
			g := wsGozer(t, o.Addr, "{enabled: true}", nil)
			c, err := net.Dial("tcp", g.ProxyAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.(*net.TCPConn).SetReadBuffer(4096) // Gozer holds what this client does not read
			fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if resp, err := http.ReadResponse(bufio.NewReaderSize(c, 16), nil); err != nil || resp.StatusCode != 101 {
				t.Fatalf("upgrade: %v %v", resp, err)
			}
			// From here the client reads nothing.
			waitFor(t, 10*time.Second, "Gozer to hold bytes for the client", func() bool { return g.adminEdge(t).Buffered > 0 })
			base := settledRSS(t, g)
			if tc.end != nil {
				if _, err := c.Write(tc.end); err != nil {
					t.Fatal(err)
				}
			} else {
				<-originGone
				waitFor(t, 10*time.Second, "Gozer to see the origin's reset", func() bool {
					return g.adminOrigin(t, "demo").Servers[0].Connections == 0
				})
			}
			junk, sent, peak := bytes.Repeat([]byte{0x82}, 1<<20), 0, base
			_ = c.SetWriteDeadline(time.Now().Add(15 * time.Second))
			for sent < 128<<20 { // enough to see; before the fix this much grew Gozer by ~600 MiB
				n, err := c.Write(junk)
				sent += n
				if r, _ := g.rss(); r > peak {
					peak = r
				}
				if err != nil {
					break // closed at the grace's end
				}
			}
			t.Logf("sent %d MiB in the grace; RSS %d MiB, peak %d MiB", sent>>20, base>>20, peak>>20)
			if grew := peak - base; grew > 64<<20 {
				t.Fatalf("Gozer grew by %d MiB while the client sent %d MiB it had nowhere to send", grew>>20, sent>>20)
			}
		})
	}
}

// TestWebSocketProxyPerClientCap: an open tunnel is a request in flight for
// server.max_requests_per_ip as long as it lasts (it holds an origin's slot
// as long): a client at the cap gets 429 for its next tunnel or request,
// another client does not, and a closed tunnel gives its place back. Before,
// a tunnel left the count at its 101, and one address could take every slot
// of an origin's bulkhead for a day.
func TestWebSocketProxyPerClientCap(t *testing.T) {
	t.Parallel()
	o := startWSOrigin(t, nil)
	cfg := oneOrigin(map[string]string{"websocket": "{enabled: true}"}, o.Addr)
	cfg.Server = map[string]string{"max_requests_per_ip": "2"}
	g := startGozer(t, cfg)
	first := dialTunnel(t, g, "/ws")
	dialTunnel(t, g, "/ws") // the second: the address's cap
	resp := dialTunnelRefused(t, g, "/ws")
	if resp.StatusCode != 429 {
		t.Fatalf("a third tunnel from one address: status %d, want 429", resp.StatusCode)
	}
	wantGozerStatus(t, resp, "FAILURE_CLIENT_TOO_MANY_REQUESTS")
	if resp, _ := dialRaw(t, g.ProxyAddr).roundTrip(request("GET", "/forbidden")); resp.StatusCode != 429 {
		t.Fatalf("a request from the address holding two tunnels: status %d, want 429", resp.StatusCode)
	}
	if resp, _ := dialFrom(t, "127.0.0.3", g.ProxyAddr).roundTrip(request("GET", "/forbidden")); resp.StatusCode != 403 {
		t.Fatalf("a request from another address: status %d, want the origin's 403", resp.StatusCode)
	}
	_ = first.Close()
	waitFor(t, 10*time.Second, "a tunnel to open once one of the two closed", func() bool {
		c, _, err := wsDialer().Dial("ws://"+g.ProxyAddr+"/ws", nil)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}
