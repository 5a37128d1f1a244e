// Command tlsload measures what new TLS connections cost a proxy (bench/tls.sh). In a
// closed loop, -c workers each open a TCP connection, run the client side of a TLS
// handshake (crypto/tls), send one "GET -path HTTP/1.1" with "Connection: close", read the
// whole response, wait for the server to close and close too, then start over, for -d.
// Each worker uses its own connection at a time, source addresses 127.0.0.2 ..
// 127.0.0.(1+sources) in turn (so that ephemeral ports never run out), and checks every
// answer (status 200, -body-bytes if set).
//
// Modes:
//
//	full     every handshake is a full one. Each worker has a session cache that keeps
//	         nothing but counts the tickets the server sends: the client signals ticket
//	         support, as browsers do, so the server pays for issuing tickets as it would
//	         in the wild; no session is ever offered back.
//	resumed  each worker has a one-entry session cache (a tls.ClientSessionCache of its
//	         own) and primes it with one full handshake before the clock starts; every
//	         measured handshake offers the newest ticket. The fraction that actually
//	         resumed (ConnectionState().DidResume) is reported, and below -min-resumed the
//	         run fails (exit status 3): a server that quietly did full handshakes would
//	         otherwise look slow at resuming, or one that resumed nothing look like the
//	         full row.
//	tcp      the same exchange with no TLS at all (aim it at the proxy's plain port):
//	         what a new connection and one request cost the proxy without a handshake.
//	check    one connection per TLS version (1.3, then 1.2) and a second one offering the
//	         ticket the first got; prints "check ..." lines: version, cipher suite, key
//	         exchange group, the certificate (sha256 of the leaf, compared with -ca's; key
//	         type), tickets received, whether the second resumed, status and body bytes.
//
// TLS 1.3 (-tls 1.3, the default) or TLS 1.2 (-tls 1.2, with
// ECDHE-ECDSA-AES128-GCM-SHA256 only), X25519 only as the key exchange group (in TLS 1.2
// P-256 is listed after it, as the certificate's curve must be), no ALPN
// (HTTP/1.1, as wrk). With -ca the server's certificate is verified against that PEM file
// (the bench's self-signed one) for -servername, as a real client would; resumed
// handshakes carry no certificate.
//
// With -pid (the proxy) and -origin-pid, the run reads their CPU time (their whole process
// trees, from /proc/PID/task/*/schedstat, exact ns) and the busy time of -cores (from
// /proc/stat) when the clock starts, after priming, and when the last worker has finished
// its last exchange: the harness turns that into CPU µs per handshake and into what other
// jobs took from the cores. Results go to stdout as "result KEY VALUE" lines.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18385", "target host:port")
	mode := flag.String("mode", "full", "full | resumed | tcp | check")
	version := flag.String("tls", "1.3", "TLS version: 1.3 or 1.2")
	serverName := flag.String("servername", "localhost", "SNI, and the name the certificate must be valid for")
	caFile := flag.String("ca", "", "PEM certificate to trust (the bench's self-signed one); empty: no verification")
	conc := flag.Int("c", 32, "workers (connections in flight)")
	dur := flag.Duration("d", 4*time.Second, "how long new connections are opened")
	sources := flag.Int("sources", 10, "source addresses 127.0.0.2..127.0.0.(1+sources); 0 lets the kernel choose")
	path := flag.String("path", "/", "request path")
	host := flag.String("host", "localhost", "Host header")
	wantBody := flag.Int64("body-bytes", -1, "body length every answer must have (-1: any)")
	timeout := flag.Duration("timeout", 5*time.Second, "deadline of one connection, from connect to the server's close")
	minResumed := flag.Float64("min-resumed", 0.9, "resumed mode: fail below this fraction of resumed handshakes")
	pid := flag.Int("pid", 0, "the proxy's pid: CPU time of its process tree over the run (0: none)")
	originPID := flag.Int("origin-pid", 0, "the origin's pid (0: none)")
	coresFlag := flag.String("cores", "0,1", "the bench's cores, for their busy time")
	clkTck := flag.Int64("clk-tck", 100, "clock ticks per second of /proc/stat (getconf CLK_TCK)")
	flag.Parse()

	if *conc <= 0 || *dur <= 0 || *sources < 0 || *sources > 250 {
		fatalf("bad flags")
	}
	var cores []int
	for f := range strings.SplitSeq(*coresFlag, ",") {
		if c, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			cores = append(cores, c)
		}
	}
	var roots *x509.CertPool
	var caLeaf []byte
	if *caFile != "" {
		var err error
		if roots, caLeaf, err = loadCA(*caFile); err != nil {
			fatalf("%v", err)
		}
	}
	base := &tls.Config{
		ServerName:         *serverName,
		RootCAs:            roots,
		InsecureSkipVerify: roots == nil,
		CurvePreferences:   []tls.CurveID{tls.X25519},
	}
	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *host + "\r\nUser-Agent: gozer-bench-tlsload\r\nConnection: close\r\n\r\n")
	mk := func(id int, cfg *tls.Config) *worker {
		return &worker{addr: *addr, cfg: cfg, src: sourceAddrs(*sources), next: id, req: req,
			br: bufio.NewReaderSize(nil, 4096), timeout: *timeout, wantBody: *wantBody, errs: map[string]int64{}}
	}

	if *mode == "check" {
		os.Exit(check(mk, base, caLeaf))
	}
	var cfgFor func() *tls.Config
	switch *mode {
	case "tcp":
		cfgFor = func() *tls.Config { return nil }
	case "full", "resumed":
		vcfg, err := versioned(base, *version)
		if err != nil {
			fatalf("%v", err)
		}
		keep := *mode == "resumed"
		cfgFor = func() *tls.Config {
			c := vcfg.Clone()
			c.ClientSessionCache = &ticketCache{keep: keep}
			return c
		}
	default:
		fatalf("unknown -mode %q", *mode)
	}
	workers := make([]*worker, *conc)
	for i := range workers {
		workers[i] = mk(i, cfgFor())
	}

	if *mode == "resumed" {
		// One full handshake per worker before the clock starts: it fills the worker's
		// session cache. A server that sends no ticket cannot be measured resuming.
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for try := 0; try < 3 && w.cache().session == nil; try++ {
					if _, err := w.exchange(); err != nil {
						w.fail("prime", err)
					}
				}
			}()
		}
		wg.Wait()
		for _, w := range workers {
			if w.cache().session == nil {
				out("handshakes", 0)
				out("verdict", "fail: no session ticket after priming: "+w.summary())
				os.Exit(3)
			}
			w.errs = map[string]int64{}
			w.firstErr = ""
			w.cache().puts = 0 // count the measured connections' tickets only
		}
	}

	s0 := takeSnap(*pid, *originPID, cores)
	stopAt := s0.at.Add(*dur)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(stopAt)
		}()
	}
	wg.Wait()
	s1 := takeSnap(*pid, *originPID, cores)

	var done, resumed, tickets, nerr int64
	var lat []uint32
	errs := map[string]int64{}
	first := ""
	for _, w := range workers {
		done += w.done
		resumed += w.resumed
		tickets += w.cache().puts
		lat = append(lat, w.lat...)
		for k, v := range w.errs {
			errs[k] += v
			nerr += v
		}
		if first == "" {
			first = w.firstErr
		}
	}
	secs := s1.at.Sub(s0.at).Seconds()
	tick := func(c int) float64 { return float64(s1.coreTicks[c]-s0.coreTicks[c]) / float64(*clkTck) }
	var busyAll float64
	for _, c := range cores {
		busyAll += tick(c)
		out(fmt.Sprintf("busy_core%d_s", c), fmt.Sprintf("%.4f", tick(c)))
	}
	slices.Sort(lat)
	out("mode", *mode)
	if *mode == "tcp" {
		out("tls", "none")
	} else {
		out("tls", *version)
	}
	out("workers", *conc)
	out("handshakes", done)
	out("resumed", resumed)
	out("tickets", tickets)
	out("errors", nerr)
	out("errors_by_stage", errString(errs))
	out("first_error", first)
	out("seconds", fmt.Sprintf("%.4f", secs))
	out("rate", fmt.Sprintf("%.1f", float64(done)/secs))
	out("p50_us", pct(lat, 0.50))
	out("p99_us", pct(lat, 0.99))
	out("proxy_cpu_s", fmt.Sprintf("%.6f", float64(s1.proxy-s0.proxy)/1e9))
	out("origin_cpu_s", fmt.Sprintf("%.6f", float64(s1.origin-s0.origin)/1e9))
	out("self_cpu_s", fmt.Sprintf("%.6f", float64(s1.self-s0.self)/1e9))
	out("busy_cores_s", fmt.Sprintf("%.4f", busyAll))
	switch {
	case done == 0:
		out("verdict", "fail: no exchange completed; first error: "+first)
		os.Exit(3)
	case *mode == "resumed" && float64(resumed) < *minResumed*float64(done):
		out("verdict", fmt.Sprintf("fail: only %.1f%% of the handshakes resumed (%d of %d), below %.0f%%",
			100*float64(resumed)/float64(done), resumed, done, 100**minResumed))
		os.Exit(3)
	case *mode == "full" && resumed > 0:
		out("verdict", fmt.Sprintf("fail: %d handshakes resumed in full mode", resumed))
		os.Exit(3)
	}
	out("verdict", "ok")
}

