package push

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"gozer/gateway/loop"
)

// TestForwardDialsKeepUnderTheCeiling: with LimitDials (the server's
// loop.DialCeiling), the default forward client refuses a socket whose
// descriptor reaches the ceiling (counted), and dials as before under it.
func TestForwardDialsKeepUnderTheCeiling(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	url := srv.URL + "/"
	cases := []struct {
		name    string
		ceiling int
		refuse  bool
	}{
		{"no ceiling", 0, false},
		{"under it", 1 << 30, false},
		{"at it", 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := NewAPI(APIConfig{Registry: NewRegistry(0), Topics: NewTopics(0, nil)})
			var refused atomic.Int64
			api.LimitDials(loop.DialCeiling(tc.ceiling, &refused))
			resp, err := api.client.Get(url)
			if resp != nil {
				resp.Body.Close()
			}
			switch {
			case tc.refuse && !errors.Is(err, loop.ErrOpenFiles):
				t.Errorf("forward at the ceiling: %v, want %v", err, loop.ErrOpenFiles)
			case !tc.refuse && (err != nil || resp.StatusCode != http.StatusNoContent):
				t.Errorf("forward under the ceiling: %v", err)
			}
			if want := map[bool]int64{true: 1, false: 0}[tc.refuse]; refused.Load() != want {
				t.Errorf("refused %d, want %d", refused.Load(), want)
			}
		})
	}
}
