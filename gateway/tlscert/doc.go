// Package tlscert holds a TLS listener's certificates and session-ticket keys,
// and gives the server the one *tls.Config its handshakes use. Each TLS
// listener has a Store of its own: the HTTPS listener's, and the admin
// listener's when it speaks TLS (no development certificate, no tickets).
//
// The certificates come from PEM files (Options.Pairs), each a chain with the
// leaf first and its private key. Without pairs a self-signed development
// certificate for localhost is generated in Options.DevDir (or reused, see
// GenerateDev). A handshake is given a certificate by GetCertificate:
//
//   - by the client's SNI: an exact DNS SAN first, then a wildcard SAN
//     (*.example.com covers one label: a.example.com, not a.b.example.com);
//     the leaf's Common Name is ignored, as clients ignore it;
//   - without SNI (clients do not send it for IP literals), by the IP SANs
//     against the local address the client connected to;
//   - among the pairs that fit the name, the first one the client can use
//     (tls.ClientHelloInfo.SupportsCertificate: versions, suites, signature
//     schemes), so an ECDSA and an RSA pair for the same names serve modern
//     and legacy clients side by side; if it can use none, the first that
//     fits, and the handshake fails on what the client lacks;
//   - no SNI and no IP SAN for the local address, or an unknown name: the
//     first pair of Options.Pairs the client can use, the first pair (the
//     default) for nearly every client.
//
// # Concurrency
//
// Every method may be called from any goroutine. GetCertificate runs on
// whatever goroutines run the handshakes and costs one atomic load of the
// current set plus a map lookup or two: the set is immutable and swapped
// whole by Reload, so a handshake sees the old set or the new one, never a
// mix, and established connections keep what they negotiated. Reload, Run's
// checks and the ticket-key rotations are serialized by one mutex that
// handshakes never take; Stats takes it for a moment (and may wait for a
// reload reading its files). Run is meant to be called once, on a goroutine of
// its own.
//
// # One shared tls.Config
//
// Config returns the same *tls.Config every time, and every listener and loop
// must use that pointer (not a Clone or a copy: a clone takes the ticket keys
// of the moment and misses every rotation after it). A caller may set a field
// the Store does not own (DynamicRecordSizingDisabled, say) before the first
// handshake; crypto/tls forbids changes after it.
//
// The session-ticket keys live in the Config: a ticket issued on one event
// loop must decrypt on whichever loop the client's next connection lands on,
// so that the session a client keeps in its session cache resumes anywhere.
// Per-loop configs would each make their own keys, and resumption would work
// only when a client came back to the same loop.
package tlscert
