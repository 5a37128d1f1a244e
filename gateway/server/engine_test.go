package server

import (
	"net"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// noDelayProbe reports TCP_NODELAY of each socket the loops open.
type noDelayProbe struct {
	gnet.BuiltinEventEngine
	got chan int
}

func (p *noDelayProbe) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	v, err := unix.GetsockoptInt(c.Fd(), unix.IPPROTO_TCP, unix.TCP_NODELAY)
	if err != nil {
		v = -1
	}
	p.got <- v
	return nil, gnet.Close
}

// TestEngineNoDelay: a client connection accepted and enrolled as acceptLoop
// does (same listener config, same engine options) has TCP_NODELAY on,
// although the options tell gnet not to set it (Go did, at accept).
func TestEngineNoDelay(t *testing.T) {
	p := &noDelayProbe{got: make(chan int, 1)}
	cli, err := gnet.NewClient(p, engineOptions(1, gnetLogger{zerolog.Nop()})...)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Stop() }()
	lc := net.ListenConfig{KeepAlive: -1} // as listen
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.EnrollContext(c, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-p.got:
		if v != 1 {
			t.Errorf("TCP_NODELAY = %d on an enrolled client socket, want 1", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection never opened on a loop")
	}
}
