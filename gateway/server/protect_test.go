package server

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"gozer/gateway/config"
	"gozer/gateway/loop"
)

// TestAdmitMaxConnectionsRace: loops admit their connections concurrently
// (accept_on_loops), so max_connections holds only if the check and the
// count are one step: rounds of goroutines admit at once under a cap of 1,
// and never more than one gets in (without the fix it fails within a few
// thousand rounds under -race, which the project runs its tests with).
func TestAdmitMaxConnectionsRace(t *testing.T) {
	cfg := &config.Config{}
	cfg.Server.MaxConnections = 1
	s := &Server{shared: loop.NewShared(&loop.Snapshot{Config: cfg}, zerolog.Nop(), nil, nil)}
	const goroutines = 8
	for round := range 10000 {
		var start, done sync.WaitGroup
		start.Add(1)
		admitted := make(chan bool, goroutines)
		for range goroutines {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				_, r := s.admit(netip.IPv4Unspecified(), false)
				admitted <- r == nil
			}()
		}
		start.Done()
		done.Wait()
		close(admitted)
		n := 0
		for ok := range admitted {
			if ok {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("round %d: %d connections admitted under max_connections 1", round, n)
		}
		s.shared.Clients.Store(0)
	}
}
