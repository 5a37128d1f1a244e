package http1

import (
	"testing"
	"unsafe"
)

// TestConnSize: an idle keep-alive connection's own state stays in the
// 176-byte size class (what it cost before the exchange moved out was 192);
// what lives only as long as a request is in its stream.
func TestConnSize(t *testing.T) {
	if s := unsafe.Sizeof(Conn{}); s > 176 {
		t.Errorf("Conn is %d bytes, want at most 176", s)
	}
}
