package test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// postWith builds a POST /sink with the given framing header lines and body.
func postWith(headers []string, body string) func(string) string {
	return func(id string) string {
		b := strings.ReplaceAll(body, "ID", id)
		var hs []string
		for _, h := range headers {
			hs = append(hs, strings.ReplaceAll(h, "LEN", fmt.Sprint(len(b))))
		}
		return "POST /sink HTTP/1.1\r\nHost: gozer.test\r\nX-Test-Id: " + id + "\r\n" + strings.Join(hs, "\r\n") + "\r\n\r\n" + b
	}
}

// smuggledBody ends a chunked body at once and hides a second request after it: a
// server that frames the body differently from Gozer would see X-Test-Id: ID-inner as
// a request of its own.
const smuggledBody = "0\r\n\r\nGET /headers HTTP/1.1\r\nHost: gozer.test\r\nX-Test-Id: ID-inner\r\n\r\n"

// TestSmugglingRejected: each of these requests is ambiguous or invalid in a way that
// two HTTP parsers can read differently. Gozer must answer 400, close the connection,
// and pass nothing on to the origin.
func TestSmugglingRejected(t *testing.T) {
	t.Parallel()
	g, o := proxied(t, nil, nil)
	const cause = "FAILURE_CLIENT_BAD_REQUEST|FAILURE_CLIENT_SMUGGLING"
	rows := []struct {
		name  string
		req   func(string) string
		reach string
	}{
		{"Content-Length and Transfer-Encoding", postWith([]string{"Content-Length: LEN", "Transfer-Encoding: chunked"}, smuggledBody), "none"},
		{"Transfer-Encoding and Content-Length", postWith([]string{"Transfer-Encoding: chunked", "Content-Length: LEN"}, smuggledBody), "none"},
		{"two different Content-Length", postWith([]string{"Content-Length: 5", "Content-Length: 6"}, "hello!"), "none"},
		{"Content-Length list of different values", postWith([]string{"Content-Length: 5, 6"}, "hello!"), "none"},
		{"Transfer-Encoding: chunked, x", postWith([]string{"Transfer-Encoding: chunked, x"}, "5\r\nhello\r\n0\r\n\r\n"), "none"},
		{"Transfer-Encoding: xchunked", postWith([]string{"Transfer-Encoding: xchunked"}, "5\r\nhello\r\n0\r\n\r\n"), "none"},
		{"two Transfer-Encoding, last not chunked", postWith([]string{"Transfer-Encoding: chunked", "Transfer-Encoding: identity"}, "5\r\nhello\r\n0\r\n\r\n"), "none"},
		{"Transfer-Encoding:\\tchunked with Content-Length", postWith([]string{"Content-Length: LEN", "Transfer-Encoding:\tchunked"}, smuggledBody), "none"},
		{"Transfer-Encoding\\t: chunked", postWith([]string{"Content-Length: LEN", "Transfer-Encoding\t: chunked"}, smuggledBody), "none"},
		{"Transfer-Encoding : chunked", postWith([]string{"Content-Length: LEN", "Transfer-Encoding : chunked"}, smuggledBody), "none"},
		{"Transfer-Encoding:\\vchunked", postWith([]string{"Content-Length: LEN", "Transfer-Encoding:\vchunked"}, smuggledBody), "none"},
		{"Transfer-Encoding folded onto the next line", postWith([]string{"Content-Length: LEN", "Transfer-Encoding:", " chunked"}, smuggledBody), "none"},
		{"invalid chunk size zz", postWith([]string{"Transfer-Encoding: chunked"}, "zz\r\nhello\r\n0\r\n\r\n"), "incomplete"},
		{"chunk size with a sign", postWith([]string{"Transfer-Encoding: chunked"}, "+5\r\nhello\r\n0\r\n\r\n"), "incomplete"},
		{"chunk data longer than its size", postWith([]string{"Transfer-Encoding: chunked"}, "3\r\nhello\r\n0\r\n\r\n"), "incomplete"},
		{"bare LF line endings", raw("GET /headers HTTP/1.1\nHost: gozer.test\nX-Test-Id: ID\n\n"), "none"},
		{"whitespace before colon", raw("GET /headers HTTP/1.1\r\nHost : gozer.test\r\nX-Test-Id: ID\r\n\r\n"), "none"},
		{"two Host headers", raw("GET /headers HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nX-Test-Id: ID\r\n\r\n"), "none"},
		{"obs-fold line", raw("GET /headers HTTP/1.1\r\nHost: gozer.test\r\nX-Test-Id: ID\r\nX-Folded: a\r\n b\r\n\r\n"), "none"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			runBadInput(t, g, o, badInput{r.name, r.req, 400, cause, true, r.reach})
		})
	}
}

