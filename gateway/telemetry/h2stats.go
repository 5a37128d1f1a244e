package telemetry

import "sync/atomic"

// H2Reason is why an HTTP/2 connection or stream was ended by the gateway.
type H2Reason uint8

// The reasons, in H2Reasons' order.
const (
	H2ProtocolError      H2Reason = iota // a frame the RFC forbids: GOAWAY or RST_STREAM PROTOCOL_ERROR
	H2FlowControl                        // more DATA than the window allowed: FLOW_CONTROL_ERROR
	H2FrameSize                          // a frame over SETTINGS_MAX_FRAME_SIZE: FRAME_SIZE_ERROR
	H2Compression                        // an HPACK block that does not decode: COMPRESSION_ERROR
	H2RapidReset                         // streams reset past http2.max_resets: ENHANCE_YOUR_CALM
	H2ContinuationFlood                  // a header block over its byte or frame cap: ENHANCE_YOUR_CALM
	H2ControlFlood                       // control frames past http2.max_control_frames: ENHANCE_YOUR_CALM
	H2HeaderListTooLarge                 // a header list over SETTINGS_MAX_HEADER_LIST_SIZE: 431
	H2RefusedStream                      // a stream over SETTINGS_MAX_CONCURRENT_STREAMS: REFUSED_STREAM
	H2StreamStalled                      // a stream the client gave no window for server.idle_timeout
	H2SlowReader                         // a stream or connection the client read slower than server.min_send_rate
	H2SlowBody                           // a stream whose request body came slower than server.min_body_rate: 408, RST_STREAM NO_ERROR
	h2Reasons
)

// H2Reasons names the reasons as counters and logs show them.
var H2Reasons = [h2Reasons]string{"protocol_error", "flow_control", "frame_size", "compression", "rapid_reset",
	"continuation_flood", "control_flood", "header_list_too_large", "refused_stream", "stream_stalled", "slow_reader", "slow_body"}

func (r H2Reason) String() string { return H2Reasons[r] }

// H2Stats counts HTTP/2 connections and streams, and what the gateway ended
// by reason. Any goroutine (atomics).
type H2Stats struct {
	Conns   atomic.Int64 // connections that spoke HTTP/2
	Streams atomic.Int64 // streams that carried a request
	ended   [h2Reasons]atomic.Int64
}

// Count counts one end for reason r.
func (s *H2Stats) Count(r H2Reason) { s.ended[r].Add(1) }

// Ended returns the count for each reason, by name.
func (s *H2Stats) Ended() map[string]int64 {
	m := make(map[string]int64, h2Reasons)
	for i := range s.ended {
		m[H2Reasons[i]] = s.ended[i].Load()
	}
	return m
}
