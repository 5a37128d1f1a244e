// Package tlsconn is TLS as a transport under every connection kind: a Conn
// wraps the gnet connection of a client that came in on the HTTPS listener,
// and is itself a gnet.Conn. The kinds (gateway/http1, gateway/pushconn) read
// and write it exactly as they read and write a plain connection: Peek,
// Discard and InboundBuffered see plaintext; Write and Writev encrypt. No kind
// has a TLS branch.
//
// # The choice: Go's own crypto/tls, driven by the loop
//
// Go's crypto/tls is written against a blocking net.Conn. The non-blocking
// fork that nbio uses (github.com/lesismal/llib, std/crypto/tls) was
// evaluated and not adopted. Its v1.2.5 is a copy of Go 1.16.0's crypto/tls
// (2021) that was never re-synced, only patched by hand: it lacks Go 1.26.6's
// fix for KeyUpdate floods (CVE-2026-56862: it accepted 1,000 KeyUpdates in a
// row where Go cuts at 16), and it encrypts alerts and KeyUpdate replies
// without the write lock, so a Read and a Write on two goroutines race on the
// record nonce (the race detector reports it; peers saw bad record MACs). It
// also copies every record into a new buffer and runs all handshake crypto on
// the loop. An edge on the open internet must take every crypto/tls fix the
// day Go ships it.
// Instead:
//
//   - Established connections are driven by their event loop, with no
//     goroutine. The tls.Conn reads from an in-memory wire: the loop points the
//     wire at gnet's inbound buffer and calls tls.Conn.Read until the wire is
//     empty, when it answers a temporary net.Error ("would block"). crypto/tls
//     does not make a temporary error sticky (conn.go, readRecordOrCCS): a
//     partial record stays in its raw input and the next bytes complete it.
//     Writes go through tls.Conn.Write straight to gnet's Write on the loop.
//   - The handshake, which crypto/tls cannot suspend (an error during it is
//     final), runs in a short-lived goroutine per handshaking connection,
//     started when the client's ClientHello is in (or the socket closes, or
//     the timeout fires: a silent client holds no goroutine). It reads what
//     the loop hands it and writes its flights straight to the socket, which
//     the loop does not write to meanwhile (through gnet's AsyncWrite when the
//     socket is full: hswrite.go); when it ends it wakes the loop, which takes
//     the connection over. Its cost is
//     bounded: at most listeners.https.max_handshakes at once node-wide, a
//     slot taken once the client's ClientHello is all in (a silent
//     connection, or one that sent part of a hello, holds none: hello.go); past that a new handshake evicts its loop's oldest once that one
//     has run evict_handshakes_after, else one past a quarter of that whose
//     address holds more than twice the newcomer's in flight (evict.go), or
//     its connection is closed
//     at once; all are counted (an evicting handshake runs over the bound
//     until the evicted one's goroutine ends); a connection counts as a request in flight
//     of its address, server.max_requests_per_ip, until its handshake is
//     done; each ended by
//     listeners.https.handshake_timeout, a ClientHello over 64 KiB ends it. An
//     idle device holds no goroutine, only this Conn and its tls.Conn. The
//     handshake's public-key work runs off the loop, so a burst of handshakes
//     does not stall the requests of the loop's established connections.
//
// Origin connections over TLS (origins.NAME.tls) take the other road to the
// same place: their dialler already runs in a goroutine of its own, so it
// runs the client handshake there too (Dial) before gnet takes the socket
// over; the loop then adopts the connection (Adopt), and it is driven like a
// client's.
//
// Three peer behaviours are bounded here rather than in crypto/tls: a flood
// of KeyUpdate requests (keyupdate.go: what crypto/tls writes while the loop
// decrypts is held and written once, and past maxKeyUpdates a minute the
// connection ends), records without data (records.go: the client's records
// are handed over one at a time and counted; past maxBarren a minute the
// connection ends), and a close_notify behind unread plaintext
// (Conn.notified: what came before it is still the kind's to read).
//
// Copies per record: gnet's buffer → crypto/tls's raw input (decrypted in
// place) → this Conn's plaintext buffer, which the kind reads. The last copy
// is crypto/tls's API (Read into a caller's slice); the plaintext buffer is
// given back to a per-loop pool whenever the kind has taken all of it, so an
// idle connection holds none. On the way out crypto/tls encrypts into a pooled
// record buffer that gnet writes to the socket (or copies once into its
// outbound buffer when the socket is full).
//
// # Concurrency
//
// A Conn belongs to its event loop: every method runs on the loop's goroutine,
// except that the handshake goroutine uses the wire (under the handshake's
// mutexes), the socket's fd for its writes (until OnClose, which waits for a
// write in progress) and gnet's goroutine-safe AsyncWrite and Wake. Server (the listener's
// shared side: the tls.Config, the handshake cap, the counters) is safe for
// concurrent use.
package tlsconn
