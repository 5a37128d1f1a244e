package config

import (
	"strings"
	"testing"
)

func TestHTTP2Validation(t *testing.T) {
	base := "origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\nroutes:\n  - {path_prefix: /, origin: api}\n"
	cases := []struct {
		name, yaml, want string // want "": valid
	}{
		{"defaults", "", ""},
		{"all", "listeners:\n  proxy: {h2c: true}\n  https: {h2: false}\nhttp2:\n  max_concurrent_streams: 50\n  initial_window_size: 1MiB\n  connection_window_size: 4MiB\n  max_frame_size: 64KiB\n  max_resets: 10\n  max_control_frames: 100\n  abuse_window: 1s\n", ""},
		{"streams", "http2:\n  max_concurrent_streams: 0\n", "http2.max_concurrent_streams"},
		{"window", "http2:\n  initial_window_size: 10\n", "http2.initial_window_size"},
		{"window too big", "http2:\n  initial_window_size: 4GiB\n", "http2.initial_window_size"},
		{"connection window", "http2:\n  connection_window_size: 1KiB\n", "http2.connection_window_size"},
		{"frame", "http2:\n  max_frame_size: 1KiB\n", "http2.max_frame_size"},
		{"frame too big", "http2:\n  max_frame_size: 16MiB\n", "http2.max_frame_size"},
		{"resets", "http2:\n  max_resets: 0\n", "http2.max_resets"},
		{"controls", "http2:\n  max_control_frames: -1\n", "http2.max_control_frames"},
		{"window of abuse", "http2:\n  abuse_window: 10ms\n", "http2.abuse_window"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(base+tc.yaml), "test")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one naming %s (config %+v)", err, tc.want, c)
			}
		})
	}
	c, err := Parse([]byte(base), "test")
	if err != nil || !c.Listeners.HTTPS.H2 || c.Listeners.Proxy.H2C || c.HTTP2.MaxConcurrentStreams != 100 {
		t.Fatalf("defaults: h2 %v, h2c %v, %+v, %v", c.Listeners.HTTPS.H2, c.Listeners.Proxy.H2C, c.HTTP2, err)
	}
}
