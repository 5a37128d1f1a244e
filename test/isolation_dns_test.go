package test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDNSChangeIsPickedUp: origin svc is the DNS name svc.gozer.test, resolved by a
// DNS server of the test (origins.svc.dns_server) that answers 127.0.0.2, then
// 127.0.0.3, then SERVFAIL, then both; a server of its own listens on each address,
// same port. Traffic follows the answer within a few dns_refresh periods, the switch
// drops no request, a failing DNS keeps the last good set, /admin/origins shows it.
func TestDNSChangeIsPickedUp(t *testing.T) {
	t.Parallel()
	const refresh = 200 * time.Millisecond
	two, three := startFakeOriginPair(t, "two", "three")
	_, port, _ := net.SplitHostPort(two.Addr)
	dns := startFakeDNS(t, "svc.gozer.test.")
	ip2, ip3 := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	dns.answer(ip2)

	g := startGozer(t, config{
		Origins: map[string]originConfig{"svc": {Servers: []string{"svc.gozer.test:" + port}, Opts: map[string]string{
			"dns_server": fmt.Sprintf("%q", dns.addr), "dns_refresh": refresh.String(), "retries": "0",
		}}},
		Routes: []route{{PathPrefix: "/", Origin: "svc"}},
	})
	client := isolationClient(t, 10*time.Second)
	get := func(what string) clientReply {
		t.Helper()
		r := doGet(client, g.URL("/dns"))
		if r.Status != 200 {
			t.Fatalf("%s: %v; want 200", what, r)
		}
		return r
	}
	servers := func(want ...string) func() bool {
		return func() bool { return slices.Equal(dnsAdminOrigin(t, g, "svc").servers(), want) }
	}

	// 1. Only 127.0.0.2 is in the answer: it gets everything.
	waitFor(t, 5*time.Second, "/admin/origins lists only "+two.Addr, servers(two.Addr))
	for i := range 20 {
		if r := get(fmt.Sprintf("request %d to 127.0.0.2", i)); r.From != "two" {
			t.Fatalf("request %d: answered by %q; DNS says only 127.0.0.2 (two)", i, r.From)
		}
	}

	// 2. Switch to 127.0.0.3 under load: traffic moves, nothing fails.
	var sent, failed, fromThree atomic.Int64
	var firstFailure atomic.Pointer[string]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := doGet(client, g.URL("/dns"))
				sent.Add(1)
				if r.Status != 200 {
					failed.Add(1)
					s := r.String()
					firstFailure.CompareAndSwap(nil, &s)
				} else if r.From == "three" {
					fromThree.Add(1)
				}
			}
		})
	}
	waitFor(t, 5*time.Second, "the load loop runs before the switch", func() bool { return sent.Load() >= 20 })
	dns.answer(ip3)
	switched := eventually(5*time.Second, func() bool { return fromThree.Load() >= 20 })
	close(stop)
	wg.Wait()
	if f := firstFailure.Load(); f != nil {
		t.Errorf("%d of %d requests failed during the DNS switch; first: %s", failed.Load(), sent.Load(), *f)
	}
	t.Logf("DNS switch under load: %d requests, %d failed, %d reached 127.0.0.3", sent.Load(), failed.Load(), fromThree.Load())
	if !switched {
		t.Fatalf("5s after the DNS answer changed to 127.0.0.3, %d of %d requests reached it", fromThree.Load(), sent.Load())
	}
	waitFor(t, 5*time.Second, "/admin/origins lists only "+three.Addr, servers(three.Addr))
	before := two.count()
	for i := range 20 {
		if r := get(fmt.Sprintf("request %d after the switch", i)); r.From != "three" {
			t.Errorf("request %d after the switch: answered by %q, want three", i, r.From)
		}
	}
	if n := two.count() - before; n != 0 {
		t.Errorf("127.0.0.2 got %d requests after it left the DNS answer", n)
	}

	// 3. The DNS server fails: the last good set stays for several refresh periods.
	dns.answer() // SERVFAIL from now on
	waitFor(t, 5*time.Second, "/admin/origins shows a dns_error", func() bool { return dnsAdminOrigin(t, g, "svc").DNSError != "" })
	n := 0
	waitFor(t, 10*time.Second, "failed lookups span 3 refresh periods", func() bool {
		if r := get(fmt.Sprintf("request %d while the DNS fails", n)); r.From != "three" {
			t.Fatalf("request %d while the DNS fails: answered by %q; the last good set is 127.0.0.3", n, r.From)
		}
		n++
		return dns.failSpan() >= 3*refresh
	})
	if o := dnsAdminOrigin(t, g, "svc"); !slices.Equal(o.servers(), []string{three.Addr}) || o.DNSError == "" {
		t.Errorf("/admin/origins while the DNS fails: servers %v, dns_error %q; want [%s] and an error", o.servers(), o.DNSError, three.Addr)
	} else {
		t.Logf("dns_error while the DNS fails: %s", o.DNSError)
	}

	// 4. Both addresses: both servers get traffic, the error clears.
	dns.answer(ip2, ip3)
	waitFor(t, 5*time.Second, "/admin/origins lists both servers", servers(two.Addr, three.Addr))
	seen := map[string]int{}
	waitFor(t, 5*time.Second, "requests reach both 127.0.0.2 and 127.0.0.3", func() bool {
		seen[get("request to both").From]++
		return seen["two"] > 0 && seen["three"] > 0
	})
	if e := dnsAdminOrigin(t, g, "svc").DNSError; e != "" {
		t.Errorf("dns_error still %q after the DNS answers again", e)
	}
}

