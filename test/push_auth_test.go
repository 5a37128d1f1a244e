package test

// Who may call the push API (issue 17, item 4): forwards between nodes are
// signed with the cluster secret and anything else that claims to be one is
// refused; API clients need the bearer token, or an address in the
// allow-list, as configured.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gozer/gateway/push"
)

// signedForward returns the headers of a forward of body to path signed with
// secret as node, at the time at.
func signedForward(secret, node, path string, body []byte, at time.Time) map[string]string {
	h := map[string]string{}
	for _, kv := range push.NewForwardSigner([]byte(secret), node).Sign(at, "POST", path, "", body) {
		h[kv[0]] = kv[1]
	}
	return h
}

// TestPushForwardAuth: two nodes on a real redis-server. Node A's forwards to
// B (signed by A) deliver; requests sent straight to B that claim to be
// forwards are refused (unsigned 401; bad signature, stale timestamp,
// replayed nonce 403), deliver nothing, are counted, and log a sampled line
// with the reason. One the test signs with the cluster secret is delivered
// once.
func TestPushForwardAuth(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	cluster := fmt.Sprintf(`{enabled: true, redis: %q, ttl: 5s, secret: %q}`, rs.Addr, clusterSecret)
	// rate 0.001/s burst 1: one push per id, then 429 for 1,000 s.
	a := pushGozer(t, map[string]string{"cluster": cluster})
	b := pushGozer(t, map[string]string{"cluster": cluster, "rate": "0.001", "burst": "1"})
	dev := dialWS(t, b, "fw-b", b.pushToken(t, "fw-b", "1h"))
	waitFor(t, 5*time.Second, "node A sees fw-b on node B", func() bool {
		st, ok := a.clusterStatus(t, "fw-b")
		return ok && slices.Equal(st.nodeList(t), []string{b.AdminAddr})
	})

	// A real peer's forward: A signs, B checks.
	if ans := a.push(t, "fw-b", "from A", 200); ans.Reached != 1 {
		t.Fatalf("push at A: %+v, want reached 1 on B", ans)
	}
	dev.expectText(t, "from A")

	// Use up B's rate limit for fw-b (burst 1): an API client's next push is a 429.
	b.push(t, "fw-b", "at B", 200)
	dev.expectText(t, "at B")
	b.push(t, "fw-b", "at B, over the limit", 429)

	path := "/push/fw-b"
	msg := []byte("forged")
	now := time.Now()
	replayed := signedForward(clusterSecret, a.AdminAddr, path, msg, now)
	refused := []struct {
		name   string
		hdr    map[string]string
		status int
		reason string
	}{
		{"no signature", map[string]string{push.ForwardedHeader: a.AdminAddr}, 401, "unsigned"},
		{"bad signature (another secret)", signedForward("not-the-cluster-secret", a.AdminAddr, path, msg, now), 403, "bad signature"},
		{"stale timestamp", signedForward(clusterSecret, a.AdminAddr, path, msg, now.Add(-2*push.ForwardWindow)), 403, "timestamp"},
		{"body changed", signedForward(clusterSecret, a.AdminAddr, path, []byte("other"), now), 403, "bad signature"},
	}
	for _, tc := range refused {
		resp, ans := pushAPI(t, b.AdminAddr, "POST", path, msg, tc.hdr)
		if resp.StatusCode != tc.status || !strings.Contains(ans.Error, tc.reason) {
			t.Errorf("%s: status %d %+v, want %d naming %q", tc.name, resp.StatusCode, ans, tc.status, tc.reason)
		}
	}
	// Correctly signed: delivered although fw-b is over its limit at B (a
	// forward was limited where it came in), but only once.
	for i, want := range []int{200, 403} { // the same nonce again: a replay
		resp, ans := pushAPI(t, b.AdminAddr, "POST", path, msg, replayed)
		if resp.StatusCode != want {
			t.Errorf("signed forward, sent %d time(s): status %d %+v, want %d", i+1, resp.StatusCode, ans, want)
		}
		if want == 403 && !strings.Contains(ans.Error, "replayed") {
			t.Errorf("replayed forward: %+v, want the reason \"replayed nonce\"", ans)
		}
	}
	dev.expectText(t, "forged") // once: the signed one
	dev.silent(t, 200*time.Millisecond)

	if n := b.pushCounter(t, "api.forwards_refused_total"); n != 5 {
		t.Errorf("node B api.forwards_refused_total = %d, want 5", n)
	}
	if v := value(t, scrapeMetrics(t, b), "gozer_push_api_refused_total", "kind", "forward"); v != 5 {
		t.Errorf("node B gozer_push_api_refused_total{kind=\"forward\"} = %v, want 5", v)
	}
	// One log line for the burst (sampled: at most one per 5 s), with its reason.
	lines := strings.Count(b.stderr.String(), `"push api: request refused"`)
	if lines < 1 || lines > 2 || !strings.Contains(b.stderr.String(), `"reason":"forward refused: unsigned`) {
		t.Errorf("node B logged %d refusal lines, want 1 or 2 (sampled) with the reason:\n%s", lines, tail(b.stderr.String(), 2000))
	}
}

