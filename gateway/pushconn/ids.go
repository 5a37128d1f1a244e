package pushconn

import (
	"strconv"

	"gozer/gateway/push"
)

// Message ids on the wire (gateway/push/DESIGN.md, "History"):
//
//   - SSE: every event's "id:" field is the message id; a device reconnects
//     with Last-Event-ID (or ?last_event_id=). A device whose last id is gone
//     gets first "event: gozer-resync" (data: resync), with the newest id as its
//     id when there is one.
//   - websocket: a device that connects with ?last_id= (empty or 0 on its very
//     first connection) gets every message as "<id>\n<payload>" (text or binary
//     as pushed): the id in decimal, a newline, then the message unchanged. A
//     device that does not ask gets the payload alone, as before. A device
//     whose last id is gone gets first the text message "resync\n<newest id>"
//     (0: none yet).

// resyncData is the data of the SSE resync event.
const resyncData = "resync: messages after your last event id are no longer kept, fetch the state from the backend"

// appendIDPrefix appends "<id>\n".
func appendIDPrefix(dst []byte, id uint64) []byte {
	return append(strconv.AppendUint(dst, id, 10), '\n')
}

// appendResync appends the resync signal for this connection's kind.
func (pc *Conn) appendResync(dst []byte, newest uint64) []byte {
	if pc.kind == SSE {
		if newest != 0 {
			dst = append(strconv.AppendUint(append(dst, "id: "...), newest, 10), '\n')
		}
		return append(dst, "event: gozer-resync\ndata: "+resyncData+"\n\n"...)
	}
	payload := strconv.AppendUint([]byte("resync\n"), newest, 10)
	return push.AppendFrame(dst, push.OpText, payload)
}

// appendMessage appends one message as this connection sends it, for a
// replay written in one go with the handshake's answer.
func (pc *Conn) appendMessage(dst []byte, e push.Entry) []byte {
	if pc.kind == SSE {
		return push.AppendEvent(dst, e.ID, "", e.Msg)
	}
	op := push.OpText
	if e.Binary {
		op = push.OpBinary
	}
	var prefix []byte
	if pc.flags.Load()&pcIDs != 0 {
		prefix = appendIDPrefix(pc.lp.idBuf[:0], e.ID)
	}
	dst = push.AppendFrameHeader(dst, op, true, len(prefix)+len(e.Msg))
	return append(append(dst, prefix...), e.Msg...)
}

// appendReplay appends r to dst: the missed messages, or the resync signal.
func (pc *Conn) appendReplay(dst []byte, r push.Replay) []byte {
	for _, e := range r.Entries {
		dst = pc.appendMessage(dst, e)
	}
	if r.Resync {
		dst = pc.appendResync(dst, r.Newest)
	}
	return dst
}
