package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"gozer/gateway/internal/redistest"
)

func TestValidTopic(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"news", true}, {"scores:42", true}, {"a", true}, {"user@x+y=z~1._-", true},
		{strings.Repeat("t", MaxTopicLen), true}, {strings.Repeat("t", MaxTopicLen+1), false},
		{"", false}, {"a b", false}, {"a/b", false}, {"a,b", false}, {`a"b`, false}, {"café", false}, {"{x}", false},
	}
	for _, c := range cases {
		if got := ValidTopic(c.name); got != c.ok {
			t.Errorf("ValidTopic(%q) = %v, want %v", c.name, got, c.ok)
		}
	}
}

func TestParseControl(t *testing.T) {
	cases := []struct {
		msg   string
		op    ControlOp
		topic string
		err   error
	}{
		{`{"subscribe":"news"}`, Subscribe, "news", nil},
		{" \r\n{ \"unsubscribe\"\t:  \"scores:42\" }\n", Unsubscribe, "scores:42", nil},
		{`{"subscribe":"bad name"}`, Subscribe, "", ErrTopicName},
		{`{"subscribe":""}`, Subscribe, "", ErrTopicName},
		{`{"subscribe":"a\u0020b"}`, Subscribe, "", ErrTopicName},
		{`{"subscribe":7}`, Subscribe, "", ErrControl},
		{`{"subscribe":"a"`, Subscribe, "", ErrControl},
		{`{"subscribe":"a"} trailing`, Subscribe, "", ErrControl},
		{`{"subscribe":"a","x":1}`, Subscribe, "", ErrControl},
		{`{"subscribe" "a"}`, Subscribe, "", ErrControl},
		{`{"subscribed":"a"}`, NotControl, "", nil}, // another key: an ordinary message
		{`{"hello":"world"}`, NotControl, "", nil},
		{`hello`, NotControl, "", nil},
		{``, NotControl, "", nil},
		{`["subscribe","a"]`, NotControl, "", nil},
	}
	for _, c := range cases {
		op, topic, err := ParseControl([]byte(c.msg))
		if op != c.op || topic != c.topic || !errors.Is(err, c.err) || (c.err == nil && err != nil) {
			t.Errorf("ParseControl(%q) = %v %q %v, want %v %q %v", c.msg, op, topic, err, c.op, c.topic, c.err)
		}
	}
	if got := string(AppendControlReply(nil, Unsubscribe, "a", nil)); got != `{"unsubscribed":"a"}` {
		t.Errorf("reply %s", got)
	}
	if got := string(AppendControlReply(nil, Subscribe, "", ErrControl)); strings.Count(got, `"`) != 4 {
		t.Errorf("error reply %s: the error's quotes must not break the JSON", got)
	}
}

// TestTopicsIndex: subscriptions count connections per (topic, id); a topic
// appears and disappears with its subscribers (onChange told each time); the
// node's limit refuses a new topic, not a new subscriber of a known one.
func TestTopicsIndex(t *testing.T) {
	var changes []string
	tp := NewTopics(2, func(topic string) { changes = append(changes, topic) })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tp.Subscribe("news", "a"))
	must(tp.Subscribe("news", "a")) // a second device of a
	must(tp.Subscribe("news", "b"))
	must(tp.Subscribe("sport", "a"))
	if err := tp.Subscribe("third", "a"); !errors.Is(err, ErrTooManyTopics) {
		t.Fatalf("third topic with max 2: %v", err)
	}
	must(tp.Subscribe("sport", "c")) // a known topic takes more subscribers
	ids := tp.IDs("news", nil)
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("IDs(news) = %v", ids)
	}
	if st := tp.Stats(); st != (TopicStats{Topics: 2, Subscriptions: 4, Refused: 1}) {
		t.Errorf("stats %+v", st)
	}
	tp.Unsubscribe("news", "a")
	tp.Unsubscribe("news", "b")
	if !tp.Has("news") {
		t.Fatal("news gone while a's second device is subscribed")
	}
	tp.Unsubscribe("news", "a")
	tp.Unsubscribe("news", "a") // not subscribed: no-op
	if tp.Has("news") || len(tp.IDs("news", nil)) != 0 {
		t.Fatal("news still there after its last subscriber left")
	}
	if names := tp.Names(nil); !slices.Equal(names, []string{"sport"}) {
		t.Errorf("Names = %v", names)
	}
	if want := []string{"news", "sport", "news"}; !slices.Equal(changes, want) {
		t.Errorf("onChange calls %v, want %v", changes, want)
	}
	must(tp.Subscribe("third", "a")) // room again
}

