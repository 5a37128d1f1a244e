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

// Push tokens authenticate a device's push connection: a client id, an
// expiry and optionally the topics the device is subscribed to at connect,
// signed with HMAC-SHA256 under a secret the gateway's config holds.
//
//	token   = base64url(payload) "." base64url(mac)      (no padding)
//	payload = version 1 | expiry | client id                         (no topics)
//	        | version 2 | expiry | id length | client id | topics    (with topics)
//	version = 1 byte; expiry = 8 bytes, big-endian unix seconds
//	id length = 2 bytes, big-endian; topics = the names joined by ","
//	mac     = HMAC-SHA256(secret, base64url(payload))     (the 32 bytes)
//
// A token without topics is version 1, byte for byte what gateways before
// topics made and read, so old and new gateways and token issuers mix.
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
	ErrTokenTopics    = errors.New("push token: invalid or too many topics")
)

const (
	tokenVersion    = 1
	tokenTopicsVer  = 2 // with topics
	tokenHeaderSize = 1 + 8
	macSize         = sha256.Size
	// MinSecretLen is the shortest secret Sign and Verify accept.
	MinSecretLen = 16
	// MaxClientIDLen is the longest client id.
	MaxClientIDLen = 256
	// MaxTokenLen bounds what Verify looks at.
	MaxTokenLen = 4096
	// MaxTokenTopics bounds the topics one token names.
	MaxTokenTopics = 64
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

// Claims are what a token carries besides its expiry.
type Claims struct {
	ClientID string
	// Topics the connection is subscribed to at connect; none: a version 1
	// token.
	Topics []string
}

// Sign returns a token for clientID that expires at expiry (to the second).
func Sign(secret []byte, clientID string, expiry time.Time) (string, error) {
	return SignClaims(secret, Claims{ClientID: clientID}, expiry)
}

// SignClaims returns a token for c that expires at expiry (to the second):
// version 1 without topics, version 2 with them (each a ValidTopic, at most
// MaxTokenTopics, duplicates kept as given).
func SignClaims(secret []byte, c Claims, expiry time.Time) (string, error) {
	if len(secret) < MinSecretLen {
		return "", ErrTokenSecret
	}
	if !ValidClientID(c.ClientID) {
		return "", fmt.Errorf("%w: %q", ErrClientID, c.ClientID)
	}
	if len(c.Topics) > MaxTokenTopics {
		return "", fmt.Errorf("%w: %d topics, at most %d", ErrTokenTopics, len(c.Topics), MaxTokenTopics)
	}
	for _, t := range c.Topics {
		if !ValidTopic(t) {
			return "", fmt.Errorf("%w: %q", ErrTokenTopics, t)
		}
	}
	payload := make([]byte, tokenHeaderSize, tokenHeaderSize+2+len(c.ClientID)+len(c.Topics)*16)
	payload[0] = tokenVersion
	binary.BigEndian.PutUint64(payload[1:], uint64(expiry.Unix()))
	if len(c.Topics) > 0 {
		payload[0] = tokenTopicsVer
		payload = binary.BigEndian.AppendUint16(payload, uint16(len(c.ClientID)))
	}
	payload = append(payload, c.ClientID...)
	for i, t := range c.Topics {
		if i > 0 {
			payload = append(payload, ',')
		}
		payload = append(payload, t...)
	}
	if b64.EncodedLen(len(payload))+1+b64.EncodedLen(macSize) > MaxTokenLen {
		return "", fmt.Errorf("%w: the token would be longer than %d bytes", ErrTokenTopics, MaxTokenLen)
	}

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

// Verify checks token under secret at time now and returns its client id
// (a token's topics are only read by VerifyClaims). Errors wrap ErrTokenMalformed (not a token of this format),
// ErrTokenSignature (not signed with secret, or altered) or ErrTokenExpired
// (authentic but expired; the signature is checked first); ErrTokenSecret
// when secret is too short. The MAC is compared in constant time.
func Verify(secret []byte, token string, now time.Time) (clientID string, err error) {
	c, err := VerifyClaims(secret, token, now)
	return c.ClientID, err
}

// VerifyClaims is Verify that also returns the token's topics; a version 2
// token whose topics are not valid (or more than MaxTokenTopics) is
// ErrTokenMalformed.
func VerifyClaims(secret []byte, token string, now time.Time) (Claims, error) {
	id, rest, err := verify(secret, token, now)
	if err != nil {
		return Claims{}, err
	}
	c := Claims{ClientID: id}
	if rest == "" {
		return c, nil
	}
	for len(rest) > 0 {
		name := rest
		if i := strings.IndexByte(rest, ','); i >= 0 {
			name, rest = rest[:i], rest[i+1:]
			if rest == "" {
				return Claims{}, fmt.Errorf("%w: empty topic", ErrTokenMalformed)
			}
		} else {
			rest = ""
		}
		if !ValidTopic(name) || len(c.Topics) == MaxTokenTopics {
			return Claims{}, fmt.Errorf("%w: invalid or too many topics", ErrTokenMalformed)
		}
		c.Topics = append(c.Topics, name)
	}
	return c, nil
}

// verify checks token and returns its client id and, for version 2, the
// topics part ("" for none).
func verify(secret []byte, token string, now time.Time) (clientID, topics string, err error) {
	if len(secret) < MinSecretLen {
		return "", "", ErrTokenSecret
	}
	if len(token) > MaxTokenLen {
		return "", "", fmt.Errorf("%w: longer than %d bytes", ErrTokenMalformed, MaxTokenLen)
	}
	dot := strings.IndexByte(token, '.')
	if dot < 0 || strings.IndexByte(token[dot+1:], '.') >= 0 {
		return "", "", fmt.Errorf("%w: want two parts separated by one dot", ErrTokenMalformed)
	}
	signed, sig := token[:dot], token[dot+1:]
	if len(sig) != b64.EncodedLen(macSize) {
		return "", "", fmt.Errorf("%w: signature of %d characters", ErrTokenMalformed, len(sig))
	}
	var got [macSize + 2]byte
	if n, err := b64.Decode(got[:], []byte(sig)); err != nil || n != macSize {
		return "", "", fmt.Errorf("%w: signature is not base64url", ErrTokenMalformed)
	}
	if b64.DecodedLen(len(signed)) < tokenHeaderSize+1 {
		return "", "", fmt.Errorf("%w: payload too short", ErrTokenMalformed)
	}
	want := tokenMAC(secret, []byte(signed))
	if !hmac.Equal(want[:], got[:macSize]) {
		return "", "", ErrTokenSignature
	}
	payload, err := b64.DecodeString(signed)
	if err != nil {
		return "", "", fmt.Errorf("%w: payload is not base64url", ErrTokenMalformed)
	}
	if len(payload) < tokenHeaderSize+1 || (payload[0] != tokenVersion && payload[0] != tokenTopicsVer) {
		return "", "", fmt.Errorf("%w: unknown version or short payload", ErrTokenMalformed)
	}
	rest := payload[tokenHeaderSize:]
	idLen := len(rest)
	if payload[0] == tokenTopicsVer {
		if len(rest) < 2 {
			return "", "", fmt.Errorf("%w: short payload", ErrTokenMalformed)
		}
		idLen, rest = int(binary.BigEndian.Uint16(rest)), rest[2:]
		if idLen > len(rest) || idLen == len(rest) {
			return "", "", fmt.Errorf("%w: bad client id length or no topics", ErrTokenMalformed)
		}
		topics = string(rest[idLen:])
	}
	id := string(rest[:idLen])
	if !ValidClientID(id) {
		return "", "", fmt.Errorf("%w: invalid client id", ErrTokenMalformed)
	}
	exp := int64(binary.BigEndian.Uint64(payload[1:tokenHeaderSize]))
	if now.Unix() >= exp {
		return "", "", fmt.Errorf("%w: at %s utc", ErrTokenExpired, time.Unix(exp, 0).UTC().Format(time.DateTime))
	}
	return id, topics, nil
}
