package push

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Opcode is a websocket frame opcode (RFC 6455 §5.2). The values are those of
// the RFC (and of gobwas/ws.OpCode).
type Opcode byte

// The opcodes RFC 6455 defines; all others are reserved.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong and the
// reserved 0xB-0xF).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// String returns "text", "binary", "continuation", "close", "ping", "pong" or
// "opcode N".
func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return "opcode " + strconv.Itoa(int(op))
}

// MaxControlPayload is the largest payload of a control frame (RFC 6455 §5.5).
const MaxControlPayload = 125

// DefaultMaxMessage is the default maximum size of a message from a client.
const DefaultMaxMessage = 64 << 10

// maxMessageLimit bounds what NewDecoder accepts, so sizes fit in an int32.
const maxMessageLimit = 1 << 30

// CloseCode is a websocket close status code (RFC 6455 §7.4).
type CloseCode uint16

// Close codes. CloseNoStatus and CloseAbnormal are never sent on the wire:
// CloseNoStatus is what a close frame without a payload reports, CloseAbnormal
// is for logs when a connection ended without a close frame.
const (
	CloseNormal          CloseCode = 1000
	CloseGoingAway       CloseCode = 1001
	CloseProtocolError   CloseCode = 1002
	CloseUnsupportedData CloseCode = 1003
	CloseNoStatus        CloseCode = 1005
	CloseAbnormal        CloseCode = 1006
	CloseInvalidPayload  CloseCode = 1007
	ClosePolicyViolation CloseCode = 1008
	CloseMessageTooBig   CloseCode = 1009
	CloseMandatoryExt    CloseCode = 1010
	CloseInternalError   CloseCode = 1011
	CloseServiceRestart  CloseCode = 1012
	CloseTryAgainLater   CloseCode = 1013
	CloseBadGateway      CloseCode = 1014
)

// Valid reports whether c may appear in a close frame on the wire: a code
// registered for that (1000-1003, 1007-1014) or one of the ranges left to
// libraries and applications (3000-4999).
func (c CloseCode) Valid() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// CloseError is why the decoder gave up on a connection: the close code to
// send to the client and a short reason (a valid close reason: UTF-8, at most
// 123 bytes). The decoder returns shared package-level values, so failing a
// connection does not allocate: treat them as read-only.
type CloseError struct {
	Code   CloseCode
	Reason string
}

// Error implements error: "websocket close <code>: <reason>".
func (e *CloseError) Error() string {
	return "websocket close " + strconv.Itoa(int(e.Code)) + ": " + e.Reason
}

func protocolError(reason string) *CloseError {
	return &CloseError{Code: CloseProtocolError, Reason: reason}
}

// The errors Decode returns.
var (
	errReservedBits      = protocolError("reserved bits set without an extension")
	errReservedOpcode    = protocolError("reserved opcode")
	errUnmasked          = protocolError("client frame not masked")
	errControlFragmented = protocolError("fragmented control frame")
	errControlTooLong    = protocolError("control frame payload over 125 bytes")
	errContinuation      = protocolError("continuation frame without a message to continue")
	errNotContinuation   = protocolError("new data frame inside a fragmented message")
	errLengthMSB         = protocolError("frame length with the most significant bit set")
	errCloseLength       = protocolError("close frame payload of one byte")
	errCloseCode         = protocolError("invalid close code")
	errTooBig            = &CloseError{Code: CloseMessageTooBig, Reason: "message over the maximum size"}
	errTextUTF8          = &CloseError{Code: CloseInvalidPayload, Reason: "text message not valid utf-8"}
	errReasonUTF8        = &CloseError{Code: CloseInvalidPayload, Reason: "close reason not valid utf-8"}
)

// Message is what Decode hands out: a complete data message (OpText or
// OpBinary, reassembled if it came in fragments) or a control frame (OpPing,
// OpPong, OpClose). The zero Message (Op == 0) means "nothing complete yet".
type Message struct {
	Op Opcode
	// Payload is the unmasked message or control payload; for OpClose the
	// reason (valid UTF-8). It aliases either the input buffer or the
	// decoder's reassembly buffer: it is valid until the caller discards the
	// consumed bytes from its input buffer or calls Decode again, whichever
	// comes first. Copy it to keep it longer.
	Payload []byte
	// Code is the close code of an OpClose message (CloseNoStatus when the
	// frame carried none); zero otherwise.
	Code CloseCode
}

