package tlscert

import (
	"crypto/tls"
	"fmt"
	"testing"
)

func TestResumption(t *testing.T) {
	dir := t.TempDir()
	pairs := []Pair{writePair(t, dir, "a", spec{cn: "a", dns: []string{"a.example.com"}})}
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, tc := range []struct {
			tickets    bool
			rotations  int
			wantResume bool
		}{
			{true, 0, true},
			{true, 1, true},
			{true, 2, true}, // the previous 2 keys still decrypt
			{true, 3, false},
			{false, 0, false},
		} {
			name := fmt.Sprintf("%s/tickets=%v/rotations=%d", tls.VersionName(version), tc.tickets, tc.rotations)
			t.Run(name, func(t *testing.T) {
				s := newStore(t, Options{Pairs: pairs, SessionTickets: tc.tickets})
				addr := serve(t, s.Config())
				c := insecure("a.example.com")
				c.MaxVersion = version
				c.ClientSessionCache = tls.NewLRUClientSessionCache(4)
				if st, err := dial(t, addr, c); err != nil || st.DidResume {
					t.Fatalf("first handshake: resumed %v, error %v", st.DidResume, err)
				}
				for range tc.rotations {
					s.rotateTickets()
				}
				st, err := dial(t, addr, c)
				if err != nil {
					t.Fatal(err)
				}
				if st.DidResume != tc.wantResume {
					t.Errorf("DidResume %v, want %v", st.DidResume, tc.wantResume)
				}
				if got := s.Stats().TicketRotationsTotal; got != int64(tc.rotations) {
					t.Errorf("ticket_rotations_total %d, want %d", got, tc.rotations)
				}
			})
		}
	}
}

func TestRunRotatesTickets(t *testing.T) {
	dir := t.TempDir()
	pairs := []Pair{writePair(t, dir, "a", spec{cn: "a", dns: []string{"a.example.com"}})}
	s := newStore(t, Options{Pairs: pairs, SessionTickets: true, TicketRotate: 5e6})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { s.Run(stop); close(done) }()
	waitFor(t, "three rotations", func() bool { return s.Stats().TicketRotationsTotal >= 3 })
	close(stop)
	<-done
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys) != ticketKeysKept {
		t.Errorf("%d keys kept, want %d", len(s.keys), ticketKeysKept)
	}
}
