package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"gozer/filters"
	"gozer/gateway/origin"
)

// Upstream messages: the text messages devices send go to the push origin as
// HTTP POSTs. They leave the loop at once (a copy of the payload on a bounded
// queue) and are sent by a few sender goroutines with fasthttp, through the
// origin's isolation: its bulkhead and breaker admit each message, its balancer
// picks the server, failures feed its outlier detection, and a failed attempt is
// retried once on another server when the origin allows retries.

const (
	upstreamQueue    = 8192 // messages waiting for a sender, node-wide
	upstreamSenders  = 4
	upstreamInflight = 4 // per connection; over it the connection's reading pauses
	upstreamIDHeader = "X-Push-Client-Id"
)

// pushUpstream sends device messages to the push origin.
//
// Concurrency: send runs on event loops; the senders are their own goroutines and
// reach a connection's loop only through Execute.
type pushUpstream struct {
	h      *pushHub
	o      *origin.Origin                 // nil: no push origin, messages are dropped
	count  func(originName, cause string) // the origin's requests_by_cause (causeCounters.add)
	path   string
	queue  chan upMsg
	client *fasthttp.Client
	seq    atomic.Uint32
	logged atomic.Int64 // unix s of the last failure log line (rate limit)
}

type upMsg struct {
	pc   *pushConn
	body []byte
}

func newPushUpstream(s *Server, h *pushHub) (*pushUpstream, error) {
	u := &pushUpstream{h: h, path: s.cfg.Push.UpstreamPath, count: s.counters.add}
	name := s.cfg.Push.UpstreamOrigin
	if name == "" {
		return u, nil
	}
	o, ok := s.origins.Get(name)
	if !ok {
		return nil, fmt.Errorf("push.upstream_origin names unknown origin %q", name)
	}
	u.o = o
	u.queue = make(chan upMsg, upstreamQueue)
	u.client = &fasthttp.Client{
		Name:                "gozer-push-upstream",
		ReadTimeout:         o.ReadTimeout,
		WriteTimeout:        o.ReadTimeout,
		MaxConnsPerHost:     64,
		MaxIdleConnDuration: o.IdleTimeout,
		Dial: func(addr string) (net.Conn, error) {
			return fasthttp.DialTimeout(addr, o.ConnectTimeout)
		},
	}
	return u, nil
}

func (u *pushUpstream) start(run func(func(context.Context))) {
	if u.o == nil {
		return
	}
	for range upstreamSenders {
		run(u.sender)
	}
}

// send hands a device's text message upstream. Loop goroutine; payload is only
// valid during the call, so it is copied.
func (u *pushUpstream) send(pc *pushConn, payload []byte) {
	st := &u.h.stats
	if u.o == nil {
		st.upstreamDropped.Add(1)
		return
	}
	select {
	case u.queue <- upMsg{pc: pc, body: append([]byte(nil), payload...)}:
		if pc.upInflight.Add(1) >= upstreamInflight {
			pc.pause() // backpressure to the device until its messages went out
		}
	default:
		st.upstreamDropped.Add(1) // the push origin does not keep up: shed, counted
	}
}

func (u *pushUpstream) sender(ctx context.Context) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	for {
		select {
		case <-ctx.Done():
			// Shutdown: what is still queued will not be sent; count it.
			for {
				select {
				case <-u.queue:
					u.h.stats.upstreamDropped.Add(1)
				default:
					return
				}
			}
		case m := <-u.queue:
			u.post(req, resp, m)
			if m.pc.upInflight.Add(-1) == upstreamInflight-1 {
				pc := m.pc
				_ = pc.l.el.Execute(ctx, gnet.RunnableFunc(func(context.Context) error {
					pc.l.clock()
					pc.resume()
					pc.l.reap()
					return nil
				}))
			}
		}
	}
}

// post sends one message, with a retry on another server when allowed.
func (u *pushUpstream) post(req *fasthttp.Request, resp *fasthttp.Response, m upMsg) {
	o, st := u.o, &u.h.stats
	start := time.Now().UnixNano()
	if v := o.Iso.Admit(start); v != origin.Admitted {
		st.upstreamFailed.Add(1)
		cause := filters.LocalOriginConcurrency
		if v == origin.RefusedOpen {
			cause = filters.LocalOriginCircuitOpen
		}
		u.count(o.Name, cause.Name)
		u.logFailure(m.pc.id, "push origin refused: "+v.String())
		return
	}
	outcome := origin.Failure
	cause := filters.OriginConnectivity // no server was available to try
	var tried uint64
	for attempt := 0; attempt <= min(o.Retries, 1); attempt++ {
		now := time.Now().UnixNano()
		srv := o.Iso.Pick(tried, u.seq.Add(0x9e3779b9), now)
		if srv == nil {
			break
		}
		tried |= srv.Bit()
		req.Reset()
		resp.Reset()
		req.Header.SetMethod("POST")
		req.SetRequestURI("http://" + srv.Addr + u.path)
		req.Header.Set(upstreamIDHeader, m.pc.id)
		req.Header.SetContentType("text/plain; charset=utf-8")
		req.SetBodyRaw(m.body)
		err := u.client.DoTimeout(req, resp, o.ReadTimeout)
		ok := err == nil && resp.StatusCode() < 500
		o.Iso.AttemptDone(srv, ok, time.Now().UnixNano())
		// As on the proxy path: an answer, 5xx or not, is the origin's success at
		// talking HTTP (its status says the rest); no answer is a failure's cause.
		cause = upstreamCause(err)
		if ok {
			outcome = origin.Success
			break
		}
		if err != nil {
			u.logFailure(m.pc.id, fmt.Sprintf("server %s: %v", srv.Addr, err))
		} else {
			u.logFailure(m.pc.id, fmt.Sprintf("server %s answered %d", srv.Addr, resp.StatusCode()))
		}
	}
	o.Iso.Finish(outcome, start, time.Now().UnixNano())
	u.count(o.Name, cause.Name)
	if outcome == origin.Success {
		st.upstreamSent.Add(1)
	} else {
		st.upstreamFailed.Add(1)
	}
}

// upstreamCause is the status cause of one upstream message attempt.
func upstreamCause(err error) filters.Cause {
	var ne net.Error
	switch {
	case err == nil:
		return filters.Success
	case errors.Is(err, fasthttp.ErrDialTimeout), errors.Is(err, fasthttp.ErrNoFreeConns):
		return filters.OriginConnectivity
	case errors.Is(err, fasthttp.ErrTimeout), errors.As(err, &ne) && ne.Timeout():
		return filters.OriginReadTimeout
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return filters.OriginConnectivity
	}
	return filters.OriginReset
}

// logFailure logs at most one line per second: a down push origin would
// otherwise log once per device message.
func (u *pushUpstream) logFailure(id, reason string) {
	now := time.Now().Unix()
	if last := u.logged.Load(); last != now && u.logged.CompareAndSwap(last, now) {
		u.h.log.WithLevel(zerolog.WarnLevel).Str("client_id", id).Str("origin", u.o.Name).
			Msg("push upstream message not delivered: " + reason)
	}
}
