package loop

import (
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// addrProbe runs CompactAddrs inside a real gnet loop on connections handed over
// with EnrollContext, as the server's acceptor does.
type addrProbe struct {
	gnet.BuiltinEventEngine
	local *net.TCPAddr
	got   chan addrSeen
}

type addrSeen struct {
	err                        error
	localBefore, remoteBefore  string
	localAfter, remoteAfter    string
	local                      net.Addr
	sockaddrGone, remoteCopied bool
	setErr                     error
	remoteSet                  string // RemoteAddr after SetRemoteAddr
}

func (p *addrProbe) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	s := addrSeen{localBefore: c.LocalAddr().String(), remoteBefore: c.RemoteAddr().String()}
	before := c.RemoteAddr()
	s.err = CompactAddrs(c, &p.local)
	s.localAfter, s.remoteAfter = c.LocalAddr().String(), c.RemoteAddr().String()
	s.local = c.LocalAddr()
	s.remoteCopied = c.RemoteAddr() != before
	s.sockaddrGone = reflect.ValueOf(c).Elem().FieldByName("remote").IsNil()
	s.setErr = SetRemoteAddr(c, &net.TCPAddr{IP: net.ParseIP("203.0.113.9"), Port: 7})
	s.remoteSet = c.RemoteAddr().String()
	p.got <- s
	return nil, gnet.None
}

// TestCompactAddrs guards the second place Gozer reaches into gnet's internals: the
// addresses read the same after the swap, the local one is shared between
// connections, and gnet's unused UDP sockaddr is gone.
func TestCompactAddrs(t *testing.T) {
	p := &addrProbe{got: make(chan addrSeen, 2)}
	cli, ln := probeClient(t, p)
	var seen []addrSeen
	for i := 0; i < 2; i++ {
		dialer, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer dialer.Close()
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.EnrollContext(c, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-p.got:
			seen = append(seen, s)
		case <-time.After(10 * time.Second):
			t.Fatal("gnet never opened the connection")
		}
	}
	for i, s := range seen {
		switch {
		case s.err != nil:
			t.Fatalf("conn %d: %v", i, s.err)
		case s.localAfter != s.localBefore || s.remoteAfter != s.remoteBefore:
			t.Fatalf("conn %d: addresses changed: local %s -> %s, remote %s -> %s", i, s.localBefore, s.localAfter, s.remoteBefore, s.remoteAfter)
		case !s.remoteCopied || !s.sockaddrGone:
			t.Fatalf("conn %d: not compacted (remote copied %v, sockaddr gone %v)", i, s.remoteCopied, s.sockaddrGone)
		case s.setErr != nil || s.remoteSet != "203.0.113.9:7":
			// What a PROXY protocol header names must become gnet's remote address.
			t.Fatalf("conn %d: SetRemoteAddr: %v, RemoteAddr now %s", i, s.setErr, s.remoteSet)
		}
	}
	if seen[0].local != seen[1].local {
		t.Fatalf("local address not shared: %p and %p", seen[0].local, seen[1].local)
	}
}
