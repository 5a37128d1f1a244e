package lua

import (
	"errors"
	"slices"
	"time"

	glua "github.com/yuin/gopher-lua"

	"gozer/filters"
	"gozer/gateway/push"
)

// Push connections pass through the inbound filters like any request; these are
// the calls a filter accepts one with. ctx.push says whether the request asks for
// a push connection at all ("ws", "sse" or nil), so an auth filter needs no copy of
// the configured paths.

// ctxPushAccept is ctx.push_accept(client_id [, {topics = {...}}]): the push
// connection is accepted under client_id, subscribed to the topics given. It
// returns true, or false and a reason when the id or a topic name is not
// valid (the connection is then not accepted; the filter decides what to
// answer). More topics than push.topics.max_per_conn is refused by the
// gateway after the filters (400).
func (l *Loop) ctxPushAccept(L *glua.LState) int {
	ctx := l.cur(L)
	l.only(L, "ctx.push_accept", filters.Inbound)
	id := L.CheckString(l.arg0(L))
	topics, why := acceptTopics(L, l.arg0(L)+1)
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
	if why != "" {
		L.Push(glua.LFalse)
		L.Push(glua.LString(why))
		return 2
	}
	ctx.PushID, ctx.PushTopics = id, topics
	L.Push(glua.LTrue)
	return 1
}

// ctxPushVerify is ctx.push_verify(token): the client id of a valid push token
// signed with the configured secret (push.token_secret or $GOZER_PUSH_SECRET)
// and the list of the token's topics (empty when it names none), or nil and
// the reason: "malformed", "bad signature", "expired" or "no secret
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
	c, err := push.VerifyClaims(secret, tok, time.Now())
	if err != nil {
		L.Push(glua.LNil)
		L.Push(glua.LString(tokenReason(err)))
		return 2
	}
	topics := L.CreateTable(len(c.Topics), 0)
	for _, t := range c.Topics {
		topics.Append(glua.LString(t))
	}
	L.Push(glua.LString(c.ClientID))
	L.Push(topics)
	return 2
}

// maxAcceptTopics bounds the list ctx.push_accept reads, whatever
// push.topics.max_per_conn says (the gateway checks that bound after the
// filters, with its own answer).
const maxAcceptTopics = 1024

// acceptTopics reads the topics option of ctx.push_accept at argument n: nil
// for none, the names without duplicates, or a reason why they are refused.
func acceptTopics(L *glua.LState, n int) ([]string, string) {
	opts, ok := L.Get(n).(*glua.LTable)
	if !ok {
		if L.Get(n) != glua.LNil {
			return nil, "options must be a table, like { topics = {\"news\"} }"
		}
		return nil, ""
	}
	var list *glua.LTable
	switch v := opts.RawGetString("topics").(type) {
	case *glua.LNilType:
		return nil, ""
	case *glua.LTable:
		list = v
	default:
		return nil, "topics must be a list of names"
	}
	var topics []string
	for i := 1; i <= list.Len(); i++ {
		s, ok := list.RawGetInt(i).(glua.LString)
		if !ok || !push.ValidTopic(string(s)) {
			return nil, "invalid topic name (1-128 bytes of A-Z a-z 0-9 - . _ ~ : @ + =)"
		}
		if len(topics) == maxAcceptTopics {
			return nil, "too many topics"
		}
		if !slices.Contains(topics, string(s)) {
			topics = append(topics, string(s))
		}
	}
	return topics, ""
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
