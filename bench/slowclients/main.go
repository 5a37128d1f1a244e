// Command slowclients reproduces slow-client attacks against an HTTP/1.1 server and
// measures what ordinary traffic gets meanwhile. bench/slowclients.sh runs it against
// Gozer; each mode also runs alone.
//
//	slowclients -mode slowbody -target 127.0.0.1:8080 [-n 4000] [-src 127.0.0.2-127.0.0.17]
//	slowclients -mode slowread -target 127.0.0.1:8080 [-n 4000] [-src ...]
//	slowclients -mode slowhead -target 127.0.0.1:8080 [-n 4000] [-src ...]
//	slowclients -mode silent   -target 127.0.0.1:8443 [-n 8000] [-src ...]   (a TLS port)
//	slowclients -mode halfhello -target 127.0.0.1:8443 [-n 8000] [-src ...]  (a TLS port)
//	slowclients -mode hello    -target 127.0.0.1:8443 [-n 8000] [-src ...]   (a TLS port)
//	slowclients -mode ordinary -target 127.0.0.1:8080 -d 15s [-c 16]
//	slowclients -mode report   -kind "slowbody slowread slowhead" -dir DIR   (bench/slowclients.sh's tables)
//
// slowbody is R.U.D.Y. / slowhttptest -B: each connection sends a POST head announcing
// Content-Length: 8192 and then -bytes bytes of body every -every (10s), forever.
// slowread is slowhttptest -X: each connection asks for a large response (1 MiB) with a
// receive buffer of 4 KiB and reads -bytes bytes every -every (1s). slowhead is the
// classic slowloris, slowhttptest -H: each connection sends "GET / HTTP/1.1" and Host,
// then -bytes bytes of further header lines ("X-a: b", cut anywhere) every -every (1s),
// never the empty line that ends the head. Aimed at a TLS port (bench/tlsflood.sh):
// silent connects and sends nothing at all; halfhello sends the 5-byte header of a
// ClientHello's record and never the rest; hello sends a whole ClientHello and never the
// client's next flight, a handshake that runs and stalls until the server's handshake
// timeout, or an eviction, ends it. All six keep -n connections open: when the server answers or closes one, the attacker records how
// (status line, X-Gozer-Status, close or reset) and how long it lived, and opens another
// (-reconnect). Connections go out round-robin from the -src addresses, as a botnet's
// would: a per-IP cap must not be what stops them in the bench if it would not in life.
// On SIGINT/SIGTERM or after -d they print one JSON line (connections opened, ended by
// the server and how, median/max time alive, open now, their own CPU time) and exit; a
// line "ready N" on stderr says when N connections were open at once for the first time.
//
// ordinary is the traffic a gateway exists for: -c closed-loop keep-alive GETs from
// 127.0.0.1 for -d (or, with -ordinary-rate, an open loop: requests sent on a fixed
// schedule whatever the answers, so that a load generator sharing its core with the
// attacker measures the server and not its own share of that core); it prints one JSON line (requests, 2xx, failures by status and
// X-Gozer-Status cause, transport errors, req/s, p50/p99 latency, its CPU time).
//
// Every request carries "X-Gozer-Debug: 1" (-debug-header): a Gozer that shows its
// X-Gozer-Status cause only to trusted clients that ask for it (127.0.0.0/8 by default)
// still shows it here, and one that shows it always ignores the header.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is every flag, for all modes.
type config struct {
	mode        string
	target      string
	path        string
	host        string
	n           int
	every       time.Duration
	bytes       int
	contentLen  int
	rcvbuf      int
	src         []net.IP
	reconnect   bool
	rate        float64
	dur         time.Duration
	conc        int
	ordRate     float64
	timeout     time.Duration
	debugHeader string
	from        string

	// report mode
	kind   string
	dir    string
	clkTck int
}