// TestTopicsConcurrent: loops subscribing and unsubscribing while the API
// reads; everything gone at the end (run with -race).
func TestTopicsConcurrent(t *testing.T) {
	tp := NewTopics(0, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				topic, id := fmt.Sprintf("t%d", i%17), fmt.Sprintf("id%d", g)
				if err := tp.Subscribe(topic, id); err != nil {
					t.Error(err)
					return
				}
				_ = tp.IDs(topic, nil)
				tp.Unsubscribe(topic, id)
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			_ = tp.Names(nil)
		}
	})
	wg.Wait()
	if st := tp.Stats(); st.Topics != 0 || st.Subscriptions != 0 {
		t.Errorf("after all unsubscribed: %+v", st)
	}
}

func TestTokenClaims(t *testing.T) {
	exp := t0.Add(time.Hour)
	v1, _ := Sign(secret, "dev", exp)
	v1b, _ := SignClaims(secret, Claims{ClientID: "dev"}, exp)
	if v1 != v1b || !strings.HasPrefix(v1, "AQ") { // version byte 1
		t.Fatalf("a token without topics must stay version 1: %q %q", v1, v1b)
	}
	cases := []struct {
		name   string
		topics []string
		err    error
	}{
		{"one", []string{"news"}, nil},
		{"several", []string{"news", "scores:42", "news"}, nil},
		{"bad name", []string{"ok", "not ok"}, ErrTokenTopics},
		{"empty name", []string{""}, ErrTokenTopics},
		{"too many", slices.Repeat([]string{"t"}, MaxTokenTopics+1), ErrTokenTopics},
		{"too long", slices.Repeat([]string{strings.Repeat("x", 100)}, 40), ErrTokenTopics},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := SignClaims(secret, Claims{ClientID: "dev", Topics: c.topics}, exp)
			if !errors.Is(err, c.err) {
				t.Fatalf("SignClaims: %v, want %v", err, c.err)
			}
			if err != nil {
				return
			}
			got, err := VerifyClaims(secret, tok, t0)
			if err != nil || got.ClientID != "dev" || !slices.Equal(got.Topics, c.topics) {
				t.Fatalf("VerifyClaims = %+v %v", got, err)
			}
			if id, err := Verify(secret, tok, t0); err != nil || id != "dev" {
				t.Fatalf("Verify of a token with topics = %q %v", id, err)
			}
			if _, err := VerifyClaims(secret, tok, exp); !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("at expiry: %v", err)
			}
		})
	}
}

