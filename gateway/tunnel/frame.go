package tunnel

import (
	"errors"
	"fmt"
)

// Tracker follows the websocket frames (RFC 6455 section 5.2) of one direction
// of a tunnel without copying or changing a byte: where each frame starts and
// ends, and whether a close frame passed (and its code). The tunnel relays
// bytes as they come, so a frame may arrive in any number of pieces; the
// tracker keeps only the frame header in progress (at most 14 bytes) and the
// count of payload bytes still to come, whatever the message size.
//
// It knows the frame boundaries so that the gateway can put a close frame of
// its own between two frames (drain, idle timeout, lifetime) and can stop
// relaying after a close frame; it refuses what no peer may send (a missing
// or unexpected mask, a reserved opcode, a control frame that is fragmented
// or over 125 bytes, a 64-bit length with its top bit set), so that a
// hostile client cannot desynchronise it or reach an origin with a broken
// stream. Payloads are not looked at, so extensions (permessage-deflate,
// RSV bits) pass through.
//
// Concurrency: a Tracker belongs to its tunnel's loop.
type Tracker struct {
	// masked is what frames of this direction must be: masked (client to
	// origin) or not (origin to client).
	masked bool

	hdr  [14]byte
	hlen uint8  // header bytes gathered so far
	need uint8  // header length the frame needs (2 until the second byte tells)
	left uint64 // payload bytes of the current frame still to come
	pos  uint64 // payload bytes of the current frame seen
	op   byte
	key  [4]byte

	closing bool   // the current frame is a close frame
	code    uint16 // a close frame's code as gathered
	closed  bool   // a close frame passed whole
}

// ErrProtocol wraps every error Feed returns: the peer broke RFC 6455 and
// the tunnel ends with close code 1002.
var ErrProtocol = errors.New("websocket protocol error")

// NewTracker returns a tracker of a direction whose frames must be masked
// (client to origin) or must not be (origin to client).
func NewTracker(masked bool) Tracker { return Tracker{masked: masked, need: 2} }

// AtBoundary reports whether the bytes fed so far end with a whole frame:
// a frame of the gateway's own may go next.
func (t *Tracker) AtBoundary() bool { return t.hlen == 0 && t.left == 0 }

// Closed reports whether a close frame passed whole; nothing after it is
// relayed (RFC 6455 5.5.1: a peer sends no data frame after its close).
func (t *Tracker) Closed() bool { return t.closed }

// CloseCode is the code of the close frame that passed (1005: it had none;
// 0: none passed).
func (t *Tracker) CloseCode() uint16 {
	if !t.closed {
		return 0
	}
	if t.code == 0 {
		return 1005
	}
	return t.code
}

// Feed follows b, the next bytes of the direction, and returns how many of
// them to relay: all of b, or fewer when a close frame ends inside b (what
// follows it is not relayed) or, with stop, when a frame ends inside b (the
// gateway's own frame goes there). With stop at a boundary it returns 0.
// After a close frame it returns 0: the caller drops the rest.
func (t *Tracker) Feed(b []byte, stop bool) (int, error) {
	n := 0
	for n < len(b) && !t.closed {
		if stop && t.AtBoundary() {
			return n, nil
		}
		if t.hlen < t.need {
			m, err := t.header(b[n:])
			n += m
			if err != nil {
				return n, err
			}
			continue
		}
		k := min(uint64(len(b)-n), t.left)
		if t.closing {
			t.closeCode(b[n : n+int(k)])
		}
		t.left -= k
		t.pos += k
		n += int(k)
		t.endFrame()
	}
	return n, nil
}

// header gathers header bytes from b; once whole, it checks the frame and
// starts its payload. It returns how many bytes of b it took.
func (t *Tracker) header(b []byte) (int, error) {
	n := 0
	for n < len(b) && t.hlen < t.need {
		t.hdr[t.hlen] = b[n]
		t.hlen++
		n++
		if t.hlen == 2 {
			t.need = 2 + lenBytes(t.hdr[1]&0x7F)
			if t.hdr[1]&0x80 != 0 {
				t.need += 4
			}
		}
	}
	if t.hlen < t.need {
		return n, nil
	}
	if err := t.startFrame(); err != nil {
		return n, err
	}
	t.endFrame() // a frame without payload ends with its header
	return n, nil
}

// lenBytes is how many extended-length bytes a 7-bit length announces.
func lenBytes(l7 byte) uint8 {
	switch l7 {
	case 126:
		return 2
	case 127:
		return 8
	}
	return 0
}

// startFrame checks the whole header in t.hdr and sets the payload up.
func (t *Tracker) startFrame() error {
	h := t.hdr[:t.hlen]
	fin, op, masked := h[0]&0x80 != 0, h[0]&0x0F, h[1]&0x80 != 0
	if masked != t.masked {
		if t.masked {
			return fmt.Errorf("%w: client frame not masked", ErrProtocol)
		}
		return fmt.Errorf("%w: server frame masked", ErrProtocol)
	}
	var length uint64
	switch l7 := h[1] & 0x7F; l7 {
	case 126:
		length = uint64(h[2])<<8 | uint64(h[3])
	case 127:
		for _, c := range h[2:10] {
			length = length<<8 | uint64(c)
		}
		if length>>63 != 0 {
			return fmt.Errorf("%w: 64-bit length with its top bit set", ErrProtocol)
		}
	default:
		length = uint64(l7)
	}
	switch {
	case op >= 3 && op <= 7 || op >= 0xB:
		return fmt.Errorf("%w: reserved opcode %#x", ErrProtocol, op)
	case op >= 8 && (!fin || length > 125):
		return fmt.Errorf("%w: control frame fragmented or over 125 bytes", ErrProtocol)
	case op == 8 && length == 1:
		return fmt.Errorf("%w: close frame with a 1-byte payload", ErrProtocol)
	}
	if masked {
		copy(t.key[:], h[t.hlen-4:t.hlen])
	}
	t.op, t.left, t.pos = op, length, 0
	t.closing, t.code = op == 8, 0
	return nil
}

// closeCode gathers the first two payload bytes of a close frame (unmasked).
func (t *Tracker) closeCode(p []byte) {
	for i := 0; i < len(p) && t.pos+uint64(i) < 2; i++ {
		c := p[i]
		at := t.pos + uint64(i)
		if t.masked {
			c ^= t.key[at%4]
		}
		t.code = t.code<<8 | uint16(c)
	}
}

// endFrame closes the current frame once its payload passed whole.
func (t *Tracker) endFrame() {
	if t.hlen < t.need || t.left > 0 {
		return
	}
	t.hlen, t.need = 0, 2
	if t.closing {
		t.closed = true
	}
}
