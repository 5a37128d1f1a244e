package push

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Push tokens authenticate a device's push connection: a client id and an
// expiry, signed with HMAC-SHA256 under a secret the gateway's config holds.
//
//	token   = base64url(payload) "." base64url(mac)      (no padding)
//	payload = version (1 byte, 1) | expiry (8 bytes, big-endian unix seconds) | client id
//	mac     = HMAC-SHA256(secret, base64url(payload))     (the 32 bytes)
//
// The token is URL-safe, so it fits a query parameter as it is. Sign and
// Verify keep no state and are safe for any goroutine.

// Token errors. Verify returns them wrapped with detail: test with errors.Is.
var (
	ErrTokenMalformed = errors.New("push token: malformed")
	ErrTokenSignature = errors.New("push token: bad signature")
	ErrTokenExpired   = errors.New("push token: expired")
	ErrTokenSecret    = errors.New("push token: secret shorter than 16 bytes")
	ErrClientID       = errors.New("push token: invalid client id")
)

const (
	tokenVersion    = 1
	tokenHeaderSize = 1 + 8
	macSize         = sha256.Size
	// MinSecretLen is the shortest secret Sign and Verify accept.
	MinSecretLen = 16
	// MaxClientIDLen is the longest client id.
	MaxClientIDLen = 256
	// MaxTokenLen bounds what Verify looks at.
	MaxTokenLen = 1024
)

var b64 = base64.RawURLEncoding.Strict()

// ValidClientID reports whether id can be a client id: 1 to 256 bytes of
// ASCII letters, digits and "-._~:@+=". Ids appear in URL paths
// (/push/{client_id}), headers and Redis keys, so nothing else is allowed.
func ValidClientID(id string) bool {
	if len(id) == 0 || len(id) > MaxClientIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~:@+=", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Sign returns a token for clientID that expires at expiry (to the second).
func Sign(secret []byte, clientID string, expiry time.Time) (string, error) {
	if len(secret) < MinSecretLen {
		return "", ErrTokenSecret
	}
	if !ValidClientID(clientID) {
		return "", fmt.Errorf("%w: %q", ErrClientID, clientID)
	}
	payload := make([]byte, tokenHeaderSize, tokenHeaderSize+len(clientID))
	payload[0] = tokenVersion
	binary.BigEndian.PutUint64(payload[1:], uint64(expiry.Unix()))
	payload = append(payload, clientID...)

	out := make([]byte, 0, b64.EncodedLen(len(payload))+1+b64.EncodedLen(macSize))
	out = b64.AppendEncode(out, payload)
	mac := tokenMAC(secret, out)
	out = append(out, '.')
	out = b64.AppendEncode(out, mac[:])
	return string(out), nil
}

func tokenMAC(secret, signed []byte) [macSize]byte {
	h := hmac.New(sha256.New, secret)
	h.Write(signed)
	var sum [macSize]byte
	h.Sum(sum[:0])
	return sum
}

// Verify checks token under secret at time now and returns its client id.
// Errors wrap ErrTokenMalformed (not a token of this format),
// ErrTokenSignature (not signed with secret, or altered) or ErrTokenExpired
// (authentic but expired; the signature is checked first); ErrTokenSecret
// when secret is too short. The MAC is compared in constant time.
func Verify(secret []byte, token string, now time.Time) (clientID string, err error) {
	if len(secret) < MinSecretLen {
		return "", ErrTokenSecret
	}
	if len(token) > MaxTokenLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrTokenMalformed, MaxTokenLen)
	}
	dot := strings.IndexByte(token, '.')
	if dot < 0 || strings.IndexByte(token[dot+1:], '.') >= 0 {
		return "", fmt.Errorf("%w: want two parts separated by one dot", ErrTokenMalformed)
	}
	signed, sig := token[:dot], token[dot+1:]
	if len(sig) != b64.EncodedLen(macSize) {
		return "", fmt.Errorf("%w: signature of %d characters", ErrTokenMalformed, len(sig))
	}
	var got [macSize + 2]byte
	if n, err := b64.Decode(got[:], []byte(sig)); err != nil || n != macSize {
		return "", fmt.Errorf("%w: signature is not base64url", ErrTokenMalformed)
	}
	if b64.DecodedLen(len(signed)) < tokenHeaderSize+1 {
		return "", fmt.Errorf("%w: payload too short", ErrTokenMalformed)
	}
	want := tokenMAC(secret, []byte(signed))
	if !hmac.Equal(want[:], got[:macSize]) {
		return "", ErrTokenSignature
	}
	payload, err := b64.DecodeString(signed)
	if err != nil {
		return "", fmt.Errorf("%w: payload is not base64url", ErrTokenMalformed)
	}
	if len(payload) < tokenHeaderSize+1 || payload[0] != tokenVersion {
		return "", fmt.Errorf("%w: unknown version or short payload", ErrTokenMalformed)
	}
	id := string(payload[tokenHeaderSize:])
	if !ValidClientID(id) {
		return "", fmt.Errorf("%w: invalid client id", ErrTokenMalformed)
	}
	exp := int64(binary.BigEndian.Uint64(payload[1:tokenHeaderSize]))
	if now.Unix() >= exp {
		return "", fmt.Errorf("%w: at %s utc", ErrTokenExpired, time.Unix(exp, 0).UTC().Format(time.DateTime))
	}
	return id, nil
}