// startFakeOriginPair starts fake origins on 127.0.0.2:P and 127.0.0.3:P, same P.
func startFakeOriginPair(t *testing.T, name2, name3 string) (*fakeOrigin, *fakeOrigin) {
	t.Helper()
	for range 10 {
		ln2, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(ln2.Addr().String())
		ln3, err := net.Listen("tcp", "127.0.0.3:"+port)
		if err != nil {
			ln2.Close() // port taken on 127.0.0.3: try another
			continue
		}
		return serveFakeOrigin(t, name2, ln2), serveFakeOrigin(t, name3, ln3)
	}
	t.Fatal("no port free on both 127.0.0.2 and 127.0.0.3")
	return nil, nil
}

// serveFakeOrigin is startFakeOrigin (mode serve) on a listener of the caller's.
func serveFakeOrigin(t *testing.T, name string, ln net.Listener) *fakeOrigin {
	f := &fakeOrigin{Name: name, Addr: ln.Addr().String(), byID: map[string]fakeSeen{}, stop: make(chan struct{})}
	f.healthOK.Store(true)
	srv := &http.Server{Handler: f, ReadHeaderTimeout: time.Minute, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { close(f.stop); _ = srv.Close() })
	return f
}

// dnsOrigin is the part of an origin in GET /admin/origins this test reads.
type dnsOrigin struct {
	Name     string        `json:"name"`
	Servers  []adminServer `json:"servers"`
	DNSError string        `json:"dns_error"`
}

func (o dnsOrigin) servers() []string {
	var out []string
	for _, s := range o.Servers {
		out = append(out, s.Addr)
	}
	slices.Sort(out)
	return out
}

func dnsAdminOrigin(t *testing.T, g *gozer, name string) dnsOrigin {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + g.AdminAddr + "/admin/origins")
	if err != nil {
		t.Fatalf("GET /admin/origins: %v", err)
	}
	defer resp.Body.Close()
	var all []dnsOrigin
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		t.Fatalf("GET /admin/origins: status %d, not a JSON list of origins: %v", resp.StatusCode, err)
	}
	for _, o := range all {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("GET /admin/origins does not list origin %q", name)
	return dnsOrigin{}
}

// fakeDNS is a UDP DNS server (RFC 1035) for one name: A queries get the addresses
// currently set (TTL 0), AAAA none (NOERROR), other names NXDOMAIN; with no
// addresses set (answer()), every query gets SERVFAIL.
type fakeDNS struct {
	addr, name string
	mu         sync.Mutex
	addrs      []netip.Addr
	failing    bool
	failFirst  time.Time // first and last SERVFAIL of the current failing period
	failLast   time.Time
}

func startFakeDNS(t *testing.T, name string) *fakeDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDNS{addr: pc.LocalAddr().String(), name: name}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed at cleanup
			}
			if resp := d.reply(buf[:n]); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return d
}

func (d *fakeDNS) answer(addrs ...netip.Addr) {
	d.mu.Lock()
	d.addrs, d.failing = addrs, len(addrs) == 0
	d.failFirst, d.failLast = time.Time{}, time.Time{}
	d.mu.Unlock()
}

// failSpan is the time between the first and the last SERVFAIL since answer().
func (d *fakeDNS) failSpan() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failLast.Sub(d.failFirst)
}

// reply answers one query, or nil when it cannot be parsed.
func (d *fakeDNS) reply(q []byte) []byte {
	if len(q) < 12 || q[2]&0x80 != 0 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil // not a query with one question
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if l > 63 || i+1+l >= len(q) {
			return nil // compression or truncation: not in a query
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qEnd := i + 5 // root label, QTYPE, QCLASS
	qtype, qclass := binary.BigEndian.Uint16(q[i+1:]), binary.BigEndian.Uint16(q[i+3:])
	name := strings.ToLower(strings.Join(labels, ".") + ".")

	d.mu.Lock()
	rcode, addrs := 0, d.addrs
	switch {
	case d.failing:
		rcode = 2 // SERVFAIL
		if now := time.Now(); d.failFirst.IsZero() {
			d.failFirst, d.failLast = now, now
		} else {
			d.failLast = now
		}
	case name != d.name:
		rcode = 3 // NXDOMAIN
	}
	d.mu.Unlock()
	if rcode != 0 || qtype != 1 || qclass != 1 {
		addrs = nil // AAAA and the rest: NOERROR with no answer
	}
	// Header: ID, QR|AA|RD (echoed)|RA|RCODE, 1 question, the answers, no NS, no additional.
	resp := []byte{q[0], q[1], 0x84 | q[2]&0x01, 0x80 | byte(rcode), 0, 1, 0, byte(len(addrs)), 0, 0, 0, 0}
	resp = append(resp, q[12:qEnd]...)
	for _, a := range addrs {
		ip := a.As4()
		// Name: pointer to the question's (offset 12); A, IN, TTL 0, 4 bytes.
		resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4)
		resp = append(resp, ip[:]...)
	}
	return resp
}
