package push

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// controlSeeds are FuzzParseControl's seeds: control messages good and bad,
// and ordinary messages.
var controlSeeds = []string{
	`{"subscribe":"news"}`, ` { "unsubscribe" : "scores:42" } `, `{"subscribe":"bad name"}`,
	`{"subscribe":7}`, `{"subscribe":"a"`, `{"subscribe":"a"} x`, `{"subscribe":"a\"b"}`,
	`{"hello":"world"}`, `plain text`, ``, `{`, `{"unsubscribe":""}`,
}

// FuzzParseControl: any input gives a known outcome without panicking; a
// control message that parses names a valid topic, and what
// AppendControlReply makes of it parses back as JSON-ish text with the topic.
func FuzzParseControl(f *testing.F) {
	for _, s := range controlSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		op, topic, err := ParseControl(msg)
		switch {
		case op == NotControl:
			if topic != "" || err != nil {
				t.Fatalf("not a control message but topic %q err %v", topic, err)
			}
		case err != nil:
			if topic != "" || (!errors.Is(err, ErrControl) && !errors.Is(err, ErrTopicName)) {
				t.Fatalf("refused with topic %q err %v", topic, err)
			}
		default:
			if !ValidTopic(topic) || !strings.Contains(string(msg), `"`+topic+`"`) {
				t.Fatalf("accepted topic %q from %q", topic, msg)
			}
			// The canonical form parses to the same.
			canon := `{"subscribe":"` + topic + `"}`
			if op == Unsubscribe {
				canon = `{"unsubscribe":"` + topic + `"}`
			}
			if op2, t2, err2 := ParseControl([]byte(canon)); op2 != op || t2 != topic || err2 != nil {
				t.Fatalf("canonical %s: %v %q %v", canon, op2, t2, err2)
			}
		}
		reply := string(AppendControlReply(nil, op, topic, err))
		if strings.Count(reply, `"`) != 4 {
			t.Fatalf("reply %s: want two quoted strings", reply)
		}
	})
}

type claimSeed struct {
	token, id, topics string
	pos               uint16
}

func claimSeeds() []claimSeed {
	good, _ := SignClaims(secret, Claims{ClientID: "user:42", Topics: []string{"news", "scores:42"}}, t0.Add(time.Hour))
	return []claimSeed{
		{good, "user:42", "news,scores:42", 5},
		{good[:len(good)-2] + "AA", "d", "a", 0},
		{"x.y", "a", "", 100},
		{good, "id", "a,,b", 9},
	}
}

// FuzzTokenClaims: tokens with topics round trip (the topics in order), any
// changed character fails, and topics that are not valid are refused by
// SignClaims.
func FuzzTokenClaims(f *testing.F) {
	for _, s := range claimSeeds() {
		f.Add(s.token, s.id, s.topics, s.pos)
	}
	f.Fuzz(func(t *testing.T, token, id, topics string, pos uint16) {
		if c, err := VerifyClaims(secret, token, t0); err == nil {
			for _, tp := range c.Topics {
				if !ValidTopic(tp) {
					t.Fatalf("token %q accepted with topic %q", token, tp)
				}
			}
		}
		var list []string
		if topics != "" {
			list = strings.Split(topics, ",")
		}
		exp := t0.Add(time.Hour)
		tok, err := SignClaims(secret, Claims{ClientID: id, Topics: list}, exp)
		if err != nil {
			return // bad id, bad topic, too many or too long: refused, never signed
		}
		c, err := VerifyClaims(secret, tok, t0)
		if err != nil || c.ClientID != id || strings.Join(c.Topics, ",") != topics {
			t.Fatalf("round trip of %q %q: %+v %v", id, topics, c, err)
		}
		if i := int(pos) % len(tok); tok[i] != '.' {
			if _, err := VerifyClaims(secret, flip(tok, i), t0); err == nil {
				t.Fatalf("tampered byte %d accepted", i)
			}
		}
	})
}
