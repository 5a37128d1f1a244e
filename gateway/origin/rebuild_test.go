package origin

import (
	"slices"
	"testing"
	"time"

	"gozer/gateway/config"
)

func originCfg(servers ...string) *config.Origin {
	o := &config.Origin{Servers: servers, MaxConnectionsPerServer: 8, MaxIdlePerServer: 4, IdleTimeout: time.Minute}
	n := 1
	o.Retries = &n
	return o
}

func TestRebuild(t *testing.T) {
	prev, err := Build(map[string]*config.Origin{
		"api":    originCfg("127.0.0.1:1", "127.0.0.1:2"),
		"static": originCfg("127.0.0.1:3"),
		"old":    originCfg("127.0.0.1:4"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prev.Close()
	api, _ := prev.Get("api")
	static, _ := prev.Get("static")
	kept := api.Iso.Discovery.Servers().List[0] // 127.0.0.1:1 stays below

	changed := originCfg("127.0.0.1:1", "127.0.0.1:5")
	next, ch, err := Rebuild(prev, map[string]*config.Origin{
		"api":    changed,
		"static": originCfg("127.0.0.1:3"), // equal, not the same pointer
		"new":    originCfg("127.0.0.1:6"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()

	want := Changes{Added: []string{"new"}, Changed: []string{"api"}, Removed: []string{"old"}, Kept: []string{"static"}}
	if !slices.Equal(ch.Added, want.Added) || !slices.Equal(ch.Changed, want.Changed) ||
		!slices.Equal(ch.Removed, want.Removed) || !slices.Equal(ch.Kept, want.Kept) {
		t.Fatalf("changes = %+v, want %+v", ch, want)
	}
	nstatic, _ := next.Get("static")
	napi, _ := next.Get("api")
	nnew, _ := next.Get("new")
	tests := []struct {
		name string
		ok   bool
	}{
		{"an unchanged origin is the same *Origin", nstatic == static},
		{"a changed origin is rebuilt", napi != api && napi.Config == changed},
		{"a changed origin keeps its slot", napi.Index == api.Index},
		{"a new origin takes a slot never used", nnew.Index == prev.Slots() && next.Slots() == prev.Slots()+1},
		{"a server that stays keeps its *Server", slices.Contains(napi.Iso.Discovery.Servers().List, kept)},
		{"the breaker is inherited when its settings stay", napi.Iso.Breaker == api.Iso.Breaker},
		{"the bulkhead is inherited when its settings stay", napi.Iso.Bulkhead == api.Iso.Bulkhead},
		{"the server set has the new server", len(napi.Iso.Discovery.Servers().List) == 2},
	}
	for _, tc := range tests {
		if !tc.ok {
			t.Errorf("%s: not so", tc.name)
		}
	}
}

func TestRebuildRefusesAndClosesWhatItBuilt(t *testing.T) {
	prev, err := Build(map[string]*config.Origin{"api": originCfg("127.0.0.1:1")})
	if err != nil {
		t.Fatal(err)
	}
	defer prev.Close()
	bad := originCfg("127.0.0.1:1")
	bad.Balancer = "fastest"
	if _, _, err := Rebuild(prev, map[string]*config.Origin{"a": originCfg("127.0.0.1:2"), "api": bad}); err == nil {
		t.Fatal("a bad balancer was accepted")
	}
	if api, _ := prev.Get("api"); api.Config.Balancer != "" {
		t.Fatal("the table in service changed")
	}
}

func TestAdopt(t *testing.T) {
	prev, err := Build(map[string]*config.Origin{
		"api":  originCfg("127.0.0.1:1", "127.0.0.1:2"),
		"gone": originCfg("127.0.0.1:3"),
		"tls":  originCfg("127.0.0.1:4"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prev.Close()
	ls := NewLoopState[int](prev)
	park := func(tab *Table, name string, conn int) *Pool[int] {
		o, _ := tab.Get(name)
		p, _ := ls.PoolOf(o, o.Iso.Discovery.Servers().List[0])
		p.Reserve()
		p.Put(conn, 1)
		return p
	}
	apiPool := park(prev, "api", 1)
	api, _ := prev.Get("api")
	leaving, _ := ls.PoolOf(api, api.Iso.Discovery.Servers().List[1])
	leaving.Reserve()
	leaving.Put(2, 1)
	gonePool := park(prev, "gone", 3)
	tlsPool := park(prev, "tls", 4)

	apiCfg := originCfg("127.0.0.1:1") // :2 leaves, the caps change
	apiCfg.MaxIdlePerServer = 1
	tlsCfg := originCfg("127.0.0.1:4")
	tlsCfg.TLS = config.OriginTLS{Enabled: true, InsecureSkipVerify: true}
	next, _, err := Rebuild(prev, map[string]*config.Origin{"api": apiCfg, "tls": tlsCfg, "new": originCfg("127.0.0.1:5")})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	var closed []int
	ls.Adopt(prev, next, func(c int) { closed = append(closed, c) })
	slices.Sort(closed)
	if !slices.Equal(closed, []int{2, 3, 4}) {
		t.Fatalf("closed %v, want the departed server's, the removed origin's and the TLS-changed origin's", closed)
	}
	napi, _ := next.Get("api")
	if p, _ := ls.PoolOf(napi, napi.Iso.Discovery.Servers().List[0]); p != apiPool || p.Idle() != 1 || p.maxIdle != 1 {
		t.Fatal("the staying server's pool lost its connection or kept its old caps")
	}
	if gonePool.Put(9, 2) {
		t.Fatal("a removed origin's pool takes connections back")
	}
	ntls, _ := next.Get("tls")
	if p, _ := ls.PoolOf(ntls, ntls.Iso.Discovery.Servers().List[0]); p == tlsPool {
		t.Fatal("an origin whose TLS changed reuses connections made without it")
	}
	nnew, _ := next.Get("new")
	if p, _ := ls.PoolOf(nnew, nnew.Iso.Discovery.Servers().List[0]); p == nil {
		t.Fatal("no pool for an origin added by the reload")
	}
}
