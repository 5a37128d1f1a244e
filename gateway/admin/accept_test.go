package admin

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// scripted is a listener whose Accept returns errs in turn, then a
// connection (TestAdminListenerSurvivesEMFILE meets the real EMFILE).
type scripted struct {
	net.Listener
	errs []error
}

func (s *scripted) Accept() (net.Conn, error) {
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return nil, err
	}
	a, b := net.Pipe()
	_ = b.Close()
	return a, nil
}

// TestRetryListener: shortages of descriptors or memory are waited out with
// a doubling backoff (at most acceptRetryMost); any other error ends Accept.
func TestRetryListener(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	cases := []struct {
		name    string
		errs    []error
		wantErr error
		waits   []time.Duration
	}{
		{"a connection at once", nil, nil, nil},
		{"EMFILE twice, then a connection", []error{emfile, emfile}, nil, []time.Duration{5 * time.Millisecond, 10 * time.Millisecond}},
		{"ENFILE, ENOBUFS, ENOMEM", []error{syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM}, nil,
			[]time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}},
		{"closed: the end", []error{net.ErrClosed}, net.ErrClosed, nil},
		{"a shortage, then closed", []error{emfile, net.ErrClosed}, net.ErrClosed, []time.Duration{5 * time.Millisecond}},
		{"the backoff stops at a second", repeat(emfile, 10), nil, []time.Duration{5 * time.Millisecond, 10 * time.Millisecond,
			20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond, 320 * time.Millisecond,
			640 * time.Millisecond, time.Second, time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var waits []time.Duration
			l := newRetryListener(&scripted{errs: tc.errs}, nil)
			l.sleep = func(d time.Duration) { waits = append(waits, d) }
			c, err := l.Accept()
			if !errors.Is(err, tc.wantErr) || (err == nil) != (c != nil) {
				t.Fatalf("Accept: %v, %v; want error %v", c, err, tc.wantErr)
			}
			if c != nil {
				_ = c.Close()
			}
			if len(waits) != len(tc.waits) {
				t.Fatalf("waited %v, want %v", waits, tc.waits)
			}
			for i := range waits {
				if waits[i] != tc.waits[i] {
					t.Fatalf("waited %v, want %v", waits, tc.waits)
				}
			}
		})
	}
}

// TestRetryListenerCloseEndsWait: Close ends a backoff wait at once, not
// when it runs out.
func TestRetryListenerCloseEndsWait(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newRetryListener(ln, nil)
	done := make(chan struct{})
	go func() {
		l.sleep(time.Minute)
		close(done)
	}()
	_ = l.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a wait of a minute did not end at Close")
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

// TestRetryListenerRefusesNearTheLimit: a connection whose descriptor reaches
// the ceiling is answered (when an answer is set), closed and counted, and
// Accept goes on to the next; under the ceiling, or with none, it is handed
// on untouched. A client whose request was queued before the accept still
// reads the answer and a clean close (what it sent is read off first: a close
// over unread data would reset the connection).
func TestRetryListenerRefusesNearTheLimit(t *testing.T) {
	const answer503 = "HTTP/1.1 503 x\r\n\r\n"
	cases := []struct {
		name         string
		ceiling      int
		answer       string
		send         string
		wantRead     string
		wantAccepted bool
	}{
		{"no ceiling", 0, "503", "", "", true},
		{"under the ceiling", 1 << 30, "503", "", "", true},
		{"at it, with an answer", 1, answer503, "", answer503, false},
		{"at it, the client's request queued", 1, answer503, "POST /push/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", answer503, false},
		{"at it, silent (TLS)", 1, "", "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var refused atomic.Int64
			l := newRetryListener(ln, nil)
			var answer []byte
			if tc.answer != "" {
				answer = []byte(tc.answer)
			}
			l.refuseFrom(tc.ceiling, answer, &refused)
			// Connected (in the backlog) and sent before the accept.
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := l.Accept()
				if err == nil {
					accepted <- c
				}
				close(accepted)
			}()
			if tc.wantAccepted {
				if s := <-accepted; s == nil {
					t.Fatal("not accepted")
				} else {
					_ = s.Close()
				}
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(c)
			if tc.wantAccepted {
				_ = l.Close()
			} else if err != nil || string(got) != tc.wantRead {
				t.Errorf("the client read %q (%v), want %q then the close", got, err, tc.wantRead)
			}
			if tc.wantAccepted {
				if refused.Load() != 0 {
					t.Errorf("refused %d, want 0", refused.Load())
				}
				return
			}
			// Accept went on to the next connection (an error would have
			// stopped fasthttp's Serve for good): it refuses a second one too.
			c2, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			waitUntil(t, 5*time.Second, "the second connection refused", func() bool { return refused.Load() == 2 })
			_ = l.Close()
			if s := <-accepted; s != nil {
				t.Error("a connection at the ceiling was handed on")
			}
		})
	}
}
