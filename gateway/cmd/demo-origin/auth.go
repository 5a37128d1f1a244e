package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// auth is /auth[?delay=D]: a toy authorization service for the shipped async
// filter (scripts/inbound/15_auth.lua). It waits D (default: the process's
// -auth-delay), then judges the request's Authorization header:
//
//	Bearer allow:USER   200 {"allow": true, "user": "USER"}, X-Auth-User: USER
//	Bearer ANYTHING     403 {"allow": false, "reason": "token refused"}
//	none                401 {"allow": false, "reason": "no token"}
//
// Every answer carries X-Auth-Calls: how many /auth requests this process
// has served, this one included (tests count the calls a cache saved).
func (o *origin) auth(w http.ResponseWriter, r *http.Request) {
	n := o.authCalls.Add(1)
	d, err := parseDelay(r, o.authDelay)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Auth-Calls", strconv.FormatInt(n, 10))
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || token == "":
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{"allow": false, "reason": "no token"})
	case strings.HasPrefix(token, "allow:") && len(token) > len("allow:"):
		user := strings.TrimPrefix(token, "allow:")
		w.Header().Set("X-Auth-User", user)
		_ = json.NewEncoder(w).Encode(map[string]any{"allow": true, "user": user})
	default:
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]any{"allow": false, "reason": "token refused"})
	}
}
