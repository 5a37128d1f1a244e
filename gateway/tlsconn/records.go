package tlsconn

import (
	"errors"
	"time"
)

// Records that carry no data. crypto/tls handles a whole read of records in
// one Read, and inside it every record that gives the application nothing
// (a KeyUpdate, an empty application record, a warning alert in TLS 1.2),
// up to 16 in a row. Each may cost work (a KeyUpdate: a key derivation and
// a new cipher), and a client that puts one byte of data between every 15
// had 2.25 million KeyUpdates taken on one connection, none counted.
//
// So the client's ciphertext is handed to crypto/tls a record at a time (the
// wire's reads stop at each record's end: recordCutter), which tells how
// many records each Read took; those beyond the one that gave data are
// barren. Past maxBarren a minute (barrenWindow) the connection ends as on a
// bad record (errBarrenRecords). Real peers send such records once in a
// long while (a KeyUpdate after gigabytes), if ever.
//
// The handshake goroutine reads through the same cutter, so crypto/tls ends
// the handshake at a record's end and the loop takes the stream over in
// step. Origin connections (Dial: crypto/tls reads the socket itself during
// their handshake) are not cut, and not counted.

const (
	maxBarren    = 64
	barrenWindow = int64(time.Minute)
)

var errBarrenRecords = errors.New("tls: records without data past 64 a minute (key updates, empty records)")

// recordCutter follows the record boundaries of the client's byte stream
// (RFC 8446 5.1: a 5-byte header whose last two bytes are the length of the
// body after it). on: the stream is followed from its first byte.
type recordCutter struct {
	on   bool
	hdr  [5]byte
	hdrN int // bytes of the current record's header read so far
	body int // bytes of the current record's body still to come
}

// span is how many of the next n bytes a read may take without passing the
// end of the current piece (the header, or the body, of a record).
func (r *recordCutter) span(n int) int {
	if !r.on {
		return n
	}
	if r.body > 0 {
		return min(n, r.body)
	}
	return min(n, len(r.hdr)-r.hdrN)
}

// take moves past b, what a read took, and returns how many records it
// ended.
func (r *recordCutter) take(b []byte) (ended int) {
	if !r.on {
		return 0
	}
	for len(b) > 0 {
		if r.body > 0 {
			k := min(len(b), r.body)
			r.body -= k
			b = b[k:]
			if r.body == 0 {
				ended++
			}
			continue
		}
		k := copy(r.hdr[r.hdrN:], b)
		r.hdrN += k
		b = b[k:]
		if r.hdrN == len(r.hdr) {
			r.hdrN = 0
			r.body = int(r.hdr[3])<<8 | int(r.hdr[4])
			if r.body == 0 {
				ended++ // an empty record
			}
		}
	}
	return ended
}

// barren counts n records that gave no data and reports whether the
// connection went past maxBarren in its window. Loop goroutine.
func (c *Conn) barren(n int) bool {
	return c.barrenN.add(c.l.Now(), n, barrenWindow, maxBarren)
}

// perWindow counts events in fixed windows (the first event opens one).
type perWindow struct {
	at int64 // when the window opened
	n  int32
}

// add counts n events at now and reports whether the window holds more than
// max.
func (w *perWindow) add(now int64, n int, window int64, max int32) bool {
	if now-w.at > window {
		w.at, w.n = now, 0
	}
	w.n += int32(n)
	return w.n > max
}
