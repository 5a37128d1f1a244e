package pushconn

import "github.com/rs/zerolog"

// logClose writes the process-log line of a connection the gateway closed.
func (pc *Conn) logClose(lvl zerolog.Level, reason string) {
	pc.lp.hub.Log.WithLevel(lvl).Str("client_id", pc.id).Str("remote", pc.c.RemoteAddr().String()).
		Msg("push connection closed: " + reason)
}

// logLifetime writes the access-log line that ends a push connection's life:
// who ended it (closed_by), why (reason: the gateway's own reason when it ended
// it, else what the socket said) and the websocket close code, if one passed.
func (pc *Conn) logLifetime(err error) {
	l := pc.lp.l
	if e := l.Log.Logger.Log(); e != nil {
		kind := "websocket"
		if pc.kind == SSE {
			kind = "sse"
		}
		e.Str("push", "closed").Str("kind", kind).Str("client_id", pc.id).Str("client", pc.c.RemoteAddr().String()).
			Str("closed_by", whyNames[pc.why]).
			Int64("duration_ms", (l.Now()-pc.opened)/1e6).Uint32("messages_in", pc.msgsIn).Uint32("messages_out", pc.msgsOut)
		if pc.closeCode != 0 {
			e.Uint16("close_code", pc.closeCode)
		}
		if reason := pc.endReason(); reason != "" {
			e.Str("reason", reason)
		} else if err != nil {
			e.Str("reason", err.Error())
		}
		e.Send()
	}
}

// endReason is why the gateway ended the connection, "" when it did not.
func (pc *Conn) endReason() string {
	switch pc.why {
	case whyProtocol:
		if ce := pc.dec.Err(); ce != nil {
			return ce.Reason
		}
		return "websocket protocol error"
	case whySlow:
		return "slow consumer: outbound buffer over push.max_outbound_bytes"
	case whyPingTimeout:
		return "two pings without an answer"
	case whyLifetime:
		return "max connection lifetime, reconnect"
	case whyDrain:
		return "server restarting, reconnect"
	}
	return ""
}
