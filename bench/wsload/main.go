// Command wsload is bench/ws.sh's load client: N websocket connections, each
// echoing messages through a proxy as fast as the echo comes back (a closed
// loop: one message in flight per connection), for a duration. It prints one
// line: "echoes N seconds S msgs_per_s R" (an echo is two relayed messages,
// one each way).
//
//	wsload -url ws://127.0.0.1:18580/ws -conns 64 -size 128 -duration 5s
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	url := flag.String("url", "ws://127.0.0.1:18580/ws", "websocket URL of the proxy (an echo behind it)")
	conns := flag.Int("conns", 64, "connections, each with one message in flight")
	size := flag.Int("size", 128, "message size in bytes (binary)")
	dur := flag.Duration("duration", 5*time.Second, "how long to echo")
	check := flag.Bool("check", false, "one echo per connection, compared byte for byte; exit 1 on a mismatch")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("wsload: ")

	cs := make([]*websocket.Conn, *conns)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	for i := range cs {
		c, _, err := d.Dial(*url, nil)
		if err != nil {
			log.Fatalf("dial %s (connection %d): %v", *url, i, err)
		}
		cs[i] = c
	}
	msg := bytes.Repeat([]byte{'x'}, *size)
	if *check {
		for i, c := range cs {
			if err := echo(c, msg); err != nil {
				log.Fatalf("connection %d: %v", i, err)
			}
		}
		fmt.Println("check ok")
		return
	}
	var n atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range cs {
		wg.Add(1)
		go func(c *websocket.Conn) {
			defer wg.Done()
			for !stop.Load() {
				if err := echo(c, msg); err != nil {
					log.Printf("echo: %v", err)
					os.Exit(1)
				}
				n.Add(1)
			}
		}(c)
	}
	time.Sleep(*dur)
	stop.Store(true)
	wg.Wait()
	secs := time.Since(start).Seconds()
	fmt.Printf("echoes %d seconds %.3f msgs_per_s %.0f\n", n.Load(), secs, float64(2*n.Load())/secs)
	for _, c := range cs {
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		_ = c.Close()
	}
}

// echo sends msg and reads its echo.
func echo(c *websocket.Conn, msg []byte) error {
	if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		return err
	}
	_, got, err := c.ReadMessage()
	if err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo of %d bytes came back as %d different bytes", len(msg), len(got))
	}
	return nil
}
