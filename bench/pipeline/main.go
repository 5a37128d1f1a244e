// Command pipeline measures what one client's long HTTP/1.1 pipeline costs a
// server and what it does to another client of the same event loop
// (bench/pipeline.sh runs it against Gozer and nginx):
//
//	pipeline -addr 127.0.0.1:8080 -n 300000 -path /nope [-other]
//
// One connection writes n requests for path in one go and reads every answer
// (any status; the answers are counted, not judged). With -other a second
// connection meanwhile sends one request at a time (1 ms apart) until the
// pipeline is answered, and its answers' latencies are reported. It prints
// one JSON line: {"n", "secs", "other_answers", "other_p50_ms",
// "other_p99_ms", "other_max_ms"}.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

type result struct {
	N            int     `json:"n"`
	Secs         float64 `json:"secs"`
	OtherAnswers int     `json:"other_answers"`
	OtherP50     float64 `json:"other_p50_ms"`
	OtherP99     float64 `json:"other_p99_ms"`
	OtherMax     float64 `json:"other_max_ms"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server address")
	n := flag.Int("n", 300000, "pipelined requests")
	path := flag.String("path", "/nope", "path of every request")
	other := flag.Bool("other", false, "a second client asks one request at a time meanwhile")
	flag.Parse()
	if err := run(*addr, *n, *path, *other); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

func run(addr string, n int, path string, other bool) error {
	a, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer a.Close()
	var b net.Conn
	if other {
		if b, err = net.Dial("tcp", addr); err != nil {
			return err
		}
		defer b.Close()
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: bench\r\n\r\n"
	all := []byte(strings.Repeat(req, n))
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		go func() { _, _ = a.Write(all) }()
		br := bufio.NewReaderSize(a, 64<<10)
		for i := range n {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				done <- fmt.Errorf("pipelined answer %d: %w", i, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- nil
	}()
	res := result{N: n}
	var lat []float64
	if other {
		bb := bufio.NewReader(b)
	loop:
		for {
			select {
			case err := <-done:
				if err != nil {
					return err
				}
				break loop
			default:
			}
			t0 := time.Now()
			if _, err := b.Write([]byte(req)); err != nil {
				return err
			}
			resp, err := http.ReadResponse(bb, nil)
			if err != nil {
				return fmt.Errorf("the other client: %w", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
			time.Sleep(time.Millisecond)
		}
	} else if err := <-done; err != nil {
		return err
	}
	res.Secs = time.Since(start).Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		res.OtherAnswers = len(lat)
		res.OtherP50 = lat[len(lat)/2]
		res.OtherP99 = lat[len(lat)*99/100]
		res.OtherMax = lat[len(lat)-1]
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
