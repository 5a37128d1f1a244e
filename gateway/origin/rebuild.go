package origin

import (
	"reflect"

	"gozer/gateway/config"
)

// Changes says what a Rebuild did to each origin, by name (sorted).
type Changes struct {
	Added   []string `json:"added"`
	Changed []string `json:"changed"`
	Removed []string `json:"removed"`
	Kept    []string `json:"kept"`
}

// NoChanges is a Changes with empty (not nil) lists.
func NoChanges() Changes {
	return Changes{Added: []string{}, Changed: []string{}, Removed: []string{}, Kept: []string{}}
}

// Empty reports whether no origin was added, changed or removed.
func (c Changes) Empty() bool {
	return len(c.Added)+len(c.Changed)+len(c.Removed) == 0
}

// Rebuild makes the table of a reloaded config from prev, the table in
// service, without touching prev:
//
//   - an origin whose config did not change is prev's *Origin itself: its
//     isolation (breaker, bulkhead, outlier state, health checks, DNS
//     refresh), its servers and the loops' pools of connections to them go on
//     as they were;
//   - a changed origin is built anew in the same slot (Index), inheriting the
//     servers that stay (their *Server, so the loops' pools keep their open
//     connections and the load and ejection counts stay true), and its breaker
//     and bulkhead when their settings did not change;
//   - a new origin takes a slot never used;
//   - a removed one is only named in Changes.
//
// Nothing of the new table runs yet: after swapping it in, the caller calls
// Activate. On error nothing was started and what was built is closed.
// One goroutine at a time (the reload's).
func Rebuild(prev *Table, cfg map[string]*config.Origin) (*Table, Changes, error) {
	t := &Table{byName: make(map[string]*Origin, len(cfg)), slots: prev.slots}
	ch := NoChanges()
	var built []*Origin
	fail := func(err error) (*Table, Changes, error) {
		for _, o := range built {
			if o.Iso != nil {
				o.Iso.Close()
			}
		}
		return nil, Changes{}, err
	}
	for _, name := range sortedNames(cfg) {
		oc := cfg[name]
		po, had := prev.byName[name]
		if had && reflect.DeepEqual(po.Config, oc) {
			t.add(po)
			ch.Kept = append(ch.Kept, name)
			continue
		}
		slot := t.slots
		if had {
			slot = po.Index
		}
		o, err := newOrigin(name, oc, slot)
		if err != nil {
			return fail(err)
		}
		ic, err := isolationConfig(o, oc)
		if err != nil {
			return fail(err)
		}
		if had {
			ic.Inherit = inheritFrom(po, oc)
			ch.Changed = append(ch.Changed, name)
		} else {
			t.slots++
			ch.Added = append(ch.Added, name)
		}
		if o.Iso, err = NewIsolation(name, oc.Servers, ic); err != nil {
			return fail(err)
		}
		built = append(built, o)
		t.add(o)
	}
	for _, po := range prev.List {
		if _, ok := t.byName[po.Name]; !ok {
			ch.Removed = append(ch.Removed, po.Name)
		}
	}
	return t, ch, nil
}

// inheritFrom is what a rebuilt origin with config oc takes over from po.
func inheritFrom(po *Origin, oc *config.Origin) *Inherited {
	if po.Iso == nil {
		return nil
	}
	in := &Inherited{Servers: po.Iso.Discovery.Servers()}
	if reflect.DeepEqual(po.Config.Breaker, oc.Breaker) {
		in.Breaker = po.Iso.Breaker
	}
	if po.Config.MaxConcurrentRequests == oc.MaxConcurrentRequests {
		in.Bulkhead = po.Iso.Bulkhead
	}
	if reflect.DeepEqual(po.Config.AdaptiveConcurrency, oc.AdaptiveConcurrency) {
		in.Adaptive = po.Iso.Adaptive // its learned limit and in-flight count go on
	}
	return in
}

// Activate starts the background work of the origins of t that are not in
// prev (the new and the rebuilt ones) and stops that of prev's origins that t
// replaced or dropped. Requests in flight on a replaced origin finish with
// it: only its DNS refresh and health checks stop. Call it once the loops
// serve t.
func Activate(prev, t *Table) {
	for _, o := range t.List {
		if po, ok := prev.byName[o.Name]; !ok || po != o {
			if o.Iso != nil {
				o.Iso.Start()
			}
		}
	}
	for _, po := range prev.List {
		if o, ok := t.byName[po.Name]; (!ok || o != po) && po.Iso != nil {
			po.Iso.Close()
		}
	}
}

// ConnsCompatible reports whether a connection opened for a's config may
// serve requests of b's: the same name and the same TLS settings (how a
// connection is made); timeouts and limits apply per request.
func ConnsCompatible(a, b *Origin) bool {
	if a == b {
		return true
	}
	if a.Name != b.Name || a.Config == nil || b.Config == nil {
		return false
	}
	return reflect.DeepEqual(a.Config.TLS, b.Config.TLS)
}
