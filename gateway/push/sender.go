package push

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"gozer/filters"
	"gozer/gateway/origin"
)

// Device messages: the text messages devices send go to the push origin as
// HTTP POSTs. They leave the loop at once (a copy of the payload on a bounded
// queue) and are sent by a few sender goroutines with fasthttp, through the
// origin's isolation (origin.Origin.Do): its bulkhead and breaker admit each
// message, its balancer picks the server, failures feed its outlier
// detection, and a failed attempt is retried once on another server when the
// origin allows retries.

const (
	senderQueue   = 8192 // messages waiting for a sender, node-wide
	senderWorkers = 4
	// SenderInflight is how many messages of one connection may be on their way
	// upstream; over it the connection stops reading (Device).
	SenderInflight = 4
	// ClientIDHeader carries the client id of a device message.
	ClientIDHeader = "X-Push-Client-Id"
)

// Device is a push connection as the Sender sees it.
type Device interface {
	// ClientID is the device's client id.
	ClientID() string
	// MessageDone tells the device one of its messages was sent (or failed):
	// any goroutine.
	MessageDone()
}

// Sender sends device messages to the push origin.
//
// Concurrency: Send runs on event loops; Run's workers are goroutines of their
// own and reach a device only through MessageDone.
type Sender struct {
	o      atomic.Pointer[origin.Origin]  // nil: no push origin, messages are dropped
	count  func(originName, cause string) // the origin's requests by status cause
	stats  *Stats
	log    zerolog.Logger
	path   string
	queue  chan deviceMsg
	client *fasthttp.Client
	seq    atomic.Uint32
	logged atomic.Int64 // unix s of the last failure log line (rate limit)
}

type deviceMsg struct {
	d    Device
	body []byte
}

// NewSender returns the sender to path at origin o (nil: every message is
// dropped and counted); count counts each message by its status cause for o.
func NewSender(o *origin.Origin, path string, count func(originName, cause string), stats *Stats, log zerolog.Logger) *Sender {
	s := &Sender{path: path, count: count, stats: stats, log: log}
	s.o.Store(o)
	if o == nil {
		return s
	}
	s.queue = make(chan deviceMsg, senderQueue)
	s.client = &fasthttp.Client{
		Name:                "gozer-push-upstream",
		ReadTimeout:         o.ReadTimeout,
		WriteTimeout:        o.ReadTimeout,
		MaxConnsPerHost:     64,
		MaxIdleConnDuration: o.IdleTimeout,
		Dial: func(addr string) (net.Conn, error) {
			return fasthttp.DialTimeout(addr, o.ConnectTimeout)
		},
	}
	return s
}

// Start runs the workers with run (which runs a func on a goroutine of its
// own until ctx is done).
func (s *Sender) Start(run func(func(context.Context))) {
	if s.o.Load() == nil {
		return
	}
	for range senderWorkers {
		run(s.work)
	}
}

// Send hands one of d's text messages upstream; payload is only valid during
// the call, so it is copied. It reports whether the message is on its way (d's
// MessageDone follows); false: dropped and counted. Loop goroutine.
func (s *Sender) Send(d Device, payload []byte) bool {
	if s.o.Load() == nil {
		s.stats.UpstreamDropped.Add(1)
		return false
	}
	select {
	case s.queue <- deviceMsg{d: d, body: append([]byte(nil), payload...)}:
		return true
	default:
		s.stats.UpstreamDropped.Add(1) // the push origin does not keep up: shed, counted
		return false
	}
}

func (s *Sender) work(ctx context.Context) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	for {
		select {
		case <-ctx.Done():
			// Shutdown: what is still queued will not be sent; count it.
			for {
				select {
				case <-s.queue:
					s.stats.UpstreamDropped.Add(1)
				default:
					return
				}
			}
		case m := <-s.queue:
			s.post(req, resp, m)
			m.d.MessageDone()
		}
	}
}

// SetOrigin replaces the push origin by o, the same origin rebuilt by a
// configuration reload (push.upstream_origin itself changes only with a
// restart). Any goroutine; a message being sent finishes with the old one.
func (s *Sender) SetOrigin(o *origin.Origin) {
	if s.o.Load() != nil && o != nil {
		s.o.Store(o)
	}
}

// post sends one message, with a retry on another server when allowed.
func (s *Sender) post(req *fasthttp.Request, resp *fasthttp.Response, m deviceMsg) {
	o := s.o.Load()
	cause := filters.OriginConnectivity // no server was available to try
	now := func() int64 { return time.Now().UnixNano() }
	v, ok := o.Do(now, func() uint32 { return s.seq.Add(0x9e3779b9) }, min(o.Retries, 1), func(srv *origin.Server) bool {
		req.Reset()
		resp.Reset()
		req.Header.SetMethod("POST")
		req.SetRequestURI("http://" + srv.Addr + s.path)
		req.Header.Set(ClientIDHeader, m.d.ClientID())
		req.Header.SetContentType("text/plain; charset=utf-8")
		req.SetBodyRaw(m.body)
		err := s.client.DoTimeout(req, resp, o.ReadTimeout)
		// As on the proxy path: an answer, 5xx or not, is the origin's success at
		// talking HTTP (its status says the rest); no answer is a failure's cause.
		cause = senderCause(err)
		switch {
		case err != nil:
			s.logFailure(m.d.ClientID(), fmt.Sprintf("server %s: %v", srv.Addr, err))
		case resp.StatusCode() >= 500:
			s.logFailure(m.d.ClientID(), fmt.Sprintf("server %s answered %d", srv.Addr, resp.StatusCode()))
		}
		return err == nil && resp.StatusCode() < 500
	})
	switch v {
	case origin.RefusedOpen:
		cause = filters.LocalOriginCircuitOpen
	case origin.RefusedConcurrency:
		cause = filters.LocalOriginConcurrency
	}
	if v != origin.Admitted {
		s.logFailure(m.d.ClientID(), "push origin refused: "+v.String())
	}
	s.count(o.Name, cause.Name)
	if ok {
		s.stats.UpstreamSent.Add(1)
	} else {
		s.stats.UpstreamFailed.Add(1)
	}
}

// senderCause is the status cause of one device message attempt.
func senderCause(err error) filters.Cause {
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
func (s *Sender) logFailure(id, reason string) {
	now := time.Now().Unix()
	if last := s.logged.Load(); last != now && s.logged.CompareAndSwap(last, now) {
		s.log.WithLevel(zerolog.WarnLevel).Str("client_id", id).Str("origin", s.o.Load().Name).
			Msg("push upstream message not delivered: " + reason)
	}
}
