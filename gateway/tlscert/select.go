package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"strings"
)

// entry is one loaded pair.
type entry struct {
	pair    Pair
	cert    *tls.Certificate
	names   []string
	keyType string
}

func (e *entry) leaf() *x509.Certificate { return e.cert.Leaf }

// certSet is the immutable set handshakes choose from, indexed by name.
type certSet struct {
	all      []*entry                // in Options order; all[0] is the default
	exact    map[string][]*entry     // DNS SAN -> pairs, in Options order
	wildcard map[string][]*entry     // "*.example.com" under "example.com"
	ips      map[netip.Addr][]*entry // IP SAN -> pairs
}

func newCertSet(entries []*entry) *certSet {
	cs := &certSet{
		all:      entries,
		exact:    make(map[string][]*entry),
		wildcard: make(map[string][]*entry),
		ips:      make(map[netip.Addr][]*entry),
	}
	for _, e := range entries {
		for _, n := range e.leaf().DNSNames {
			n = strings.ToLower(n)
			if parent, ok := strings.CutPrefix(n, "*."); ok {
				cs.wildcard[parent] = append(cs.wildcard[parent], e)
			} else {
				cs.exact[n] = append(cs.exact[n], e)
			}
		}
		for _, ip := range e.leaf().IPAddresses {
			if a, ok := netip.AddrFromSlice(ip); ok {
				cs.ips[a.Unmap()] = append(cs.ips[a.Unmap()], e)
			}
		}
	}
	return cs
}

// choose picks the certificate for a handshake: among the pairs that fit the
// name (exact, then wildcard, then IP), the first the client can use, or the
// first that fits; if none fits, the first pair the client can use, or the
// default.
func (cs *certSet) choose(hello *tls.ClientHelloInfo) *tls.Certificate {
	name := strings.ToLower(hello.ServerName)
	var fits [3][]*entry
	if name != "" {
		fits[0] = cs.exact[name]
		if _, parent, ok := strings.Cut(name, "."); ok {
			fits[1] = cs.wildcard[parent]
		}
	}
	if ip, ok := connIP(hello, name); ok {
		fits[2] = cs.ips[ip]
	}
	var first *entry
	for _, list := range fits {
		for _, e := range list {
			if first == nil {
				first = e
			}
			if hello.SupportsCertificate(e.cert) == nil {
				return e.cert
			}
		}
	}
	if first != nil {
		// The name fits but the client can use none of its keys: serve it
		// anyway, so the handshake fails on what the client lacks rather
		// than succeed with a certificate for another name.
		return first.cert
	}
	// No pair fits the name. SupportsCertificate also checks the leaf against
	// the SNI name, which none fits: ask only about what the client can do
	// (versions, suites, signature schemes, curves).
	anyName := *hello
	anyName.ServerName = ""
	for _, e := range cs.all {
		if anyName.SupportsCertificate(e.cert) == nil {
			return e.cert
		}
	}
	return cs.all[0].cert
}

// connIP is the address the IP SANs are matched against: the name itself if
// a client sent an IP literal as SNI (they should not), else, without SNI,
// the local address the client connected to.
func connIP(hello *tls.ClientHelloInfo, name string) (netip.Addr, bool) {
	if name != "" {
		a, err := netip.ParseAddr(name)
		return a.Unmap(), err == nil
	}
	if hello.Conn == nil {
		return netip.Addr{}, false
	}
	switch a := hello.Conn.LocalAddr().(type) {
	case *net.TCPAddr:
		ip := a.AddrPort().Addr()
		return ip.Unmap().WithZone(""), ip.IsValid()
	case nil:
		return netip.Addr{}, false
	default:
		ap, err := netip.ParseAddrPort(a.String())
		return ap.Addr().Unmap().WithZone(""), err == nil
	}
}
