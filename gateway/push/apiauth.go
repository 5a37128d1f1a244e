package push

// Who may call the push API. Two kinds of callers: API clients (the
// application's backends), checked against the bearer tokens and the
// allow-list (APIAuth); and the other nodes of the cluster, whose forwards
// carry a signature (forwardsig.go) instead. A request that says it is a
// forward is judged as a forward only: a bad signature is refused, never
// retried as an API call, and nothing it claims (the rate-limit bypass, the
// loop guard) is honoured before its signature was checked.

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// APIAuth says which API clients may call the push API: with Tokens, a call
// must carry "Authorization: Bearer <one of them>" (else 401); with Allow,
// its address must be in one of the networks (else 403); with both, both.
// With neither, only loopback addresses are let in.
type APIAuth struct {
	Tokens []string
	Allow  []netip.Prefix
}

// apiGuard is APIAuth ready for checking: the tokens' SHA-256 (every
// comparison then takes the same time, whatever the token's length).
// Immutable once built.
type apiGuard struct {
	tokens [][sha256.Size]byte
	allow  []netip.Prefix
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func newAPIGuard(a APIAuth) *apiGuard {
	g := &apiGuard{allow: append([]netip.Prefix(nil), a.Allow...)}
	for _, t := range a.Tokens {
		g.tokens = append(g.tokens, sha256.Sum256([]byte(t)))
	}
	if len(g.tokens) == 0 && len(g.allow) == 0 {
		g.allow = loopback
	}
	return g
}

var (
	errAPIAddress = errors.New("push api refused: caller's address not in push.api.allow")
	errAPIToken   = errors.New("push api refused: missing or wrong bearer token (Authorization: Bearer, push.api.tokens)")
)

// check returns nil when an API client at addr with the Authorization
// header value authz may call the API.
func (g *apiGuard) check(addr netip.Addr, authz []byte) error {
	if len(g.allow) > 0 && !inNets(g.allow, addr.Unmap()) {
		return errAPIAddress
	}
	if len(g.tokens) == 0 {
		return nil
	}
	const bearer = "Bearer "
	if len(authz) <= len(bearer) || !equalFoldASCII(authz[:len(bearer)], bearer) {
		return errAPIToken
	}
	sum := sha256.Sum256(authz[len(bearer):])
	ok := 0
	for i := range g.tokens { // all of them: no early exit to time
		ok |= subtle.ConstantTimeCompare(sum[:], g.tokens[i][:])
	}
	if ok == 0 {
		return errAPIToken
	}
	return nil
}

func inNets(nets []netip.Prefix, a netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// SetAuth replaces who may call the API (a configuration reload). Any
// goroutine; requests under way keep the rules they started with.
func (a *API) SetAuth(auth APIAuth) { a.guard.Store(newAPIGuard(auth)) }

// remoteAddr is the caller's address (the unspecified address when
// fasthttp has none, which no allow-list contains).
func remoteAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	ip, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return ip.Unmap()
}

// admit decides whether the request may go on: an API client is checked
// against the guard; a forward (cluster mode and ForwardedHeader) by its
// signing headers, and its claim is returned for the check of the body
// (verifyForward). When ok is false, it answered already.
func (a *API) admit(ctx *fasthttp.RequestCtx) (claim *forwardClaim, ok bool) {
	if node := ctx.Request.Header.Peek(ForwardedHeader); a.cluster != nil && len(node) > 0 {
		c, err := a.verifier.head(string(node), func(h string) string { return string(ctx.Request.Header.Peek(h)) })
		if err != nil {
			a.refuseForward(ctx, err)
			return nil, false
		}
		a.forwardsReceived.Add(1)
		return &c, true
	}
	if err := a.guard.Load().check(remoteAddr(ctx), ctx.Request.Header.Peek("Authorization")); err != nil {
		a.authRefused.Add(1)
		status := fasthttp.StatusForbidden
		if errors.Is(err, errAPIToken) {
			status = fasthttp.StatusUnauthorized
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="gozer push api"`)
		}
		a.refuse(ctx, status, err)
		return nil, false
	}
	return nil, true
}

// verifyForward checks a forward's signature over its body and its nonce;
// false: it answered 403.
func (a *API) verifyForward(ctx *fasthttp.RequestCtx, c *forwardClaim, body []byte) bool {
	err := a.verifier.verify(*c, string(ctx.Method()), string(ctx.RequestURI()), string(ctx.Request.Header.ContentType()), body)
	if err != nil {
		a.refuseForward(ctx, err)
		return false
	}
	return true
}

func (a *API) refuseForward(ctx *fasthttp.RequestCtx, err error) {
	a.forwardsRefused.Add(1)
	status := fasthttp.StatusForbidden
	if errors.Is(err, errForwardUnsigned) {
		status = fasthttp.StatusUnauthorized
	}
	a.refuse(ctx, status, err)
}

// refuse answers an authentication failure. Its log line is sampled (at most
// one per 5 s, with the count held back): a flood of forged requests must not
// become a flood of log lines.
func (a *API) refuse(ctx *fasthttp.RequestCtx, status int, err error) {
	if ok, suppressed := a.authLog.allow(a.now()); ok {
		a.log.Warn().Int("status", status).Bytes("method", ctx.Method()).Bytes("path", ctx.Path()).
			Str("remote", ctx.RemoteAddr().String()).Bytes("forwarded_by", ctx.Request.Header.Peek(ForwardedHeader)).
			Int64("suppressed", suppressed).Str("reason", err.Error()).Msg("push api: request refused")
	}
	b, status := marshal(errorAnswer{Error: err.Error()}, status)
	writeBody(ctx, status, b)
}
