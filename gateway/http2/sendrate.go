package http2

import (
	"fmt"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/sys/unix"

	"gozer/gateway/exchange"
	"gozer/gateway/loop"
	"gozer/gateway/telemetry"
)

// server.min_send_rate over HTTP/2: slow-read protection. An HTTP/1.1 client
// reads slowly one way, by taking little of its socket (gateway/http1
// measures what the socket took). An HTTP/2 client has two more: the windows
// it opens, per stream and per connection. The rate is measured where the
// response is held up, in windows of server.rate_window, each started when
// the holding starts and run on until the client caught up, so that a client
// that opens a byte of window now and then cannot keep a response (and its
// origin connection) for ever: the zero-window stall (the send timer, reset
// after server.idle_timeout without progress) only asks for progress.
//
//   - A stream whose DATA waits for its own window must get its DATA out at
//     min_send_rate, counted as payload (a window opened a byte at a time
//     costs a 9-byte frame header per byte, which is no progress), once the
//     client got the DATA that shut the window (while that DATA waits in our
//     send buffers, behind other streams' on a slow socket, the client
//     cannot open the window: the connection's check judges); below it
//     the stream is reset (RST_STREAM CANCEL, as the stall's reset: the
//     response is not wanted at this pace) and its exchange ends
//     FAILURE_CLIENT_READ_TOO_SLOW; the connection's other streams go on. A
//     stream whose own window is open waits on the connection (its window,
//     or its socket): that is the connection's rate to judge, not the
//     stream's (a client downloading many streams at once gives each a share
//     of its bandwidth).
//   - A connection that holds bytes up (its send buffer, or DATA waiting for
//     the connection's window) must have its socket take them at
//     min_send_rate; while DATA waits for the connection's window, the
//     window must let DATA payload out at min_send_rate instead (the socket
//     takes PING and SETTINGS acks as readily: a client that pings and opens
//     no window takes no response). Below it every stream's exchange ends
//     FAILURE_CLIENT_READ_TOO_SLOW and GOAWAY ENHANCE_YOUR_CALM is written.
//     When its socket held up, the connection is closed with SO_LINGER 0 (a
//     socket that does not drain may never deliver the GOAWAY), so that the
//     kernel's buffers go too, as for a slow HTTP/1.1 reader; when only the
//     connection's window did, its socket drains, and the connection ends
//     gracefully (Conn.linger): the GOAWAY and the other streams' finished
//     responses reach the client.
//
// Both count under telemetry.H2SlowReader and log once per 10 s (the
// connection's and the stream's apart). Push streams (SSE) are not measured
// on their own: push's bounds (push.max_outbound_bytes) judge them, as they
// judge push connections over HTTP/1.1; the connection's check counts every
// byte, a push stream's included (a socket that does not drain is a slow
// reader whatever it carries). Over TLS the connection's count mixes plaintext written and
// ciphertext waiting in gnet's buffer: a record's overhead (under 0.2 %)
// counts as taken.
//
// Concurrency: everything here runs on the connection's loop, from its
// timer (onTimer) and its writes (sendPending, account).

// rateNeed is what a client must take in one window of min_send_rate (0: the
// check is off).
func rateNeed(lim *loop.Limits) int64 {
	if lim.MinSendRate <= 0 {
		return 0
	}
	return lim.MinSendRate * lim.RateWindow / 1e9
}

// rateReason is what the log and the access log say about a slow reader.
func rateReason(lim *loop.Limits, what string) string {
	return fmt.Sprintf("%s slower than server.min_send_rate (%d B/s over %v)", what, lim.MinSendRate, time.Duration(lim.RateWindow))
}

// rateWatch starts a window of min_send_rate for st, whose DATA waits for a
// window (sendPending): the DATA it gets out from now on is measured.
func (st *stream) rateWatch() {
	lim := &st.c.lp.l.Snapshot().Limits
	if rateNeed(lim) == 0 || st.push != nil {
		return
	}
	st.rateMark, st.rateEnd = st.dataOut, st.dataEnd
	st.rateAt = st.c.lp.l.Now() + lim.RateWindow
	st.c.arm(st)
}

// rateDue checks st's window of min_send_rate, which ended: a stream that
// caught up stops being measured, one held up by the connection (its own
// window open) or fast enough gets a new window, a slower one is reset.
// false when st ended.
func (st *stream) rateDue() bool {
	lim := &st.c.lp.l.Snapshot().Limits
	st.rateAt = 0
	need := rateNeed(lim)
	if need == 0 || st.poff == len(st.pend) || st.reset {
		return true
	}
	// DATA payload only: a client opening a byte of window at a time must
	// not be credited the 9-byte frame header each byte costs us. And a
	// window is the client's to open only once it got the DATA that shut it
	// (sent before this window began): while that DATA waits in our send
	// buffers (behind other streams' on a slow socket) the connection's
	// check judges, and once it left, the client gets a whole window to
	// answer it.
	if st.sendWindow > 0 || st.dataOut-st.rateMark >= need {
		st.rateSocket = false
		st.rateWatch()
		return true
	}
	if delivered := st.c.delivered(st.rateEnd); !delivered || st.rateSocket {
		if !delivered && st.c.c.OutboundBuffered() == 0 {
			// The DATA sits in the kernel's send queue and gnet holds none, so
			// the connection's check (it watches gnet's buffer and the
			// connection's window) does not run: a client that reads nothing
			// and opens its window a byte now and then would be given window
			// after window. Judge the socket here, by what the client's TCP
			// acknowledged over the window.
			acked := st.c.acked()
			if st.rateSocket && acked-st.rateAcked < need {
				st.c.slowRead(rateReason(lim, "client's socket took the connection's data"))
				return false
			}
			st.rateAcked = acked
		}
		st.rateSocket = !delivered
		st.rateWatch()
		return true
	}
	c := st.c
	reason := rateReason(lim, "client opened the stream's window")
	if ex := st.ex; ex != nil {
		sh := c.lp.l.Shared
		sh.H2.Count(telemetry.H2SlowReader)
		if e := sh.Sampled.Info(streamLogKeys[telemetry.H2SlowReader]); e != nil {
			e.Str("client", c.remote).Str("code", http2.ErrCodeCancel.String()).Str("reason", reason).Msg("http2 stream reset")
		}
		ex.OnTimeout(exchange.TimeoutSendRate) // the exchange's log line and cause; it resets the stream (Abort)
		return false
	}
	c.resetStream(st.id, http2.ErrCodeCancel, telemetry.H2SlowReader, reason)
	return false
}

