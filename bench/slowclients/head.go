package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// headParser follows the first bytes of a response far enough to name it: status
// code, X-Gozer-Status, where the head ends and the Content-Length.
type headParser struct {
	buf           []byte
	seen          int64 // bytes fed in all
	done          bool  // head complete, or given up on (too long)
	status        int
	cause         string
	headLen       int
	contentLength int64
}

const maxHead = 16 << 10

// feed adds bytes of the response; it tells whether the head is complete.
func (h *headParser) feed(p []byte) bool {
	if h.done || len(p) == 0 {
		return h.done
	}
	h.seen += int64(len(p))
	h.buf = append(h.buf, p[:min(len(p), maxHead-len(h.buf))]...)
	if h.status == 0 {
		if line, _, ok := bytes.Cut(h.buf, []byte("\r\n")); ok {
			f := strings.Fields(string(line))
			if len(f) >= 2 && strings.HasPrefix(f[0], "HTTP/") {
				h.status, _ = strconv.Atoi(f[1])
			}
		}
	}
	if i := bytes.Index(h.buf, []byte("\r\n\r\n")); i >= 0 {
		h.done, h.headLen, h.contentLength = true, i+4, -1
		for _, line := range strings.Split(string(h.buf[:i]), "\r\n")[1:] {
			k, v, _ := strings.Cut(line, ":")
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "x-gozer-status":
				h.cause = strings.TrimSpace(v)
			case "content-length":
				h.contentLength, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		h.buf = nil
	} else if len(h.buf) >= maxHead {
		h.done, h.buf = true, nil
	}
	return h.done
}

// complete: got (all bytes received) covers the head and the announced body.
func (h *headParser) complete(got int64) bool {
	return h.done && h.headLen > 0 && h.contentLength >= 0 && got >= int64(h.headLen)+h.contentLength
}

// answer names what the server said: "408 FAILURE_CLIENT_TIMEOUT", "503", "no answer".
func (h *headParser) answer() string {
	switch {
	case h.seen == 0:
		return "no answer"
	case h.status == 0:
		return "unparsable answer"
	case !h.done:
		return fmt.Sprintf("%d (head not read through)", h.status)
	case h.cause == "":
		return strconv.Itoa(h.status)
	}
	return fmt.Sprintf("%d %s", h.status, h.cause)
}
