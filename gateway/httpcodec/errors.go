package httpcodec

import (
	"strconv"

	"github.com/valyala/fasthttp"
)

// Class is the kind of problem an *Error reports; filters.CauseOfCodec maps
// each to its status cause. Its value is that cause's name.
type Class string

// The classes of decoding errors.
const (
	CauseBadRequest        Class = "FAILURE_CLIENT_BAD_REQUEST"
	CauseSmuggling         Class = "FAILURE_CLIENT_SMUGGLING"
	CauseURITooLong        Class = "FAILURE_CLIENT_URI_TOO_LONG"
	CauseHeadersTooLarge   Class = "FAILURE_CLIENT_HEADERS_TOO_LARGE"
	CauseOriginBadResponse Class = "FAILURE_ORIGIN_BAD_RESPONSE"
)

// Error maps a decoding problem to an HTTP status and a status cause.
//
// The codec returns shared, package-level *Error values (so that rejecting a
// request does not allocate): callers must treat them as read-only and must
// not modify their fields. Compare them by Status and Cause, not by pointer.
type Error struct {
	Status int    // 400, 413, 414, 417, 431, 502, 505 ...
	Cause  Class  // e.g. CauseBadRequest, CauseSmuggling, CauseOriginBadResponse
	Reason string // short human reason for the log line; never sent to the client
}

// Error implements error: "<status> <cause>: <reason>".
func (e *Error) Error() string {
	return strconv.Itoa(e.Status) + " " + string(e.Cause) + ": " + e.Reason
}

func badRequest(reason string) *Error {
	return &Error{Status: 400, Cause: CauseBadRequest, Reason: reason}
}

func smuggling(reason string) *Error {
	return &Error{Status: 400, Cause: CauseSmuggling, Reason: reason}
}

func badResponse(reason string) *Error {
	return &Error{Status: 502, Cause: CauseOriginBadResponse, Reason: reason}
}

// StatusText returns the RFC 9110 reason phrase for status, or fasthttp's
// text for codes this package does not list, or "Unknown Status Code".
func StatusText(status int) string {
	switch status {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 200:
		return "OK"
	case 204:
		return "No Content"
	case 304:
		return "Not Modified"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 411:
		return "Length Required"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 417:
		return "Expectation Failed"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 499:
		return "Client Closed Request"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return fasthttp.StatusMessage(status)
}

// AppendError appends a complete, small plain-text error response to dst:
//
//	HTTP/1.1 431 Request Header Fields Too Large
//	Content-Type: text/plain; charset=utf-8
//	Content-Length: 36
//	X-Gozer-Status: FAILURE_CLIENT_HEADERS_TOO_LARGE
//	X-Request-Id: <requestID>          (when requestID is not empty)
//	Connection: close                  (when close)
//
//	431 Request Header Fields Too Large\n
//
// reason is accepted so call sites read like the log line, but it is never
// written: error details are not leaked to clients. cause and requestID are
// written with control characters removed. It does not allocate when dst has
// room.
func AppendError(dst []byte, status int, cause string, reason string, requestID []byte, close bool) []byte {
	_ = reason
	if status < 100 || status > 999 {
		status = 500
	}
	text := StatusText(status)
	bodyLen := 3 + 1 + len(text) + 1
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(bodyLen), 10)
	if cause != "" {
		dst = append(dst, "\r\nX-Gozer-Status: "...)
		dst = appendSafeString(dst, cause)
	}
	if len(requestID) > 0 {
		dst = append(dst, "\r\nX-Request-Id: "...)
		dst = appendSafe(dst, requestID)
	}
	if close {
		dst = append(dst, "\r\nConnection: close"...)
	}
	dst = append(dst, "\r\n\r\n"...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	return append(dst, '\n')
}

// appendSafe appends b without control characters other than HTAB, so that a
// value can never break out of its header line.
func appendSafe(dst, b []byte) []byte {
	for _, c := range b {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

func appendSafeString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			continue
		}
		dst = append(dst, c)
	}
	return dst
}
