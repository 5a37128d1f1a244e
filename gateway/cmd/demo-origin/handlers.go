package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// origin is the state shared by all requests of one demo-origin process.
type origin struct {
	name    string
	counter atomic.Int64
	seen    *seenSet
	// /auth (auth.go): its default delay, and the calls it served.
	authDelay time.Duration
	authCalls atomic.Int64
}

func newOrigin(name string) *origin {
	return &origin{name: name, seen: &seenSet{ids: make(map[string]int)}}
}

func (o *origin) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", o.index)
	mux.HandleFunc("/headers", o.headers)
	mux.HandleFunc("/echo", o.echo)
	mux.HandleFunc("/sink", o.sink)
	mux.HandleFunc("/slow-sink", o.slowSink)
	mux.HandleFunc("/bytes", o.bytes)
	mux.HandleFunc("/slow", o.slow)
	mux.HandleFunc("/slow-body", o.slowBody)
	mux.HandleFunc("/status", o.status)
	mux.HandleFunc("/reset", o.reset)
	mux.HandleFunc("/close-mid", o.closeMid)
	mux.HandleFunc("/hang", o.hang)
	mux.HandleFunc("/counter", o.count)
	mux.HandleFunc("/seen", o.seenID)
	mux.HandleFunc("/auth", o.auth)
	mux.HandleFunc("/ws", o.ws)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids := r.Header.Values("X-Test-Id")
		for _, id := range ids {
			o.seen.add("req:" + id)
		}
		body := &bodyWatch{ReadCloser: r.Body}
		r.Body = body
		w.Header().Set("X-Origin-Name", o.name)
		mux.ServeHTTP(w, r)
		if len(ids) == 0 || r.URL.Path == "/reset" || r.URL.Path == "/close-mid" || r.URL.Path == "/ws" {
			return // nothing to record, or the connection was hijacked
		}
		if !body.eof && !body.failed {
			_, _ = io.Copy(io.Discard, body)
		}
		if body.eof && !body.failed {
			for _, id := range ids {
				o.seen.add("done:" + id)
			}
		}
	})
}

// bodyWatch tells whether a request body was read to its proper end.
type bodyWatch struct {
	io.ReadCloser
	eof, failed bool
}

func (b *bodyWatch) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.failed = true
	}
	return n, err
}

// index is the page a user sees through `curl -i localhost:8080/`.
func (o *origin) index(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	fmt.Fprintf(&b, "hello from demo-origin %s\n", o.name)
	fmt.Fprintf(&b, "method: %s\npath: %s\n", r.Method, r.URL.RequestURI())
	fmt.Fprintf(&b, "headers:\n  Host: %s\n", r.Host)
	for _, k := range sortedKeys(r.Header) {
		for _, v := range r.Header[k] {
			fmt.Fprintf(&b, "  %s: %s\n", k, v)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, b.String())
}

// Seen is the JSON answer of /headers: what the origin received.
type Seen struct {
	Method           string              `json:"method"`
	URI              string              `json:"uri"`
	Host             string              `json:"host"`
	Proto            string              `json:"proto"`
	ContentLength    int64               `json:"content_length"`
	TransferEncoding []string            `json:"transfer_encoding"`
	Headers          map[string][]string `json:"headers"`
	BodyBytes        int64               `json:"body_bytes"`
}

func (o *origin) headers(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	writeJSON(w, http.StatusOK, Seen{
		Method:           r.Method,
		URI:              r.RequestURI,
		Host:             r.Host,
		Proto:            r.Proto,
		ContentLength:    r.ContentLength,
		TransferEncoding: r.TransferEncoding,
		Headers:          r.Header,
		BodyBytes:        n,
	})
}

func (o *origin) echo(w http.ResponseWriter, r *http.Request) {
	// Read and write at once: without full duplex, net/http stops the body after the
	// first write.
	_ = http.NewResponseController(w).EnableFullDuplex()
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	if r.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	w.WriteHeader(http.StatusOK)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			flush(w)
		}
		if err != nil {
			return
		}
	}
}

func (o *origin) sink(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"bytes": n, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"bytes": n, "sha256": hex.EncodeToString(h.Sum(nil))})
}

// slowSink waits before it reads the body at all, so that the sender has to hold
// back (backpressure), then answers like /sink.
func (o *origin) slowSink(w http.ResponseWriter, r *http.Request) {
	d, err := parseDelay(r, time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case <-time.After(d):
	case <-r.Context().Done():
		return
	}
	o.sink(w, r)
}

// Pattern returns byte i of what /bytes sends.
func Pattern(i int64) byte { return byte(i % 251 * 7 % 251) }

// patternBuf holds the pattern from offset 0, long enough that any write of up to
// 32 KiB starting at offset i%251 fits inside it.
var patternBuf = func() []byte {
	b := make([]byte, 251*140)
	for i := range b {
		b[i] = Pattern(int64(i))
	}
	return b
}()

const writeChunk = 32 << 10

