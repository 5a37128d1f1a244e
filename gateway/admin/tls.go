package admin

import (
	"net/http"

	"gozer/gateway/tlscert"
	"gozer/gateway/tlsconn"
)

// tlsView is GET /admin/tls: the HTTPS listener's handshakes and certificates.
type tlsView struct {
	Enabled      bool           `json:"enabled"`
	Handshakes   *tlsconn.Stats `json:"handshakes"`
	Certificates *tlscert.Stats `json:"certificates"`
}

// tls serves GET /admin/tls ({"enabled": false, ...} without an HTTPS listener).
func (a *Server) tls(w http.ResponseWriter, _ *http.Request) {
	v := tlsView{}
	if src := a.src.TLS; src != nil {
		hs, cs := src.Handshakes(), src.Certs.Stats()
		v = tlsView{Enabled: true, Handshakes: &hs, Certificates: &cs}
	}
	writeAdminJSON(w, v)
}

// tlsReload serves POST /admin/tls/reload: the certificate and key files are
// read again now; on failure the certificates in service stay and the answer
// (422) says why.
func (a *Server) tlsReload(w http.ResponseWriter, _ *http.Request) {
	src := a.src.TLS
	if src == nil {
		writeAdminError(w, http.StatusNotFound, "no HTTPS listener")
		return
	}
	if err := src.Certs.Reload(); err != nil {
		writeAdminError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	cs := src.Certs.Stats()
	writeAdminJSON(w, &cs)
}