// Ok reports whether m holds a message (Op is set).
func (m Message) Ok() bool { return m.Op != 0 }

// decoder states.
const (
	stOpen   uint8 = iota
	stClosed       // a close frame was received: further input is ignored
	stFailed       // a protocol error was returned; it is returned again
)

// Decoder is the incremental server-side websocket frame decoder of one
// connection. The event loop hands it the bytes gnet has buffered (Peek);
// Decode consumes whole frames only, reports how many bytes it consumed, and
// returns complete messages one at a time.
//
// Memory per connection: the Decoder itself is 24 bytes on 64-bit (an idle
// push connection holds one, so every word counts). It holds a
// frame in the caller's input buffer until the whole frame is there (so the
// caller's inbound buffer must be allowed to reach MaxMessage+14 bytes), and a
// reassembly buffer only while a fragmented message is open; that buffer is at
// most MaxMessage bytes and goes back to the loop's BufferPool (or to the
// garbage collector with a nil pool) as soon as the message was handed out. An
// idle connection therefore holds no buffer at all. A message sent in one frame
// (the common case) is never copied: it is unmasked in place and handed out as
// a slice of the input buffer.
//
// Concurrency: event-loop goroutine only. A Decoder belongs to one connection;
// its BufferPool must belong to the same event loop.
type Decoder struct {
	pool   *BufferPool
	frag   *reassembly // the open fragmented message (nil when none)
	max    int32       // maximum message size
	fragOp Opcode      // OpText or OpBinary while a fragmented message is open
	state  uint8
	errIdx uint8 // the error returned once, returned again while failed (closeErrors)
	handed bool  // frag was handed out: recycle it at the next call
}

// reassembly is the buffer of a fragmented message, apart from the Decoder so
// that a connection without one pays a pointer, not a slice and a counter.
type reassembly struct {
	msg   []byte
	valid int32 // msg[:valid] is known to be valid UTF-8 (text messages)
}

// msgLen is the length of the open fragmented message.
func (d *Decoder) msgLen() int {
	if d.frag == nil {
		return 0
	}
	return len(d.frag.msg)
}

// dropFrag gives the reassembly buffer back to the pool.
func (d *Decoder) dropFrag() {
	if d.frag != nil {
		d.pool.put(d.frag)
		d.frag = nil
	}
}

// NewDecoder returns a decoder that accepts messages of at most maxMessage
// bytes (DefaultMaxMessage when maxMessage <= 0; at most 1 GiB) and recycles
// its reassembly buffers through pool (which may be nil).
func NewDecoder(maxMessage int, pool *BufferPool) Decoder {
	var d Decoder
	d.Init(maxMessage, pool)
	return d
}

// Init readies d for a new connection, like NewDecoder, without allocating.
func (d *Decoder) Init(maxMessage int, pool *BufferPool) {
	d.Release()
	if maxMessage <= 0 {
		maxMessage = DefaultMaxMessage
	}
	if maxMessage > maxMessageLimit {
		maxMessage = maxMessageLimit
	}
	*d = Decoder{pool: pool, max: int32(maxMessage)}
}

// MaxMessage is the largest message d accepts.
func (d *Decoder) MaxMessage() int { return int(d.max) }

// Buffered reports how many bytes of an open fragmented message d holds.
func (d *Decoder) Buffered() int { return d.msgLen() }

// Closed reports whether a close frame was received.
func (d *Decoder) Closed() bool { return d.state == stClosed }

// Failed reports whether Decode returned a protocol error (the decoder stays
// failed: the connection is being closed).
func (d *Decoder) Failed() bool { return d.state == stFailed }

// Release gives the reassembly buffer back to the pool. Call it when the
// connection closes; the decoder may be reused after Init.
func (d *Decoder) Release() {
	d.dropFrag()
	d.handed = false
}

// Err is the protocol error Decode returned, nil while it has not failed.
func (d *Decoder) Err() *CloseError {
	if d.state != stFailed {
		return nil
	}
	return closeErrors[d.errIdx]
}

