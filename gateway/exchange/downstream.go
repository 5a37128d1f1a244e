package exchange

import (
	"net/netip"
	"strconv"

	"github.com/panjf2000/gnet/v2"

	"gozer/filters"
	"gozer/gateway/httpcodec"
	"gozer/gateway/peers"
)

// Downstream is the client side of an exchange: an HTTP/1.1 connection's
// stream (gateway/http1) or an HTTP/2 stream (gateway/http2). The exchange talks to its client
// only through it, and the downstream tells the exchange what happens through
// the exchange's On* methods. Every method runs on the exchange's loop.
type Downstream interface {
	// Client describes who sent the request; valid for the exchange's life.
	Client() *Client
	// Draining reports whether the gateway drains: the downstream closes after
	// this response.
	Draining() bool

	// Continue tells a client that asked (Expect: 100-continue) and sent
	// nothing of its body yet to send it.
	Continue()
	// ReadBody calls fn with each piece of request body the downstream holds,
	// decoded (no framing), in order, until fn returns false or none is left;
	// every piece given to fn is consumed. done: the body is complete; err: the
	// body is broken (an *httpcodec.Error).
	ReadBody(fn func(piece []byte) bool) (done bool, err error)
	// Trailer is the request's trailer section once ReadBody reported done:
	// field lines "name:value\r\n" (a chunked body's, or an HTTP/2 stream's
	// trailing HEADERS written so), unfiltered, bounded by
	// httpcodec.DefaultMaxTrailerBytes; nil when there is none. Valid until
	// Done or Abort, so that a retry sends it again.
	Trailer() []byte
	// BodyExpected arms (true) or disarms the body timer: while armed and the
	// body is not paused, the client must send its next piece within
	// server.header_read_timeout (OnTimeout(TimeoutBody) otherwise).
	BodyExpected(on bool)
	// PauseBody stops reading the client's body (the origin takes it slower);
	// the body timer does not run while paused. ResumeBody reads again.
	PauseBody()
	ResumeBody()

	// WriteHead starts the response; WriteBody adds body pieces (framed as the
	// downstream frames them), EndBody ends the body. Nothing is sent before
	// Flush (but a big piece may go at once); Flush reports false when the
	// client is gone (OnGone was called).
	//
	// EndBody's trailer is the origin's trailer section to pass on (field
	// lines as httpcodec.ChunkedDecoder.Trailer keeps them, unfiltered; nil:
	// none): the downstream writes the fields httpcodec.AppendTrailerFields
	// keeps, as its protocol carries trailers (a chunked body's trailer
	// section, HTTP/2's trailing HEADERS), or drops them when its response
	// cannot carry them (HTTP/1.0, a Content-Length body). Valid for the call:
	// a downstream that sends them later copies them.
	WriteHead(r *httpcodec.Response, h *Head)
	WriteBody(p []byte)
	EndBody(trailer []byte)
	Flush() bool
	// WriteInterim sends the origin's interim answer r (a 1xx but 100 and
	// 101, such as 103 Early Hints) before the final head, at once: it is
	// not held for Flush, and it does not start the response (Started stays
	// false: a failure after it still gets its own final answer). Its fields
	// are r's as httpcodec.AppendClientFields writes them, h's RequestID and
	// Via with them; r has no body. It reports false when this downstream
	// sends no interim answers: an HTTP/1.0 client (RFC 9110 15.2), a side
	// call, a stream already reset. The client may be gone when it returns
	// (OnGone was called), as after WriteBody.
	WriteInterim(r *httpcodec.Response, h *Head) bool
	// Started reports whether a byte of the response went to the client: an
	// error can then only close the connection.
	Started() bool
	// Buffered is how much of the response waits to be taken by the client.
	Buffered() int
	// WaitWritable asks for OnWritable once the client took part of it; the
	// send timer runs meanwhile (OnTimeout(TimeoutSend) after
	// server.idle_timeout without progress).
	WaitWritable()
	// Bytes is what the exchange's request took and its response gave on the
	// wire so far (heads and framing included), for the access log.
	Bytes() (in, out int64)

	// Done ends the exchange: the downstream takes its next request, or closes
	// once the response has left when closeAfter (or for reasons of its own).
	Done(closeAfter bool)
	// Abort ends the exchange and closes the downstream at once: a response
	// that cannot be finished. reset: the client is not taking the response
	// (a timeout): the connection is reset, so that what waits for it in the
	// kernel's buffers goes at once instead of lingering toward a client that
	// does not read (nginx's reset_timedout_connection).
	Abort(reset bool)
	// Hijack ends the exchange and hands the connection over to another
	// connection kind (a push connection): the downstream forgets it. An
	// HTTP/2 stream hands over itself, as a gnet.Conn whose writes are its
	// DATA and whose close ends the stream (gateway/http2's pushStream).
	// false: this downstream cannot (a side call), or the client went.
	Hijack() (gnet.Conn, bool)
}

