package admin

import (
	"fmt"
	"net/http"

	"gozer/gateway/tlscert"
	"gozer/gateway/tlsconn"
)

// tlsView is GET /admin/tls: the HTTPS listener's handshakes and
// certificates, and the admin listener's own TLS.
type tlsView struct {
	Enabled       bool           `json:"enabled"`
	Handshakes    *tlsconn.Stats `json:"handshakes"`
	Certificates  *tlscert.Stats `json:"certificates"`
	AdminListener adminTLSView   `json:"admin_listener"`
}

// adminTLSView is the admin listener's TLS (listeners.admin.tls).
type adminTLSView struct {
	Enabled                   bool             `json:"enabled"`
	ClientAuth                string           `json:"client_auth"`
	HandshakesTotal           int64            `json:"handshakes_total"`
	HandshakeFailuresByReason map[string]int64 `json:"handshake_failures_by_reason"`
	Certificates              *tlscert.Stats   `json:"certificates"`
}

// tls serves GET /admin/tls ({"enabled": false, ...} without an HTTPS
// listener, "admin_listener": {"enabled": false, ...} without TLS there).
func (a *Server) tls(w http.ResponseWriter, _ *http.Request) {
	v := tlsView{AdminListener: adminTLSView{ClientAuth: "off", HandshakeFailuresByReason: map[string]int64{}}}
	if src := a.src.TLS; src != nil {
		hs, cs := src.Handshakes(), src.Certs.Stats()
		v.Enabled, v.Handshakes, v.Certificates = true, &hs, &cs
	}
	if t := a.src.ListenerTLS; t != nil {
		cs := t.Certs.Stats()
		hs, failures := a.tlsLn.stats()
		v.AdminListener = adminTLSView{Enabled: true, ClientAuth: t.ClientAuth,
			HandshakesTotal: hs, HandshakeFailuresByReason: failures, Certificates: &cs}
	}
	writeAdminJSON(w, v)
}

// tlsReload serves POST /admin/tls/reload[?listener=https|admin]: the
// certificate and key files of the HTTPS listener (the default) or of the
// admin listener are read again now; on failure the certificates in service
// stay and the answer (422) says why.
func (a *Server) tlsReload(w http.ResponseWriter, r *http.Request) {
	var certs *tlscert.Store
	switch l := r.URL.Query().Get("listener"); l {
	case "", "https":
		if a.src.TLS == nil {
			writeAdminError(w, http.StatusNotFound, "no HTTPS listener")
			return
		}
		certs = a.src.TLS.Certs
	case "admin":
		if a.src.ListenerTLS == nil {
			writeAdminError(w, http.StatusNotFound, "the admin listener does not speak TLS (listeners.admin.tls)")
			return
		}
		certs = a.src.ListenerTLS.Certs
	default:
		writeAdminError(w, http.StatusBadRequest, fmt.Sprintf("listener %q: want https or admin", l))
		return
	}
	if err := certs.Reload(); err != nil {
		writeAdminError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	cs := certs.Stats()
	writeAdminJSON(w, &cs)
}
