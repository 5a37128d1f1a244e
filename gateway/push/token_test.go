package push

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	secret = []byte("0123456789abcdef0123456789abcdef")
	t0     = time.Unix(1_750_000_000, 0)
)

func mustSign(t *testing.T, id string, exp time.Time) string {
	t.Helper()
	tok, err := Sign(secret, id, exp)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// flip changes the character at i to another base64url character.
func flip(tok string, i int) string {
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

func TestToken(t *testing.T) {
	good := mustSign(t, "user:42", t0.Add(time.Hour))
	dot := strings.IndexByte(good, '.')
	tests := []struct {
		name   string
		secret []byte
		token  string
		now    time.Time
		id     string
		err    error
	}{
		{name: "valid", token: good, now: t0, id: "user:42"},
		{name: "valid until the last second", token: good, now: t0.Add(time.Hour - time.Second), id: "user:42"},
		{name: "expired at expiry", token: good, now: t0.Add(time.Hour), err: ErrTokenExpired},
		{name: "expired later", token: good, now: t0.Add(48 * time.Hour), err: ErrTokenExpired},
		{name: "other secret", secret: []byte("another secret of 32 bytes......"), token: good, now: t0, err: ErrTokenSignature},
		{name: "payload tampered", token: flip(good, 3), now: t0, err: ErrTokenSignature},
		{name: "expiry tampered", token: flip(good, 5), now: t0, err: ErrTokenSignature},
		{name: "signature tampered", token: flip(good, dot+5), now: t0, err: ErrTokenSignature},
		{name: "payload swapped", token: mustSign(t, "user:43", t0.Add(time.Hour))[:dot] + good[dot:], now: t0, err: ErrTokenSignature},
		{name: "empty", token: "", now: t0, err: ErrTokenMalformed},
		{name: "no dot", token: strings.Replace(good, ".", "", 1), now: t0, err: ErrTokenMalformed},
		{name: "two dots", token: good + ".x", now: t0, err: ErrTokenMalformed},
		{name: "short signature", token: good[:len(good)-1], now: t0, err: ErrTokenMalformed},
		{name: "signature not base64", token: good[:len(good)-1] + "*", now: t0, err: ErrTokenMalformed},
		{name: "padded", token: good + "=", now: t0, err: ErrTokenMalformed},
		{name: "empty payload", token: good[dot:], now: t0, err: ErrTokenMalformed},
		{name: "huge", token: strings.Repeat("a", MaxTokenLen) + good, now: t0, err: ErrTokenMalformed},
		{name: "short secret", secret: []byte("short"), token: good, now: t0, err: ErrTokenSecret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := secret
			if tc.secret != nil {
				s = tc.secret
			}
			id, err := Verify(s, tc.token, tc.now)
			if !errors.Is(err, tc.err) || id != tc.id {
				t.Fatalf("Verify = %q, %v; want %q, %v", id, err, tc.id, tc.err)
			}
			if err != nil && strings.ToLower(err.Error()) != err.Error() {
				t.Errorf("error %q not lowercase", err)
			}
		})
	}
}

func TestTokenEveryByteTampered(t *testing.T) {
	tok := mustSign(t, "device-7", t0.Add(time.Minute))
	for i := range tok {
		if tok[i] == '.' {
			continue
		}
		if id, err := Verify(secret, flip(tok, i), t0); err == nil {
			t.Fatalf("tampering byte %d accepted (id %q)", i, id)
		}
	}
}

func TestSign(t *testing.T) {
	tests := []struct {
		name   string
		secret []byte
		id     string
		err    error
	}{
		{"ok", secret, "a", nil},
		{"id charset", secret, "Az09-._~:@+=", nil},
		{"max id", secret, strings.Repeat("i", MaxClientIDLen), nil},
		{"short secret", []byte("0123456789abcde"), "a", ErrTokenSecret},
		{"empty id", secret, "", ErrClientID},
		{"long id", secret, strings.Repeat("i", MaxClientIDLen+1), ErrClientID},
		{"slash", secret, "a/b", ErrClientID},
		{"space", secret, "a b", ErrClientID},
		{"non-ascii", secret, "é", ErrClientID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Sign(tc.secret, tc.id, t0.Add(time.Hour))
			if !errors.Is(err, tc.err) {
				t.Fatalf("Sign: %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != "" {
				t.Fatalf("token %q is not URL-safe", tok)
			}
			if id, err := Verify(tc.secret, tok, t0); err != nil || id != tc.id {
				t.Fatalf("round trip: %q %v", id, err)
			}
		})
	}
}
