package httpcodec

import (
	"fmt"
	"strings"
	"testing"
)

// worstTrailerHead is the client head a Trailer header's bound is about: a
// chunked request of about 28 KiB (under the 32 KiB max_header_bytes) with
// 100 Trailer lines, each listing 32
// names (distinct, line by line), and 3,500 one-letter field lines, each of
// which every announced name and every trailer field would otherwise be
// compared to.
func worstTrailerHead() []byte {
	var b strings.Builder
	b.WriteString("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n")
	for i := range 100 {
		b.WriteString("Trailer: ")
		for j := range 32 {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%x", i*32+j)
		}
		b.WriteString("\r\n")
	}
	for range 3500 {
		b.WriteString("b:\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// TestForwardTrailerNamesBound: the names the forwarded Trailer header
// announces are bounded per head, not per Trailer line: one Trailer line,
// at most maxTrailerNames names, each once, whatever the client's head
// lists (many lines, many names, duplicates).
func TestForwardTrailerNamesBound(t *testing.T) {
	heads := map[string][]byte{
		"many lines": worstTrailerHead(),
		"duplicates": []byte(req("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked",
			"Trailer: "+strings.Repeat("a, A, ", 40)+"x-b", "Trailer: a, x-b, x-c")),
	}
	for name, head := range heads {
		t.Run(name, func(t *testing.T) {
			var r Request
			if err := r.Parse(head); err != nil {
				t.Fatal(err)
			}
			out := string(AppendForwardRequest(nil, &r, &ForwardInfo{}))
			var lines []string
			for _, l := range strings.Split(out, "\r\n") {
				if strings.HasPrefix(l, "Trailer: ") {
					lines = append(lines, strings.TrimPrefix(l, "Trailer: "))
				}
			}
			if len(lines) != 1 {
				t.Fatalf("%d Trailer lines forwarded, want 1 (head of %d bytes, forwarded %d)", len(lines), len(head), len(out))
			}
			names := strings.Split(lines[0], ", ")
			seen := map[string]bool{}
			for _, n := range names {
				if seen[strings.ToLower(n)] {
					t.Errorf("%q announced twice: %q", n, lines[0])
				}
				seen[strings.ToLower(n)] = true
			}
			if len(names) > maxTrailerNames {
				t.Errorf("%d names announced, want at most %d", len(names), maxTrailerNames)
			}
		})
	}
	var r Request
	_ = r.Parse(heads["duplicates"])
	if got := string(AppendForwardRequest(nil, &r, &ForwardInfo{})); !strings.Contains(got, "\r\nTrailer: a, x-b, x-c\r\n") {
		t.Errorf("duplicates: forwarded %q, want Trailer: a, x-b, x-c", got)
	}
}

// worstTrailerSection is an 8 KiB trailer section of "a:" lines, each
// compared to the head's lines.
func worstTrailerSection() []byte {
	return []byte(strings.Repeat("a:\r\n", 2<<10))
}

// TestTrailerFieldsWorkBound: the work a request's trailer section costs
// against its heads is bounded (trailerWork): against the worst-case head,
// an 8 KiB section of "a:" lines (not in the head: they pass while looked
// through it) stops being looked through the head after the bound, and
// what is left is dropped, the safe side (x-late, at its
// end, is not in the head, and without the bound it would pass after 2,048
// looks through 3,500 lines each); a field before the bound is spent still
// passes (x-early), and so does every field of an ordinary request
// (TestRequestTrailerFields).
func TestTrailerFieldsWorkBound(t *testing.T) {
	var r Request
	if err := r.Parse(worstTrailerHead()); err != nil {
		t.Fatal(err)
	}
	fwd := AppendForwardRequest(nil, &r, &ForwardInfo{})
	section := append([]byte("x-early: 1\r\n"), worstTrailerSection()...)
	section = append(section, "x-late: 1\r\n"...)
	got := string(r.AppendTrailerFields(nil, section, fwd, nil))
	if !strings.HasPrefix(got, "x-early: 1\r\n") || strings.Contains(got, "x-late") {
		t.Fatalf("passed %q, want x-early and not x-late: the bound must stop the looks, and drop what is left", got)
	}
}

// BenchmarkTrailerWorstCase: the loop CPU one worst-case request costs: its
// forwarded head (the Trailer header's names checked against the head) and
// its trailer section (each field checked against both heads).
func BenchmarkTrailerWorstCase(b *testing.B) {
	head, section := worstTrailerHead(), worstTrailerSection()
	var r Request
	var fwd, out []byte
	for b.Loop() {
		if err := r.Parse(head); err != nil {
			b.Fatal(err)
		}
		fwd = AppendForwardRequest(fwd[:0], &r, &ForwardInfo{})
		out = r.AppendTrailerFields(out[:0], section, fwd, nil)
	}
}

// TestTrailerFieldsUnderscores: with NoUnderscoreTrailers a request's
// trailer fields named with an "_" are dropped (X_User would be X-User to a
// CGI origin that merges trailers), the others pass; without it they pass.
func TestTrailerFieldsUnderscores(t *testing.T) {
	for _, drop := range []bool{true, false} {
		var r Request
		if err := r.Parse([]byte(req("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"))); err != nil {
			t.Fatal(err)
		}
		r.NoUnderscoreTrailers = drop
		fwd := AppendForwardRequest(nil, &r, &ForwardInfo{})
		got := string(r.AppendTrailerFields(nil, []byte("X_User: root\r\nx-sum: 1\r\n"), fwd, nil))
		want := "X_User: root\r\nx-sum: 1\r\n"
		if drop {
			want = "x-sum: 1\r\n"
		}
		if got != want {
			t.Errorf("NoUnderscoreTrailers %v: passed %q, want %q", drop, got, want)
		}
	}
}

// TestTrailerFieldsDeleted: a name a filter deleted (DeleteHeader), present
// in the head or not, is kept out of the trailer section; Parse forgets it.
func TestTrailerFieldsDeleted(t *testing.T) {
	var r Request
	if err := r.Parse([]byte(req("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", "X-Internal-A: 1"))); err != nil {
		t.Fatal(err)
	}
	r.DeleteHeader("X-Internal-A")
	r.DeleteHeader("x-user") // not in the head
	fwd := AppendForwardRequest(nil, &r, &ForwardInfo{})
	if got := string(r.AppendTrailerFields(nil, []byte("X-User: root\r\nx-internal-a: 2\r\nx-sum: 1\r\n"), fwd, nil)); got != "x-sum: 1\r\n" {
		t.Fatalf("passed %q, want only x-sum", got)
	}
	if err := r.Parse([]byte(req("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"))); err != nil {
		t.Fatal(err)
	}
	fwd = AppendForwardRequest(nil, &r, &ForwardInfo{})
	if got := string(r.AppendTrailerFields(nil, []byte("X-User: root\r\n"), fwd, nil)); got != "X-User: root\r\n" {
		t.Fatalf("the next request: passed %q, want X-User (Parse forgets the deleted names)", got)
	}
}
