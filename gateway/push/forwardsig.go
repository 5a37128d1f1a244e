package push

// Signed forwards: a node proves to another that a request it forwards comes
// from a node of the same cluster (DESIGN.md, "Forward signing"). The
// forwarding node sends, besides ForwardedHeader (its name):
//
//	X-Gozer-Push-Timestamp: <unix ms>
//	X-Gozer-Push-Nonce:     <boot>.<seq>   (boot: 16 hex digits drawn at start; seq: 1, 2, 3...)
//	X-Gozer-Push-Signature: v1=<hex HMAC-SHA256(cluster secret, canonical string)>
//
// The canonical string is, one per line: "gozer-push-forward-v1", the
// method, the request URI (path and query, as sent), the Content-Type, the
// timestamp, the nonce, the forwarding node, and the hex SHA-256 of the body.
// The receiver refuses a timestamp more than ForwardWindow from its clock, a
// bad signature, and a nonce it has seen: per (node, boot) it keeps the
// highest seq and a bitmap of the replayBits below it, so replay protection
// costs a few hundred bytes per peer process, whatever the rate.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Forward signing headers (ForwardedHeader carries the node).
const (
	TimestampHeader = "X-Gozer-Push-Timestamp"
	NonceHeader     = "X-Gozer-Push-Nonce"
	SignatureHeader = "X-Gozer-Push-Signature"
	// ForwardWindow is how far a forward's timestamp may be from the
	// receiver's clock, either way: clocks of the nodes must agree within it.
	ForwardWindow = 30 * time.Second

	sigPrefix  = "v1="
	sigContext = "gozer-push-forward-v1"
	// replayBits is how far out of order a peer's forwards may arrive (they
	// go in parallel over several connections) before an old seq is refused.
	replayBits = 4096
)

// ForwardSigner signs the requests a node forwards.
//
// Concurrency: Sign may be called from any goroutine.
type ForwardSigner struct {
	key  []byte
	node string
	boot string
	seq  atomic.Uint64
}

// NewForwardSigner returns the signer of node with the cluster secret.
func NewForwardSigner(secret []byte, node string) *ForwardSigner {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on Linux
	return &ForwardSigner{key: append([]byte(nil), secret...), node: node, boot: hex.EncodeToString(b[:])}
}

// Sign returns the headers of one forward: set each (name, value) pair on
// the request. uri is the path and query as sent.
func (s *ForwardSigner) Sign(now time.Time, method, uri, contentType string, body []byte) [4][2]string {
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	nonce := s.boot + "." + strconv.FormatUint(s.seq.Add(1), 10)
	bodySum := sha256.Sum256(body)
	mac := forwardMAC(hmac.New(sha256.New, s.key), method, uri, contentType, ts, nonce, s.node, bodySum[:])
	return [4][2]string{
		{ForwardedHeader, s.node}, {TimestampHeader, ts}, {NonceHeader, nonce},
		{SignatureHeader, sigPrefix + hex.EncodeToString(mac)},
	}
}

func forwardMAC(h hash.Hash, method, uri, ct, ts, nonce, node string, bodySum []byte) []byte {
	// One Write of the canonical string, in one allocation of its size: a
	// Write per field would copy each through a []byte conversion.
	fields := [...]string{sigContext, method, uri, ct, ts, nonce, node}
	n := hex.EncodedLen(len(bodySum))
	for _, f := range fields {
		n += len(f) + 1
	}
	b := make([]byte, 0, n)
	for _, f := range fields {
		b = append(append(b, f...), '\n')
	}
	b = hex.AppendEncode(b, bodySum)
	h.Write(b)
	var out [sha256.Size]byte
	return h.Sum(out[:0])
}

// Reasons a forward is refused; errForwardUnsigned is a 401, the others 403.
var (
	errForwardUnsigned  = errors.New("forward refused: unsigned (no " + SignatureHeader + ")")
	errForwardMalformed = errors.New("forward refused: malformed signature headers")
	errForwardStale     = errors.New("forward refused: timestamp outside the window")
	errForwardSignature = errors.New("forward refused: bad signature")
	errForwardReplayed  = errors.New("forward refused: replayed nonce")
	errForwardNoSecret  = errors.New("forward refused: this node has no cluster secret")
)

// forwardClaim is what a forward's headers claim, checked in two steps:
// the cheap ones before its body is read (forwardVerifier.head), the
// signature and the nonce after (forwardVerifier.verify).
type forwardClaim struct {
	node, ts, nonce, boot string
	sig                   []byte
	seq                   uint64
}

