package main

import (
	"bytes"
	"slices"
	"strconv"
	"sync"
)

// Messages carry what the receiving side needs to check and time them, as text:
//
//	"m SEQ IDX NS xxx…"   a push to one client: its sequence number, the index of the
//	                      connection it is for, and when it was POSTed
//	"b ROUND NS xxx…"     a broadcast round and when it was POSTed
//
// NS is monotonic nanoseconds since this program started, so the receiver computes the
// POST-to-device latency with the same clock. Padding brings a message to -size bytes.

// sink collects what arrives. The poller holds mu while it handles a batch of events;
// main takes it to start a phase and to read the results.
type sink struct {
	mu sync.Mutex

	// unicast phase
	seen         []uint64 // bitmap of the sequence numbers received
	lats         []int64  // POST-to-device, ns
	received     int64    // distinct messages
	dups         int64    // a sequence number seen twice
	misdelivered int64    // arrived on a connection it was not for
	lastRecv     int64    // ns since start

	// broadcast phase
	round  uint8
	bSeen  []uint8 // per connection: the last round it received
	bTimes []int64 // POST-to-device of each receipt this round, ns
	bDups  int64

	unknown int64 // messages that are neither (or stale rounds)
}

func newSink(n int) *sink { return &sink{bSeen: make([]uint8, n)} }

// startUnicast makes room for total messages.
func (s *sink) startUnicast(total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = make([]uint64, total/64+1)
	s.lats = make([]int64, 0, total)
	s.received, s.dups, s.misdelivered, s.lastRecv = 0, 0, 0, 0
}

func (s *sink) startRound(r uint8, expect int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.round = r
	s.bTimes = make([]int64, 0, expect)
	s.bDups = 0
}

// message handles one message that arrived on connection i at now; called with mu held.
func (s *sink) message(i int32, msg []byte, now int64) {
	if len(msg) < 2 || msg[1] != ' ' {
		s.unknown++
		return
	}
	f := bytes.Fields(msg[2:min(len(msg), 80)])
	switch msg[0] {
	case 'm':
		if len(f) < 3 {
			s.unknown++
			return
		}
		seq, e1 := strconv.Atoi(string(f[0]))
		idx, e2 := strconv.Atoi(string(f[1]))
		ns, e3 := strconv.ParseInt(string(f[2]), 10, 64)
		if e1 != nil || e2 != nil || e3 != nil || seq < 0 || seq/64 >= len(s.seen) {
			s.unknown++
			return
		}
		if idx != int(i) {
			s.misdelivered++
			return
		}
		if s.seen[seq/64]&(1<<(seq%64)) != 0 {
			s.dups++
			return
		}
		s.seen[seq/64] |= 1 << (seq % 64)
		s.received++
		s.lats = append(s.lats, now-ns)
		s.lastRecv = now
	case 'b':
		if len(f) < 2 {
			s.unknown++
			return
		}
		r, e1 := strconv.Atoi(string(f[0]))
		ns, e2 := strconv.ParseInt(string(f[1]), 10, 64)
		if e1 != nil || e2 != nil || r != int(s.round) {
			s.unknown++
			return
		}
		if s.bSeen[i] == s.round {
			s.bDups++
			return
		}
		s.bSeen[i] = s.round
		s.bTimes = append(s.bTimes, now-ns)
	default:
		s.unknown++
	}
}

// percentile of sorted values, q in [0, 1]; -1 when there are none.
func percentile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return -1
	}
	k := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

func sortedCopy(v []int64) []int64 {
	c := slices.Clone(v)
	slices.Sort(c)
	return c
}

// pad returns b padded with 'x' to size bytes (never cut).
func pad(b []byte, size int) []byte {
	for len(b) < size {
		b = append(b, 'x')
	}
	return b
}
