package loop

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"unsafe"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// An idle push connection is mostly what gnet keeps per connection, and a third
// of that is addresses: for a connection handed over with Enroll, gnet keeps the
// *net.TCPAddr Go's accept made for the local end (the same for every
// connection, yet 80 bytes each, because its IP slice pins the 32-byte
// sockaddr it was parsed from), the same for the remote end, and a third copy
// of the remote address as a unix.Sockaddr that only UDP connections use.
// CompactAddrs replaces them on the connection's loop, in OnOpen: the local
// address becomes one shared value, the remote one a copy whose IP stands on
// its own, and the unused sockaddr goes. Measured: about 130 bytes less per
// connection handed over with Enroll (server.accept_on_loops off). gnet's own
// listener (accept_on_loops on) already shares the local address; the remote
// copy and the sockaddr are still saved there.
//
// This writes gnet's unexported fields, as EpollFD reads one; TestCompactAddrs
// guards it against a gnet upgrade, and any surprise leaves the connection as
// gnet made it.

var addrType = reflect.TypeFor[net.Addr]()

// CompactAddrs runs on c's loop, before anything else looks at its addresses.
// *local is the loop's shared local address: the connection gets it when its own
// is the same, else a compact copy of its own becomes the shared one (a listener
// on a wildcard address may see a few local addresses).
func CompactAddrs(c gnet.Conn, local **net.TCPAddr) (err error) {
	c = Raw(c)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("compact connection addresses: gnet internals changed: %v", r)
		}
	}()
	v := reflect.ValueOf(c)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return errors.New("compact connection addresses: gnet.Conn is not a pointer to a struct")
	}
	v = v.Elem()
	lf, rf, sf := v.FieldByName("localAddr"), v.FieldByName("remoteAddr"), v.FieldByName("remote")
	dg := v.FieldByName("isDatagram")
	if !lf.IsValid() || !rf.IsValid() || !sf.IsValid() || !dg.IsValid() ||
		lf.Type() != addrType || rf.Type() != addrType || sf.Type() != reflect.TypeFor[unix.Sockaddr]() || dg.Kind() != reflect.Bool {
		return errors.New("compact connection addresses: gnet internals changed")
	}
	if dg.Bool() {
		return nil // UDP needs its sockaddr
	}
	ra, ok := c.RemoteAddr().(*net.TCPAddr)
	la, lok := c.LocalAddr().(*net.TCPAddr)
	// gnet hands a zone's bytes to a pool when the connection is released: only
	// zone-less addresses are shared or copied.
	if !ok || !lok || ra.Zone != "" || la.Zone != "" {
		return nil
	}
	set := func(f reflect.Value, x any) {
		p := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
		if x == nil {
			p.SetZero()
			return
		}
		p.Set(reflect.ValueOf(x))
	}
	set(rf, compactTCPAddr(ra))
	if sh := *local; sh == nil || sh.Port != la.Port || !sh.IP.Equal(la.IP) {
		*local = compactTCPAddr(la)
	}
	set(lf, *local)
	set(sf, nil)
	return nil
}

// compactTCPAddr copies a, with an IPv4 address in 4 bytes of its own.
func compactTCPAddr(a *net.TCPAddr) *net.TCPAddr {
	ip := a.IP
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	return &net.TCPAddr{IP: append(net.IP(nil), ip...), Port: a.Port}
}

// AddrOf is a connection's address as a netip.Addr (IPv4-mapped addresses as
// plain IPv4; the zero Addr for what is not TCP).
func AddrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// SetRemoteAddr makes a the connection's remote address, as gnet reports it
// from then on (RemoteAddr): the client a PROXY protocol header named, so
// that every connection kind that takes the connection over (a push
// connection) sees the client, not the load balancer. Loop goroutine of c.
func SetRemoteAddr(c gnet.Conn, a *net.TCPAddr) (err error) {
	c = Raw(c)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("set connection's remote address: gnet internals changed: %v", r)
		}
	}()
	v := reflect.ValueOf(c)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return errors.New("set connection's remote address: gnet.Conn is not a pointer to a struct")
	}
	rf := v.Elem().FieldByName("remoteAddr")
	if !rf.IsValid() || rf.Type() != addrType {
		return errors.New("set connection's remote address: gnet internals changed")
	}
	reflect.NewAt(rf.Type(), unsafe.Pointer(rf.UnsafeAddr())).Elem().Set(reflect.ValueOf(net.Addr(compactTCPAddr(a))))
	return nil
}

// Raw is gnet's own connection under c: c itself, or what a transport that
// wraps it (gateway/tlsconn) wraps. What reaches into gnet's internals takes
// it.
func Raw(c gnet.Conn) gnet.Conn {
	for {
		u, ok := c.(interface{ Unwrap() gnet.Conn })
		if !ok {
			return c
		}
		c = u.Unwrap()
	}
}