// holdsUp reports whether the client holds the connection's response bytes
// up: its socket has not taken what gnet holds, or DATA waits for the
// connection's window.
func (c *Conn) holdsUp() bool {
	return c.c.OutboundBuffered() > 0 || c.windowHoldsUp()
}

// taken is how many bytes the connection's socket took so far.
func (c *Conn) taken() int64 { return c.sent - int64(c.c.OutboundBuffered()) }

// delivered reports whether the client's socket took the connection's
// output up to pos (a count of Conn.sent): out of gnet's buffer and out of
// the kernel's send queue (SIOCOUTQ: a system call, but only for a stream
// found below the rate, once per window of min_send_rate).
func (c *Conn) delivered(pos int64) bool {
	return c.taken() >= pos && c.acked() >= pos
}

// acked is how many bytes of the connection's output left the kernel's send
// queue too (the client's TCP acknowledged them): taken less SIOCOUTQ, one
// system call. (Over TLS the queue holds records, a little more than the
// plaintext counted here: the estimate errs toward a slow verdict's delay.)
func (c *Conn) acked() int64 {
	return c.taken() - c.kernelQueued()
}

// kernelQueued is what the kernel's send queue holds (0 when it cannot say).
func (c *Conn) kernelQueued() int64 {
	if q, err := unix.IoctlGetInt(int(c.fd), unix.SIOCOUTQ); err == nil {
		return int64(q)
	}
	return 0
}

// windowHoldsUp reports whether DATA waits for the connection's window.
func (c *Conn) windowHoldsUp() bool { return c.pendTotal > 0 && c.sendWindow <= 0 }

// progress is what the client took since its window of min_send_rate began.
// While the connection's window holds DATA up, that is the DATA payload the
// window let out: the socket takes our PING and SETTINGS acks as readily as
// DATA, so a client that pings while it opens no window would look like a
// reader. Otherwise it is what the socket took, whatever it carried.
func (c *Conn) progress() int64 {
	if c.windowHoldsUp() {
		return c.dataSent - c.dataMark
	}
	return c.taken() - c.rateMark
}

// rateWatch starts a window of min_send_rate for the connection when it
// holds bytes up and none runs (account calls it after every write).
func (c *Conn) rateWatch() {
	if c.rateAt != 0 || c.state != stOpen && c.state != stGoingAway || !c.holdsUp() {
		return
	}
	lim := &c.lp.l.Snapshot().Limits
	if rateNeed(lim) == 0 {
		return
	}
	c.rateMark, c.dataMark = c.taken(), c.dataSent
	c.rateAt = c.lp.l.Now() + lim.RateWindow
	if c.deadline == 0 || c.rateAt < c.deadline {
		c.setDeadline(c.rateAt)
	}
}

// rateDue checks the connection's window of min_send_rate, which ended: a
// connection that caught up stops being measured, one fast enough gets a
// new window, a slower one ends (slowRead). false when it ended.
func (c *Conn) rateDue() bool {
	lim := &c.lp.l.Snapshot().Limits
	c.rateAt = 0
	need := rateNeed(lim)
	if need == 0 || !c.holdsUp() {
		return true
	}
	if c.progress() >= need {
		c.rateWatch()
		return true
	}
	c.slowRead(rateReason(lim, "client took the connection's bytes"))
	return false
}

// slowRead ends a connection whose client reads slower than min_send_rate:
// its streams' exchanges end as too slow (their access-log lines), GOAWAY
// ENHANCE_YOUR_CALM, and a close that drops the kernel's buffers when the
// socket held up; when only the connection's window did, the socket drains,
// so the end is graceful (linger): a reset would destroy the GOAWAY and the
// other streams' finished responses still in the kernel's buffers.
func (c *Conn) slowRead(reason string) {
	socketHeld := c.c.OutboundBuffered() > 0
	sh := c.lp.l.Shared
	sh.H2.Count(telemetry.H2SlowReader)
	if e := sh.Sampled.Info(connLogKeys[telemetry.H2SlowReader]); e != nil {
		e.Str("client", c.remote).Str("code", http2.ErrCodeEnhanceYourCalm.String()).Str("reason", reason).Msg("http2 connection ended")
	}
	for _, st := range c.streams {
		if ex := st.ex; ex != nil {
			ex.OnTimeout(exchange.TimeoutSendRate) // resets the stream (Abort), which forgets it
		}
	}
	if c.state == stClosed {
		return
	}
	if c.state == stOpen || c.state == stGoingAway {
		_ = c.fr.WriteGoAway(c.lastID, http2.ErrCodeEnhanceYourCalm, nil)
		if !socketHeld {
			c.linger()
			return
		}
		c.flush()
	}
	if !socketHeld {
		return // the last stream's end made it linger (a GOAWAY was sent)
	}
	_ = unix.SetsockoptLinger(int(c.fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	c.close()
}
