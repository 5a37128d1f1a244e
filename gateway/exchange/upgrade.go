package exchange

import (
	"bytes"
	"strings"

	"gozer/gateway/httpcodec"
)

// The origin's 101 goes through the outbound filters like any response (as
// Zuul runs its outbound chain on every response): they see status 101 and
// its headers and may add, change or remove headers (a cookie, a trace
// header). What makes the upgrade is not theirs to change: the client's
// websocket stands on the status and the fields the origin negotiated with
// it (Upgrade, Connection, Sec-WebSocket-Accept, -Protocol, -Extensions; a
// dropped permessage-deflate would leave the client with frames it cannot
// read), and the origin has switched protocols already, so there is no
// other answer left to give it. A filter's edits of those are ignored (the
// origin's are sent), with one sampled log line; a filter that fails
// (Context.Fail, a Lua error in a fatal filter) fails the upgrade as it
// fails any response: the origin connection is closed and the client gets
// the filter's status.

// upgradeFields are the fields of a 101 that make the upgrade.
var upgradeFields = [...]string{"Upgrade", "Connection", "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"}

// upgradeEditReason is the sampled log's reason for ignored edits.
const upgradeEditReason = "websocket_upgrade_edit"

// upgradeOutbound runs the outbound filters on the origin's 101 (head: a
// copy of it at the start of the loop's scratch buffer) and returns the head
// for the client, further on in the same buffer (valid for the callback):
// the origin's status line and upgrade fields, then the other fields as the
// filters left them. false when the exchange was answered instead (a fatal
// filter: 500 or its status; a head the Go filters cannot parse: 502).
func (ex *Exchange) upgradeOutbound(head []byte) ([]byte, bool) {
	if !ex.headForFilters() || !ex.outbound() {
		return nil, false
	}
	r := &ex.resp
	head = head[r.Skipped:]                      // empty lines before the status line
	eol := bytes.Index(head, []byte("\r\n")) + 2 // ParseLazy refused a head without CRLFs
	fields := head[eol : len(head)-2]
	out := append(head, head[:eol]...) // the origin's status line: 101, whatever a filter set
	r.Headers(func(name, value []byte) {
		if !isUpgradeField(name) && !isFramingField(name) {
			out = httpcodec.AppendField(out, nil, name, value)
		}
	})
	for len(fields) > 0 { // the origin's upgrade fields, as it sent them
		i := bytes.Index(fields, []byte("\r\n")) + 2
		if name, _, _ := bytes.Cut(fields[:i], []byte(":")); isUpgradeField(bytes.TrimSpace(name)) {
			out = append(out, fields[:i]...)
		}
		fields = fields[i:]
	}
	out = append(out, "\r\n"...)
	ex.lp.l.Buf = out[:0]
	if edited := upgradeEdits(r, head[eol:len(head)-2]); edited != "" {
		if e := ex.lp.l.Shared.Sampled.Warn(upgradeEditReason); e != nil {
			e.Str("reason", upgradeEditReason).Str("request_id", string(ex.id)).Str("fields", edited).
				Msg("outbound filters changed what makes a websocket upgrade; the origin's 101 status and fields were sent")
		}
	}
	return out[len(head):], true
}

// upgradeEdits names what the filters changed of the upgrade ("" nothing):
// the status, and the first value of each upgrade field against the
// origin's (fields: the origin's header lines).
func upgradeEdits(r *httpcodec.Response, fields []byte) string {
	var changed []string
	if r.Status != 101 {
		changed = append(changed, "status")
	}
	for _, f := range upgradeFields {
		if !bytes.Equal(r.Get(f), originField(fields, f)) {
			changed = append(changed, f)
		}
	}
	return strings.Join(changed, ",")
}

// originField is the first value of the field name among the header lines
// fields (each ending in CRLF), nil when absent.
func originField(fields []byte, name string) []byte {
	for len(fields) > 0 {
		i := bytes.Index(fields, []byte("\r\n"))
		n, v, _ := bytes.Cut(fields[:i], []byte(":"))
		if bytes.EqualFold(bytes.TrimSpace(n), []byte(name)) {
			return bytes.TrimSpace(v)
		}
		fields = fields[i+2:]
	}
	return nil
}

func isUpgradeField(name []byte) bool {
	for _, f := range upgradeFields {
		if bytes.EqualFold(name, []byte(f)) {
			return true
		}
	}
	return false
}

// isFramingField: a 101 has no body, whatever a filter sets.
func isFramingField(name []byte) bool {
	return bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("Transfer-Encoding"))
}