// forwardVerifier checks signed forwards.
//
// Concurrency: any goroutine; the replay windows are behind one mutex, held
// for a map lookup and a few bit operations.
type forwardVerifier struct {
	key []byte
	now func() time.Time

	mu        sync.Mutex
	peers     map[string]*replayWindow // node + " " + boot
	lastSweep time.Time
}

// replayWindow is one peer process's seen nonces: max and the replayBits
// below it. last is when it was last used, for the sweep.
type replayWindow struct {
	max  uint64
	bits [replayBits / 64]uint64
	last time.Time
}

func newForwardVerifier(secret []byte, now func() time.Time) *forwardVerifier {
	return &forwardVerifier{key: append([]byte(nil), secret...), now: now, peers: make(map[string]*replayWindow)}
}

// head parses and checks the signing headers (get reads one) before the
// body is read: present, well formed, timestamp in the window.
func (v *forwardVerifier) head(node string, get func(string) string) (forwardClaim, error) {
	c := forwardClaim{node: node, ts: get(TimestampHeader), nonce: get(NonceHeader)}
	sig := get(SignatureHeader)
	if sig == "" {
		return c, errForwardUnsigned
	}
	if len(v.key) == 0 {
		return c, errForwardNoSecret
	}
	raw, ok := strings.CutPrefix(sig, sigPrefix)
	var err error
	if c.sig, err = hex.DecodeString(raw); !ok || err != nil || len(c.sig) != sha256.Size {
		return c, errForwardMalformed
	}
	boot, seq, ok := strings.Cut(c.nonce, ".")
	if c.seq, err = strconv.ParseUint(seq, 10, 64); !ok || err != nil || len(boot) != 16 || c.seq == 0 {
		return c, errForwardMalformed
	}
	c.boot = boot
	ms, err := strconv.ParseInt(c.ts, 10, 64)
	if err != nil {
		return c, errForwardMalformed
	}
	if d := v.now().Sub(time.UnixMilli(ms)); d > ForwardWindow || d < -ForwardWindow {
		return c, errForwardStale
	}
	return c, nil
}

// verify checks the signature over the request and body, then that the
// nonce is new, and records it. Only a forward with a good signature
// touches the replay windows, so forgeries cannot fill them.
func (v *forwardVerifier) verify(c forwardClaim, method, uri, ct string, body []byte) error {
	bodySum := sha256.Sum256(body)
	want := forwardMAC(hmac.New(sha256.New, v.key), method, uri, ct, c.ts, c.nonce, c.node, bodySum[:])
	if !hmac.Equal(want, c.sig) {
		return errForwardSignature
	}
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.sweepLocked(now)
	key := c.node + " " + c.boot
	w := v.peers[key]
	if w == nil {
		w = &replayWindow{}
		v.peers[key] = w
	}
	w.last = now
	if !w.see(c.seq) {
		return errForwardReplayed
	}
	return nil
}

// sweepLocked forgets, once per ForwardWindow, the windows of peer processes
// not heard of for 2 × ForwardWindow: anything they sent before is stale.
func (v *forwardVerifier) sweepLocked(now time.Time) {
	if now.Sub(v.lastSweep) < ForwardWindow {
		return
	}
	v.lastSweep = now
	for k, w := range v.peers {
		if now.Sub(w.last) > 2*ForwardWindow {
			delete(v.peers, k)
		}
	}
}

// see records seq and reports whether it was new: not seen, and not older
// than replayBits below the highest seen (which cannot be told apart).
func (w *replayWindow) see(seq uint64) bool {
	if seq > w.max {
		w.shift(seq - w.max)
		w.max = seq
		w.bits[0] |= 1
		return true
	}
	d := w.max - seq
	if d >= replayBits {
		return false
	}
	word, bit := d/64, uint64(1)<<(d%64)
	if w.bits[word]&bit != 0 {
		return false
	}
	w.bits[word] |= bit
	return true
}

// shift moves the bitmap n places towards older (bit d of the map is max-d).
func (w *replayWindow) shift(n uint64) {
	if n >= replayBits {
		w.bits = [replayBits / 64]uint64{}
		return
	}
	words, bits := int(n/64), n%64
	for i := len(w.bits) - 1; i >= 0; i-- {
		var v uint64
		if j := i - words; j >= 0 {
			v = w.bits[j] << bits
			if bits > 0 && j-1 >= 0 {
				v |= w.bits[j-1] >> (64 - bits)
			}
		}
		w.bits[i] = v
	}
}
