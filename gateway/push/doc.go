// Package push holds the self-contained parts of Gozer's push connections:
// the websocket handshake check and accept response (RFC 6455, version 13),
// an incremental server-side frame decoder and an allocation-free frame
// encoder, Server-Sent Events encoding with a small replay ring, the local
// registry of connected client ids, the interface of the cluster-wide
// registry (with an in-memory fake), signed push tokens and a per-client
// rate limiter for the push API.
//
// Nothing in this package starts a goroutine or does I/O: the core wires it
// into its gnet event loops (see DESIGN.md beside this file).
//
// # Concurrency contracts
//
// Every type says in its doc comment which goroutines may use it:
//
//   - Event-loop goroutine only: Decoder and BufferPool. They belong to one
//     connection (Decoder) or one event loop (BufferPool) and are not safe for
//     concurrent use. A Decoder must use the BufferPool of its own loop.
//   - Any goroutine: Registry, EventRing, RateLimiter, MemoryCluster, and the
//     ClusterRegistry and Conn interfaces (whose implementations must be).
//   - Pure functions (the Append* encoders, CheckHandshake, Sign, Verify) keep
//     no state and may be called from anywhere; they only append to the dst
//     they are given and never retain it.
//
// Slices that functions return either alias their input (documented on each
// function) or were appended to the caller's dst.
package push
