package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// device is one device that asked for message ids: a Gozer websocket
// (?last_id=) or an nchan EventSource (Last-Event-ID, sse.go). Its reader
// goroutine feeds msgs and closes it when the connection ends (err says why).
type device struct {
	c    io.Closer
	msgs chan [2]string // id, payload
	err  error
}

// srcAddrs spread the devices over source addresses, so that tens of
// thousands of connections (and their TIME_WAITs) do not run out of ports.
var srcAddrs atomic.Uint32

func dial(g *gozerProc, id, last string) (*device, error) {
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 512, WriteBufferSize: 256,
		NetDialContext: srcDialer().DialContext}
	c, resp, err := d.Dial("ws://"+g.proxy+"/push/ws?id="+id+"&last_id="+last, nil)
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			return nil, fmt.Errorf("dial %s: %w (%d %s)", id, err, resp.StatusCode, b)
		}
		return nil, fmt.Errorf("dial %s: %w", id, err)
	}
	dev := &device{c: c, msgs: make(chan [2]string, 64)}
	go dev.readWS(c)
	return dev, nil
}

// srcDialer dials from the next of srcAddrs' source addresses.
func srcDialer() *net.Dialer {
	src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+srcAddrs.Add(1)%64))}
	return &net.Dialer{LocalAddr: src, Timeout: 30 * time.Second}
}

func (d *device) readWS(c *websocket.Conn) {
	defer close(d.msgs)
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			d.err = err
			return
		}
		id, p, _ := bytes.Cut(b, []byte("\n"))
		d.msgs <- [2]string{string(id), string(p)}
	}
}

func (d *device) next(timeout time.Duration) (id, payload string, err error) {
	select {
	case m, ok := <-d.msgs:
		if !ok {
			return "", "", fmt.Errorf("connection ended: %v", d.err)
		}
		return m[0], m[1], nil
	case <-time.After(timeout):
		return "", "", errors.New("no message in time")
	}
}

// expect checks the next messages are want, in order.
func (d *device) expect(timeout time.Duration, want ...string) error {
	for i, w := range want {
		_, p, err := d.next(timeout)
		if err != nil {
			return fmt.Errorf("message %d of %v: %w", i, want, err)
		}
		if p != w {
			return fmt.Errorf("message %d: %q, want %q", i, p, w)
		}
	}
	return nil
}

func (d *device) close() { _ = d.c.Close() }

// connectAll dials devs[i] (as idOf(i), with last[i] or "" as last_id) to
// g's websocket with 256 dials in flight.
func connectAll(devs []*device, g *gozerProc, idOf func(int) string, last []string) {
	dialAll(devs, func(i int) (*device, error) {
		l := ""
		if last != nil {
			l = last[i]
		}
		return dial(g, idOf(i), l)
	})
}

// dialAll sets devs[i] to dialOne(i), 256 dials in flight; a failed dial
// ends the bench.
func dialAll(devs []*device, dialOne func(i int) (*device, error)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for i := range devs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d, err := dialOne(i)
			if err != nil {
				log.Fatal(err)
			}
			devs[i] = d
		})
	}
	wg.Wait()
}

func closeAll(devs []*device) {
	for _, d := range devs {
		if d != nil {
			d.close()
		}
	}
}

// checkAll runs check on every device in parallel and returns how many failed
// (the first few are logged).
func checkAll(devs []*device, check func(int, *device) error) int {
	var bad atomic.Int32
	var wg sync.WaitGroup
	for i, d := range devs {
		wg.Go(func() {
			if err := check(i, d); err != nil {
				if bad.Add(1) <= 5 {
					log.Printf("device %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	return int(bad.Load())
}

// countAll counts the messages the devices receive until want came or
// timeout passed.
func countAll(devs []*device, want int, timeout time.Duration) int {
	var got atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Go(func() {
			for {
				select {
				case _, ok := <-d.msgs:
					if !ok {
						return
					}
					if got.Add(1) == int64(want) {
						cancel()
					}
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Wait()
	return int(got.Load())
}

// pushAll POSTs n messages (msg(k) names the id and the body) through g's
// push API with senders in flight, in order of k, and fails on an answer
// other than status.
func pushAll(g *gozerProc, n, senders int, msg func(k int) (id, body string), status int) {
	postAll(func(id string) string { return "http://" + g.admin + "/push/" + id }, n, senders, msg, status)
}

// postAll is pushAll to the URL urlOf(id), where any of statuses is success.
func postAll(urlOf func(id string) string, n, senders int, msg func(k int) (id, body string), statuses ...int) {
	tr := &http.Transport{MaxIdleConnsPerHost: senders, MaxConnsPerHost: senders}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= n {
					return
				}
				id, body := msg(k)
				resp, err := client.Post(urlOf(id), "text/plain", strings.NewReader(body))
				if err != nil {
					log.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !slices.Contains(statuses, resp.StatusCode) {
					log.Fatalf("push %d to %s: %d %s, want %v", k, id, resp.StatusCode, b, statuses)
				}
			}
		})
	}
	wg.Wait()
}
