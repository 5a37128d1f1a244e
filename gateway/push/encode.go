package push

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// MaxCloseReason is the longest close reason that fits in a close frame.
const MaxCloseReason = MaxControlPayload - 2

// FrameHeaderSize returns the size of a server (unmasked) frame header for a
// payload of n bytes: 2, 4 or 10.
func FrameHeaderSize(n int) int {
	switch {
	case n <= 125:
		return 2
	case n <= 0xFFFF:
		return 4
	}
	return 10
}

// AppendFrameHeader appends the header of an unmasked server frame with the
// given opcode, FIN bit and payload length. With it a large payload can be
// written after the header without copying (writev); control frames must
// have fin set and length <= 125.
func AppendFrameHeader(dst []byte, op Opcode, fin bool, length int) []byte {
	b0 := byte(op & 0x0F)
	if fin {
		b0 |= 0x80
	}
	switch {
	case length <= 125:
		return append(dst, b0, byte(length))
	case length <= 0xFFFF:
		return append(dst, b0, 126, byte(length>>8), byte(length))
	}
	dst = append(dst, b0, 127)
	return binary.BigEndian.AppendUint64(dst, uint64(length))
}

// AppendFrame appends a complete (FIN) unmasked server frame. A control
// payload longer than 125 bytes is cut to 125. It does not allocate when dst
// has room.
func AppendFrame(dst []byte, op Opcode, payload []byte) []byte {
	if op.IsControl() && len(payload) > MaxControlPayload {
		payload = payload[:MaxControlPayload]
	}
	dst = AppendFrameHeader(dst, op, true, len(payload))
	return append(dst, payload...)
}

// AppendText appends a text message frame; s should be valid UTF-8.
func AppendText(dst []byte, s string) []byte {
	dst = AppendFrameHeader(dst, OpText, true, len(s))
	return append(dst, s...)
}

// AppendPing appends a ping frame (payload cut to 125 bytes).
func AppendPing(dst, payload []byte) []byte { return AppendFrame(dst, OpPing, payload) }

// AppendPong appends a pong frame (payload cut to 125 bytes); answer a ping
// with its payload.
func AppendPong(dst, payload []byte) []byte { return AppendFrame(dst, OpPong, payload) }

// AppendClose appends a close frame with code and reason. The reason is cut
// to 123 bytes at a rune boundary. A code that must not be sent (CloseNoStatus,
// CloseAbnormal, 0, or any code that is not Valid) gives a close frame without
// payload, which is what echoing a close frame that carried no code needs.
func AppendClose(dst []byte, code CloseCode, reason string) []byte {
	if !code.Valid() {
		return append(dst, 0x80|byte(OpClose), 0)
	}
	if len(reason) > MaxCloseReason {
		reason = reason[:MaxCloseReason]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1] // at most 3 steps for valid input
		}
	}
	dst = append(dst, 0x80|byte(OpClose), byte(2+len(reason)), byte(code>>8), byte(code))
	return append(dst, reason...)
}

// AppendMaskedFrame appends a frame as a client sends it: masked with mask.
// Load clients, tests and fuzzers send these; so does a websocket tunnel
// (gateway/tunnel) closing toward its origin.
func AppendMaskedFrame(dst []byte, op Opcode, fin bool, mask [4]byte, payload []byte) []byte {
	b0 := byte(op & 0x0F)
	if fin {
		b0 |= 0x80
	}
	n := len(payload)
	switch {
	case n <= 125:
		dst = append(dst, b0, 0x80|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, b0, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], mask, 0)
	return dst
}
