package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// pusher POSTs to the push API over a pool of keep-alive connections (fasthttp: no
// allocation per request, so the load side's core goes to the sockets, not to the client).
type pusher struct {
	hc   *fasthttp.HostClient
	base string // http://host:port
}

func newPusher(base string, conns int) *pusher {
	host := base[len("http://"):]
	return &pusher{base: base, hc: &fasthttp.HostClient{
		Addr: host, MaxConns: conns, ReadTimeout: 60 * time.Second, WriteTimeout: 10 * time.Second,
		MaxIdleConnDuration: time.Hour,
	}}
}

// post sends body to path and returns the status and how many connections the target
// says it reached: Gozer answers {"reached":N,…}; nchan, asked for JSON, {"subscribers": N,…}
// (201 when it had subscribers, 202 when none).
func (ps *pusher) post(req *fasthttp.Request, resp *fasthttp.Response, path string, body []byte) (int, int64, error) {
	req.Reset()
	resp.Reset()
	req.SetRequestURI(ps.base + path)
	req.Header.SetMethod("POST")
	req.Header.Set("Accept", "text/json")
	req.Header.SetContentType("text/plain")
	req.SetBodyRaw(body)
	if err := ps.hc.Do(req, resp); err != nil {
		return 0, 0, err
	}
	return resp.StatusCode(), reachedOf(resp.Body()), nil
}

func reachedOf(b []byte) int64 {
	for _, key := range [][]byte{[]byte(`"reached"`), []byte(`"subscribers"`)} {
		k := bytes.Index(b, key)
		if k < 0 {
			continue
		}
		rest := bytes.TrimLeft(b[k+len(key):], " :")
		end := 0
		for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
			end++
		}
		n, err := strconv.ParseInt(string(rest[:end]), 10, 64)
		if err == nil {
			return n
		}
	}
	return -1
}

type tputResult struct {
	planned    int
	sent       int64 // POSTs answered
	accepted   int64 // answered 2xx and reached at least one connection
	notReached int64 // 2xx, reached none (the id was not connected)
	failed     int64 // transport errors and non-2xx
	firstErr   string
	sendSecs   float64 // from the first POST to the last answer
	late       int64   // POSTs that started more than 5 ms after their scheduled time
	maxLag     time.Duration
}

// throughput POSTs rate messages per second for dur to ids chosen at random among the
// connected ones, open loop: message k is due at k/rate whatever the answers to earlier
// ones, and workers bound how many are in flight. Each message is stamped just before its
// POST is written.
func throughput(ps *pusher, p *poller, rate float64, dur time.Duration, workers, size int) tputResult {
	res := tputResult{planned: int(rate * dur.Seconds())}
	type job struct{ seq, idx int32 }
	jobs := make(chan job, max(1024, int(rate)))
	var (
		wg                                 sync.WaitGroup
		sent, accepted, notReached, failed atomic.Int64
		late, maxLag                       atomic.Int64
		errOnce                            sync.Once
	)
	t0 := time.Now()
	perMsg := time.Duration(float64(time.Second) / rate)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			body := make([]byte, 0, max(size, 64))
			path := make([]byte, 0, 64)
			for j := range jobs {
				lag := time.Since(t0) - time.Duration(j.seq)*perMsg
				if lag > 5*time.Millisecond {
					late.Add(1)
				}
				for cur := maxLag.Load(); int64(lag) > cur && !maxLag.CompareAndSwap(cur, int64(lag)); cur = maxLag.Load() {
				}
				path = fmt.Appendf(path[:0], "/push/%s%d", p.cfg.idPrefix, j.idx)
				body = fmt.Appendf(body[:0], "m %d %d %d ", j.seq, j.idx, p.now())
				status, reached, err := ps.post(req, resp, string(path), pad(body, size))
				sent.Add(1)
				switch {
				case err != nil || status/100 != 2:
					failed.Add(1)
					errOnce.Do(func() {
						if err == nil {
							err = fmt.Errorf("status %d: %.200s", status, resp.Body())
						}
						res.firstErr = fmt.Sprintf("POST %s: %v", path, err)
					})
				case reached == 0:
					notReached.Add(1)
				default:
					accepted.Add(1)
				}
			}
		}()
	}
	// Only connections that are open are targets: a message to an id the server has never
	// seen measures nothing.
	open := make([]int32, 0, len(p.conns))
	p.sink.mu.Lock()
	for i := range p.conns {
		if p.conns[i].state == stOpen {
			open = append(open, int32(i))
		}
	}
	p.sink.mu.Unlock()
	for k := 0; k < res.planned; {
		due := min(res.planned, int(time.Since(t0).Seconds()*rate)+1)
		for ; k < due; k++ {
			jobs <- job{seq: int32(k), idx: open[rand.IntN(len(open))]}
		}
		if next := t0.Add(time.Duration(k) * perMsg); k < res.planned {
			time.Sleep(time.Until(next))
		}
	}
	close(jobs)
	wg.Wait()
	res.sendSecs = time.Since(t0).Seconds()
	res.sent, res.accepted, res.notReached, res.failed = sent.Load(), accepted.Load(), notReached.Load(), failed.Load()
	res.late, res.maxLag = late.Load(), time.Duration(maxLag.Load())
	return res
}

func newReqResp() (*fasthttp.Request, *fasthttp.Response) {
	return &fasthttp.Request{}, &fasthttp.Response{}
}
