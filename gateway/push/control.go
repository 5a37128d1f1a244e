package push

import (
	"bytes"
	"errors"
)

// Control messages: with push.topics.client_subscribe on, a websocket device
// subscribes and unsubscribes at run time with a text message of exactly this
// form (JSON, whitespace allowed between the tokens):
//
//	{"subscribe":"news"}
//	{"unsubscribe":"scores:42"}
//
// A text message that starts with `{"subscribe"` or `{"unsubscribe"` (after
// optional whitespace) is a control message and never goes upstream; every
// other message goes upstream as before. The gateway answers each control
// message with a text message: {"subscribed":"news"}, {"unsubscribed":"news"}
// or {"error":"..."}.

// ControlOp is what a control message asks.
type ControlOp uint8

// The control operations.
const (
	NotControl ControlOp = iota // an ordinary message: it goes upstream
	Subscribe
	Unsubscribe
)

// ErrControl is a control message that is not of the documented form.
var ErrControl = errors.New(`malformed control message: want {"subscribe":"name"} or {"unsubscribe":"name"}`)

// ParseControl tells whether msg is a control message and, if so, its
// operation and topic. A message that starts like one but is malformed gives
// the operation and ErrControl, and one with a bad topic name ErrTopicName;
// the topic is then "". The topic is a copy (it may be kept); msg is not
// retained. Any goroutine; it does not allocate but for the topic.
func ParseControl(msg []byte) (op ControlOp, topic string, err error) {
	rest := skipSpace(msg)
	if len(rest) == 0 || rest[0] != '{' {
		return NotControl, "", nil
	}
	rest = skipSpace(rest[1:])
	switch {
	case bytes.HasPrefix(rest, []byte(`"subscribe"`)):
		op, rest = Subscribe, rest[len(`"subscribe"`):]
	case bytes.HasPrefix(rest, []byte(`"unsubscribe"`)):
		op, rest = Unsubscribe, rest[len(`"unsubscribe"`):]
	default:
		return NotControl, "", nil
	}
	rest = skipSpace(rest)
	if len(rest) == 0 || rest[0] != ':' {
		return op, "", ErrControl
	}
	rest = skipSpace(rest[1:])
	if len(rest) == 0 || rest[0] != '"' {
		return op, "", ErrControl
	}
	rest = rest[1:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return op, "", ErrControl
	}
	name := rest[:end]
	rest = skipSpace(rest[end+1:])
	if len(rest) == 0 || rest[0] != '}' || len(skipSpace(rest[1:])) != 0 {
		return op, "", ErrControl
	}
	// A name with an escape, or any byte outside the alphabet, is refused
	// here: a valid name never needs an escape in JSON.
	if !ValidTopic(b2s(name)) {
		return op, "", ErrTopicName
	}
	return op, string(name), nil
}

// skipSpace drops JSON whitespace from the front of b.
func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// AppendControlReply appends the answer to a control message: on success
// {"subscribed":"t"} or {"unsubscribed":"t"}, else {"error":"<err>"}. A
// topic is valid, so it needs no escaping; error texts are the package's own
// (no quote or backslash in them).
func AppendControlReply(dst []byte, op ControlOp, topic string, err error) []byte {
	if err != nil {
		dst = append(dst, `{"error":"`...)
		for _, c := range []byte(err.Error()) {
			if c == '"' || c == '\\' || c < 0x20 {
				c = '\''
			}
			dst = append(dst, c)
		}
		return append(dst, `"}`...)
	}
	key := `{"subscribed":"`
	if op == Unsubscribe {
		key = `{"unsubscribed":"`
	}
	dst = append(dst, key...)
	dst = append(dst, topic...)
	return append(dst, `"}`...)
}