// TestSmugglingTolerated: these requests are unusual but have one meaning. Gozer may
// reject them (400 and close, the origin seeing nothing) or accept them; if it
// accepts, exactly one request with the right body reaches the origin and the
// connection stays in step (a following request is answered normally).
func TestSmugglingTolerated(t *testing.T) {
	t.Parallel()
	g, o := proxied(t, nil, nil)
	sum := sha256.Sum256([]byte("hello"))
	helloSHA := hex.EncodeToString(sum[:])
	rows := []struct {
		name string
		req  func(string) string
	}{
		{"two equal Content-Length", postWith([]string{"Content-Length: 5", "Content-Length: 5"}, "hello")},
		{"Content-Length list of equal values", postWith([]string{"Content-Length: 5, 5"}, "hello")},
		{"Transfer-Encoding: CHUNKED", postWith([]string{"Transfer-Encoding: CHUNKED"}, "5\r\nhello\r\n0\r\n\r\n")},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			id := uniqueID("tolerated")
			c := dialRaw(t, g.ProxyAddr)
			_ = c.write(r.req(id))
			resp, body, err := c.readResponse("POST")
			if resp == nil {
				t.Fatalf("no answer: %v", err)
			}
			switch resp.StatusCode {
			case 400:
				c.mustClose("after rejecting an ambiguous request")
				checkReach(t, o, id, "none")
			case 200:
				if s := decodeSink(t, body); s.Bytes != 5 || s.SHA256 != helloSHA {
					t.Errorf("accepted, but the origin got %d bytes sha %s, want the 5 bytes of hello", s.Bytes, s.SHA256)
				}
				if s := seen(t, o, id); s.Requests != 1 || s.Complete != 1 {
					t.Errorf("accepted, but the origin saw %+v, want exactly one complete request", s)
				}
				resp, body := c.roundTrip(request("GET", "/headers?after=1"))
				if v := decodeView(t, body); resp.StatusCode != 200 || v.URI != "/headers?after=1" {
					t.Errorf("next request on the connection: %d for %q; the framing is out of step", resp.StatusCode, v.URI)
				}
			default:
				t.Errorf("status %d, want 400 (rejected) or 200 (accepted); body %q", resp.StatusCode, tail(string(body), 200))
			}
		})
	}
}

// TestTransferEncodingOWS: optional whitespace around "chunked" is RFC 9110's
// list syntax and has one meaning: the request is accepted, exactly one request
// with the right body reaches the origin, and the connection stays in step.
// (The ambiguous forms stay refused: TestSmuggling.)
func TestTransferEncodingOWS(t *testing.T) {
	t.Parallel()
	g, o := proxied(t, nil, nil)
	sum := sha256.Sum256([]byte("hello"))
	helloSHA := hex.EncodeToString(sum[:])
	for _, te := range []string{"chunked\t", "\tchunked", "  chunked  ", "\t chunked \t", "Chunked "} {
		t.Run(strconv.Quote(te), func(t *testing.T) {
			id := uniqueID("te-ows")
			c := dialRaw(t, g.ProxyAddr)
			_ = c.write(postWith([]string{"Transfer-Encoding:" + te}, "5\r\nhello\r\n0\r\n\r\n")(id))
			resp, body, err := c.readResponse("POST")
			if resp == nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200 (accepted): %s", resp.StatusCode, tail(string(body), 200))
			}
			if s := decodeSink(t, body); s.Bytes != 5 || s.SHA256 != helloSHA {
				t.Errorf("the origin got %d bytes sha %s, want the 5 bytes of hello", s.Bytes, s.SHA256)
			}
			if s := seen(t, o, id); s.Requests != 1 || s.Complete != 1 {
				t.Errorf("the origin saw %+v, want exactly one complete request", s)
			}
			resp, body = c.roundTrip(request("GET", "/headers?after=1"))
			if v := decodeView(t, body); resp.StatusCode != 200 || v.URI != "/headers?after=1" {
				t.Errorf("next request on the connection: %d for %q; the framing is out of step", resp.StatusCode, v.URI)
			}
		})
	}
}