// Decode decodes the frames at the start of buf. It consumes whole frames
// only: n is how many bytes of buf they took, and the caller must drop them
// from its input buffer (gnet: Discard(n)) and never pass them again, because
// Decode unmasks payloads in place. It returns at most one message; when
// m.Ok() is false it consumed everything complete in buf (non-final fragments
// go into the reassembly buffer) and needs more bytes. So the caller loops:
//
//	for {
//		n, m, err := d.Decode(buf)
//		buf, consumed = buf[n:], consumed+n
//		if err != nil { /* send AppendClose(err.Code, err.Reason), close */ }
//		if !m.Ok() { break }
//		/* handle m before Discard(consumed) */
//	}
//
// A non-nil error is a *CloseError with the close code the RFC asks for (1002
// protocol error, 1007 invalid UTF-8, 1009 message too big); the decoder stays
// failed and returns it again. After a close frame, Decode consumes and
// ignores all input.
func (d *Decoder) Decode(buf []byte) (n int, m Message, err error) {
	if d.handed {
		d.handed = false
		d.dropFrag()
	}
	switch d.state {
	case stClosed:
		return len(buf), Message{}, nil
	case stFailed:
		return 0, Message{}, closeErrors[d.errIdx]
	}
	for {
		rest := buf[n:]
		op, fin, hl, length, ferr := d.header(rest)
		if ferr != nil {
			return n, Message{}, d.fail(ferr)
		}
		if hl == 0 || len(rest)-hl < length {
			return n, Message{}, nil // the frame is not complete yet
		}
		payload := rest[hl : hl+length : hl+length]
		ws.Cipher(payload, [4]byte(rest[hl-4:hl]), 0)
		n += hl + length

		if op.IsControl() {
			m, cerr := d.control(op, payload)
			if cerr != nil {
				return n, Message{}, d.fail(cerr)
			}
			return n, m, nil
		}
		if fin && d.fragOp == 0 { // a whole message in one frame: zero copy
			if op == OpText && !utf8.Valid(payload) {
				return n, Message{}, d.fail(errTextUTF8)
			}
			return n, Message{Op: op, Payload: payload}, nil
		}
		if d.fragOp == 0 {
			d.fragOp = op
			if d.frag == nil {
				d.frag = d.pool.get(int(d.max))
			}
		}
		d.frag.msg = append(d.frag.msg, payload...)
		if d.fragOp == OpText && !d.checkUTF8(fin) {
			return n, Message{}, d.fail(errTextUTF8)
		}
		if fin {
			m = Message{Op: d.fragOp, Payload: d.frag.msg}
			d.fragOp = 0
			d.handed = true
			return n, m, nil
		}
	}
}

// header parses the frame header at the start of b. hl == 0 means the header
// is not complete yet. Errors that the first bytes already show are reported
// as soon as those bytes are there.
func (d *Decoder) header(b []byte) (op Opcode, fin bool, hl, length int, err *CloseError) {
	if len(b) < 2 {
		return 0, false, 0, 0, nil
	}
	b0, b1 := b[0], b[1]
	fin = b0&0x80 != 0
	op = Opcode(b0 & 0x0F)
	switch {
	case b0&0x70 != 0:
		return 0, false, 0, 0, errReservedBits
	case op > OpBinary && op < OpClose, op > OpPong:
		return 0, false, 0, 0, errReservedOpcode
	case b1&0x80 == 0:
		return 0, false, 0, 0, errUnmasked
	}
	l7 := int(b1 & 0x7F)
	if op.IsControl() {
		if !fin {
			return 0, false, 0, 0, errControlFragmented
		}
		if l7 > MaxControlPayload {
			return 0, false, 0, 0, errControlTooLong
		}
	} else if op == OpContinuation && d.fragOp == 0 {
		return 0, false, 0, 0, errContinuation
	} else if op != OpContinuation && d.fragOp != 0 {
		return 0, false, 0, 0, errNotContinuation
	}
	var size uint64
	switch l7 {
	case 126:
		if len(b) < 4 {
			return 0, false, 0, 0, nil
		}
		size, hl = uint64(binary.BigEndian.Uint16(b[2:4])), 4+4
	case 127:
		if len(b) < 10 {
			return 0, false, 0, 0, nil
		}
		size, hl = binary.BigEndian.Uint64(b[2:10]), 10+4
		if size>>63 != 0 {
			return 0, false, 0, 0, errLengthMSB
		}
	default:
		size, hl = uint64(l7), 2+4
	}
	if !op.IsControl() && size > uint64(int(d.max)-d.msgLen()) {
		return 0, false, 0, 0, errTooBig
	}
	if len(b) < hl {
		return 0, false, 0, 0, nil
	}
	return op, fin, hl, int(size), nil
}