// versioned returns base pinned to one TLS version.
func versioned(base *tls.Config, v string) (*tls.Config, error) {
	c := base.Clone()
	switch v {
	case "1.3":
		c.MinVersion, c.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	case "1.2":
		c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
		// In TLS 1.2 the client's supported groups also bound the curve of an ECDSA
		// certificate (RFC 4492 5.1), and OpenSSL holds the client to it: P-256 must be
		// listed for the bench's certificate. X25519 first: it is the exchange's group.
		c.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	default:
		return nil, fmt.Errorf("-tls must be 1.3 or 1.2, not %q", v)
	}
	return c, nil
}

// ticketCache is a worker's session cache: it counts the tickets the server sends and,
// with keep, holds the newest one to offer on the next connection. One worker, one
// goroutine: no lock.
type ticketCache struct {
	keep    bool
	session *tls.ClientSessionState
	puts    int64
}

func (c *ticketCache) Get(string) (*tls.ClientSessionState, bool) {
	if c.keep && c.session != nil {
		return c.session, true
	}
	return nil, false
}

func (c *ticketCache) Put(_ string, cs *tls.ClientSessionState) {
	if cs == nil { // crypto/tls drops a session that failed to resume
		if c.keep {
			c.session = nil
		}
		return
	}
	c.puts++
	if c.keep {
		c.session = cs
	}
}

