package admin

import (
	"net/http"
	"time"
)

// ConfigControl is the configuration side of the admin API: what runs and
// the live reload (gateway/server's reloader). Any goroutine.
type ConfigControl interface {
	// ConfigStatus is GET /admin/config's answer.
	ConfigStatus() any
	// ReloadConfig reloads now and returns the attempt; applied is false when
	// the reload was refused (nothing changed).
	ReloadConfig() (attempt any, applied bool)
	// ReloadStats are the counts GET /metrics shows.
	ReloadStats() ReloadStats
}

// ReloadStats count the configuration reloads since start.
type ReloadStats struct {
	Applied, Refused int64
	Generation       int64     // 1 at start, one more per applied reload
	LoadedAt         time.Time // when the configuration in service was loaded
}

// config serves GET /admin/config: the configuration in service (source,
// hash, load time, generation) and the last reload attempt.
func (a *Server) config(w http.ResponseWriter, _ *http.Request) {
	if a.src.Config == nil {
		writeAdminError(w, http.StatusNotFound, "no configuration control")
		return
	}
	writeAdminJSON(w, a.src.Config.ConfigStatus())
}

// configReload serves POST /admin/config/reload: 200 with the attempt when
// it applied (or found nothing changed), 422 with it when it was refused.
func (a *Server) configReload(w http.ResponseWriter, _ *http.Request) {
	if a.src.Config == nil {
		writeAdminError(w, http.StatusNotFound, "no configuration control")
		return
	}
	at, ok := a.src.Config.ReloadConfig()
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnprocessableEntity)
		writeJSONBody(w, at)
		return
	}
	writeAdminJSON(w, at)
}