// control checks a control frame and turns it into a Message.
func (d *Decoder) control(op Opcode, payload []byte) (Message, *CloseError) {
	if op != OpClose {
		return Message{Op: op, Payload: payload}, nil
	}
	m := Message{Op: OpClose, Code: CloseNoStatus, Payload: payload[:0]}
	switch len(payload) {
	case 0:
	case 1:
		return Message{}, errCloseLength
	default:
		m.Code = CloseCode(binary.BigEndian.Uint16(payload))
		if !m.Code.Valid() {
			return Message{}, errCloseCode
		}
		m.Payload = payload[2:]
		if !utf8.Valid(m.Payload) {
			return Message{}, errReasonUTF8
		}
	}
	d.state = stClosed
	if d.frag != nil { // a fragmented message cut short by the close: drop it
		d.dropFrag()
		d.fragOp = 0
	}
	return m, nil
}

// checkUTF8 validates the bytes of the text message appended since the last
// check. A rune cut by a fragment boundary waits for the next fragment, but a
// byte sequence that no continuation can make valid fails at once (fail fast).
// At the end of the message nothing may be left incomplete.
func (d *Decoder) checkUTF8(fin bool) bool {
	f := d.frag
	p := f.msg
	cut := len(p)
	// Find the start of the last rune (at most 3 bytes back) and hold it
	// back if it is an incomplete but possibly valid prefix.
	for i := len(p) - 1; i >= int(f.valid) && i >= len(p)-3; i-- {
		if p[i]&0xC0 != 0x80 { // not a continuation byte: a rune starts here
			if !utf8.FullRune(p[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(p[f.valid:cut]) {
		return false
	}
	f.valid = int32(cut)
	return !fin || cut == len(p)
}

func (d *Decoder) fail(err *CloseError) error {
	d.state = stFailed
	d.errIdx = closeErrorIndex(err)
	d.fragOp = 0
	d.dropFrag()
	d.handed = false
	return err
}

// closeErrors are the errors Decode returns, so that a failed decoder keeps a
// byte, not a pointer; index 0 is unused.
var closeErrors = [...]*CloseError{nil, errReservedBits, errReservedOpcode, errUnmasked,
	errControlFragmented, errControlTooLong, errContinuation, errNotContinuation, errLengthMSB,
	errCloseLength, errCloseCode, errTooBig, errTextUTF8, errReasonUTF8}

func closeErrorIndex(err *CloseError) uint8 {
	for i, e := range closeErrors {
		if e == err && i > 0 {
			return uint8(i)
		}
	}
	panic("push: decoder error missing from closeErrors: " + err.Error())
}

// BufferPool recycles the reassembly buffers of fragmented messages among the
// decoders of one event loop, so that fragmented messages do not allocate
// after warm-up while idle connections hold no buffer. It keeps at most the
// number of buffers it was made with. The zero value keeps none; a nil
// *BufferPool is valid and keeps none.
//
// Concurrency: event-loop goroutine only (one pool per loop).
type BufferPool struct {
	free []*reassembly
	keep int
}

// NewBufferPool returns a pool that keeps up to keep idle buffers.
func NewBufferPool(keep int) *BufferPool {
	return &BufferPool{keep: keep, free: make([]*reassembly, 0, keep)}
}

// Idle reports how many buffers the pool keeps now.
func (p *BufferPool) Idle() int {
	if p == nil {
		return 0
	}
	return len(p.free)
}

// get returns an empty buffer; max hints at the largest it will grow to.
func (p *BufferPool) get(max int) *reassembly {
	if p != nil {
		if n := len(p.free); n > 0 {
			r := p.free[n-1]
			p.free[n-1] = nil
			p.free = p.free[:n-1]
			return r
		}
	}
	return &reassembly{msg: make([]byte, 0, min(max, 4096))}
}

func (p *BufferPool) put(r *reassembly) {
	r.msg, r.valid = r.msg[:0], 0
	if p == nil || len(p.free) >= p.keep {
		return
	}
	p.free = append(p.free, r)
}