// TestRedisTopics: the topic registry on a real Redis: nodes register and
// refresh topics, lookups list the live ones sorted, unregistering takes one
// node out, and the keys carry the topic as their hash tag.
func TestRedisTopics(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a := newRedisNode(t, srv.Addr, "10.0.0.2:9000", time.Minute)
	b := newRedisNode(t, srv.Addr, "10.0.0.1:9000", time.Minute)
	ctx := testCtx(t)
	many := make([]string, 1500) // two pipelined batches
	for i := range many {
		many[i] = fmt.Sprintf("bulk-%d", i)
	}
	if err := a.RefreshTopics(ctx, append([]string{"news"}, many...)); err != nil {
		t.Fatal(err)
	}
	if err := b.RefreshTopics(ctx, []string{"news"}); err != nil {
		t.Fatal(err)
	}
	got, err := a.TopicNodes(ctx, "news", nil)
	if err != nil || !slices.Equal(got, []string{"10.0.0.1:9000", "10.0.0.2:9000"}) {
		t.Fatalf("TopicNodes(news) = %v %v", got, err)
	}
	if got, _ := b.TopicNodes(ctx, "bulk-1499", nil); !slices.Equal(got, []string{"10.0.0.2:9000"}) {
		t.Fatalf("TopicNodes(bulk-1499) = %v", got)
	}
	if got, _ := b.TopicNodes(ctx, "nobody", nil); len(got) != 0 {
		t.Fatalf("TopicNodes(nobody) = %v", got)
	}
	// Topics and ids never share a key: an id named like a topic is not it.
	if got, _ := a.Lookup(ctx, "news", nil); len(got) != 0 {
		t.Fatalf("Lookup(id news) = %v", got)
	}
	if err := a.UnregisterTopics(ctx, []string{"news"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.TopicNodes(ctx, "news", nil); !slices.Equal(got, []string{"10.0.0.1:9000"}) {
		t.Fatalf("after A left: %v", got)
	}
	if k := redisTopicKey("scores:42"); k != "gozer:push:topic:{scores:42}" {
		t.Errorf("key %q: the topic must be the hash tag", k)
	}
	if n, err := rawRedis(t, srv.Addr).Exists(context.Background(), "gozer:push:topic:{news}").Result(); err != nil || n != 1 {
		t.Errorf("EXISTS gozer:push:topic:{news} = %d %v", n, err)
	}
}

// TestRegistrarTopics: the registrar puts this node's topics into the
// cluster's topic registry as they appear, takes them out as they empty, and
// leaves them all when it stops.
func TestRegistrarTopics(t *testing.T) {
	t.Parallel()
	mc := NewMemoryCluster(time.Minute, nil)
	node, other := mc.Node("self:1"), mc.Node("other:1")
	r := NewRegistrar(node, NewRegistry(0), time.Minute, zerolog.Nop())
	tp := NewTopics(0, r.TopicChanged)
	r.TrackTopics(tp)
	stop := runRegistrar(t, r)
	treg := other.(TopicRegistry)
	topicNodes := func(topic string) []string {
		got, err := treg.TopicNodes(context.Background(), topic, nil)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	_ = tp.Subscribe("news", "a")
	_ = tp.Subscribe("sport", "a")
	eventually(t, 2*time.Second, "news registered", func() bool { return slices.Equal(topicNodes("news"), []string{"self:1"}) })
	tp.Unsubscribe("news", "a")
	eventually(t, 2*time.Second, "news unregistered", func() bool { return len(topicNodes("news")) == 0 })
	if got := topicNodes("sport"); !slices.Equal(got, []string{"self:1"}) {
		t.Errorf("sport: %v", got)
	}
	stop()
	if got := topicNodes("sport"); len(got) != 0 {
		t.Errorf("sport after the registrar stopped: %v", got)
	}
}

// TestTopicsLinger: a leaving connection's subscription stays for the linger
// time (the history's max_age), then goes; without one it goes at once; a
// device that came back in between keeps the topic after the sweep.
func TestTopicsLinger(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name   string
		linger time.Duration
		back   bool // the id subscribes again before the sweep
		ids    []int
	}{ // ids: the topic's subscribed ids just after leaving, after 30 s, after 61 s
		{"no linger", 0, false, []int{0, 0, 0}},
		{"lingers then goes", time.Minute, false, []int{1, 1, 0}},
		{"came back", time.Minute, true, []int{1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := NewTopics(0, nil)
			tp.SetLinger(tc.linger)
			if err := tp.Subscribe("news", "dev"); err != nil {
				t.Fatal(err)
			}
			tp.Linger("news", "dev", t0)
			if tc.back {
				_ = tp.Subscribe("news", "dev")
			}
			got := []int{len(tp.IDs("news", nil))}
			tp.Sweep(t0.Add(30 * time.Second))
			got = append(got, len(tp.IDs("news", nil)))
			tp.Sweep(t0.Add(61 * time.Second))
			got = append(got, len(tp.IDs("news", nil)))
			if !slices.Equal(got, tc.ids) {
				t.Errorf("subscribed ids %v, want %v", got, tc.ids)
			}
			if n := tp.Lingering(); n != 0 {
				t.Errorf("%d lingering after the sweep, want 0", n)
			}
		})
	}
}

// TestTopicsMaxPerID: a client id holds at most its share of distinct
// topics, the ones it left lingering included; a second connection's
// subscription to a topic the id holds costs nothing; other ids are not
// affected; a topic refused by the node's bound does not use the share.
func TestTopicsMaxPerID(t *testing.T) {
	tp := NewTopics(4, nil)
	tp.SetMaxPerID(3)
	tp.SetLinger(time.Hour)
	sub := func(topic, id string, want error) {
		t.Helper()
		if err := tp.Subscribe(topic, id); !errors.Is(err, want) || want == nil && err != nil {
			t.Fatalf("Subscribe(%s, %s) = %v, want %v", topic, id, err, want)
		}
	}
	for _, topic := range []string{"t1", "t2", "t3"} {
		sub(topic, "a", nil)
	}
	sub("t4", "a", ErrClientTopics)
	sub("t1", "a", nil) // a second connection of a: the same pair
	sub("t4", "b", nil)
	now := time.Now()
	for _, topic := range []string{"t1", "t1", "t2", "t3"} { // a leaves: its topics linger
		tp.Linger(topic, "a", now)
	}
	sub("t5", "a", ErrClientTopics) // lingering ones count
	tp.Sweep(now.Add(2 * time.Hour))
	sub("t5", "a", nil)
	sub("t6", "c", nil)
	sub("t7", "c", nil)              // the node holds t4 to t7: its bound
	sub("t8", "c", ErrTooManyTopics) // refused by the node: c's share not used
	if st := tp.Stats(); st.RefusedIDs != 2 || st.Refused != 1 || st.Topics != 4 {
		t.Fatalf("stats %+v, want 4 topics, 2 refused by the id's share, 1 by the node's", st)
	}
	tp.Unsubscribe("t4", "b")
	sub("t8", "c", nil) // c's third
}
