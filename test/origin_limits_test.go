package test

import (
	"net/http"
	"testing"
	"time"
)

// TestOriginConnectionLimits: max_requests_per_connection retires an origin
// connection after that many requests (the origin sees new connections), and
// total_timeout bounds a request at the origin even when each read is within
// read_timeout.
func TestOriginConnectionLimits(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "limits")
	g := startGozer(t, oneOrigin(map[string]string{
		"max_requests_per_connection": "2",
		"total_timeout":               "1s",
		"read_timeout":                "10s",
		"retries":                     "0",
	}, o.Addr))
	client := &http.Client{Timeout: 10 * time.Second}

	id := uniqueID("perconn")
	for i := 0; i < 6; i++ {
		req, _ := http.NewRequest("GET", "http://"+g.ProxyAddr+"/headers", nil)
		req.Header.Set("X-Test-Id", id)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	if s := seen(t, o, id); s.Requests != 6 || s.Connections < 3 {
		t.Errorf("origin saw %d requests over %d connections; want 6 over at least 3 (2 requests per connection)", s.Requests, s.Connections)
	}

	start := time.Now()
	resp, err := client.Get("http://" + g.ProxyAddr + "/slow?delay=5s")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 504 || resp.Header.Get("X-Gozer-Status") != "FAILURE_ORIGIN_READ_TIMEOUT" {
		t.Errorf("slow origin past total_timeout: status %d %q; want 504 FAILURE_ORIGIN_READ_TIMEOUT", resp.StatusCode, resp.Header.Get("X-Gozer-Status"))
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("answered after %v: total_timeout 1s was not applied (the origin answers after 5s)", d)
	}
}
