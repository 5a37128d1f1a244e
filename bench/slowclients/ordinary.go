package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ordinaryResult is the JSON line of -mode ordinary.
type ordinaryResult struct {
	Mode            string         `json:"mode"`
	Target          string         `json:"target"`
	Path            string         `json:"path"`
	Conc            int            `json:"conc"`
	OfferedRate     float64        `json:"offered_rate"` // open loop: requests/s scheduled; 0: closed loop
	Late            int64          `json:"late"`         // open loop: requests sent more than 10 ms after their time
	DurationS       float64        `json:"duration_s"`
	Requests        int64          `json:"requests"`  // finished within the window: answered or failed
	Successes       int64          `json:"successes"` // 2xx
	SuccessPct      float64        `json:"success_pct"`
	Failures        map[string]int `json:"failures"`         // non-2xx answers: "503 FAILURE_LOCAL_...": n
	TransportErrors map[string]int `json:"transport_errors"` // no answer: timeout, reset, refused, ...
	Rate            float64        `json:"rate"`             // requests/s
	OKRate          float64        `json:"ok_rate"`          // 2xx/s
	P50Ms           float64        `json:"p50_ms"`           // latency of every request, whatever its outcome
	P99Ms           float64        `json:"p99_ms"`
	MaxMs           float64        `json:"max_ms"`
	CPUS            float64        `json:"cpu_s"`
	CPUPct          float64        `json:"cpu_pct"` // of one core
	// RunqWaitPct is the time its threads waited for a CPU, in % of the window: what
	// tells a client starved by others on its core from one waiting for answers.
	RunqWaitPct float64 `json:"runq_wait_pct"`
}

// ordStats is one worker's tally; merged at the end, so the workers share no lock.
type ordStats struct {
	requests, ok int64
	failures     map[string]int
	transport    map[string]int
	latMs        []float64
	late         int64
}

// runOrdinary: cfg.conc clients, each sending the next keep-alive GET as soon as the
// last one ended (closed loop), from cfg.from, for cfg.dur. A request still in flight
// when the window closes is not counted, so the rate is requests / window exactly.
func runOrdinary(cfg config) {
	tr := &http.Transport{
		DialContext: (&net.Dialer{
			Timeout:   cfg.timeout,
			LocalAddr: &net.TCPAddr{IP: net.ParseIP(cfg.from)},
		}).DialContext,
		MaxIdleConns:        2 * cfg.conc,
		MaxIdleConnsPerHost: 2 * cfg.conc,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := "http://" + cfg.target + cfg.path

	usr0, sys0 := cpuSeconds()
	wait0 := runqWait()
	start := time.Now()
	window, cancel := context.WithDeadline(context.Background(), start.Add(cfg.dur))
	defer cancel()
	stats := make([]*ordStats, cfg.conc)
	var wg sync.WaitGroup
	for w := range cfg.conc {
		st := &ordStats{failures: map[string]int{}, transport: map[string]int{}}
		stats[w] = st
		wg.Go(func() {
			if cfg.ordRate > 0 {
				openLoop(window, start, w, client, url, cfg, st)
				return
			}
			for window.Err() == nil {
				ordinaryOne(window, time.Now(), client, url, cfg, st)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	usr1, sys1 := cpuSeconds()
	wait1 := runqWait()

	res := ordinaryResult{
		Mode: "ordinary", Target: cfg.target, Path: cfg.path, Conc: cfg.conc, DurationS: round3(cfg.dur.Seconds()),
		OfferedRate: cfg.ordRate,
		Failures:    map[string]int{}, TransportErrors: map[string]int{},
	}
	var lat []float64
	for _, st := range stats {
		res.Requests += st.requests
		res.Successes += st.ok
		for k, v := range st.failures {
			res.Failures[k] += v
		}
		for k, v := range st.transport {
			res.TransportErrors[k] += v
		}
		lat = append(lat, st.latMs...)
		res.Late += st.late
	}
	lat = sortedCopy(lat)
	d := cfg.dur.Seconds()
	if res.Requests > 0 {
		res.SuccessPct = round3(100 * float64(res.Successes) / float64(res.Requests))
	}
	res.Rate, res.OKRate = round3(float64(res.Requests)/d), round3(float64(res.Successes)/d)
	res.P50Ms, res.P99Ms, res.MaxMs = round3(quantile(lat, 0.5)), round3(quantile(lat, 0.99)), round3(quantile(lat, 1))
	cpu := usr1 - usr0 + sys1 - sys0
	res.CPUS, res.CPUPct = round3(cpu), round3(100*cpu/elapsed)
	res.RunqWaitPct = round3(100 * (wait1 - wait0) / elapsed)
	printJSON(res)
}

// openLoop is worker w of an open loop: it sends at cfg.ordRate/cfg.conc requests a
// second on a fixed schedule (the workers staggered), and times each request from when
// it was due, so a server that falls behind shows in the latency (no coordinated
// omission) and in the rate: a request due while the last one is still out waits for
// it on this keep-alive connection and is sent late.
func openLoop(window context.Context, start time.Time, w int, client *http.Client, url string, cfg config, st *ordStats) {
	every := time.Duration(float64(cfg.conc) / cfg.ordRate * float64(time.Second))
	due := start.Add(every * time.Duration(w) / time.Duration(cfg.conc))
	timer := time.NewTimer(0)
	defer timer.Stop()
	for window.Err() == nil {
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-window.Done():
				return
			case <-timer.C:
			}
		} else if -wait > 10*time.Millisecond {
			st.late++
		}
		ordinaryOne(window, due, client, url, cfg, st)
		due = due.Add(every)
	}
}

// ordinaryOne sends one GET and records its outcome; its latency counts from t0 (now,
// or when an open loop's request was due).
func ordinaryOne(window context.Context, t0 time.Time, client *http.Client, url string, cfg config, st *ordStats) {
	ctx, cancel := context.WithTimeout(window, cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fail("request: %v", err)
	}
	if cfg.host != cfg.target {
		req.Host = cfg.host
	}
	if cfg.debugHeader != "" {
		req.Header.Set(cfg.debugHeader, "1")
	}
	resp, err := client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if window.Err() != nil {
		return // cut by the end of the window: neither a success nor a failure
	}
	st.requests++
	st.latMs = append(st.latMs, float64(time.Since(t0).Microseconds())/1000)
	switch {
	case err != nil:
		st.transport[transportKind(err)]++
	case resp.StatusCode/100 == 2:
		st.ok++
	default:
		key := strconv.Itoa(resp.StatusCode)
		if cause := resp.Header.Get("X-Gozer-Status"); cause != "" {
			key += " " + cause
		}
		st.failures[key]++
	}
}

// transportKind names a request that got no answer.
func transportKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "timeout"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "closed without answer"
	}
	return errKind(err)
}

// runqWait is how long this process's threads have waited on a run queue, in seconds
// (the second field of /proc/self/task/*/schedstat; 0 where the kernel does not say).
func runqWait() float64 {
	tasks, _ := filepath.Glob("/proc/self/task/*/schedstat")
	var ns float64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			v, _ := strconv.ParseFloat(f[1], 64)
			ns += v
		}
	}
	return ns / 1e9
}
