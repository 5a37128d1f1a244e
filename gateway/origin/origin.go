// Package origin describes the named origins behind the gateway and keeps, per
// event loop, the state of talking to them: round-robin cursors and connection pools.
//
// Origins and Servers are immutable once built and shared by every loop. A LoopState
// and its Pools belong to one event loop and must only be used on that loop's
// goroutine: that is what lets the proxy path take and return connections without
// a lock.
package origin

import (
	"fmt"
	"net"
	"slices"
	"time"

	"gozer/gateway/config"
)

// Origin is a named group of servers with its own timeouts and limits.
type Origin struct {
	Name              string
	Index             int // position in Table.List; loops index per-origin state by it
	Servers           []*Server
	ConnectTimeout    time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	Retries           int
	MaxConnsPerServer int
	MaxIdlePerServer  int
	// DefaultHost is the Host sent for a request that had none (HTTP/1.0).
	DefaultHost []byte
}

// Server is one host:port of an origin.
type Server struct {
	Addr  string
	Index int // position in Origin.Servers
}

// Table holds every origin by name.
type Table struct {
	byName map[string]*Origin
	List   []*Origin
}

// NewTable builds the origins of a validated config. Host names in server
// addresses are resolved here, once, so the request path never waits on DNS.
func NewTable(cfg map[string]*config.Origin) (*Table, error) {
	t := &Table{byName: make(map[string]*Origin, len(cfg))}
	names := make([]string, 0, len(cfg))
	for n := range cfg {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		oc := cfg[name]
		o := &Origin{
			Name: name, Index: len(t.List),
			ConnectTimeout: oc.ConnectTimeout, ReadTimeout: oc.ReadTimeout, IdleTimeout: oc.IdleTimeout,
			Retries: oc.Retries, MaxConnsPerServer: oc.MaxConnectionsPerServer, MaxIdlePerServer: oc.MaxIdlePerServer,
		}
		for i, s := range oc.Servers {
			addr, err := net.ResolveTCPAddr("tcp", s)
			if err != nil {
				return nil, fmt.Errorf("origins.%s.servers[%d]: resolve %q: %w", name, i, s, err)
			}
			o.Servers = append(o.Servers, &Server{Addr: addr.String(), Index: i})
		}
		o.DefaultHost = []byte(o.Servers[0].Addr)
		t.byName[name] = o
		t.List = append(t.List, o)
	}
	return t, nil
}

// Get returns the origin called name.
func (t *Table) Get(name string) (*Origin, bool) {
	o, ok := t.byName[name]
	return o, ok
}
