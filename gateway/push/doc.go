// Package push holds the self-contained parts of Gozer's push connections:
// the websocket handshake check and accept response (RFC 6455, version 13),
// an incremental server-side frame decoder and an allocation-free frame
// encoder, Server-Sent Events encoding with a small replay ring, the local
// registry of connected client ids, the topic index (Topics: topic → the
// client ids subscribed on this node) and its control messages, the
// cluster-wide registry (the ClusterRegistry and TopicRegistry interfaces,
// RedisCluster on a real Redis, an in-memory fake) and the Registrar goroutine
// that keeps it current, signed push tokens (with optional topics), a
// per-client rate limiter, the push API (an http.Handler for the admin
// listener that forwards to other nodes in cluster mode), and the history
// per client id (History, with RedisHistory in cluster mode): the one path
// that delivers a message to a client id on a node, and what a reconnecting
// device recovers from.
//
// The frame, handshake, SSE and registry parts do no I/O and start no
// goroutine: the push connections (gateway/pushconn) run them on the gnet
// event loops. The parts that talk to Redis, to other nodes or to the push
// origin (RedisCluster, Registrar, API, Sender, RedisHistory) block, and are
// only ever called off the loops. Hub holds the node's push state. See DESIGN.md beside
// this file.
//
// # Concurrency contracts
//
// Every type says in its doc comment which goroutines may use it:
//
//   - Event-loop goroutine only: Decoder and BufferPool. They belong to one
//     connection (Decoder) or one event loop (BufferPool) and are not safe for
//     concurrent use. A Decoder must use the BufferPool of its own loop.
//   - Any goroutine: Registry, Topics, EventRing, RateLimiter, MemoryCluster,
//     RedisCluster, API, History (Deliver, Attach and Left never block; its
//     Run, and RedisHistory's, on goroutines of their own), and the
//     ClusterRegistry, Conn and IDConn interfaces (whose implementations
//     must be). Registrar: Registered and Unregistered from any goroutine
//     (they never block), TopicChanged too; Run on its own goroutine.
//   - Pure functions (the Append* encoders, CheckHandshake, Sign, Verify,
//     SignClaims, VerifyClaims, ParseControl) keep no state and may be called
//     from anywhere; they only append to the dst they are given and never
//     retain it.
//
// Slices that functions return either alias their input (documented on each
// function) or were appended to the caller's dst.
package push
