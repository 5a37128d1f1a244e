package test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// rssBound is what Gozer may hold resident while gigabytes stream through it: far
// below what buffering a whole body would take.
const rssBound = 256 << 20

// rssSampler records the highest RSS of a process, sampled every 50 ms.
type rssSampler struct {
	p    *process
	stop chan struct{}
	wg   sync.WaitGroup
	max  int64
	err  error
}

func sampleRSS(p *process) *rssSampler {
	s := &rssSampler{p: p, stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if r, err := p.rss(); err == nil {
				s.max = max(s.max, r)
			} else if !p.exited() {
				s.err = err
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// done stops sampling and fails the test if the RSS ever went over rssBound.
func (s *rssSampler) done(t *testing.T, what string) {
	t.Helper()
	close(s.stop)
	s.wg.Wait()
	if s.err != nil {
		t.Fatalf("read gozer RSS: %v", s.err)
	}
	if s.p.unmeasured {
		t.Logf("%s: gozer RSS not measured (the race pass)", what)
		return
	}
	t.Logf("%s: gozer max RSS %d MiB", what, s.max>>20)
	if s.max > rssBound {
		t.Errorf("%s: gozer RSS reached %d MiB, over the %d MiB bound: the body is being buffered", what, s.max>>20, rssBound>>20)
	}
}

var (
	shaMu    sync.Mutex
	shaCache = map[int64]string{}
)

// cachedPatternSHA is patternSHA, computed once per size.
func cachedPatternSHA(n int64) string {
	shaMu.Lock()
	defer shaMu.Unlock()
	if s, ok := shaCache[n]; ok {
		return s
	}
	shaCache[n] = patternSHA(n)
	return shaCache[n]
}

func streamingGozer(t *testing.T) *gozer {
	t.Helper()
	g, _ := proxied(t, map[string]string{"max_request_body": "2GiB"}, map[string]string{"read_timeout": "30s"})
	return g
}

var streamSizes = []struct {
	name    string
	n       int64
	chunked bool
}{
	{"1GiB with Content-Length", 1 << 30, false},
	{"256MiB chunked", 256 << 20, true},
}

func TestStreamUpload(t *testing.T) {
	plainGozer(t)
	if testing.Short() {
		t.Skip("1 GiB transfer; runs without -short")
	}
	g := streamingGozer(t)
	client := newClient(t, 5*time.Minute)
	for _, tc := range streamSizes {
		t.Run(tc.name, func(t *testing.T) {
			want := cachedPatternSHA(tc.n)
			req, _ := http.NewRequest("POST", g.URL("/sink"), &patternReader{n: tc.n})
			req.Header.Set("Content-Type", "application/octet-stream")
			if !tc.chunked {
				req.ContentLength = tc.n
			}
			rss := sampleRSS(g.process)
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				rss.done(t, "upload")
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			rss.done(t, "upload")
			t.Logf("uploaded %d MiB in %v", tc.n>>20, time.Since(start).Round(time.Millisecond))
			if resp.StatusCode != 200 || err != nil {
				t.Fatalf("status %d, body %q, read error %v", resp.StatusCode, tail(string(body), 300), err)
			}
			if s := decodeSink(t, body); s.Bytes != tc.n || s.SHA256 != want {
				t.Errorf("origin got %d bytes sha %s, want %d sha %s", s.Bytes, s.SHA256, tc.n, want)
			}
		})
	}
}

func TestStreamDownload(t *testing.T) {
	plainGozer(t)
	if testing.Short() {
		t.Skip("1 GiB transfer; runs without -short")
	}
	g := streamingGozer(t)
	client := newClient(t, 5*time.Minute)
	for _, tc := range streamSizes {
		t.Run(tc.name, func(t *testing.T) {
			url := g.URL(fmt.Sprintf("/bytes?n=%d", tc.n))
			if tc.chunked {
				url += "&chunked=1"
			}
			rss := sampleRSS(g.process)
			start := time.Now()
			resp, err := client.Get(url)
			if err != nil {
				rss.done(t, "download")
				t.Fatal(err)
			}
			_, err = checkPattern(resp.Body, tc.n)
			resp.Body.Close()
			rss.done(t, "download")
			t.Logf("downloaded %d MiB in %v", tc.n>>20, time.Since(start).Round(time.Millisecond))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
}

// TestSlowClient: a client asks for 512 MiB and reads nothing for a while. Gozer must
// stop reading from the origin (backpressure) instead of buffering the response, and
// deliver all of it once the client reads.
func TestSlowClient(t *testing.T) {
	raceAlso(t, testSlowClient)
}

func testSlowClient(t *testing.T) {
	if testing.Short() {
		t.Skip("512 MiB transfer; runs without -short")
	}
	g := streamingGozer(t)
	const n = 512 << 20
	c := dialRaw(t, g.ProxyAddr)
	c.send(request("GET", fmt.Sprintf("/bytes?n=%d", n)))

	rss := sampleRSS(g.process)
	<-time.After(3 * time.Second) // the sampling window, while the client reads nothing
	rss.done(t, "client not reading")

	_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	resp, err := http.ReadResponse(bufio.NewReaderSize(c.br, 64<<10), nil)
	if err != nil {
		t.Fatalf("read response head: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := checkPattern(resp.Body, n); err != nil {
		t.Errorf("once the client reads: %v", err)
	}
}

// TestSlowOriginReader: the origin waits before reading a 512 MiB upload. Gozer must
// stop reading from the client meanwhile instead of buffering the body, and the
// upload must then complete whole.
func TestSlowOriginReader(t *testing.T) {
	raceAlso(t, testSlowOriginReader)
}

func testSlowOriginReader(t *testing.T) {
	if testing.Short() {
		t.Skip("512 MiB transfer; runs without -short")
	}
	g := streamingGozer(t)
	client := newClient(t, 5*time.Minute)
	const n = 512 << 20
	req, _ := http.NewRequest("POST", g.URL("/slow-sink?delay=3s"), &patternReader{n: n})
	req.ContentLength = n
	rss := sampleRSS(g.process)
	resp, err := client.Do(req)
	if err != nil {
		rss.done(t, "origin not reading")
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	rss.done(t, "origin not reading")
	if resp.StatusCode != 200 || err != nil {
		t.Fatalf("status %d, body %q, read error %v", resp.StatusCode, tail(string(body), 300), err)
	}
	if s, want := decodeSink(t, body), cachedPatternSHA(n); s.Bytes != n || s.SHA256 != want {
		t.Errorf("origin got %d bytes sha %s, want %d sha %s", s.Bytes, s.SHA256, n, want)
	}
}