type worker struct {
	addr     string
	cfg      *tls.Config // nil: no TLS (mode tcp)
	src      []*net.TCPAddr
	next     int
	req      []byte
	br       *bufio.Reader
	timeout  time.Duration
	wantBody int64

	done, resumed int64
	lat           []uint32 // µs, connect to the last byte of the response
	errs          map[string]int64
	firstErr      string

	// What the last exchange saw (check mode).
	state  tls.ConnectionState
	status int
	body   int64
}

func (w *worker) cache() *ticketCache {
	if w.cfg == nil {
		return &ticketCache{}
	}
	return w.cfg.ClientSessionCache.(*ticketCache)
}

func (w *worker) run(stopAt time.Time) {
	for time.Now().Before(stopAt) {
		start := time.Now()
		resumed, err := w.exchange()
		if err != nil {
			w.fail("", err)
			time.Sleep(10 * time.Millisecond) // a refusing server must not make this a busy loop
			continue
		}
		w.done++
		if resumed {
			w.resumed++
		}
		w.lat = append(w.lat, uint32(min(time.Since(start).Microseconds(), 1<<32-1)))
	}
}

// stageError names the step of the exchange that failed.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.stage + ": " + e.err.Error() }

func (w *worker) fail(prefix string, err error) {
	stage := "other"
	var se *stageError
	if errors.As(err, &se) {
		stage = se.stage
	}
	if prefix != "" {
		stage = prefix + "-" + stage
	}
	w.errs[stage]++
	if w.firstErr == "" {
		w.firstErr = err.Error()
	}
}

func (w *worker) summary() string {
	if w.firstErr == "" {
		return "the server sent no ticket"
	}
	return w.firstErr
}

