package admin

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"gopkg.in/yaml.v3"

	"gozer/gateway/config"
	"gozer/gateway/faults"
	"gozer/gateway/origin"
)

// Failure injection through the admin API (gateway/faults):
//
//	GET    /admin/faults  the rules in service, where they come from, the counts
//	PUT    /admin/faults  replace them: {"rules": [...]} (JSON or YAML, the
//	                      config's fault_injection keys); {"rules": []} stops all
//	DELETE /admin/faults  back to the config's fault_injection rules
//
// The rules set here stay until DELETE or a restart: a config reload does not
// replace them (the config's are what DELETE goes back to).

// faultsView is GET /admin/faults.
type faultsView struct {
	// Source is "config" (fault_injection) or "admin" (PUT /admin/faults).
	Source   string           `json:"source"`
	Rules    []faultRuleView  `json:"rules"`
	Injected map[string]int64 `json:"injected_by_kind"`
}

// faultRuleView is one rule, with the config's keys and units.
type faultRuleView struct {
	Name        string  `json:"name"`
	Origin      string  `json:"origin"`
	Host        string  `json:"host"`
	PathPrefix  string  `json:"path_prefix"`
	Header      string  `json:"header"`
	HeaderValue string  `json:"header_value"`
	Percent     float64 `json:"percent"`
	Delay       string  `json:"delay"` // a Go duration: "200ms"; "0s" for none
	Abort       int     `json:"abort"`
	Reset       bool    `json:"reset"`
	SlowBody    int64   `json:"slow_body"` // bytes per second; 0 for none
}

// faultsBody is PUT /admin/faults' body.
type faultsBody struct {
	Rules []config.FaultRule `yaml:"rules"`
}

// faults serves GET /admin/faults.
func (a *Server) faults(w http.ResponseWriter, _ *http.Request) {
	live := a.src.Shared.Faults
	v := faultsView{Source: "config", Rules: []faultRuleView{}, Injected: live.Counts()}
	if live.Overridden() {
		v.Source = "admin"
	}
	for _, r := range live.Active(a.src.Shared.Snapshot().Faults).Rules() {
		v.Rules = append(v.Rules, faultRuleView{
			Name: r.Name, Origin: r.Origin, Host: r.Host, PathPrefix: r.PathPrefix, Header: r.Header, HeaderValue: r.HeaderValue,
			Percent: r.Percent, Delay: r.Delay.String(), Abort: r.Abort, Reset: r.Reset, SlowBody: int64(r.SlowBody),
		})
	}
	writeAdminJSON(w, v)
}

// faultsPut serves PUT /admin/faults: 200 with the new state, 400 (nothing
// changed) for a body that does not parse or a rule that is wrong.
func (a *Server) faultsPut(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, adminMaxBody))
	if err != nil {
		writeAdminError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	var fb faultsBody
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	if err := dec.Decode(&fb); err != nil && err != io.EOF {
		writeAdminError(w, http.StatusBadRequest, "parse rules: "+err.Error())
		return
	}
	var tab *origin.Table
	if a.src.Origins != nil {
		tab = a.src.Origins()
	}
	for i, fr := range fb.Rules {
		if fr.Origin == "" || tab == nil {
			continue
		}
		if _, ok := tab.Get(fr.Origin); !ok {
			writeAdminError(w, http.StatusBadRequest, fmt.Sprintf("rules[%d].origin: names unknown origin %q", i, fr.Origin))
			return
		}
	}
	set, err := faults.Compile(fb.Rules)
	if err != nil {
		writeAdminError(w, http.StatusBadRequest, err.Error())
		return
	}
	a.src.Shared.Faults.Set(set)
	a.src.Log.Warn().Int("rules", len(fb.Rules)).Msg("fault injection rules set through the admin API")
	a.faults(w, r)
}

// faultsDelete serves DELETE /admin/faults: the config's rules again.
func (a *Server) faultsDelete(w http.ResponseWriter, r *http.Request) {
	a.src.Shared.Faults.Clear()
	a.src.Log.Info().Msg("fault injection back to the config's rules")
	a.faults(w, r)
}
