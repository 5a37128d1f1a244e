package push_test

import (
	"fmt"

	"gozer/gateway/push"
)

// The event loop's read path for a push connection: Peek the buffered bytes,
// decode messages until the decoder needs more, act on each before the bytes
// are discarded, then Discard what was consumed.
func ExampleDecoder() {
	pool := push.NewBufferPool(16) // one per event loop
	d := push.NewDecoder(64<<10, pool)
	defer d.Release() // on connection close

	// What gnet would hand over (Peek): a fragmented text message with a ping
	// between its fragments, as a client masks them.
	mask := [4]byte{1, 2, 3, 4}
	in := push.AppendMaskedFrame(nil, push.OpText, false, mask, []byte("hel"))
	in = push.AppendMaskedFrame(in, push.OpPing, true, mask, []byte("t1"))
	in = push.AppendMaskedFrame(in, push.OpContinuation, true, mask, []byte("lo"))
	in = append(in, 0x81) // the first byte of the next frame

	var out []byte // the connection's outbound buffer
	buf, consumed := in, 0
	for {
		n, m, err := d.Decode(buf)
		buf, consumed = buf[n:], consumed+n
		if err != nil {
			ce := err.(*push.CloseError)
			out = push.AppendClose(out, ce.Code, ce.Reason)
			break // then close once out is flushed
		}
		if !m.Ok() {
			break
		}
		fmt.Printf("%v %q\n", m.Op, m.Payload)
		switch m.Op {
		case push.OpText, push.OpBinary:
			// hand upstream (copy m.Payload to keep it past Discard)
		case push.OpPing:
			out = push.AppendPong(out, m.Payload)
		case push.OpClose:
			out = push.AppendClose(out, m.Code, "")
		}
	}
	fmt.Printf("consumed %d of %d bytes, %d to write\n", consumed, len(in), len(out))
	// Output:
	// ping "t1"
	// text "hello"
	// consumed 25 of 26 bytes, 4 to write
}
