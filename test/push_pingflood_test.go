package test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// TestPushPingFlood: a websocket device that sends nothing but pings, as
// fast as it can, gets one pong per read of them, for the last one (RFC 6455
// 5.5.3), not one per ping: a write per ping held the loop's other clients
// for up to 350 ms at a time, and 3.3 million pings took 13 s to answer
// (0.2 s now). The connection stays open, and the last ping gets its pong.
func TestPushPingFlood(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "pf")
	cfg := pushConfig(t, nil)
	cfg.Origins = map[string]originConfig{"demo": {Servers: []string{o.Addr}}}
	cfg.Routes = []route{{PathPrefix: "/api/", Origin: "demo"}}
	cfg.Server = map[string]string{"event_loops": "1"}
	g := startGozer(t, cfg)

	c, err := net.Dial("tcp", g.ProxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	br := wsHandshakeRaw(t, g, c, g.pushToken(t, "flooder", "1h"), 64<<10)
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	ping := []byte{0x89, 0x80, 1, 2, 3, 4} // masked, empty
	burst := bytes.Repeat(ping, 64<<10/len(ping))
	const bursts = 300
	pings := bursts * (len(burst) / len(ping)) // ~3.3 million
	// The last ping carries "last", masked with 0 0 0 0.
	last := append([]byte{0x89, 0x84, 0, 0, 0, 0}, "last"...)
	go func() {
		for range bursts {
			if _, err := c.Write(burst); err != nil {
				return
			}
		}
		_, _ = c.Write(last)
	}()

	pongs, err := readPongs(br, "last")
	if err != nil {
		t.Fatalf("after %d pongs: %v", pongs, err)
	}
	t.Logf("%d pings, %d pongs", pings+1, pongs)
	if pongs > pings/100 {
		t.Errorf("%d pings got %d pongs: want about one per read of them", pings+1, pongs)
	}
	// The device is still connected and served.
	if a := g.pushStatus(t, "flooder"); !a.Connected {
		t.Errorf("the device is not connected after its pings: %+v", a)
	}
	g.push(t, "flooder", "after the pings", 200) // reached it
}

// readPongs reads a push websocket's frames until a pong whose payload is
// want, and counts the pongs.
func readPongs(br *bufio.Reader, want string) (int, error) {
	pongs := 0
	hdr := make([]byte, 2)
	for {
		if _, err := io.ReadFull(br, hdr); err != nil {
			return pongs, err
		}
		n := int(hdr[1] & 0x7f)
		if n >= 126 { // a 2- or 8-byte length follows
			ext := make([]byte, 2+6*(n-126))
			if _, err := io.ReadFull(br, ext); err != nil {
				return pongs, err
			}
			n = 0
			for _, b := range ext {
				n = n<<8 | int(b)
			}
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return pongs, err
		}
		if hdr[0]&0x0f == 0xA {
			pongs++
			if string(payload) == want {
				return pongs, nil
			}
		}
	}
}

// TestPushPingThenClose: a ping and a close frame in one read: the ping came
// first, so it gets its pong before the close echo (RFC 6455 5.5.2). With
// pongs sent after the read, the close went first and the pong never.
func TestPushPingThenClose(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, nil)
	c, err := net.Dial("tcp", g.ProxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	br := wsHandshakeRaw(t, g, c, g.pushToken(t, "pc1", "1h"), 64<<10)
	ping := append([]byte{0x89, 0x84, 0, 0, 0, 0}, "abcd"...)
	closeFrame := []byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8} // 1000
	if _, err := c.Write(append(ping, closeFrame...)); err != nil {
		t.Fatal(err)
	}
	var frames []string
	hdr := make([]byte, 2)
	for {
		if _, err := io.ReadFull(br, hdr); err != nil {
			break
		}
		p := make([]byte, int(hdr[1]&0x7f))
		if _, err := io.ReadFull(br, p); err != nil {
			break
		}
		frames = append(frames, fmt.Sprintf("%x:%s", hdr[0]&0x0f, p))
	}
	if len(frames) != 2 || frames[0] != "a:abcd" || frames[1] != "8:\x03\xe8" {
		t.Errorf("frames from Gozer %q, want the pong (a:abcd), then the close echo (8: code 1000)", frames)
	}
}
