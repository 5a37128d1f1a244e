package lua

import (
	"errors"
	"time"

	glua "github.com/yuin/gopher-lua"

	"gozer/filters"
	"gozer/gateway/push"
)

// Push connections pass through the inbound filters like any request; these are
// the calls a filter accepts one with. ctx.push says whether the request asks for
// a push connection at all ("ws", "sse" or nil), so an auth filter needs no copy of
// the configured paths.

// ctxPushAccept is ctx.push_accept(client_id): the push connection is accepted
// under client_id. It returns true, or false and a reason when the id is not valid
// (the connection is then not accepted; the filter decides what to answer).
func (l *Loop) ctxPushAccept(L *glua.LState) int {
	ctx := l.cur(L)
	l.only(L, "ctx.push_accept", filters.Inbound)
	id := L.CheckString(l.arg0(L))
	if ctx.Push == filters.PushNone {
		L.Push(glua.LFalse)
		L.Push(glua.LString("not a push request"))
		return 2
	}
	if !push.ValidClientID(id) {
		L.Push(glua.LFalse)
		L.Push(glua.LString("invalid client id (1-256 bytes of A-Z a-z 0-9 - . _ ~ : @ + =)"))
		return 2
	}
	ctx.PushID = id
	L.Push(glua.LTrue)
	return 1
}

// ctxPushVerify is ctx.push_verify(token): the client id of a valid push token
// signed with the configured secret (push.token_secret or $GOZER_PUSH_SECRET), or
// nil and the reason: "malformed", "bad signature", "expired" or "no secret
// configured".
func (l *Loop) ctxPushVerify(L *glua.LState) int {
	l.cur(L)
	tok := L.CheckString(l.arg0(L))
	secret := l.rt.opts.PushSecret
	if len(secret) == 0 {
		L.Push(glua.LNil)
		L.Push(glua.LString("no secret configured"))
		return 2
	}
	id, err := push.Verify(secret, tok, time.Now())
	if err != nil {
		L.Push(glua.LNil)
		L.Push(glua.LString(tokenReason(err)))
		return 2
	}
	L.Push(glua.LString(id))
	return 1
}

func tokenReason(err error) string {
	switch {
	case errors.Is(err, push.ErrTokenExpired):
		return "expired"
	case errors.Is(err, push.ErrTokenSignature):
		return "bad signature"
	default:
		return "malformed"
	}
}

// pushKind is the value of ctx.push.
func (l *Loop) pushKind(ctx *filters.Context) glua.LValue {
	switch ctx.Push {
	case filters.PushWebSocket:
		return glua.LString("ws")
	case filters.PushSSE:
		return glua.LString("sse")
	}
	return glua.LNil
}