// Client is who sent a request.
type Client struct {
	Remote string     // ip:port, for logs and filters
	Addr   netip.Addr // for limits and trust
	IP     []byte     // Addr as text, for X-Forwarded-For
	Scheme string     // "http" (the default when empty) or "https"
	// Proto is the protocol the client spoke, for the access log:
	// "HTTP/1.1", "HTTP/1.0", "HTTP/2.0" ("" for a side call: Exchange.Call
	// clears it, so that its origin is not told TE: trailers either).
	Proto string
	// TLS is the client's TLS connection (nil over plain HTTP).
	TLS *filters.TLSInfo
	// Peer is the client's count of requests in flight (nil: not limited).
	Peer *peers.Peer
}

// Head is what the exchange adds to a response head beside the response
// itself.
type Head struct {
	RequestID []byte
	Via       string
	// Close: the exchange ends the connection after this response.
	Close bool
	// Upgrade names the protocol of a 426 answer.
	Upgrade string
	// Trailers: the origin's trailer section, if it sends one, goes to
	// EndBody (its body is chunked, not compressed, not replaced by a
	// filter): a downstream whose response carries trailers keeps the
	// origin's Trailer header (httpcodec.ResponseInfo.Trailers).
	Trailers bool
	// Status and Attempts are X-Gozer-Status and X-Gozer-Attempts ("" and 0:
	// not shown to this client).
	Status   string
	Attempts int

	scratch []byte // AppendStatusFields' values
}

// Timeout says which of a downstream's timers expired.
type Timeout uint8

// The downstream's timers.
const (
	// TimeoutBody: the request body stopped coming (BodyExpected).
	TimeoutBody Timeout = iota
	// TimeoutSend: the client stopped taking the response (WaitWritable).
	TimeoutSend
	// TimeoutBodyRate: the request body came slower than server.min_body_rate
	// over server.rate_window.
	TimeoutBodyRate
	// TimeoutSendRate: the client took the response slower than
	// server.min_send_rate over server.rate_window.
	TimeoutSendRate
)

// AppendStatusHeaders ends a response head (which ends with its empty line;
// it is re-ended) with h's status cause and attempt count, for a downstream
// that writes HTTP/1.1 head text (http1).
func (h *Head) AppendStatusHeaders(head []byte) []byte {
	if h.Status == "" {
		return head
	}
	head = h.AppendStatusFields(head[:len(head)-2], nil)
	return append(head, "\r\n"...)
}

var (
	nameGozerStatus   = []byte("X-Gozer-Status")
	nameGozerAttempts = []byte("X-Gozer-Attempts")
)

// AppendStatusFields appends h's status cause and attempt count (when shown)
// as w encodes fields (nil: HTTP/1.1 text), for a downstream that encodes the
// head's fields itself (http2's HPACK, httpcodec.AppendClientFields).
func (h *Head) AppendStatusFields(dst []byte, w httpcodec.FieldWriter) []byte {
	if h.Status == "" {
		return dst
	}
	h.scratch = append(h.scratch[:0], h.Status...)
	dst = httpcodec.AppendField(dst, w, nameGozerStatus, h.scratch)
	if h.Attempts > 0 {
		h.scratch = strconv.AppendInt(h.scratch[:0], int64(h.Attempts), 10)
		dst = httpcodec.AppendField(dst, w, nameGozerAttempts, h.scratch)
	}
	return dst
}
