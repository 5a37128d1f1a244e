package lua

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"gozer/filters"
	"gozer/gateway/push"
)

func TestPushAPI(t *testing.T) {
	secret := []byte("lua-test-secret-0123456789")
	good, _ := push.Sign(secret, "dev-7", time.Now().Add(time.Hour))
	expired, _ := push.Sign(secret, "dev-7", time.Now().Add(-time.Second))
	forged, _ := push.Sign([]byte("another-secret-0123456789"), "dev-7", time.Now().Add(time.Hour))
	withTopics, _ := push.SignClaims(secret, push.Claims{ClientID: "dev-7", Topics: []string{"news", "scores:42"}}, time.Now().Add(time.Hour))
	cases := []struct {
		name   string
		kind   filters.PushKind
		secret []byte
		code   string
		wantV  string
		wantID string
		topics string // ctx.PushTopics joined by ","
	}{
		{"ctx.push on a websocket request", filters.PushWebSocket, secret, `ctx.vars.v = ctx.push`, "ws", "", ""},
		{"ctx.push on an SSE request", filters.PushSSE, secret, `ctx.vars.v = ctx.push`, "sse", "", ""},
		{"ctx.push elsewhere", filters.PushNone, secret, `ctx.vars.v = tostring(ctx.push)`, "nil", "", ""},
		{"accept a valid id", filters.PushWebSocket, secret,
			`ctx.vars.v = tostring(ctx.push_accept("dev-7")) .. "|" .. ctx.push_id`, "true|dev-7", "dev-7", ""},
		{"refuse an invalid id", filters.PushWebSocket, secret,
			`local ok, why = ctx.push_accept("a b"); ctx.vars.v = tostring(ok) .. "|" .. why .. "|" .. tostring(ctx.push_id)`,
			"false|invalid client id (1-256 bytes of A-Z a-z 0-9 - . _ ~ : @ + =)|nil", "", ""},
		{"refuse outside a push request", filters.PushNone, secret,
			`local ok, why = ctx.push_accept("dev-7"); ctx.vars.v = tostring(ok) .. "|" .. why`, "false|not a push request", "", ""},
		{"verify a good token", filters.PushWebSocket, secret, `ctx.vars.v = ctx.push_verify("` + good + `")`, "dev-7", "", ""},
		{"verify an expired token", filters.PushWebSocket, secret,
			`local id, why = ctx.push_verify("` + expired + `"); ctx.vars.v = tostring(id) .. "|" .. why`, "nil|expired", "", ""},
		{"verify a forged token", filters.PushWebSocket, secret,
			`local id, why = ctx.push_verify("` + forged + `"); ctx.vars.v = tostring(id) .. "|" .. why`, "nil|bad signature", "", ""},
		{"verify garbage", filters.PushWebSocket, secret,
			`local id, why = ctx.push_verify("nope"); ctx.vars.v = tostring(id) .. "|" .. why`, "nil|malformed", "", ""},
		{"verify without a secret", filters.PushWebSocket, nil,
			`local id, why = ctx.push_verify("` + good + `"); ctx.vars.v = tostring(id) .. "|" .. why`, "nil|no secret configured", "", ""},
		{"accept with topics", filters.PushWebSocket, secret,
			`ctx.vars.v = tostring(ctx.push_accept("dev-7", { topics = { "news", "scores:42", "news" } }))`, "true", "dev-7", "news,scores:42"},
		{"refuse a bad topic name", filters.PushWebSocket, secret,
			`local ok, why = ctx.push_accept("dev-7", { topics = { "ok", "not ok" } }); ctx.vars.v = tostring(ok) .. "|" .. why`,
			"false|invalid topic name (1-128 bytes of A-Z a-z 0-9 - . _ ~ : @ + =)", "", ""},
		{"refuse topics that are not a list", filters.PushWebSocket, secret,
			`local ok, why = ctx.push_accept("dev-7", { topics = "news" }); ctx.vars.v = tostring(ok) .. "|" .. why`,
			"false|topics must be a list of names", "", ""},
		{"verify a token with topics", filters.PushWebSocket, secret,
			`local id, topics = ctx.push_verify("` + withTopics + `"); ctx.vars.v = id .. "|" .. table.concat(topics, ",")`, "dev-7|news,scores:42", "", ""},
		{"a token without topics has an empty list", filters.PushWebSocket, secret,
			`local id, topics = ctx.push_verify("` + good + `"); ctx.vars.v = id .. "|" .. #topics`, "dev-7|0", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, map[string]string{"inbound/t.lua": filterSrc("t", "inbound", 0, "", c.code)}, Options{PushSecret: c.secret})
			lg := zerolog.New(e.log)
			ctx := newCtx(t, "", &lg)
			ctx.Push = c.kind
			e.loop.Chain().Inbound(ctx)
			if st, _ := status(e.rt, "t"); st.Errors != 0 {
				t.Fatalf("filter raised; log:\n%s", e.log)
			}
			if got := vars(ctx, "v"); got != c.wantV {
				t.Errorf("ctx.vars.v = %q, want %q", got, c.wantV)
			}
			if ctx.PushID != c.wantID {
				t.Errorf("PushID = %q, want %q", ctx.PushID, c.wantID)
			}
			if got := strings.Join(ctx.PushTopics, ","); got != c.topics {
				t.Errorf("PushTopics = %q, want %q", got, c.topics)
			}
		})
	}
}
