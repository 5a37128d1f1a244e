package httpcodec

// BodyReader takes a message body out of the bytes of its connection, framed
// as its head said: a Content-Length, the chunked coding, or the connection's
// end. It is the one body-framing loop of the gateway, for request bodies
// from clients and response bodies from origins alike.
//
// Concurrency: a BodyReader belongs to one message stream on its connection's
// event loop. It keeps no reference to the bytes it is given; the data it
// returns aliases them.
type BodyReader struct {
	framing   Framing
	remaining int64
	chunks    ChunkedDecoder
	done      bool
}

// Reset prepares r for a body framed by f (length: its Content-Length);
// response selects the response errors (502) of the chunked decoder.
func (r *BodyReader) Reset(f Framing, length int64, response bool) {
	r.framing, r.remaining, r.done = f, length, false
	r.chunks.Response = response
	r.chunks.Reset()
	switch f {
	case FramingNone:
		r.done = true
	case FramingLength:
		r.done = length == 0
	}
}

// Done reports whether the whole body was read. A body framed by the
// connection's end is never done by itself: its end is the close.
func (r *BodyReader) Done() bool { return r.done }

// Want is the most bytes of its connection the body can still take: what is
// left of a Content-Length; -1 when its framing does not say (chunked, until
// the close).
func (r *BodyReader) Want() int64 {
	switch {
	case r.done:
		return 0
	case r.framing == FramingLength:
		return r.remaining
	}
	return -1
}

// Trailer is the trailer section of a chunked body once Done (see
// ChunkedDecoder.Trailer); nil for other framings. Valid until Reset.
func (r *BodyReader) Trailer() []byte {
	if r.framing != FramingChunked {
		return nil
	}
	return r.chunks.Trailer()
}

// Next takes the next piece of body out of buf: consumed is how many bytes of
// buf it used (framing included), data the piece of body among them (nil
// when there was only framing). Call it again with buf[consumed:] while it
// consumes and the body is not done; it stops at the end of the body (what
// follows is the next message) and after each piece of a chunked body. A
// framing error is an *Error (400, or 502 for a response).
func (r *BodyReader) Next(buf []byte) (consumed int, data []byte, err error) {
	if r.done {
		return 0, nil, nil
	}
	switch r.framing {
	case FramingLength:
		n := len(buf)
		if int64(n) > r.remaining {
			n = int(r.remaining)
		}
		r.remaining -= int64(n)
		r.done = r.remaining == 0
		return n, buf[:n], nil
	case FramingChunked:
		n, d, done, err := r.chunks.Next(buf)
		r.done = done
		return n, d, err
	case FramingUntilClose:
		return len(buf), buf, nil
	}
	return 0, nil, nil
}
