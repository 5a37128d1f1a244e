// Package compress compresses response bodies on their way to the client: it picks
// the content coding from the request's Accept-Encoding (Negotiate), tells whether
// a response's media type is worth compressing (Compressible), and compresses the
// body as a stream (Encoder), with encoders kept per event loop in a bounded Pool.
//
// It is self-contained: the exchange's relay decides when to compress and handles
// the HTTP side; this package only knows codings and bytes.
//
// # Concurrency
//
// Negotiate, Compressible, CheckType and ParseEncoding are pure functions that any
// goroutine may call. A Pool and the encoders it hands out belong to one event
// loop and are used only from its goroutine; there is no locking. What an Encoder
// returns is valid until the next call on that encoder.
//
// # What the relay does around it
//
// Compress only when the response has a body (not HEAD, 204, 304), no
// Content-Encoding of its own, no Content-Range (a 206 is a slice of the identity
// body), no "Cache-Control: no-transform", a compressible media type and, when
// Content-Length is known, a body long enough to gain (below about 1 KiB the
// coding's framing eats the saving). Then: set Content-Encoding to the coding's
// String, add "Accept-Encoding" to Vary (also on responses sent uncompressed,
// since a cache must know the answer depends on it), drop Content-Length (the
// body goes chunked, or until close for HTTP/1.0), and turn a strong ETag weak.
// Call Flush whenever the origin has paused and the client should see what has
// arrived (text/event-stream is under text/*: a stream of events needs a Flush
// after each one). When Pool.Get returns nil, send the response as is.
//
// # Small gzip bodies
//
// A gzip body of at most 8 KiB (oneShotMax) that ends before any Flush, the
// usual API answer, is compressed in one shot by the package's own deflate
// encoder (oneshot.go, huffman.go) rather than by klauspost's stream: the
// stream's fixed cost per response (match tables sized for 64 KiB blocks, its
// Huffman table builder) is most of what a small body costs. The one-shot
// encoder does what nginx's zlib does for a short Content-Length: hash chains
// sized for the body, zlib's lazy matching with zlib's parameters for the level,
// one block with dynamic, fixed or no Huffman codes, whichever is smallest; its
// output is within 3% of the stream's at every level, mostly smaller
// (TestOneShotRatio). Encoder.Write holds a gzip body back (copied) until it
// outgrows 8 KiB or is flushed; then it streams, starting with what was held.
//
// # Levels
//
// The configuration has one level, 1 to 9 as nginx's gzip_comp_level (default 5),
// and each coding maps it to its own scale:
//
//	level   gzip (flate level)   br (quality)   zstd (klauspost level)
//	1       1                    2              SpeedFastest
//	2       2                    2              SpeedFastest
//	3       3                    3              SpeedFastest
//	4       4                    3              SpeedDefault
//	5       5                    4              SpeedDefault
//	6       6                    4              SpeedDefault
//	7       7                    5              SpeedDefault
//	8       8                    5              SpeedBetterCompression
//	9       9                    6              SpeedBetterCompression
//
// gzip uses klauspost's flate: zlib's scale (1 fastest, 9 smallest), faster code;
// small bodies use zlib's own parameters for the level (oneShotParams).
// zstd's SpeedDefault is the reference implementation's level 3, its usual default;
// SpeedBestCompression is never used: it needs about 35 MiB per encoder.
//
// Brotli's qualities follow the ratio rather than the CPU: in the Go port
// (andybalholm/brotli), every quality from 2 up costs several times the CPU of
// klauspost's gzip at a similar ratio, so a mapping by CPU would give brotli worse
// output than gzip at the same cost, and no reason to offer it. At level 5,
// quality 4 compresses like gzip 8, at about a fifth of gzip 5's speed
// (BenchmarkEncode). Qualities 0 and 1 are left out: they compress each Write on
// its own, without the history of earlier ones (a page relayed in 1 KB pieces
// came out at a third of the ratio). Qualities 7 and up are left out for memory:
// their hash chains take 8 to 32 MiB per encoder.
//
// The ratio each level gives on testdata/page.html (BenchmarkEncodeLevels prints
// it, with the speed):
//
//	level   1     2     3     4     5     6     7     8     9
//	gzip    5.46  5.54  5.70  5.66  5.99  6.03  6.11  6.23  6.30
//	br      5.89  5.89  5.92  5.92  6.23  6.23  6.88  6.88  6.91
//	zstd    5.93  5.93  5.93  6.19  6.19  6.19  6.19  6.35  6.35
//
// # Memory
//
// Windows are kept small, since responses rarely gain from reaching back further:
// brotli 64 KiB (LGWin 16; its metablock buffers grow with the window too), zstd
// 256 KiB with WithLowerEncoderMem, gzip its fixed 32 KiB. A gzip encoder builds
// klauspost's writer only for its first streamed body: one that has compressed
// small bodies only holds about 70 KiB (TestHeapOneShot). zstd runs with
// WithEncoderConcurrency(1), which encodes on the caller's goroutine and starts
// none. Heap held per live encoder (TestHeapPerEncoder, TestHeapPerLevel), in KiB,
// after 512 KiB of input, past which it does not grow:
//
//	level   1     2     3     4     5     6     7     8     9
//	gzip    816   1200  1200  938   1066  1066  1042  1042  1172
//	br      916   916   908   908   1796  1796  1794  1794  1794
//	zstd    880   880   880   2064  2064  2064  2064  4908  4908
//
// At level 5, then, a compressed response in flight costs 1 to 2 MiB, and a Pool
// at DefaultMaxEncoders (16) holds at most about 32 MiB per event loop.
package compress