// exchange runs one connection: connect, handshake, one request, the whole answer, the
// server's close. It reports whether the handshake resumed a session.
func (w *worker) exchange() (bool, error) {
	start := time.Now()
	d := net.Dialer{Timeout: w.timeout}
	if len(w.src) > 0 {
		d.LocalAddr = w.src[w.next%len(w.src)]
		w.next++
	}
	raw, err := d.Dial("tcp", w.addr)
	if err != nil {
		return false, &stageError{"connect", err}
	}
	defer raw.Close()
	_ = raw.SetDeadline(start.Add(w.timeout))
	c := raw
	resumed := false
	if w.cfg != nil {
		tc := tls.Client(raw, w.cfg)
		if err := tc.Handshake(); err != nil {
			return false, &stageError{"handshake", err}
		}
		w.state = tc.ConnectionState()
		resumed = w.state.DidResume
		c = tc
	}
	if _, err := c.Write(w.req); err != nil {
		return resumed, &stageError{"write", err}
	}
	w.br.Reset(c)
	resp, err := http.ReadResponse(w.br, nil)
	if err != nil {
		return resumed, &stageError{"response", err}
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	w.status, w.body = resp.StatusCode, n
	switch {
	case err != nil:
		return resumed, &stageError{"body", err}
	case resp.StatusCode != 200:
		return resumed, &stageError{"status", fmt.Errorf("status %d", resp.StatusCode)}
	case w.wantBody >= 0 && n != w.wantBody:
		return resumed, &stageError{"body", fmt.Errorf("%d body bytes, want %d", n, w.wantBody)}
	}
	// Connection: close: the server closes first (its side keeps the TIME_WAIT, as with
	// a real client that reads to the end); anything but EOF here is an error.
	if m, err := io.Copy(io.Discard, w.br); err != nil || m != 0 {
		if err == nil {
			err = fmt.Errorf("%d bytes after the response", m)
		}
		return resumed, &stageError{"close", err}
	}
	return resumed, nil
}

func sourceAddrs(n int) []*net.TCPAddr {
	var out []*net.TCPAddr
	for i := 0; i < n; i++ {
		out = append(out, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))})
	}
	return out
}

// loadCA reads a PEM certificate: a pool holding it, and its DER bytes.
func loadCA(file string) (*x509.CertPool, []byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool, blk.Bytes, nil
}

// check runs, per TLS version, one full handshake and one offering its ticket, and prints
// what it saw as "check NAME ok|FAIL details" lines. Exit status 0 even when a check
// fails: the harness reads the lines (a proxy that does only TLS 1.3 is still measured
// in TLS 1.3).
func check(mk func(int, *tls.Config) *worker, base *tls.Config, caLeaf []byte) int {
	for _, v := range []string{"1.3", "1.2"} {
		name := "tls" + v
		cfg, _ := versioned(base, v)
		cfg.ClientSessionCache = &ticketCache{keep: true}
		w := mk(0, cfg)
		if _, err := w.exchange(); err != nil {
			fmt.Printf("check %s FAIL %v\n", name, err)
			continue
		}
		st := w.state
		var problems []string
		leaf := st.PeerCertificates[0]
		sum := sha256.Sum256(leaf.Raw)
		key := fmt.Sprintf("%T", leaf.PublicKey)
		if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); ok {
			key = "ECDSA " + k.Curve.Params().Name
		}
		if key != "ECDSA P-256" {
			problems = append(problems, "key "+key+", want ECDSA P-256")
		}
		if caLeaf != nil && !slices.Equal(leaf.Raw, caLeaf) {
			problems = append(problems, "not the bench's certificate")
		}
		tickets := w.cache().puts
		if tickets == 0 {
			problems = append(problems, "no session ticket")
		}
		resumed, err := w.exchange()
		res := "resumed"
		switch {
		case err != nil:
			res = "second connection failed: " + err.Error()
			problems = append(problems, res)
		case !resumed:
			res = "NOT resumed"
			problems = append(problems, "the ticket was not accepted")
		}
		verdict := "ok"
		if len(problems) > 0 {
			verdict = "FAIL " + strings.Join(problems, "; ") + ";"
		}
		fmt.Printf("check %s %s %s, %s, %s, certificate %s sha256 %s, %d session ticket(s), status %d, %d body bytes; second connection: %s\n",
			name, verdict, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID, key,
			hex.EncodeToString(sum[:8]), tickets, w.status, w.body, res)
	}
	return 0
}

func errString(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func pct(sorted []uint32, p float64) uint32 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func out(key string, v any) { fmt.Printf("result %s %v\n", key, v) }

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "tlsload: "+format+"\n", a...)
	os.Exit(2)
}