// TestPushAPIBearerToken: with push.api.tokens, a call without the token or
// with a wrong one is a 401 (with WWW-Authenticate), and with it is served.
func TestPushAPIBearerToken(t *testing.T) {
	t.Parallel()
	const token = "push-api-token-for-the-test"
	g := pushGozer(t, map[string]string{"api": fmt.Sprintf("{tokens: [%q]}", token)})
	dev := dialWS(t, g, "tok", g.pushToken(t, "tok", "1h"))
	waitFor(t, 5*time.Second, "GET /push/tok with the token says connected", func() bool {
		resp, ans := pushAPI(t, g.AdminAddr, "GET", "/push/tok", nil, map[string]string{"Authorization": "Bearer " + token})
		return resp.StatusCode == 200 && ans.Connected
	})
	for _, tc := range []struct {
		name, method, authz string
		status              int
	}{
		{"push without a token", "POST", "", 401},
		{"push with a wrong token", "POST", "Bearer " + token + "x", 401},
		{"push as Basic", "POST", "Basic " + token, 401},
		{"status without a token", "GET", "", 401},
		{"push with the token", "POST", "Bearer " + token, 200},
		{"status with the token", "GET", "Bearer " + token, 200},
	} {
		hdr := map[string]string{}
		if tc.authz != "" {
			hdr["Authorization"] = tc.authz
		}
		resp, ans := pushAPI(t, g.AdminAddr, tc.method, "/push/tok", []byte(tc.name), hdr)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d %+v, want %d", tc.name, resp.StatusCode, ans, tc.status)
		}
		if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q, want Bearer", tc.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	dev.expectText(t, "push with the token")
	dev.silent(t, 200*time.Millisecond)
	if n := g.pushCounter(t, "api.auth_refused_total"); n != 4 {
		t.Errorf("api.auth_refused_total = %d, want 4", n)
	}
}

// TestPushAPIAllowList: push.api.allow names a network without 127.0.0.1:
// the test's calls (from 127.0.0.1) get 403 and reach nobody; the other
// admin endpoints are not concerned.
func TestPushAPIAllowList(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, map[string]string{"api": `{allow: ["10.0.0.0/8"]}`})
	dev := dialWS(t, g, "al", g.pushToken(t, "al", "1h"))
	for _, method := range []string{"POST", "GET"} {
		resp, ans := pushAPI(t, g.AdminAddr, method, "/push/al", []byte("not allowed"), nil)
		if resp.StatusCode != 403 || !strings.Contains(ans.Error, "push.api.allow") {
			t.Errorf("%s /push/al from 127.0.0.1: status %d %+v, want 403 naming push.api.allow", method, resp.StatusCode, ans)
		}
	}
	dev.silent(t, 200*time.Millisecond)
	if n := g.pushCounter(t, "api.auth_refused_total"); n != 2 {
		t.Errorf("api.auth_refused_total = %d, want 2", n)
	}
}

// TestPushAPITokenRotation: push.api is live. A reload that replaces the
// token refuses the old one and accepts the new one, without a restart and
// without touching the connected device.
func TestPushAPITokenRotation(t *testing.T) {
	t.Parallel()
	const old, next = "the-old-push-api-token", "the-new-push-api-token"
	cfg := pushConfig(t, map[string]string{"api": fmt.Sprintf("{tokens: [%q]}", old)})
	g := startGozer(t, cfg)
	dev := dialWS(t, g, "rot", g.pushToken(t, "rot", "1h"))
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	waitFor(t, 5*time.Second, "rot connected, seen with the old token", func() bool {
		resp, ans := pushAPI(t, g.AdminAddr, "GET", "/push/rot", nil, bearer(old))
		return resp.StatusCode == 200 && ans.Connected
	})

	cfg.Push["api"] = fmt.Sprintf("{tokens: [%q]}", next)
	g.rewrite(t, cfg)
	if status, body := g.reloadNow(t); status != 200 {
		t.Fatalf("reload: %d %s", status, body)
	}
	if resp, ans := pushAPI(t, g.AdminAddr, "POST", "/push/rot", []byte("old token"), bearer(old)); resp.StatusCode != 401 {
		t.Errorf("push with the old token after the reload: status %d %+v, want 401", resp.StatusCode, ans)
	}
	if resp, ans := pushAPI(t, g.AdminAddr, "POST", "/push/rot", []byte("new token"), bearer(next)); resp.StatusCode != 200 || ans.Reached != 1 {
		t.Errorf("push with the new token after the reload: status %d %+v, want 200 reached 1", resp.StatusCode, ans)
	}
	dev.expectText(t, "new token")
}
