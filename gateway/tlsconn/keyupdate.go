package tlsconn

import (
	"errors"
	"time"
)

// KeyUpdate floods. A TLS 1.3 peer may ask for new traffic keys with a
// KeyUpdate message that requests one back; crypto/tls answers each at once:
// two key derivations and a record written. A client that sent thousands in
// one write (16 between two one-byte application records, the most crypto/tls
// lets through) held the loop's other clients for up to 360 ms, one write
// each (TestTLSKeyUpdateFlood). Real peers update their keys after gigabytes,
// if ever.
//
// So what crypto/tls writes while the loop decrypts is held and written once
// (wire.hold), and each such write, an answer to a requested KeyUpdate, is
// counted: past maxKeyUpdates within keyUpdateWindow the wire refuses to read
// further, crypto/tls ends with errKeyUpdateFlood, and the connection closes
// as on a bad record (counted in /admin/tls's closed_on_record_error_total and
// logged). KeyUpdates that request no answer write nothing; they are
// records without data, counted as crypto/tls reads them (records.go).

// maxKeyUpdates is how many KeyUpdate answers a connection gets per
// keyUpdateWindow.
const (
	maxKeyUpdates   = 8
	keyUpdateWindow = int64(time.Minute)
)

var errKeyUpdateFlood = errors.New("tls: key updates requested past 8 a minute")

// keyUpdated counts an answer crypto/tls wrote while the loop decrypted and
// reports whether the connection went past maxKeyUpdates. Loop goroutine.
func (c *Conn) keyUpdated() bool {
	return c.keyUpdates.add(c.l.Now(), 1, keyUpdateWindow, maxKeyUpdates)
}

// writeHeld writes what crypto/tls wrote during a decrypt, in one write.
func (c *Conn) writeHeld() {
	if len(c.w.held) == 0 {
		return
	}
	_, _ = c.Conn.Write(c.w.held)
	if cap(c.w.held) > 4<<10 {
		c.w.held = nil // a flood's worth is not kept
	} else {
		c.w.held = c.w.held[:0]
	}
}
