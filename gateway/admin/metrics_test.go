package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"gozer/filters"
	"gozer/gateway/telemetry"
)

// TestMetricsExposition: the request metrics and the loops' readout come out
// of GET /metrics in the text format, as Prometheus' parser reads it.
func TestMetricsExposition(t *testing.T) {
	m := telemetry.NewMetrics()
	lm := m.NewLoop()
	success := filters.CauseIndex(filters.Success.Name)
	reset := filters.CauseIndex(filters.OriginReset.Name)
	for i := 0; i < 7; i++ {
		lm.Request("api", success, 200, 3e6, 2e6, 1)
	}
	lm.Request("api", reset, 502, 20e6, 19e6, 2)
	lm.Request(telemetry.NoOrigin, filters.CauseIndex(filters.LocalNoRoute.Name), 404, 1e4, -1, 0)

	a := &Server{src: Sources{Log: zerolog.Nop(), Metrics: m, Loops: func() []LoopStats {
		return []LoopStats{{Index: 0, HTTPConns: 3, OriginConns: 2, Busy: 1500 * time.Millisecond}}
	}}}
	rec := httptest.NewRecorder()
	a.metricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}

	for _, c := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"gozer_requests_total", map[string]string{"origin": "api", "cause": "SUCCESS", "code": "2xx"}, 7},
		{"gozer_requests_total", map[string]string{"origin": "api", "cause": "FAILURE_ORIGIN_RESET", "code": "5xx"}, 1},
		{"gozer_requests_total", map[string]string{"origin": "", "cause": "FAILURE_LOCAL_NO_ROUTE", "code": "4xx"}, 1},
		{"gozer_origin_attempts_total", map[string]string{"origin": "api"}, 9},
		{"gozer_origin_retries_total", map[string]string{"origin": "api"}, 1},
		{"gozer_loop_connections", map[string]string{"loop": "0", "kind": "http"}, 3},
		{"gozer_loop_connections", map[string]string{"loop": "0", "kind": "origin"}, 2},
		{"gozer_loop_busy_seconds_total", map[string]string{"loop": "0"}, 1.5},
		{"gozer_metrics_enabled", nil, 1},
	} {
		got, ok := find(fams, c.family, c.labels)
		if !ok {
			t.Errorf("%s%v missing", c.family, c.labels)
			continue
		}
		if v := got.GetCounter().GetValue() + got.GetGauge().GetValue(); v != c.want {
			t.Errorf("%s%v = %v; want %v", c.family, c.labels, v, c.want)
		}
	}

	h, ok := find(fams, "gozer_request_duration_seconds", map[string]string{"origin": "api"})
	if !ok || h.GetHistogram().GetSampleCount() != 8 {
		t.Fatalf("gozer_request_duration_seconds{origin=api}: %v; want 8 observations", h)
	}
	// 7 requests of 3 ms are under le=0.005, the one of 20 ms under le=0.025.
	for _, b := range h.GetHistogram().GetBucket() {
		want := uint64(0)
		switch {
		case b.GetUpperBound() >= 0.025:
			want = 8
		case b.GetUpperBound() >= 0.005:
			want = 7
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("le=%v: %d; want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if h, ok := find(fams, "gozer_origin_duration_seconds", map[string]string{"origin": ""}); ok {
		t.Errorf("requests without an origin have an at-origin histogram: %v", h)
	}
	if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Error("the Go runtime and process collectors are missing")
	}
}

// find returns the series of family with exactly labels.
func find(fams map[string]*dto.MetricFamily, family string, labels map[string]string) (*dto.Metric, bool) {
	f := fams[family]
	if f == nil {
		return nil, false
	}
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		same := len(got) == len(labels)
		for k, v := range labels {
			if gv, ok := got[k]; !ok || gv != v {
				same = false
			}
		}
		// An empty label value is the label's absence in the text format.
		if !same && labels["origin"] == "" {
			if _, has := got["origin"]; !has {
				same = len(got) == len(labels)-1
				for k, v := range labels {
					if k != "origin" && got[k] != v {
						same = false
					}
				}
			}
		}
		if same {
			return m, true
		}
	}
	return nil, false
}
