// Command idleconns measures what idle keep-alive client connections cost a proxy.
//
// It opens -n TCP connections to -addr, sends one complete "GET / HTTP/1.1" request on
// each and reads the whole response, so every connection is a real keep-alive connection
// that has served a request and now sits idle (not a half-open socket the proxy has not
// even parsed). Then it prints one line "ready N" on stdout and holds them until SIGTERM,
// SIGINT or -hold elapses. On the way out it reports how many the server had closed while
// they were held, then closes them all.
//
// The harness (bench/run.sh) reads the proxy's RSS before starting this program and again
// after "ready", and divides the difference by N.
//
// Connections are spread over source addresses 127.0.0.2 .. 127.0.0.(1+sources) so that a
// large N never runs out of ephemeral ports towards one destination port.
//
// With -tls each connection first runs a full TLS handshake (crypto/tls; TLS 1.3 or, with
// -tls-version 1.2, TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256; X25519, and in TLS 1.2
// P-256 after it, the certificate's curve; no ALPN; no session cache), verified against
// -ca for -servername when -ca is set, and the request and response go over it: the
// connection the proxy holds is then an idle TLS connection that has served a request
// (bench/tls.sh).
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "target host:port")
	n := flag.Int("n", 10000, "connections to open and hold")
	sources := flag.Int("sources", 10, "spread over source addresses 127.0.0.2..127.0.0.(1+sources); 0 lets the kernel choose")
	parallel := flag.Int("parallel", 128, "connections being opened at once")
	path := flag.String("path", "/", "request path")
	host := flag.String("host", "bench.local", "Host header")
	openTimeout := flag.Duration("open-timeout", 60*time.Second, "deadline for opening all connections")
	hold := flag.Duration("hold", 5*time.Minute, "release the connections after this long even without a signal")
	useTLS := flag.Bool("tls", false, "run a TLS handshake on each connection first")
	tlsVersion := flag.String("tls-version", "1.3", "with -tls: 1.3 or 1.2")
	serverName := flag.String("servername", "localhost", "with -tls: SNI, and the name the certificate must be valid for")
	caFile := flag.String("ca", "", "with -tls: PEM certificate to trust; empty: no verification")
	flag.Parse()

	if *n <= 0 || *parallel <= 0 || *sources < 0 || *sources > 250 {
		fmt.Fprintln(os.Stderr, "idleconns: bad flags")
		os.Exit(2)
	}
	var tlsCfg *tls.Config
	if *useTLS {
		var err error
		if tlsCfg, err = clientTLS(*tlsVersion, *serverName, *caFile); err != nil {
			fmt.Fprintln(os.Stderr, "idleconns:", err)
			os.Exit(2)
		}
	}

	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *host + "\r\nUser-Agent: gozer-bench-idleconns\r\n\r\n")
	conns := make([]net.Conn, *n)
	deadline := time.Now().Add(*openTimeout)

	var (
		wg       sync.WaitGroup
		failed   atomic.Int64
		firstErr atomic.Value // string
		sem      = make(chan struct{}, *parallel)
	)
	for i := 0; i < *n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			c, err := open(*addr, i, *sources, req, deadline, tlsCfg)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			conns[i] = c
		}(i)
	}
	wg.Wait()

	if f := failed.Load(); f > 0 {
		fmt.Printf("failed %d of %d connections; first error: %v\n", f, *n, firstErr.Load())
		closeAll(conns)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", *n)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-time.After(*hold):
	}

	dropped := countClosedByServer(conns)
	closeAll(conns)
	fmt.Printf("closed %d; %d had been closed by the server while held\n", *n, dropped)
}

// clientTLS is the client side of -tls: one version, X25519, no session cache.
func clientTLS(version, serverName, caFile string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, CurvePreferences: []tls.CurveID{tls.X25519}}
	switch version {
	case "1.3":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	case "1.2":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		cfg.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
		// TLS 1.2: the supported groups also bound the certificate's curve (P-256).
		cfg.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	default:
		return nil, fmt.Errorf("-tls-version must be 1.3 or 1.2, not %q", version)
	}
	if caFile == "" {
		cfg.InsecureSkipVerify = true
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	return cfg, nil
}

// open dials one connection (with tlsCfg, runs the TLS handshake), runs one
// request/response on it and returns it idle.
func open(addr string, i, sources int, req []byte, deadline time.Time, tlsCfg *tls.Config) (net.Conn, error) {
	d := net.Dialer{Deadline: deadline}
	if sources > 0 {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%sources))}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(deadline)
	if tlsCfg != nil {
		tc := tls.Client(c, tlsCfg)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c = tc
	}
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("reading response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		err = fmt.Errorf("reading body: %w", err)
	case resp.StatusCode/100 != 2:
		err = fmt.Errorf("status %d", resp.StatusCode)
	case resp.Close:
		err = errors.New("server answered Connection: close; not a keep-alive connection")
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// countClosedByServer tells how many held connections the server closed (or wrote to)
// while they were idle: a short read that returns anything but a timeout.
func countClosedByServer(conns []net.Conn) int64 {
	var dropped atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 512)
	for _, c := range conns {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(c net.Conn) {
			defer func() { <-sem; wg.Done() }()
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			var b [1]byte
			_, err := c.Read(b[:])
			var ne net.Error
			if !(errors.As(err, &ne) && ne.Timeout()) {
				dropped.Add(1)
			}
		}(c)
	}
	wg.Wait()
	return dropped.Load()
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}
