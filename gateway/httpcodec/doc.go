// Package httpcodec is the HTTP/1.1 codec of the gateway's event-loop proxy
// core: it finds request and response heads in the bytes read so far
// (HeadScanner), validates and parses them strictly against request
// smuggling (Request.Parse, Response.Parse), decodes chunked bodies over any
// split of the input (ChunkedDecoder, which keeps the trailer section for a
// proxy to pass on: Trailer), and writes the heads the gateway sends: to the
// origin (AppendForwardRequest), to the client (AppendClientResponse; its
// fields alone, for an encoding of the downstream's own such as HTTP/2's
// HPACK: AppendClientFields), trailer fields either way without those that
// must not be trailers (AppendTrailerFields, ForbiddenTrailer; a request's
// also without any field its heads carry or its Connection names:
// Request.AppendTrailerFields; a response's without what its Connection
// names: Response.AppendTrailerFields), the Trailer header that announces
// them filtered alike where the trailers follow (ForwardInfo, ResponseInfo;
// TE: trailers said again to an origin, ForwardInfo.Trailers) and its own
// error responses (AppendError).
//
// Header parsing proper is fasthttp's (fasthttp.RequestHeader and
// ResponseHeader); this package runs its own raw-bytes validation pass
// first, because fasthttp is lenient about many framing ambiguities.
//
// Concurrency: nothing in this package is safe for concurrent use, and
// nothing needs to be: every object belongs to one connection and is used on
// that connection's event loop goroutine. The functions keep no global
// mutable state. The caller keeps one HeadScanner, Request, Response and
// ChunkedDecoder per connection and Resets them between messages; after
// warm-up the hot path does not allocate.
//
// Errors are *Error values carrying the HTTP status and the status cause to
// answer with. They are shared, read-only values.
package httpcodec