func main() {
	var cfg config
	var src string
	flag.StringVar(&cfg.mode, "mode", "", "slowbody, slowread, slowhead, silent, halfhello, hello, ordinary or report")
	flag.StringVar(&cfg.target, "target", "127.0.0.1:8080", "server host:port")
	flag.StringVar(&cfg.path, "path", "", "request path (default: /sink for slowbody, /bytes?n=1048576 for slowread, / for slowhead and ordinary)")
	flag.StringVar(&cfg.host, "host", "", "Host header (default: -target)")
	flag.IntVar(&cfg.n, "n", 4000, "attack connections kept open")
	flag.DurationVar(&cfg.every, "every", 0, "attack: send (slowbody, slowhead) or read (slowread) -bytes bytes this often (default 10s slowbody, 1s slowread and slowhead)")
	flag.IntVar(&cfg.bytes, "bytes", 4, "attack: bytes sent or read each -every")
	flag.IntVar(&cfg.contentLen, "content-length", 8192, "slowbody: the Content-Length announced")
	flag.IntVar(&cfg.rcvbuf, "rcvbuf", 4096, "slowread: SO_RCVBUF, set before connect (Linux doubles it)")
	flag.StringVar(&src, "src", "127.0.0.2-127.0.0.17", "attack source addresses, round-robin: a range A-B or a comma list; empty: the kernel's choice")
	flag.BoolVar(&cfg.reconnect, "reconnect", true, "attack: replace each connection the server ends, to keep -n open")
	flag.Float64Var(&cfg.rate, "rate", 1000, "attack: new connections per second at most (the first -n and the reconnects)")
	flag.DurationVar(&cfg.dur, "d", 0, "duration (ordinary: default 10s; attack: 0 = until SIGINT/SIGTERM)")
	flag.IntVar(&cfg.conc, "c", 16, "ordinary: concurrent closed-loop clients (keep-alive connections)")
	flag.Float64Var(&cfg.ordRate, "ordinary-rate", 0, "ordinary: open loop at this many requests/s in all, spread over the -c clients (0: closed loop)")
	flag.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "ordinary: a request not answered within this is a transport error (timeout)")
	flag.StringVar(&cfg.from, "from", "127.0.0.1", "ordinary: source address")
	flag.StringVar(&cfg.debugHeader, "debug-header", "X-Gozer-Debug", "header sent with value 1 on every request so that Gozer shows X-Gozer-Status (empty: none)")
	flag.StringVar(&cfg.kind, "kind", "", "report: the attack kinds, space-separated (slowbody slowread slowhead)")
	flag.StringVar(&cfg.dir, "dir", "", "report: the run directory bench/slowclients.sh wrote, one subdirectory per kind")
	flag.IntVar(&cfg.clkTck, "clk-tck", 100, "report: clock ticks per second of the samples' CPU column")
	flag.Parse()
	if flag.NArg() > 0 {
		fail("unexpected arguments: %q", flag.Args())
	}
	ips, err := parseSources(src)
	if err != nil {
		fail("-src: %v", err)
	}
	cfg.src = ips
	if cfg.host == "" {
		cfg.host = cfg.target
	}

	switch cfg.mode {
	case "slowbody", "slowread", "slowhead", "silent", "halfhello", "hello":
		if cfg.path == "" {
			cfg.path = map[string]string{"slowbody": "/sink", "slowread": "/bytes?n=1048576", "slowhead": "/"}[cfg.mode]
		}
		if cfg.every == 0 {
			cfg.every = map[string]time.Duration{"slowbody": 10 * time.Second, "slowread": time.Second, "slowhead": time.Second,
				"silent": time.Second, "halfhello": time.Second, "hello": time.Second}[cfg.mode] // (unused by the last three)
		}
		if cfg.n <= 0 || cfg.bytes <= 0 || cfg.every <= 0 || cfg.rate <= 0 || cfg.contentLen <= 0 {
			fail("-n, -bytes, -every, -rate and -content-length must be positive")
		}
		runAttack(cfg)
	case "ordinary":
		if cfg.path == "" {
			cfg.path = "/"
		}
		if cfg.dur == 0 {
			cfg.dur = 10 * time.Second
		}
		if cfg.conc <= 0 || cfg.dur < 0 || cfg.ordRate < 0 {
			fail("-c must be positive, -d and -ordinary-rate not negative")
		}
		runOrdinary(cfg)
	case "report":
		if cfg.dir == "" || cfg.kind == "" {
			fail("report needs -dir and -kind")
		}
		if err := report(os.Stdout, cfg); err != nil {
			fail("report: %v", err)
		}
	default:
		fail("-mode must be slowbody, slowread, slowhead, silent, halfhello, hello, ordinary or report")
	}
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "slowclients: "+format+"\n", a...)
	os.Exit(2)
}

// parseSources reads "127.0.0.2-127.0.0.17" (the last octet varies, or more of them:
// any IPv4 range) or "10.0.0.1,10.0.0.9".
func parseSources(s string) ([]net.IP, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []net.IP
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a := net.ParseIP(strings.TrimSpace(lo)).To4()
		if a == nil {
			return nil, fmt.Errorf("%q is not an IPv4 address", lo)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b := net.ParseIP(strings.TrimSpace(hi)).To4()
		if b == nil {
			return nil, fmt.Errorf("%q is not an IPv4 address", hi)
		}
		from, to := ipv4Uint(a), ipv4Uint(b)
		if to < from || to-from >= 1<<16 {
			return nil, fmt.Errorf("range %s is empty or larger than 65536 addresses", part)
		}
		for v := from; v <= to; v++ {
			out = append(out, net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).To4())
		}
	}
	return out, nil
}

func ipv4Uint(ip net.IP) uint32 {
	return uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
}

// cpuSeconds is the CPU time this process has used (user, system): what the attack
// cost the machine it ran on, to set against what it cost the server.
func cpuSeconds() (user, sys float64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime), tv(ru.Stime)
}

// printJSON writes v as one line on stdout: the harness reads the last line.
func printJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fail("json: %v", err)
	}
	fmt.Println(string(b))
}

// quantile of sorted values (nearest rank); 0 for none.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func sortedCopy(v []float64) []float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s
}

// round3 keeps JSON figures readable (milliseconds to the microsecond, etc.).
func round3(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 3, 64), 64)
	return f
}
