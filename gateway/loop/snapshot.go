package loop

import (
	"net/netip"

	"gozer/filters"
	"gozer/gateway/config"
	"gozer/gateway/faults"
	"gozer/gateway/httpcodec"
	"gozer/gateway/origin"
	"gozer/gateway/tracectx"
)

// Snapshot is the configuration the loops serve with: the config as loaded,
// what was built from it (origins, the route table) and the limits read per
// request, computed once. It is immutable: a reload builds a new one and
// swaps it in whole (Shared), requests in flight keep the one they started
// with. Any goroutine.
type Snapshot struct {
	Config  *config.Config
	Origins *origin.Table
	Router  filters.Router
	Limits  Limits
	// CORS are the CORS policies compiled (cors, routes[].cors, push.cors).
	CORS *filters.CORSTable
	// Faults are the config's fault_injection rules (nil: none).
	Faults *faults.Set
}

// Limits are the config values read per connection or per request.
type Limits struct {
	HeaderTimeout  int64 // ns: a head (and each body piece) must arrive within this
	IdleTimeout    int64 // ns: a keep-alive connection's wait; a client's time to take a response
	MaxBody        int64 // server.max_request_body (0: none)
	MaxBuffered    int   // server.max_buffered_per_conn
	MaxFilterBody  int   // filters.max_body_bytes
	MaxRequestLine int
	MaxHeaderBytes int
	MaxHeaders     int                  // server.max_headers
	Underscores    Underscores          // server.headers_with_underscores
	Paths          httpcodec.PathPolicy // server.normalize_path, server.merge_slashes

	MinBodyRate int64 // bytes per second a request body must keep up, over RateWindow (0: none)
	MinSendRate int64 // bytes per second a client must take of a response it holds up (0: none)
	RateWindow  int64 // ns

	// Status headers: who sees X-Gozer-Status.
	StatusExpose  string
	DebugHeader   string
	TrustedPrefix []netip.Prefix

	// Tracing (tracing.*): accept the client's traceparent; the share of new
	// traces sampled (tracectx.SampleThreshold); the passport's threshold in
	// ns (0: off).
	TraceAccept   bool
	TraceSample   uint64
	PassportAfter int64
}

// NewSnapshot builds the snapshot of cfg with what was built from it.
func NewSnapshot(cfg *config.Config, origins *origin.Table, router filters.Router) *Snapshot {
	s := cfg.Server
	// A validated config compiles; a rule that does not is dropped with the
	// others (Validate reports it first).
	fs, _ := faults.Compile(cfg.FaultInjection)
	return &Snapshot{
		Faults: fs,
		Config: cfg, Origins: origins, Router: router, CORS: filters.NewCORSTable(cfg),
		Limits: Limits{
			HeaderTimeout:  int64(s.HeaderReadTimeout),
			IdleTimeout:    int64(s.IdleTimeout),
			MaxBody:        int64(s.MaxRequestBody),
			MaxBuffered:    int(s.MaxBufferedPerConn),
			MaxFilterBody:  int(cfg.Filters.MaxBodyBytes),
			MaxRequestLine: int(s.MaxRequestLine),
			MaxHeaderBytes: int(s.MaxHeaderBytes),
			MaxHeaders:     s.MaxHeaders,
			Underscores:    underscoresOf(s.HeadersWithUnderscores),
			Paths:          httpcodec.PathPolicy{DecodeUnreserved: s.NormalizePath, MergeSlashes: s.MergeSlashes},
			MinBodyRate:    int64(s.MinBodyRate),
			MinSendRate:    int64(s.MinSendRate),
			RateWindow:     int64(s.RateWindow),
			StatusExpose:   s.StatusHeaders.Expose,
			DebugHeader:    s.StatusHeaders.DebugHeader,
			TrustedPrefix:  s.StatusHeaders.Prefixes(),
			TraceAccept:    cfg.Tracing.AcceptTraceparent,
			TraceSample:    tracectx.SampleThreshold(cfg.Tracing.SampleRatio),
			PassportAfter:  int64(cfg.Tracing.PassportThreshold),
		},
	}
}

// Underscores is server.headers_with_underscores, read once per snapshot
// rather than compared as a string per request.
type Underscores uint8

// The policies: drop the client's "_" headers (the default), refuse the
// request with a 400, or pass them.
const (
	UnderscoresDrop Underscores = iota
	UnderscoresReject
	UnderscoresAllow
)

// underscoresOf is the policy a validated setting names.
func underscoresOf(s string) Underscores {
	switch s {
	case "reject":
		return UnderscoresReject
	case "allow":
		return UnderscoresAllow
	}
	return UnderscoresDrop
}
