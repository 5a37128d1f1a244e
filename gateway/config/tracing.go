package config

import "time"

// Tracing configures W3C Trace Context and the passport of slow requests.
type Tracing struct {
	// AcceptTraceparent keeps the trace of a client's valid traceparent (its
	// trace id and flags; its tracestate goes on unchanged). False: every
	// request starts a trace of its own, the client's traceparent and
	// tracestate are replaced (an edge that does not let the internet decide
	// which of its requests the backends trace and sample).
	AcceptTraceparent bool `yaml:"accept_traceparent"`
	// SampleRatio is the share of the traces the gateway starts that it
	// marks sampled (flags 01); 0: none, 1: all.
	SampleRatio float64 `yaml:"sample_ratio"`
	// PassportThreshold: a request that takes longer (head to access-log
	// line) gets its passport, the timeline of its way through the gateway,
	// in its access-log line. 0: off, nothing is recorded.
	PassportThreshold time.Duration `yaml:"passport_threshold"`
}

func tracingDefaults() Tracing {
	return Tracing{AcceptTraceparent: true}
}

func (c *Config) validateTracing(bad reporter) {
	t := &c.Tracing
	if !(t.SampleRatio >= 0 && t.SampleRatio <= 1) { // NaN too
		bad("tracing.sample_ratio", "%v is not between 0 and 1", t.SampleRatio)
	}
	if t.PassportThreshold < 0 {
		bad("tracing.passport_threshold", "%v is negative (0 turns the passport off)", t.PassportThreshold)
	}
}
