package push

import (
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

func TestReplayWindow(t *testing.T) {
	var w replayWindow
	steps := []struct {
		seq  uint64
		want bool
	}{
		{1, true}, {1, false}, {3, true}, {2, true}, {2, false}, {3, false},
		{5000, true}, {903, false /* 4097 below the highest: too old to tell */}, {905, true}, {905, false},
		{5000 + 64, true}, {5000, false}, {5001, true}, {1 << 40, true}, {5001, false}, {1<<40 - 1, true},
	}
	for i, s := range steps {
		if got := w.see(s.seq); got != s.want {
			t.Fatalf("step %d: see(%d) = %v, want %v", i, s.seq, got, s.want)
		}
	}
}

// TestForwardVerifier: a real signature passes once; every kind of forgery
// is refused with its own reason.
func TestForwardVerifier(t *testing.T) {
	secret := []byte("cluster-secret-0123456789")
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	signer := NewForwardSigner(secret, "10.0.0.1:8081")
	body := []byte("hello")
	type hdrs = map[string]string
	sign := func(at time.Time, uri string) hdrs {
		h := hdrs{}
		for _, kv := range signer.Sign(at, "POST", uri, "text/plain", body) {
			h[kv[0]] = kv[1]
		}
		return h
	}
	good := sign(now, "/push/a")
	cases := []struct {
		name string
		h    hdrs
		uri  string
		body string
		key  []byte
		want error
	}{
		{"good", good, "/push/a", "hello", secret, nil},
		{"replayed", good, "/push/a", "hello", secret, errForwardReplayed},
		{"unsigned", hdrs{ForwardedHeader: "x"}, "/push/a", "hello", secret, errForwardUnsigned},
		{"other path", sign(now, "/push/a"), "/push/b", "hello", secret, errForwardSignature},
		{"other body", sign(now, "/push/a"), "/push/a", "hellO", secret, errForwardSignature},
		{"other secret", sign(now, "/push/a"), "/push/a", "hello", []byte("another-secret-0123456789"), errForwardSignature},
		{"stale", sign(now.Add(-ForwardWindow-time.Second), "/push/a"), "/push/a", "hello", secret, errForwardStale},
		{"future", sign(now.Add(ForwardWindow+time.Second), "/push/a"), "/push/a", "hello", secret, errForwardStale},
		{"late but in the window", sign(now.Add(-ForwardWindow+time.Second), "/push/a"), "/push/a", "hello", secret, nil},
		{"malformed signature", with(sign(now, "/push/a"), SignatureHeader, "v1=zz"), "/push/a", "hello", secret, errForwardMalformed},
		{"malformed nonce", with(sign(now, "/push/a"), NonceHeader, "abc"), "/push/a", "hello", secret, errForwardMalformed},
		{"no secret here", sign(now, "/push/a"), "/push/a", "hello", nil, errForwardNoSecret},
	}
	v := newForwardVerifier(secret, clock)
	for _, tc := range cases {
		vv := v
		if string(tc.key) != string(secret) {
			vv = newForwardVerifier(tc.key, clock)
		}
		c, err := vv.head(tc.h[ForwardedHeader], func(k string) string { return tc.h[k] })
		if err == nil {
			err = vv.verify(c, "POST", tc.uri, "text/plain", []byte(tc.body))
		}
		if err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func with(h map[string]string, k, v string) map[string]string { h[k] = v; return h }

func TestAPIGuard(t *testing.T) {
	tok := "a-push-api-token-0123"
	cases := []struct {
		name  string
		auth  APIAuth
		addr  string
		authz string
		want  error
	}{
		{"default: loopback", APIAuth{}, "127.0.0.1", "", nil},
		{"default: loopback v6", APIAuth{}, "::1", "", nil},
		{"default: not loopback", APIAuth{}, "10.1.2.3", "", errAPIAddress},
		{"token", APIAuth{Tokens: []string{tok}}, "10.1.2.3", "Bearer " + tok, nil},
		{"token, scheme in lower case", APIAuth{Tokens: []string{tok}}, "10.1.2.3", "bearer " + tok, nil},
		{"no token", APIAuth{Tokens: []string{tok}}, "127.0.0.1", "", errAPIToken},
		{"wrong token", APIAuth{Tokens: []string{tok}}, "127.0.0.1", "Bearer " + tok + "x", errAPIToken},
		{"basic", APIAuth{Tokens: []string{tok}}, "127.0.0.1", "Basic " + tok, errAPIToken},
		{"second token", APIAuth{Tokens: []string{"first-token-0123456", tok}}, "127.0.0.1", "Bearer " + tok, nil},
		{"allow-list", APIAuth{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "10.9.9.9", "", nil},
		{"allow-list refuses", APIAuth{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "127.0.0.1", "", errAPIAddress},
		{"both: token missing", APIAuth{Tokens: []string{tok}, Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "10.9.9.9", "", errAPIToken},
		{"both: address wrong", APIAuth{Tokens: []string{tok}, Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "11.0.0.1", "Bearer " + tok, errAPIAddress},
	}
	for _, tc := range cases {
		if err := newAPIGuard(tc.auth).check(netip.MustParseAddr(tc.addr), []byte(tc.authz)); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzForwardHead: whatever the signing headers hold, head never panics,
// and what it lets through has a well-formed claim.
func FuzzForwardHead(f *testing.F) {
	s := NewForwardSigner([]byte("cluster-secret-0123456789"), "n:1")
	for _, kv := range [][4][2]string{s.Sign(time.Now(), "POST", "/push/a", "", nil)} {
		f.Add(kv[1][1], kv[2][1], kv[3][1])
	}
	f.Add("", "", "")
	f.Add("-1", "0000000000000000.0", "v1=")
	f.Add(strconv.FormatInt(time.Now().UnixMilli(), 10), "0000000000000000.18446744073709551615", "v1="+string(make([]byte, 64)))
	v := newForwardVerifier([]byte("cluster-secret-0123456789"), time.Now)
	f.Fuzz(func(t *testing.T, ts, nonce, sig string) {
		h := http.Header{}
		h.Set(TimestampHeader, ts)
		h.Set(NonceHeader, nonce)
		h.Set(SignatureHeader, sig)
		c, err := v.head("n:1", h.Get)
		if err != nil {
			return
		}
		if len(c.sig) != 32 || len(c.boot) != 16 || c.seq == 0 {
			t.Fatalf("accepted a malformed claim %+v", c)
		}
	})
}

// BenchmarkForwardSign is the sender's cost per forward (one per peer node).
func BenchmarkForwardSign(b *testing.B) {
	s := NewForwardSigner([]byte("cluster-secret-0123456789"), "10.0.0.1:8081")
	body := make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Sign(time.Now(), "POST", "/push/user-0001234567", "", body)
	}
}

// BenchmarkForwardVerify is the receiver's cost per forward.
func BenchmarkForwardVerify(b *testing.B) {
	secret := []byte("cluster-secret-0123456789")
	s := NewForwardSigner(secret, "10.0.0.1:8081")
	v := newForwardVerifier(secret, time.Now)
	body := make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		h := s.Sign(time.Now(), "POST", "/push/u", "", body)
		get := func(k string) string {
			for _, kv := range h {
				if kv[0] == k {
					return kv[1]
				}
			}
			return ""
		}
		c, err := v.head(h[0][1], get)
		if err == nil {
			err = v.verify(c, "POST", "/push/u", "", body)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
