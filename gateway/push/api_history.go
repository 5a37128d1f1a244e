package push

// The push API's side of the history: delivering through it, and the answers
// it adds (202 stored, 503 history full).

import (
	"strconv"

	"github.com/valyala/fasthttp"
)

// deliver hands the message to this node's devices of id: through the
// history when there is one (with the id the first node gave it, for a
// forwarded push), else the registry.
func (a *API) deliver(ctx *fasthttp.RequestCtx, id string, body []byte, binary, forwarded bool) Delivery {
	if a.hist == nil {
		return Delivery{Reached: a.reg.Push(id, body, binary)}
	}
	if forwarded {
		// b2s: the id is parsed, not kept, so the header is not copied.
		if msgID, err := strconv.ParseUint(b2s(ctx.Request.Header.Peek(MessageIDHeader)), 10, 64); err == nil && msgID > 0 {
			return a.hist.DeliverID(id, msgID, body, binary)
		}
	}
	return a.hist.Deliver(id, body, binary)
}

// deliverTopic hands a topic's message to this node's devices of one
// subscribed id: through the history when there is one (the message gets its
// id, is kept for a device that reconnects, and in a cluster is written to
// Redis), else the registry. Returns how many connections took it.
func (a *API) deliverTopic(id string, msg []byte, binary bool) int {
	var n int
	if a.hist != nil {
		n = a.hist.Publish(id, msg, binary).Reached
	} else {
		n = a.reg.Push(id, msg, binary)
	}
	a.delivered.Add(uint64(n))
	return n
}

// writeStored answers 202 {"reached":0,"stored":true,"id":msgID}.
func writeStored(ctx *fasthttp.RequestCtx, msgID uint64) {
	var buf [64]byte
	b := append(buf[:0], `{"reached":0,"stored":true,"id":`...)
	b = strconv.AppendUint(b, msgID, 10)
	b = append(b, "}\n"...)
	writeBody(ctx, fasthttp.StatusAccepted, b)
}

// historyFull answers 503: nobody took the message and the history has no
// room for it (push.history.max_total_bytes).
func (a *API) historyFull(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Retry-After", "1")
	a.failAnswer(ctx, fasthttp.StatusServiceUnavailable, errorAnswer{Error: "client not connected and the history is full (push.history.max_total_bytes)"})
}