// writePattern writes bytes [from, to) of the pattern, flushing after each chunk
// when flushEach is set.
func writePattern(w http.ResponseWriter, from, to int64, flushEach bool) error {
	for i := from; i < to; {
		n := min(to-i, writeChunk)
		off := i % 251
		if _, err := w.Write(patternBuf[off : off+n]); err != nil {
			return err
		}
		if flushEach {
			flush(w)
		}
		i += n
	}
	return nil
}

func (o *origin) bytes(w http.ResponseWriter, r *http.Request) {
	n, err := parseSize(r.URL.Query().Get("n"))
	if err != nil {
		http.Error(w, "bad n: "+err.Error(), http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	chunked := q.Get("chunked") == "1"
	w.Header().Set("Content-Type", "application/octet-stream")
	// Headers on demand, for the compression tests: ct=Content-Type,
	// ce=Content-Encoding, cc=Cache-Control, etag=ETag.
	for param, name := range map[string]string{"ct": "Content-Type", "ce": "Content-Encoding", "cc": "Cache-Control", "etag": "ETag"} {
		if v := q.Get(param); v != "" {
			w.Header().Set(name, v)
		}
	}
	if !chunked {
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_ = writePattern(w, 0, n, chunked)
}

func (o *origin) slow(w http.ResponseWriter, r *http.Request) {
	d, err := parseDelay(r, time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case <-time.After(d):
	case <-r.Context().Done():
		return
	}
	io.WriteString(w, "slow answer after "+d.String()+"\n")
}

func (o *origin) slowBody(w http.ResponseWriter, r *http.Request) {
	d, err := parseDelay(r, time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n, err := parseSize(r.URL.Query().Get("n"))
	if err != nil {
		http.Error(w, "bad n: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if ct := r.URL.Query().Get("ct"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(http.StatusOK)
	if writePattern(w, 0, n/2, false) != nil {
		return
	}
	flush(w)
	select {
	case <-time.After(d):
	case <-r.Context().Done():
		return
	}
	_ = writePattern(w, n/2, n, false)
}

func (o *origin) status(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.URL.Query().Get("code"))
	if err != nil || code < 200 || code > 999 {
		http.Error(w, "code must be a status between 200 and 999", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, "status %d from demo-origin %s\n", code, o.name)
}

// reset closes the connection with SO_LINGER 0, so the peer gets a TCP RST and not
// a single byte of response.
func (o *origin) reset(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot hijack: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if tc, ok := unwrapTCP(conn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

// closeMid promises n bytes, sends half of them and closes the connection.
func (o *origin) closeMid(w http.ResponseWriter, r *http.Request) {
	n, err := parseSize(r.URL.Query().Get("n"))
	if err != nil || n < 2 {
		http.Error(w, "n must be at least 2", http.StatusBadRequest)
		return
	}
	conn, bufrw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot hijack: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	fmt.Fprintf(bufrw, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"+
		"Content-Length: %d\r\nX-Origin-Name: %s\r\n\r\n", n, o.name)
	for i := int64(0); i < n/2; i += writeChunk {
		m := min(n/2-i, writeChunk)
		off := i % 251
		if _, err := bufrw.Write(patternBuf[off : off+m]); err != nil {
			return
		}
	}
	_ = bufrw.Flush()
}

func (o *origin) hang(w http.ResponseWriter, r *http.Request) {
	<-r.Context().Done()
}

func (o *origin) count(w http.ResponseWriter, r *http.Request) {
	n := o.counter.Add(1)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%d\n", n)
}

// SeenCounts is the JSON answer of /seen?id=X.
type SeenCounts struct {
	ID string `json:"id"`
	// Requests is how many requests with X-Test-Id: X the origin's handler got.
	Requests int `json:"requests"`
	// Complete is how many of those had their whole body read without error.
	Complete int `json:"complete"`
	// Connections is how many connections carried an X-Test-Id: X line in their raw
	// bytes, even where the origin rejected the request or it hid in a body.
	Connections int `json:"connections"`
}

func (o *origin) seenID(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" {
		http.Error(w, "id is required", http.StatusBadRequest)
		return
	}
	reqs, done, raw := o.seen.count("req:"+id), o.seen.count("done:"+id), o.seen.count("raw:"+id)
	code := http.StatusNotFound
	if reqs > 0 || raw > 0 {
		code = http.StatusOK
	}
	writeJSON(w, code, SeenCounts{ID: id, Requests: reqs, Complete: done, Connections: raw})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func flush(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }

func sortedKeys(h http.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func parseDelay(r *http.Request, def time.Duration) (time.Duration, error) {
	s := r.URL.Query().Get("delay")
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad delay %q", s)
	}
	return d, nil
}

// parseSize reads a byte count: a plain number, or with a KiB/MiB/GiB suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a byte count", s)
	}
	return n * mult, nil
}

func unwrapTCP(c net.Conn) (*net.TCPConn, bool) {
	if rc, ok := c.(*recordingConn); ok {
		c = rc.Conn
	}
	tc, ok := c.(*net.TCPConn)
	return tc, ok
}
