package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"gozer/gateway/ratelimit"
)

// limits serves GET /admin/limits: the keys held, each declarative limit with
// its rejections, ctx.limit's ("lua"), the connection protections' counts,
// the deny list and the cluster reconciler's state.
func (a *Server) limits(w http.ResponseWriter, _ *http.Request) {
	sh := a.src.Shared
	if sh == nil || sh.Limits == nil {
		writeAdminError(w, http.StatusNotFound, "no limits on this node")
		return
	}
	cfg := sh.Snapshot().Config
	writeAdminJSON(w, sh.Limits.Stats(sh.Limits.RulesFor(cfg, cfg.Limits.Compile)))
}

// denyList serves GET /admin/deny: the networks denied now.
func (a *Server) denyList(w http.ResponseWriter, _ *http.Request) {
	if a.src.Shared == nil || a.src.Shared.Limits == nil {
		writeAdminError(w, http.StatusNotFound, "no deny list on this node")
		return
	}
	writeAdminJSON(w, denyView{Networks: a.src.Shared.Limits.Deny.Entries()})
}

// denyView is GET /admin/deny's answer (and POST's and DELETE's).
type denyView struct {
	Networks []ratelimit.DenyEntry `json:"networks"`
}

// denyRequest is POST /admin/deny's body: {"network": "203.0.113.0/24",
// "ttl": "10m"} (ttl optional: until DELETE). The query parameters network
// and ttl do the same without a body.
type denyRequest struct {
	Network string `json:"network"`
	TTL     string `json:"ttl"`
}

// denyAdd serves POST /admin/deny: adds a network; its new connections are
// closed at accept from now on, its requests on open connections get 403.
func (a *Server) denyAdd(w http.ResponseWriter, r *http.Request) {
	if a.src.Shared == nil || a.src.Shared.Limits == nil {
		writeAdminError(w, http.StatusNotFound, "no deny list on this node")
		return
	}
	req := denyRequest{Network: r.URL.Query().Get("network"), TTL: r.URL.Query().Get("ttl")}
	if req.Network == "" {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		if err := json.Unmarshal(body, &req); err != nil {
			writeAdminError(w, http.StatusBadRequest, fmt.Sprintf("want {\"network\": \"203.0.113.0/24\", \"ttl\": \"10m\"} or ?network=: %v", err))
			return
		}
	}
	p, err := ratelimit.ParsePrefix(req.Network)
	if err != nil {
		writeAdminError(w, http.StatusBadRequest, err.Error())
		return
	}
	until := int64(0)
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			writeAdminError(w, http.StatusBadRequest, fmt.Sprintf("ttl %q: want a positive duration (\"10m\")", req.TTL))
			return
		}
		until = time.Now().Add(d).UnixNano()
	}
	lim := a.src.Shared.Limits
	lim.Deny.Add(p, until)
	a.src.Log.Info().Str("network", p.String()).Str("ttl", req.TTL).Msg("deny list: network added")
	writeAdminJSON(w, denyView{Networks: lim.Deny.Entries()})
}

// denyRemove serves DELETE /admin/deny?network=: lifts a network the API or
// Lua added (404 when it was not; the config's are lifted by a reload).
func (a *Server) denyRemove(w http.ResponseWriter, r *http.Request) {
	if a.src.Shared == nil || a.src.Shared.Limits == nil {
		writeAdminError(w, http.StatusNotFound, "no deny list on this node")
		return
	}
	p, err := ratelimit.ParsePrefix(r.URL.Query().Get("network"))
	if err != nil {
		writeAdminError(w, http.StatusBadRequest, err.Error())
		return
	}
	lim := a.src.Shared.Limits
	if !lim.Deny.Remove(p) {
		writeAdminError(w, http.StatusNotFound, fmt.Sprintf("%s was not added through the API or Lua (protect.deny's change with the config)", p))
		return
	}
	a.src.Log.Info().Str("network", p.String()).Msg("deny list: network lifted")
	writeAdminJSON(w, denyView{Networks: lim.Deny.Entries()})
}
