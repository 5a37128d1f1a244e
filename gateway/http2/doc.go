// Package http2 is the HTTP/2 client connection (RFC 9113), a connection kind
// beside gateway/http1: h2 over TLS when the client's ALPN chose it
// (listeners.https.h2), h2c with prior knowledge on the plain listener
// (listeners.proxy.h2c; gateway/http1 hands over a connection that starts
// with the preface). Each stream is an exchange.Downstream and drives the same
// exchange as an HTTP/1.1 request: filters, routing, isolation, retries,
// access log (protocol "HTTP/2.0"); origins keep speaking HTTP/1.1.
//
// The wire format is golang.org/x/net/http2's Framer and hpack; the state
// machine is ours and runs on the connection's event loop, with no goroutine
// per connection or stream. The Framer reads from an in-memory reader that
// holds exactly one whole frame of gnet's buffer (OnData only calls ReadFrame
// once 9 + length bytes are here), so it never blocks; frames written go to
// the connection's out buffer and leave in one write per callback, but for
// those written outside the connection's callbacks (a response, in its
// origin's): they leave at the end of the loop's batch of events
// (Loop.queueFlush), the responses of one batch in one write. One callback
// begins streamBurst streams at most; the frames after them wait for the
// loop's next round of I/O (turns.go), so one connection's requests never
// hold the loop from its other clients.
//
// A request's header block is decoded as its fragments come (the hpack
// decoder keeps at most one unfinished field, bounded by
// server.max_header_bytes), checked as RFC 9113 8.2-8.3 says, and turned
// into the HTTP/1.1 head the exchange parses (httpcodec.Request.Parse, so
// every check of a head applies to HTTP/2 as well): pseudo-headers become the
// request line and Host, cookies are joined, a body of unknown length is
// marked chunked so the exchange frames it for the origin.
//
// A response head goes the other way without HTTP/1.1 text: the fields
// HTTP/1.1 would send (httpcodec.AppendClientFields decides them for both)
// are written as HPACK by headEncoder, straight into a reused block buffer:
// literals without indexing, static-table names, Huffman when shorter, no
// dynamic table, as nginx does; no allocation per head. An origin's interim
// answer (103 Early Hints) is such a head too, a HEADERS frame without
// END_STREAM before the final one (stream.WriteInterim, RFC 9113 8.1).
//
// Flow control: a stream's request body is buffered up to the window we
// advertised (http2.initial_window_size), and WINDOW_UPDATE gives back what
// the exchange took, so an origin that reads slowly holds the client back.
// Response DATA leaves only within the client's windows; what waits counts
// in the stream's Buffered, so the exchange parks the origin
// (WaitWritable/OnWritable) as it does behind a slow HTTP/1.1 reader, and a
// client that opens no window for server.idle_timeout gets RST_STREAM
// CANCEL. A client that opens its windows or takes its socket's bytes slower
// than server.min_send_rate loses the stream or the connection (sendrate.go).
//
// Memory per connection is bounded: request body by the connection's window
// (http2.connection_window_size, 1 MiB) and each stream's; response DATA
// waiting for windows by one origin read per stream (the exchange parks the
// origin once a stream holds more than its allowance), so at most
// max_concurrent_streams × 64 KiB, and counted in Shared.Buffered so that the
// node's budget (server.max_buffered_total) lowers every allowance; control
// answers by server.max_buffered_per_conn; a header block by twice
// server.max_header_bytes; HPACK's dynamic table by 4 KiB (the decoder's;
// the encoder keeps none).
//
// Defences, each counted (telemetry.H2Stats: /metrics
// gozer_http2_errors_total, /admin/edge) and logged once per reason and 10 s:
// streams over max_concurrent_streams get REFUSED_STREAM; resets past
// http2.max_resets per abuse_window (rapid reset; resets the client provoked
// by protocol errors count, MadeYouReset) and control frames past
// max_control_frames, or control answers queued toward a client that does
// not read, get GOAWAY ENHANCE_YOUR_CALM; a header block over its byte cap or
// frame cap (CONTINUATION flood) gets GOAWAY ENHANCE_YOUR_CALM; a header list
// over SETTINGS_MAX_HEADER_LIST_SIZE, or of more than server.max_headers
// fields (cookie crumbs counted as one), is answered 431; a decreasing or reused
// stream id is a connection error; a stream whose own window lets DATA out
// slower than server.min_send_rate gets RST_STREAM CANCEL, a connection
// whose socket drains slower GOAWAY ENHANCE_YOUR_CALM and a close with
// SO_LINGER 0, one whose connection window lets DATA out slower GOAWAY
// ENHANCE_YOUR_CALM and a graceful end (slow_reader, sendrate.go).
//
// Push: an SSE push handshake takes its stream, not the connection
// (stream.Hijack): the push connection (pushconn.Conn) writes to a
// pushStream, a gnet.Conn whose writes become the stream's DATA (the
// handshake's HTTP/1.1 head becomes HEADERS), whose OutboundBuffered is what
// waits for the client's windows (push.max_outbound_bytes bounds it), and
// whose close ends the stream (loop.CloseConn asks CloseStream first). The
// registry delivers to it as to any push connection; the other streams of
// the connection go on. A websocket handshake cannot be made over HTTP/2
// (its Connection and Upgrade headers make the request malformed; RFC 8441
// extended CONNECT is not offered): websocket push stays HTTP/1.1.
//
// Trailers (trailers.go) pass both ways, as HTTP/1.1 field lines between a
// stream and its exchange (origins speak HTTP/1.1: a chunked body's trailer
// section): a request's trailing HEADERS (END_STREAM, no pseudo-header,
// lower-case names, no connection-specific field, else RST_STREAM
// PROTOCOL_ERROR) become Trailer's lines, bounded by the header list size
// and by 8 KiB as an HTTP/1.1 section, its final CRLF counted (over either:
// the body fails, 431); an origin's trailer section ends the response as
// trailing HEADERS with END_STREAM once every DATA frame left (HEADERS are
// not flow-controlled), HPACK-encoded by headEncoder;
// httpcodec.AppendTrailerFields drops the fields that must not be trailers
// (the exchange has dropped, before, what the origin's Connection names, and
// from a request's what its heads carry). A request with content-length goes
// to the origin with it, and so without its trailers. A request's te (only
// ever "trailers", else the request is malformed) is kept in the head the
// exchange parses, which says it again to the origin when trailers can
// reach the client (httpcodec.ForwardInfo.Trailers). An origin's Trailer
// header goes in the response's HEADERS when its body follows (not
// END_STREAM) and the exchange passes its trailers (Head.Trailers), filtered
// as they are (httpcodec.ResponseInfo.Trailers); a request's trailer header
// reaches the origin when its body goes chunked (no content-length). Trailing HEADERS whose
// stream ended before their END_HEADERS (a 408, an early answer, a reset, in
// another callback) are decoded, for HPACK's state, and dropped: the block
// finds its stream again by id, never keeps a pointer to a recyclable one.
// So are frames the client sent on a stream Gozer reset before the reset
// reached it (RFC 9113 5.1): its DATA (the window given back) and one
// trailer section, which ends the stream on the client's side; a second
// HEADERS there is the client's error (GOAWAY STREAM_CLOSED).
//
// Not done: server push (PUSH_PROMISE) is never sent (SETTINGS_ENABLE_PUSH
// is ignored); PRIORITY is ignored.
//
// server.min_body_rate applies to a stream's request body (bodyrate.go)
// while no response has started (once the origin answered, a stream that
// sends little is its choice: gRPC client streaming, bidi): one slower than
// it over server.rate_window, while Gozer did not hold it back (its windows
// open, the body not paused), is answered 408
// FAILURE_CLIENT_BODY_TOO_SLOW and reset (RST_STREAM NO_ERROR); the
// connection's other streams go on. protect.max_requests_per_connection
// applies too: after that many streams the connection gets GOAWAY NO_ERROR.
//
// Conformance: h2spec (TestHTTP2Spec) passes every case over TLS. Over h2c
// one case fails, on purpose: "3.5/2 Sends invalid connection preface" wants
// the connection closed unanswered, but on a plain listener that serves
// HTTP/1.1 too, bytes that are not the preface are an HTTP/1.1 request
// ("INVALID CONNECTION PREFACE" is a malformed request line), which
// gateway/http1 answers 400 before it closes; h2spec reads that answer as a
// frame. Closing unanswered would cost every HTTP/1.1 client that sends a
// bad request line its error message.
//
// Concurrency: a Conn, its streams and its Loop belong to one event loop;
// everything runs on that loop's goroutine. Frames read are valid for the
// callback; what must outlive it (request body) is copied.
package http2
