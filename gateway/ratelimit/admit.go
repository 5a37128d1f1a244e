package ratelimit

import (
	"net/netip"
	"time"
)

// ConnVerdict is what connection protection says of a new client connection.
type ConnVerdict uint8

const (
	// ConnAdmitted: the connection goes on.
	ConnAdmitted ConnVerdict = iota
	// ConnDenied: the client's network is on the deny list; close without a word.
	ConnDenied
	// ConnTooFast: the client opened more new connections per second than
	// protect.new_connections_per_ip allows (counted in RefusedConns); answer 429.
	ConnTooFast
)

// AdmitConn applies connection protection to a new connection from client
// a: the deny list, then the client's rate of new connections (perSec and
// burst; perSec ≤ 0: no rate; now in unix ns). key is the client as gateway/peers counts it
// (an IPv4 address, an IPv6 /64), so one /64 shares one bucket. The server's
// acceptor calls it for the socket's peer; a connection behind a PROXY
// protocol balancer calls it on its loop once the header named the client.
//
// Concurrency: any goroutine (the deny list is an atomic load, the bucket a
// shard lock of the Store).
func (n *Node) AdmitConn(a netip.Addr, key []byte, now int64, perSec float64, burst int) ConnVerdict {
	if n.Deny.Denied(a) {
		return ConnDenied
	}
	if perSec <= 0 {
		return ConnAdmitted
	}
	r := NewRate(perSec, time.Second, burst, false)
	if ok, _ := n.Conns.Take(key, now, r); !ok {
		n.RefusedConns.Add(1)
		return ConnTooFast
	}
	return ConnAdmitted
}
