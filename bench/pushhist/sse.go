package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// sseClient carries every EventSource device: one connection per device (a
// stream holds its connection), dialled from spread source addresses.
var sseClient = &http.Client{Transport: &http.Transport{
	DialContext:           func(ctx context.Context, n, a string) (net.Conn, error) { return srcDialer().DialContext(ctx, n, a) },
	ResponseHeaderTimeout: 30 * time.Second,
	DisableCompression:    true,
	MaxIdleConnsPerHost:   -1,
}}

// dialSSE opens an EventSource stream at url as a device would, with
// Last-Event-ID: last when it has one, and reads its events (id and data;
// comments and other fields are skipped) into the device's msgs.
func dialSSE(url, last string) (*device, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := sseClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("eventsource %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("eventsource %s: %d %s", url, resp.StatusCode, b)
	}
	dev := &device{c: resp.Body, msgs: make(chan [2]string, 64)}
	go dev.readSSE(resp.Body)
	return dev, nil
}

// readSSE parses the text/event-stream framing: fields until a blank line
// end an event; an event without data (nchan's comments, a bare id) is not
// a message.
func (d *device) readSSE(body io.Reader) {
	defer close(d.msgs)
	r := bufio.NewReaderSize(body, 1024)
	var id, data string
	var hasData bool
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			d.err = err
			return
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if hasData {
				d.msgs <- [2]string{id, data}
			}
			data, hasData = "", false
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id = value
		case "data":
			if hasData {
				data += "\n"
			}
			data, hasData = data+value, true
		}
	}
}
